"""RadialPCCScatter: the paper's Fig 2d, intensity and correlation against angle."""

from __future__ import annotations

import numpy as np

from ..core import geometry
from .raster import Bitmap


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def scatter_rgba(x, y, xlim, ylim, shape, color: str, log_y: bool = False,
                 radius_px: int = 1) -> np.ndarray:
    """Points drawn into a transparent ``(h, w, 4)`` uint8 picture: each point a
    small disc of ``radius_px`` around its pixel.

    Row 0 is the top (``ylim[1]``); with ``log_y`` rows are uniform in ``log10(y)``,
    as a logarithmic axis draws them. Points outside the limits (or not finite, or
    not positive on a log axis) are not drawn.

    Example
    -------
    >>> rgba = scatter_rgba([0.5], [0.5], (0, 1), (0, 1), (5, 5), "#ff0000", radius_px=0)
    >>> rgba[2, 2].tolist(), int(rgba[..., 3].astype(bool).sum())
    ([255, 0, 0, 255], 1)
    """
    h, w = shape
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    (x0, x1), (y0, y1) = xlim, ylim
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            y, y0, y1 = np.log10(y), np.log10(y0), np.log10(y1)
    fx = (x - x0) / (x1 - x0) * w
    fy = (y - y0) / (y1 - y0) * h
    ok = np.isfinite(fx) & np.isfinite(fy) & (fx >= 0) & (fx <= w) & (fy >= 0) & (fy <= h)
    col = np.minimum(fx[ok].astype(int), w - 1)
    row = h - 1 - np.minimum(fy[ok].astype(int), h - 1)
    rgba = np.zeros((h, w, 4), np.uint8)
    paint = np.array(_hex_rgb(color) + (255,), np.uint8)
    for dy in range(-radius_px, radius_px + 1):
        for dx in range(-radius_px, radius_px + 1):
            if dy * dy + dx * dx <= radius_px * radius_px + radius_px:
                rr, cc = row + dy, col + dx
                keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
                rgba[rr[keep], cc[keep]] = paint
    return rgba


class RasterScatter:
    """A scatter plot drawn as one PNG in a bqplot ``Image`` mark (no SVG element per
    point: thousands of points cost the page nothing when something else changes).

    Attributes ``x``, ``y``, ``scales``, ``colors`` and ``labels`` are those of the
    points shown; :meth:`draw` redraws them.
    """

    def __init__(self, scales, shape, color: str, label: str, log_y: bool = False):
        self.scales, self.shape, self.log_y = scales, tuple(shape), bool(log_y)
        self.colors, self.labels = [color], [label]
        self.x = self.y = np.zeros(0)
        sx, sy = scales["x"], scales["y"]
        self.bitmap = Bitmap(scales, (sx.min, sx.max), (sy.min, sy.max))
        self.mark = self.bitmap.mark

    def draw(self, x, y) -> None:
        """Show the points ``(x, y)`` within the current limits of the scales."""
        self.x, self.y = np.asarray(x, float), np.asarray(y, float)
        sx, sy = self.scales["x"], self.scales["y"]
        xlim, ylim = (float(sx.min), float(sx.max)), (float(sy.min), float(sy.max))
        rgba = scatter_rgba(self.x, self.y, xlim, ylim, self.shape, self.colors[0],
                            self.log_y)
        with self.mark.hold_sync():
            self.bitmap.draw(rgba)
            self.mark.x, self.mark.y = list(xlim), list(ylim)


class RadialPCCScatter:
    """Mean pixel-STEM intensity (blue, log axis on the left) and correlation with a
    species' template (red, right axis) of every detector pixel against its scattering
    angle, as in Fig 2d; brushing an angle range selects those pixels and highlights
    them in the species' mask viewer. The points are drawn as bitmaps.

    Parameters
    ----------
    mean : ndarray
        ``(det_y, det_x)`` mean intensity of each pixel.
    calibration : Calibration
        Detector calibration (mrad).
    viewer : MaskViewer, optional
        Highlights the brushed pixels.
    species : str
        Named in the title and legend.
    """

    #: Figure size and margins [screen px]; the points are drawn at the plot area's size.
    WIDTH, HEIGHT = 620, 380
    MARGIN = {"top": 40, "bottom": 50, "left": 90, "right": 70}

    def __init__(self, mean, calibration, viewer=None, species: str = ""):
        import bqplot as bq
        import ipywidgets as ipw

        self.mean = np.asarray(mean, float)
        self.radius = geometry.radius_map(self.mean.shape, calibration.det_scale,
                                          calibration.det_offset).ravel()
        self.units = calibration.det_units
        self.viewer = viewer
        self.species = species
        self.pcc = np.zeros(self.mean.size)
        self.selection = np.zeros(self.mean.size, bool)
        m = self.MARGIN
        shape = (self.HEIGHT - m["top"] - m["bottom"], self.WIDTH - m["left"] - m["right"])
        pos = self.mean.ravel() > 0
        xs = bq.LinearScale(min=0.0, max=float(self.radius.max()) * 1.02)
        if pos.any():
            # the axis starts below all but the darkest 0.5 % of pixels (a few
            # near-empty corner pixels would stretch it over decades); those are drawn
            # on the axis
            v = self.mean.ravel()[pos]
            lo = max(float(v.min()) * 0.8, float(np.percentile(v, 0.5)) * 0.5)
            ys_i = bq.LogScale(min=lo, max=float(v.max()) * 1.25)
        else:
            ys_i = bq.LinearScale(min=-1.0, max=1.0)
        self.ys_pcc = bq.LinearScale(min=-1.0, max=1.0)
        self.intensity = RasterScatter({"x": xs, "y": ys_i}, shape, "#1f77b4",
                                       "mean intensity (left axis)",
                                       log_y=isinstance(ys_i, bq.LogScale))
        self.intensity.draw(self.radius[pos], np.maximum(self.mean.ravel()[pos], ys_i.min))
        self.correlation = RasterScatter({"x": xs, "y": self.ys_pcc}, shape, "#d62728",
                                         f"PCC with the {species} template (right axis)")
        self.brush = bq.interacts.BrushIntervalSelector(scale=xs, color="#00c000")
        self.brush.observe(self._on_brush, "selected")
        ax = [bq.Axis(scale=xs, label=f"scattering angle [{self.units}]", grid_lines="none"),
              bq.Axis(scale=ys_i, orientation="vertical", label="mean intensity", side="left",
                      tick_format=".0e", label_offset="62px", grid_lines="none"),
              bq.Axis(scale=self.ys_pcc, orientation="vertical", label="PCC", side="right",
                      tick_format=".2f", label_offset="45px", grid_lines="dashed")]
        self.fig = bq.Figure(marks=[self.intensity.mark, self.correlation.mark], axes=ax,
                             interaction=self.brush, padding_x=0, padding_y=0,
                             title=f"{species}: intensity and PCC vs angle (Fig 2d)",
                             fig_margin=dict(m), display_toolbar=False,
                             layout={"width": f"{self.WIDTH}px", "height": f"{self.HEIGHT}px"})
        dot = "<span style='color:{}'>&#9679;</span> {}"
        self.legend = ipw.HTML(
            "<div style='font-size:12px'>" + dot.format("#1f77b4", self.intensity.labels[0])
            + " &nbsp; " + dot.format("#d62728", self.correlation.labels[0])
            + " &nbsp; (whole detector; drag to select an angle range)</div>")
        self.note = ipw.HTML("")
        self.widget = ipw.VBox([self.fig, self.legend, self.note])

    def show(self, mask) -> None:
        """Plot the correlation of a (whole-detector) mask's pixels."""
        self.pcc = np.asarray(mask, float).ravel()
        v = float(np.max(np.abs(self.pcc))) if self.pcc.size else 1.0
        v = min(1.0, 1.1 * v) if v > 0 else 1.0
        self.ys_pcc.min, self.ys_pcc.max = -v, v
        self.correlation.draw(self.radius, self.pcc)

    def attach(self, viewer) -> None:
        """Highlight in ``viewer`` from now on (a rebuilt mask panel), the current
        selection at once; None when no mask of the species is shown (said below the
        plot: brushing then highlights nothing)."""
        self.viewer = viewer
        self.note.value = "" if viewer is not None else (
            f"<span style='color:#a33'>no {self.species} mask is shown (no {self.species} "
            "columns): brushing highlights nothing</span>")
        if viewer is not None and self.selection.any():
            viewer.highlight_pixels(np.argwhere(self.selection.reshape(self.mean.shape)))

    def select(self, lo_mrad: float, hi_mrad: float) -> np.ndarray:
        """Select the pixels with ``lo <= angle < hi`` (what brushing does); returns
        their (row, col) and highlights them in the viewer."""
        self.selection = (self.radius >= lo_mrad) & (self.radius < hi_mrad)
        pix = np.argwhere(self.selection.reshape(self.mean.shape))
        if self.viewer is not None:
            self.viewer.highlight_pixels(pix)
        return pix

    def _on_brush(self, change):
        sel = change["new"]
        if sel is not None and len(sel) == 2:
            self.select(float(min(sel)), float(max(sel)))

    def to_mask(self, weighted: bool = True) -> np.ndarray:
        """The selection as a detector mask: the correlation values there (or 1)."""
        vals = self.pcc if weighted else np.ones_like(self.pcc)
        return np.where(self.selection, vals, 0.0).reshape(self.mean.shape)
