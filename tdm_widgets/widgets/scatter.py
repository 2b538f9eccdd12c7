"""RadialPCCScatter: the paper's Fig 2d, intensity and correlation against angle."""

from __future__ import annotations

import numpy as np

from ..core import geometry


class RadialPCCScatter:
    """Mean pixel-STEM intensity (blue) and correlation (red) of every detector pixel
    against its scattering angle; brushing an angle range selects pixels.

    Parameters
    ----------
    mean : ndarray
        ``(det_y, det_x)`` mean intensity of each pixel.
    calibration : Calibration
        Detector calibration (mrad).
    viewer : MaskViewer, optional
        Highlights the brushed pixels.
    """

    def __init__(self, mean, calibration, viewer=None):
        import bqplot as bq
        import ipywidgets as ipw

        self.mean = np.asarray(mean, float)
        self.radius = geometry.radius_map(self.mean.shape, calibration.det_scale,
                                          calibration.det_offset).ravel()
        self.viewer = viewer
        self.pcc = np.zeros(self.mean.size)
        self.selection = np.zeros(self.mean.size, bool)
        xs = bq.LinearScale()
        ys_i, ys_p = bq.LogScale(), bq.LinearScale(min=-1, max=1)
        pos = self.mean.ravel() > 0
        self.intensity = bq.Scatter(x=self.radius[pos], y=self.mean.ravel()[pos],
                                    scales={"x": xs, "y": ys_i}, colors=["#1f77b4"],
                                    default_size=4)
        self.correlation = bq.Scatter(x=self.radius, y=self.pcc, scales={"x": xs, "y": ys_p},
                                      colors=["#d62728"], default_size=4)
        self.brush = bq.interacts.BrushIntervalSelector(scale=xs, marks=[self.correlation])
        self.brush.observe(self._on_brush, "selected")
        ax = [bq.Axis(scale=xs, label="angle [mrad]"),
              bq.Axis(scale=ys_i, orientation="vertical", label="intensity", side="left"),
              bq.Axis(scale=ys_p, orientation="vertical", label="PCC", side="right")]
        self.fig = bq.Figure(marks=[self.intensity, self.correlation], axes=ax,
                             interaction=self.brush, title="intensity and PCC vs angle",
                             layout={"width": "420px", "height": "300px"})
        self.widget = ipw.VBox([self.fig])

    def show(self, mask) -> None:
        """Plot the correlation of a mask's pixels."""
        self.pcc = np.asarray(mask, float).ravel()
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
