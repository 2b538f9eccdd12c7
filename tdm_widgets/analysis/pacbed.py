"""Thickness from a position-averaged pattern (PACBED) against a simulated series."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def resample_pattern(pattern, scale_mrad, offset_mrad, target_shape, target_scale,
                     target_offset) -> np.ndarray:
    """Interpolate a calibrated pattern onto another detector grid [mrad] (linear;
    zero outside)."""
    ty = target_offset[0] + target_scale[0] * np.arange(target_shape[0])
    tx = target_offset[1] + target_scale[1] * np.arange(target_shape[1])
    iy = (ty - offset_mrad[0]) / scale_mrad[0]
    ix = (tx - offset_mrad[1]) / scale_mrad[1]
    yy, xx = np.meshgrid(iy, ix, indexing="ij")
    return ndimage.map_coordinates(np.asarray(pattern, float), [yy, xx], order=1, cval=0.0)


def match_thickness(pattern, series, thickness_nm, max_mrad: float | None = None,
                    radius_mrad=None) -> tuple[float, np.ndarray]:
    """Best thickness by Pearson correlation of a pattern with each member of a
    simulated PACBED series on the same grid.

    Parameters
    ----------
    pattern : ndarray
        ``(ky, kx)`` measured PACBED.
    series : ndarray
        ``(n, ky, kx)`` simulated PACBED at ``thickness_nm``.
    thickness_nm : array_like
        ``(n,)`` thicknesses [nm].
    max_mrad : float, optional
        Compare only within this radius; needs ``radius_mrad``.
    radius_mrad : ndarray, optional
        ``(ky, kx)`` radius of each pixel [mrad].

    Returns
    -------
    best_nm : float
    similarity : ndarray
        ``(n,)`` Pearson correlation with each member.
    """
    p = np.asarray(pattern, float)
    ser = np.asarray(series, float)
    if ser.shape[1:] != p.shape:
        raise ValueError(f"series patterns {ser.shape[1:]} and pattern {p.shape} differ; "
                         "resample first (resample_pattern)")
    sel = np.ones(p.shape, bool) if max_mrad is None else radius_mrad < max_mrad
    a = p[sel] - p[sel].mean()
    b = ser[:, sel] - ser[:, sel].mean(axis=1, keepdims=True)
    sim = b @ a / (np.linalg.norm(b, axis=1) * np.linalg.norm(a))
    return float(np.asarray(thickness_nm)[int(np.argmax(sim))]), sim
