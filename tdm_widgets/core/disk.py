"""Bright-field disc: centre and radius from a position-averaged pattern, robust to
hot and dead pixels, with a fit quality and a refusal of absurd results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Smallest disc radius [detector px] accepted as a bright-field disc.
MIN_RADIUS_PX = 3.0
#: Lowest accepted contrast ``(disc - background) / disc``.
MIN_CONTRAST = 0.1


@dataclass(frozen=True)
class BFDisk:
    """Bright-field disc on the detector, from :func:`tdm_widgets.bf_disk`.

    Parameters
    ----------
    center_px : tuple of float
        (y, x) centre [detector px], sub-pixel.
    radius_px : float
        Radius [detector px].
    mrad_per_px : float or None
        ``semiangle_mrad / radius_px`` when the convergence semi-angle was given.
    residual_px : float or None
        RMS distance [detector px] of the disc's edge points from the fitted circle.
    contrast : float or None
        ``(disc level - background level) / disc level``.
    n_edge : int or None
        Edge points the circle was fitted to.
    levels : tuple of float or None
        (background, disc) intensity levels of the pattern [data units].

    Examples
    --------
    >>> yy, xx = np.indices((32, 32))
    >>> pattern = 100.0 * (np.hypot(yy - 15.5, xx - 16.2) < 8) + 1
    >>> disk = tw.bf_disk(np.broadcast_to(pattern, (3, 3, 32, 32)), semiangle_mrad=20,
    ...                   show_progressbar=False)
    >>> np.round(disk.center_px, 1).tolist(), round(disk.radius_px), round(disk.mrad_per_px, 1)
    ([15.5, 16.2], 8, 2.5)
    """

    center_px: tuple[float, float]
    radius_px: float
    mrad_per_px: float | None = None
    residual_px: float | None = None
    contrast: float | None = None
    n_edge: int | None = None
    levels: tuple[float, float] | None = None


def remove_outliers(pattern: np.ndarray) -> np.ndarray:
    """Pixels that differ from their 3 x 3 median by more than half the disc contrast
    (hot pixels, dead pixels and single dead rows or columns) set to that median."""
    from scipy import ndimage  # imported when used: it is slow to import
    med = ndimage.median_filter(pattern, size=3, mode="nearest")
    lo, hi = np.percentile(med, [1.0, 99.9])
    out = pattern.copy()
    wild = np.abs(pattern - med) > 0.5 * (hi - lo)
    out[wild] = med[wild]
    return out


def _segment(p):
    """The largest bright connected region, thresholded half way between the median
    inside and outside it (iterated), and those two levels."""
    thr = 0.5 * (np.percentile(p, 1.0) + p.max())
    for _ in range(10):
        from scipy import ndimage  # imported when used: it is slow to import
        labels, n = ndimage.label(p > thr)
        if n == 0:
            raise ValueError("pattern has no bright region wider than a pixel or two (hot "
                             "pixels only?): no bright-field disc to find")
        sizes = np.bincount(labels.ravel())[1:]
        disc = labels == 1 + int(np.argmax(sizes))
        lo, hi = float(np.median(p[~disc])), float(np.median(p[disc]))
        new = 0.5 * (lo + hi)
        if np.isclose(new, thr):
            break
        thr = new
    return disc, lo, hi


def edge_points(p: np.ndarray, center, radius: float, level: float) -> np.ndarray:
    """(y, x) points where rays from ``center`` first cross ``level`` going outwards,
    between 0.5 and 1.5 ``radius`` (bilinear sampling, linear interpolation)."""
    n = max(32, int(2 * np.pi * radius))
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    t = np.arange(0.5 * radius, 1.5 * radius + 1, 0.25)
    yy = center[0] + np.sin(phi)[:, None] * t[None]
    xx = center[1] + np.cos(phi)[:, None] * t[None]
    from scipy import ndimage  # imported when used: it is slow to import
    prof = ndimage.map_coordinates(p, [yy, xx], order=1, mode="nearest")
    pts = []
    for k in range(n):
        below = np.flatnonzero(prof[k] < level)
        if below.size == 0 or below[0] == 0:
            continue
        i = below[0]
        a, b = prof[k, i - 1], prof[k, i]
        r = t[i - 1] + (a - level) / (a - b) * (t[i] - t[i - 1])
        pts.append((center[0] + r * np.sin(phi[k]), center[1] + r * np.cos(phi[k])))
    return np.asarray(pts).reshape(-1, 2)


def fit_circle(pts: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle ``(cy, cx, r)`` through points (algebraic fit)."""
    y, x = pts[:, 0], pts[:, 1]
    a = np.column_stack([2 * y, 2 * x, np.ones_like(y)])
    (cy, cx, c), *_ = np.linalg.lstsq(a, y**2 + x**2, rcond=None)
    return float(cy), float(cx), float(np.sqrt(c + cy**2 + cx**2))


def find_bf_disk(pattern: np.ndarray, semiangle_mrad: float | None = None,
                 min_radius_px: float = MIN_RADIUS_PX, max_residual_px: float | None = None
                 ) -> BFDisk:
    """Locate the bright-field disc of a position-averaged pattern.

    Outliers (hot and dead pixels, a dead column) are first replaced by their 3 x 3
    median. The disc is the largest bright connected region, thresholded half way
    between the background (median outside) and the disc level (median inside); edge
    pixels count in proportion to their intensity, so the area, the radius
    ``sqrt(area / pi)`` and the centroid are sub-pixel. A circle fitted to the edge
    points (where rays from the centre cross the half level) gives the fit quality.

    Parameters
    ----------
    pattern : ndarray
        ``(det_y, det_x)`` mean diffraction pattern (bad pixels already
        interpolated where known).
    semiangle_mrad : float, optional
        Convergence semi-angle [mrad]; gives the calibration.
    min_radius_px : float
        Smallest radius [px] accepted.
    max_residual_px : float, optional
        Largest RMS edge residual [px] accepted; ``max(1, 0.05 radius)`` if None.

    Returns
    -------
    BFDisk

    Raises
    ------
    ValueError
        For a pattern that is not a finite 2D array or is constant, and for an absurd
        disc: radius below ``min_radius_px``, a disc touching the detector edge, a
        contrast below :data:`MIN_CONTRAST`, an edge that is not a circle (residual
        above ``max_residual_px``) or a circle fit that disagrees with the disc area.

    Examples
    --------
    >>> yy, xx = np.indices((64, 64))
    >>> p = 1.0 + 9.0 * (np.hypot(yy - 30.0, xx - 33.0) < 12)
    >>> d = find_bf_disk(p, semiangle_mrad=24.0)
    >>> round(d.radius_px), round(d.center_px[0]), round(d.center_px[1])
    (12, 30, 33)
    """
    p = np.asarray(pattern, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"pattern must be a 2D array; got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"the mean pattern has NaN or inf at {int((~np.isfinite(p)).sum())} "
                         "detector pixels: the data contains NaN or inf values there")
    if p.max() <= p.min():
        raise ValueError("pattern is constant: no bright-field disc to find")
    p = remove_outliers(p)
    disc, lo, hi = _segment(p)
    from scipy import ndimage  # imported when used: it is slow to import
    near = ndimage.binary_dilation(disc, iterations=2)
    frac = np.clip((p - lo) / (hi - lo), 0.0, 1.0) * near
    area = frac.sum()
    yy, xx = np.indices(p.shape)
    cy, cx = (frac * yy).sum() / area, (frac * xx).sum() / area
    r = float(np.sqrt(area / np.pi))
    contrast = (hi - lo) / hi if hi > 0 else 0.0
    if r < min_radius_px:
        raise ValueError(
            f"bright-field disc radius {r:.2f} px is below min_radius_px={min_radius_px}: "
            "the bright region is not a disc (hot pixels? mark them with "
            "tdm_widgets.find_bad_pixels)")
    dy, dx = p.shape
    if cy - r < -0.5 or cx - r < -0.5 or cy + r > dy - 0.5 or cx + r > dx - 0.5:
        raise ValueError(
            f"bright-field disc (centre ({cy:.1f}, {cx:.1f}) px, radius {r:.1f} px) "
            f"touches the edge of the {dy} x {dx} detector: its radius cannot be measured")
    if contrast < MIN_CONTRAST:
        raise ValueError(f"bright-field disc contrast {contrast:.3f} is below "
                         f"{MIN_CONTRAST}: no clear disc in the pattern")
    pts = edge_points(p, (cy, cx), r, 0.5 * (lo + hi))
    if len(pts) < 8:
        raise ValueError(f"only {len(pts)} edge points of the bright-field disc found: "
                         "its edge is not a circle")
    ey, ex, er = fit_circle(pts)
    resid = float(np.sqrt(np.mean((np.hypot(pts[:, 0] - ey, pts[:, 1] - ex) - er) ** 2)))
    limit = max(1.0, 0.05 * r) if max_residual_px is None else float(max_residual_px)
    if resid > limit or np.hypot(ey - cy, ex - cx) > limit or abs(er - r) > limit:
        raise ValueError(
            f"bright-field disc fit is poor: edge residual {resid:.2f} px (limit "
            f"{limit:.2f}), edge circle centre ({ey:.1f}, {ex:.1f}) radius {er:.1f} vs disc "
            f"area centre ({cy:.1f}, {cx:.1f}) radius {r:.1f} px")
    return BFDisk((float(cy), float(cx)), r,
                  None if semiangle_mrad is None else float(semiangle_mrad) / r,
                  resid, float(contrast), len(pts), (lo, hi))
