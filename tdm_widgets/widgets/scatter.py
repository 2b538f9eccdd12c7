"""RadialPCCScatter: the paper's Fig 2d, intensity and correlation against angle."""

from __future__ import annotations

import numpy as np

from ..core import geometry


class RadialPCCScatter:
    """Mean pixel-STEM intensity (blue, log axis on the left) and correlation with a
    species' template (red, right axis) of every detector pixel against its scattering
    angle, as in Fig 2d; brushing an angle range selects those pixels and highlights
    them in the species' mask viewer.

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

    def __init__(self, mean, calibration, viewer=None, species: str = ""):
        import bqplot as bq
        import ipywidgets as ipw

        self.mean = np.asarray(mean, float)
        self.radius = geometry.radius_map(self.mean.shape, calibration.det_scale,
                                          calibration.det_offset).ravel()
        self.units = calibration.det_units
        self.viewer = viewer
        self.pcc = np.zeros(self.mean.size)
        self.selection = np.zeros(self.mean.size, bool)
        pos = self.mean.ravel() > 0
        xs = bq.LinearScale(min=0.0, max=float(self.radius.max()) * 1.02)
        if pos.any():
            m = self.mean.ravel()[pos]
            ys_i = bq.LogScale(min=float(m.min()) * 0.8, max=float(m.max()) * 1.25)
        else:
            ys_i = bq.LinearScale()
        self.ys_pcc = bq.LinearScale(min=-1.0, max=1.0)
        self.intensity = bq.Scatter(x=self.radius[pos], y=self.mean.ravel()[pos],
                                    scales={"x": xs, "y": ys_i}, colors=["#1f77b4"],
                                    default_size=6, labels=["mean intensity (left axis)"])
        self.correlation = bq.Scatter(x=self.radius, y=self.pcc, scales={"x": xs,
                                                                          "y": self.ys_pcc},
                                      colors=["#d62728"], default_size=6,
                                      labels=[f"PCC with the {species} template (right axis)"])
        self.brush = bq.interacts.BrushIntervalSelector(scale=xs, color="#00c000")
        self.brush.observe(self._on_brush, "selected")
        ax = [bq.Axis(scale=xs, label=f"scattering angle [{self.units}]", grid_lines="none"),
              bq.Axis(scale=ys_i, orientation="vertical", label="mean intensity", side="left",
                      tick_format=".0e", label_offset="62px", grid_lines="none"),
              bq.Axis(scale=self.ys_pcc, orientation="vertical", label="PCC", side="right",
                      tick_format=".2f", label_offset="45px", grid_lines="dashed")]
        self.fig = bq.Figure(marks=[self.intensity, self.correlation], axes=ax,
                             interaction=self.brush,
                             title=f"{species}: intensity and PCC vs angle (Fig 2d)",
                             fig_margin={"top": 40, "bottom": 50, "left": 90, "right": 70},
                             layout={"width": "620px", "height": "380px"})
        dot = "<span style='color:{}'>&#9679;</span> {}"
        self.legend = ipw.HTML(
            "<div style='font-size:12px'>" + dot.format("#1f77b4", self.intensity.labels[0])
            + " &nbsp; " + dot.format("#d62728", self.correlation.labels[0])
            + " &nbsp; (whole detector; drag to select an angle range)</div>")
        self.widget = ipw.VBox([self.fig, self.legend])

    def show(self, mask) -> None:
        """Plot the correlation of a (whole-detector) mask's pixels."""
        self.pcc = np.asarray(mask, float).ravel()
        v = float(np.max(np.abs(self.pcc))) if self.pcc.size else 1.0
        v = min(1.0, 1.1 * v) if v > 0 else 1.0
        self.ys_pcc.min, self.ys_pcc.max = -v, v
        self.correlation.y = self.pcc

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
