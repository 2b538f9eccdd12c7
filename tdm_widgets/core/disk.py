"""Bright-field disc: centre and radius from a position-averaged pattern."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class BFDisk:
    """Bright-field disc on the detector.

    Attributes
    ----------
    center_px : tuple of float
        (y, x) centre [detector px], sub-pixel.
    radius_px : float
        Radius [detector px], from the disc area.
    mrad_per_px : float or None
        ``semiangle_mrad / radius_px`` when the convergence semi-angle was given.
    """

    center_px: tuple[float, float]
    radius_px: float
    mrad_per_px: float | None = None


def find_bf_disk(pattern: np.ndarray, semiangle_mrad: float | None = None) -> BFDisk:
    """Locate the bright-field disc of a position-averaged pattern.

    The disc is the connected bright region containing the brightest pixels,
    thresholded half way between the background (median outside it) and the disc
    level (median inside it). Edge pixels count in proportion to their intensity,
    so the area, and the radius ``sqrt(area / pi)``, are sub-pixel.

    Parameters
    ----------
    pattern : ndarray
        ``(det_y, det_x)`` mean diffraction pattern.
    semiangle_mrad : float, optional
        Convergence semi-angle [mrad]; gives the calibration.

    Returns
    -------
    BFDisk
    """
    p = np.asarray(pattern, dtype=np.float64)
    if p.ndim != 2 or not np.isfinite(p).all():
        raise ValueError("pattern must be a finite 2D array")
    if p.max() <= p.min():
        raise ValueError("pattern is constant: no bright-field disc to find")
    thr = 0.5 * (p.min() + p.max())
    for _ in range(5):  # refine the levels from the current segmentation
        labels, _ = ndimage.label(p > thr)
        disc = labels == labels.flat[np.argmax(np.where(p > thr, p, -np.inf))]
        lo, hi = np.median(p[~disc]), np.median(p[disc])
        new = 0.5 * (lo + hi)
        if np.isclose(new, thr):
            break
        thr = new
    near = ndimage.binary_dilation(disc, iterations=2)
    frac = np.clip((p - lo) / (hi - lo), 0.0, 1.0) * near
    area = frac.sum()
    yy, xx = np.indices(p.shape)
    cy, cx = (frac * yy).sum() / area, (frac * xx).sum() / area
    r = float(np.sqrt(area / np.pi))
    return BFDisk((float(cy), float(cx)), r,
                  None if semiangle_mrad is None else float(semiangle_mrad) / r)
