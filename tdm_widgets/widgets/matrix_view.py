"""MatrixView: the sorted matrix D of Fig 1d with a read-out of each entry."""

from __future__ import annotations

import numpy as np

from .raster import CLICK_THROUGH, Bitmap, click_through_style, colorize, nice_length


class MatrixView:
    """The sorted, column-normalised D (rows: scan positions by high-angle intensity;
    columns: detector pixels by radius), binned to at most ``max_cells`` per side and
    drawn as an image on a blue - white - orange scale clipped at the
    ``clip_percent`` percentile of ``|D|`` (one outlier does not wash it out), with
    axes (ranks, round angles marked) and a click
    read-out of scan position and detector pixel.

    Parameters
    ----------
    dm : hyperspy.signals.Signal2D
        From :func:`tdm_widgets.data_matrix` (the sorted D and, in
        ``metadata.DataMatrix``, its orders and column radii).
    scan_shape, det_shape : tuple of int
    max_cells : int
        Largest number of displayed cells per side.
    units : str
        Units of the column radii (``"mrad"`` for calibrated data).
    clip_percent : float
        Percentile [%] of ``|D|`` mapped to the ends of the colour scale.
    """

    def __init__(self, dm, scan_shape, det_shape, max_cells: int = 400, units: str = "mrad",
                 clip_percent: float = 99.0):
        import bqplot as bq
        import ipywidgets as ipw

        if not 0 < clip_percent <= 100:
            raise ValueError(f"clip_percent must be in (0, 100]; got {clip_percent}")
        self.dm, self.scan_shape, self.det_shape, self.units = dm, scan_shape, det_shape, units
        order = dm.metadata.DataMatrix
        self.row_order, self.col_order = np.asarray(order.row_order), np.asarray(order.col_order)
        self.radius = np.asarray(order.radius, float)
        p, q = dm.data.shape
        self.bin = (max(1, -(-p // max_cells)), max(1, -(-q // max_cells)))
        by, bx = self.bin
        m = np.asarray(dm.data[: p // by * by, : q // bx * bx], float)
        self.display = m.reshape(p // by, by, q // bx, bx).mean(axis=(1, 3))
        self.vmax = float(np.percentile(np.abs(self.display), clip_percent)) or 1.0
        rgba, _, _ = colorize(np.clip(self.display, -self.vmax, self.vmax), diverging=True)
        h, w = self.display.shape
        xs = bq.LinearScale(min=0.0, max=float(w * bx))
        ys = bq.LinearScale(min=0.0, max=float(h * by), reverse=True)
        sc = {"x": xs, "y": ys}
        self.png = Bitmap(sc, (0.0, w * bx), (h * by, 0.0))
        self.png.draw(rgba)
        self.mark = self.png.mark
        self.mark.on_element_click(self._on_click)
        # the angle is not linear in the column rank: mark round angles where they fall
        r = self.radius[: w * bx]
        step = nice_length(float(r.max() - r.min()) or 1.0)
        ticks = np.arange(np.ceil(r.min() / step) * step, r.max(), step)
        at = np.searchsorted(r, ticks).astype(float)
        self.angle_lines = bq.Lines(x=[[a, a] for a in at], y=[[0.0, h * by]] * len(at),
                                    colors=["#444444"], line_style="dashed", scales=sc)
        self.angle_labels = bq.Label(x=list(at), y=[0.03 * h * by] * len(at),
                                     text=[f"{t:g} {units}" for t in ticks], colors=["black"],
                                     default_size=11, align="start", scales=sc)
        ax = [bq.Axis(scale=xs, label=f"detector pixels by angle (rank; dashed: angle in "
                                      f"{units})"),
              bq.Axis(scale=ys, orientation="vertical", label="scan positions by ADF rank",
                      label_offset="50px")]
        self.fig = bq.Figure(marks=[self.mark, self.angle_lines, self.angle_labels], axes=ax,
                             padding_x=0, padding_y=0,
                             title=f"sorted D (Fig 1d), colour ±{self.vmax:.2g} "
                                   f"({clip_percent:g}th percentile of |D|)",
                             fig_margin={"top": 40, "bottom": 50, "left": 70, "right": 10},
                             layout={"width": "560px", "height": "480px"},
                             display_toolbar=False)
        self.fig.add_class(CLICK_THROUGH)  # the dashed angle lines pass clicks to D
        self.label = ipw.Label("click D for the scan position and detector pixel")
        self.widget = ipw.VBox([self.fig, self.label, click_through_style()])

    def readout(self, row: int, col: int) -> dict:
        """What the displayed cell (row, col) holds: the first scan position and
        detector pixel of the bin, their coordinates, the angle and the mean value."""
        r, c = row * self.bin[0], col * self.bin[1]
        sp = int(self.row_order[r])
        dp = int(self.col_order[c])
        sy, sx = np.unravel_index(sp, self.scan_shape)
        dy, dx = np.unravel_index(dp, self.det_shape)
        info = {"scan_yx": (int(sy), int(sx)), "detector_yx": (int(dy), int(dx)),
                "radius": float(self.radius[c]), "value": float(self.display[row, col])}
        self.label.value = (f"scan (y, x) = {info['scan_yx']} px, detector (y, x) = "
                            f"{info['detector_yx']} px, r = {info['radius']:.1f} {self.units}, "
                            f"D̂ = {info['value']:+.2f}")
        return info

    def _on_click(self, _, event):
        d = event.get("data", {})
        row = int(d["click_y"] // self.bin[0])
        col = int(d["click_x"] // self.bin[1])
        h, w = self.display.shape
        self.readout(min(max(row, 0), h - 1), min(max(col, 0), w - 1))
