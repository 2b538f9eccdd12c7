"""MaskViewer: a TDM mask in detector space beside the image it makes."""

from __future__ import annotations

import numpy as np

from ..core import geometry
from ._views import grid_view, update_grid


class MaskViewer:
    """Mask (diverging, centred on zero) with the BF-disc and annulus outlines drawn by
    the same geometry as :func:`tdm_widgets.virtual_image`, and the output image.

    Parameters
    ----------
    det_shape : tuple of int
        ``(det_y, det_x)``.
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.
    calibration : Calibration
        Detector calibration (mrad) for the outlines.
    radii_mrad : sequence of float
        Circles to draw (BF disc, annulus radii).
    """

    def __init__(self, det_shape, scan_shape, calibration=None, radii_mrad=(), title=""):
        import bqplot as bq
        import ipywidgets as ipw

        self.mask = np.zeros(det_shape)
        self.image = np.zeros(scan_shape)
        self.mask_fig, self.mask_mark, self._ms = grid_view(self.mask, f"mask {title}",
                                                            diverging=True, size_px=220)
        self.image_fig, self.image_mark, self._is = grid_view(self.image, f"image {title}",
                                                              size_px=220)
        self.outlines = []
        if calibration is not None and calibration.det_mrad:
            for r in radii_mrad:
                cy, cx = geometry.circle(r)
                # mrad -> cell coordinates of the grid (cell i spans [i, i + 1))
                py = (cy - calibration.det_offset[0]) / calibration.det_scale[0] + 0.5
                px = (cx - calibration.det_offset[1]) / calibration.det_scale[1] + 0.5
                self.outlines.append(bq.Lines(x=px, y=py, colors=["#333333"],
                                              scales={"x": self._ms["x"], "y": self._ms["y"]}))
        self.highlight = bq.Scatter(x=[], y=[], colors=["#00c000"], default_size=12,
                                    scales={"x": self._ms["x"], "y": self._ms["y"]})
        self.mask_fig.marks = [self.mask_mark, *self.outlines, self.highlight]
        self.widget = ipw.HBox([self.mask_fig, self.image_fig])

    def show(self, mask, image) -> None:
        """Display a mask and its image."""
        self.mask = np.asarray(mask, float)
        self.image = np.asarray(image, float)
        update_grid(self.mask_mark, self._ms, self.mask, diverging=True)
        update_grid(self.image_mark, self._is, self.image)

    def highlight_pixels(self, pixels) -> None:
        """Mark detector pixels ``(n, 2)`` (row, col), e.g. a scatter-plot brush."""
        p = np.asarray(pixels, float).reshape(-1, 2)
        self.highlight.x, self.highlight.y = p[:, 1] + 0.5, p[:, 0] + 0.5
