"""Thickness from a position-averaged pattern (PACBED) against a simulated series.

Whole-pattern correlation of linear intensities is dominated by the bright disc's
outline and the flat background and hardly changes with thickness. The match here
compares only the inside of the bright-field disc, where thickness fringes live, in
square-root intensity (the Hellinger distance of the two patterns as probability
distributions, stable under Poisson noise), with the series put onto the measured
pattern's pixels through the bright-field disc (centre and radius: no detector
calibration needed) and interpolated between its exit planes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.disk import BFDisk, find_bf_disk


def resample_pattern(pattern, scale_mrad, offset_mrad, target_shape, target_scale,
                     target_offset) -> np.ndarray:
    """Interpolate a calibrated pattern onto another detector grid [mrad].

    Parameters
    ----------
    pattern : array_like
        ``(ky, kx)`` pattern.
    scale_mrad, offset_mrad : tuple of float
        Its pixel size and the angle of pixel 0, (y, x) [mrad].
    target_shape : tuple of int
        Shape of the new grid.
    target_scale, target_offset : tuple of float
        Pixel size and angle of pixel 0 of the new grid, (y, x) [mrad].

    Returns
    -------
    ndarray
        ``target_shape``, linear interpolation, zero outside the pattern [pattern
        units].

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> p = np.arange(9.0).reshape(3, 3)
    >>> tw.resample_pattern(p, (1, 1), (-1, -1), (1, 1), (1, 1), (0, 0))
    array([[4.]])
    """
    ty = target_offset[0] + target_scale[0] * np.arange(target_shape[0])
    tx = target_offset[1] + target_scale[1] * np.arange(target_shape[1])
    iy = (ty - offset_mrad[0]) / scale_mrad[0]
    ix = (tx - offset_mrad[1]) / scale_mrad[1]
    yy, xx = np.meshgrid(iy, ix, indexing="ij")
    return ndimage.map_coordinates(np.asarray(pattern, float), [yy, xx], order=1, cval=0.0)


@dataclass
class ThicknessMatch:
    """Result of :func:`match_thickness`.

    Parameters
    ----------
    thickness_nm : float
        Best thickness [nm] on the interpolated grid.
    uncertainty_nm : float
        Half-width of the thicknesses whose distance is within ``tolerance`` of the
        best one [nm].
    grid_nm : ndarray
        Thicknesses of the interpolated curve [nm].
    distance : ndarray
        Squared Hellinger distance (0 identical, 1 disjoint) at ``grid_nm``.
    margin : float
        Distance at ``thickness_nm`` +- ``neighbour_nm`` less the best distance (the
        smaller side).
    tolerance : float
        ``rel_tolerance`` times the best distance, plus 1e-12 round-off (the warning
        level).
    ambiguous : bool
        ``margin <= tolerance`` or the best thickness lies at an end of the series.
    """

    thickness_nm: float
    uncertainty_nm: float
    grid_nm: np.ndarray
    distance: np.ndarray
    margin: float
    tolerance: float
    ambiguous: bool

    @property
    def similarity(self) -> np.ndarray:
        """``1 - distance`` (the Bhattacharyya coefficient) at ``grid_nm``."""
        return 1.0 - self.distance


def _disk(p, given) -> BFDisk:
    # a reference frame for resampling, not a calibration: no fit-quality gate
    return given if given is not None else find_bf_disk(p, max_residual_px=np.inf)


def _unit_sqrt(values):
    v = np.sqrt(np.clip(values, 0.0, None))
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(n == 0):
        raise ValueError("a pattern has no intensity inside the bright-field disc")
    return v / n


def match_thickness(pattern, series, thickness_nm, region_radius: float = 1.3,
                    step_nm: float = 0.5, neighbour_nm: float = 5.0,
                    rel_tolerance: float = 0.05, pattern_px_size=(1.0, 1.0),
                    series_px_size=(1.0, 1.0), pattern_disk: BFDisk | None = None,
                    series_disk: BFDisk | None = None) -> ThicknessMatch:
    """Specimen thickness from a PACBED pattern and a simulated thickness series.

    Every series member is mapped onto the pattern's pixels through the bright-field
    disc (coordinates in disc radii from the disc centre), so the two may have any
    detector sampling, centre and camera length. Inside ``region_radius`` disc
    radii both are normalised to unit sum and compared by the squared Hellinger
    distance ``d = 1 - sum sqrt(p q)``; the square-root patterns are interpolated
    linearly between neighbouring members (exit planes every 5 nm are sampled
    finely enough) on a grid of ``step_nm``.

    Parameters
    ----------
    pattern : array_like
        ``(ky, kx)`` measured PACBED (counts or intensities).
    series : array_like
        ``(n, ky', kx')`` simulated PACBED, any sampling.
    thickness_nm : array_like
        ``(n,)`` thicknesses of the series [nm], increasing.
    region_radius : float
        Compared region, in bright-field disc radii: the disc, its edge and a ring
        outside it (1.3 recovered held-out thicknesses best; inside the disc only,
        0.9, the curve is nearly flat).
    step_nm : float
        Spacing of the interpolated thickness grid [nm].
    neighbour_nm : float
        Distance to the neighbours whose margin decides ``ambiguous`` [nm].
    rel_tolerance : float
        Fraction of the best distance that differences between simulations (grid,
        slab size, phonon draws, scan) can move the curve by: the distance of the
        best match is itself the size of those differences. Thicknesses within
        ``(1 + rel_tolerance)`` of the best distance make ``uncertainty_nm``, and a
        margin below ``rel_tolerance`` times the best distance makes the match
        ``ambiguous``. 0.05 covered every held-out error in the README table.
    pattern_px_size, series_px_size : float or tuple of float
        Detector pixel size (y, x) in any one unit (e.g. mrad); only the aspect
        ratio of each matters, the scale comes from the disc. Square pixels if
        not given.
    pattern_disk, series_disk : BFDisk, optional
        Bright-field discs, found with :func:`tdm_widgets.core.disk.find_bf_disk`
        if None (for each series member from that member).

    Returns
    -------
    ThicknessMatch
        ``thickness_nm`` and ``uncertainty_nm`` [nm], the distance curve and whether
        the match is ``ambiguous`` (a ``UserWarning`` is issued then).

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> yy, xx = np.indices((40, 40)) - 20.0
    >>> disc = (np.hypot(yy, xx) < 12).astype(float)
    >>> series = np.stack([disc * (1 + 0.1 * t * yy / 12) for t in range(6)])
    >>> r = tw.match_thickness(series[3], series, np.arange(6) * 5.0)
    >>> round(r.thickness_nm)
    15
    """
    p = np.asarray(pattern, float)
    ser = np.asarray(series, float)
    t = np.asarray(thickness_nm, float)
    if p.ndim != 2 or not np.isfinite(p).all():
        raise ValueError(f"pattern must be a finite 2D array; got shape {p.shape}")
    if ser.ndim != 3 or len(ser) != len(t) or len(t) < 2:
        raise ValueError("series must be (n, ky, kx) with n >= 2 matching thickness_nm; "
                         f"got series {ser.shape} and {len(t)} thicknesses")
    if np.any(np.diff(t) <= 0):
        raise ValueError("thickness_nm must increase")
    if not region_radius > 0:
        raise ValueError(f"region_radius must be positive [disc radii]; got {region_radius}")
    sp = np.broadcast_to(np.asarray(pattern_px_size, float), (2,))
    ss = np.broadcast_to(np.asarray(series_px_size, float), (2,))
    if not (np.all(sp > 0) and np.all(ss > 0)):
        raise ValueError("pattern_px_size and series_px_size must be positive; got "
                         f"{pattern_px_size} and {series_px_size}")
    dp = _disk(p, pattern_disk)
    # coordinates in disc radii (a disc of area A px^2 has radius sqrt(A sy sx / pi))
    rp = dp.radius_px * np.sqrt(sp.prod())
    yy, xx = np.indices(p.shape, dtype=float)
    uy, ux = (yy - dp.center_px[0]) * sp[0] / rp, (xx - dp.center_px[1]) * sp[1] / rp
    inside = np.hypot(uy, ux) < region_radius
    members = []
    for m in ser:  # each member through its own disc, found as the pattern's is
        ds = _disk(m, series_disk)
        rs = ds.radius_px * np.sqrt(ss.prod())
        coords = [ds.center_px[0] + uy[inside] * rs / ss[0],
                  ds.center_px[1] + ux[inside] * rs / ss[1]]
        members.append(ndimage.map_coordinates(m, coords, order=1, cval=0.0))
    members = np.stack(members)
    u = _unit_sqrt(p[inside])
    v = _unit_sqrt(members)
    grid = np.arange(t[0], t[-1] + step_nm / 2, step_nm)
    j = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    w = ((grid - t[j]) / (t[j + 1] - t[j]))[:, None]
    vg = _unit_sqrt(((1 - w) * v[j] + w * v[j + 1]) ** 2)
    dist = np.clip(1.0 - vg @ u, 0.0, None)  # round-off can dip below 0
    i = int(np.argmin(dist))
    best = float(grid[i])
    tolerance = rel_tolerance * float(dist[i]) + 1e-12  # plus float64 round-off of d
    within = grid[dist <= dist[i] + tolerance]
    unc = max(float(within.max() - within.min()) / 2, step_nm / 2)
    sides = [np.interp(best + s, grid, dist) for s in (-neighbour_nm, neighbour_nm)
             if t[0] <= best + s <= t[-1]]
    margin = float(min(sides) - dist[i]) if sides else 0.0
    ambiguous = margin <= tolerance or i in (0, len(grid) - 1)
    if ambiguous:
        warnings.warn(f"match_thickness: {best:g} nm is not distinct: the distance "
                      f"{neighbour_nm:g} nm away is only {margin:.2g} above the best "
                      f"(simulation differences reach {tolerance:.2g}), or the best is "
                      "an end of the series", stacklevel=2)
    return ThicknessMatch(best, unc, grid, dist, margin, tolerance, ambiguous)
