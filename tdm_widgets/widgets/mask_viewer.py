"""MaskViewer: a TDM mask in detector space beside the image it makes."""

from __future__ import annotations

import numpy as np

from ..core import geometry
from .raster import Bitmap, ImagePanel


def crop_box(region, shape, margin: int = 2):
    """``(y0, y1, x0, x1)`` bounding the True pixels of ``region`` plus a margin."""
    if region is None or not np.any(region):
        return (0, shape[0], 0, shape[1])
    ys, xs = np.nonzero(region)
    return (max(0, ys.min() - margin), min(shape[0], ys.max() + 1 + margin),
            max(0, xs.min() - margin), min(shape[1], xs.max() + 1 + margin))


class MaskViewer:
    """Mask (blue - white - orange, centred on zero, with a colour bar and a scale bar
    in mrad) with the BF-disc outline drawn by the same geometry as
    :func:`tdm_widgets.virtual_image`, and the output image (scale bar in angstrom).

    Parameters
    ----------
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.
    det_shape : tuple of int
        ``(det_y, det_x)``.
    calibration : Calibration
        Detector calibration (mrad) for the outlines and scale bars.
    radii_mrad : sequence of float
        Circles to draw (BF disc, annulus radii).
    title : str
        Species name.
    det_region : ndarray of bool, optional
        Detector pixels the mask may use; the mask panel is cropped to them.
    zoom_det, zoom_scan : float
        Screen pixels per detector and per scan pixel.
    """

    def __init__(self, scan_shape, det_shape, calibration=None, radii_mrad=(), title="",
                 det_region=None, zoom_det: float = 3.0, zoom_scan: float = 6.0):
        import bqplot as bq
        import ipywidgets as ipw

        cal = calibration
        det_units = cal.det_units if cal is not None else "px"
        scan_units = cal.scan_units if cal is not None else "px"
        det_px = tuple(cal.det_scale) if cal is not None else 1.0  # (y, x)
        scan_px = tuple(cal.scan_scale) if cal is not None else 1.0
        self.name = title
        self.mask_panel = ImagePanel(det_shape, f"mask {title}", det_px, det_units, zoom_det,
                                     diverging=True, crop=crop_box(det_region, det_shape))
        self.image_panel = ImagePanel(scan_shape, f"image {title}", scan_px, scan_units,
                                      zoom_scan)
        ms = self.mask_panel.scales
        self.outlines = []
        if cal is not None and cal.det_mrad:
            for r in radii_mrad:
                cy, cx = geometry.circle(r)
                # mrad -> pixel-edge coordinates (pixel i spans [i, i + 1))
                py = (cy - cal.det_offset[0]) / cal.det_scale[0] + 0.5
                px = (cx - cal.det_offset[1]) / cal.det_scale[1] + 0.5
                self.outlines.append(bq.Lines(x=px, y=py, colors=["#333333"], scales=ms))
        y0, y1, x0, x1 = self.mask_panel.crop
        self.highlight_png = Bitmap(ms, (x0, x1), (y1, y0))
        self.highlight = self.highlight_png.mark
        self.highlighted = np.zeros((0, 2), int)
        p = self.mask_panel
        p.fig.marks = [p.mark, self.highlight, *self.outlines, p.bar, p.bar_label]
        self.widget = ipw.VBox([self.mask_panel.widget, self.image_panel.widget],
                               layout={"border": "1px solid #ddd", "margin": "2px"})

    @property
    def mask(self) -> np.ndarray:
        return self.mask_panel.array

    @property
    def image(self) -> np.ndarray:
        return self.image_panel.array

    def show(self, mask, image) -> None:
        """Display a mask and its image."""
        self.mask_panel.show(mask)
        self.image_panel.show(image)

    def highlight_pixels(self, pixels) -> None:
        """Mark detector pixels ``(n, 2)`` (row, col) in green, e.g. a scatter-plot
        brush (drawn as one transparent PNG over the mask)."""
        p = np.asarray(pixels, int).reshape(-1, 2)
        self.highlighted = p
        y0, y1, x0, x1 = self.mask_panel.crop
        rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        inside = (p[:, 0] >= y0) & (p[:, 0] < y1) & (p[:, 1] >= x0) & (p[:, 1] < x1)
        q = p[inside]
        rgba[q[:, 0] - y0, q[:, 1] - x0] = (0, 192, 0, 200)
        self.highlight_png.draw(rgba)
