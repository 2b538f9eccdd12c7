"""Detector geometry shared by the API and the widgets: what you see is what you compute."""

from __future__ import annotations

import numpy as np


def detector_coordinates(shape, scale, offset) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a detector along (y, x).

    Parameters
    ----------
    shape : tuple of int
        ``(det_y, det_x)``.
    scale, offset : tuple of float
        Axis scale and offset along (y, x), in the axis units (e.g. mrad).
    """
    ky = offset[0] + scale[0] * np.arange(shape[0])
    kx = offset[1] + scale[1] * np.arange(shape[1])
    return ky, kx


def radius_map(shape, scale=(1.0, 1.0), offset=(0.0, 0.0), center=(0.0, 0.0)
               ) -> np.ndarray:
    """Distance of every detector pixel centre from ``center`` (axis units)."""
    ky, kx = detector_coordinates(shape, scale, offset)
    return np.hypot(ky[:, None] - center[0], kx[None, :] - center[1])


def annulus(shape, inner, outer, scale=(1.0, 1.0), offset=(0.0, 0.0), center=(0.0, 0.0)
            ) -> np.ndarray:
    """Binary annular detector ``inner <= r < outer`` (a disc when inner is 0).

    Parameters
    ----------
    shape : tuple of int
        ``(det_y, det_x)``.
    inner, outer : float
        Radii in the axis units (mrad on a calibrated detector).
    scale, offset, center : tuple of float
        Calibration along (y, x) and the centre, in axis units.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> int(annulus((5, 5), 0, 1.5, offset=(-2, -2)).sum())
    9
    """
    if not (0 <= inner < outer):
        raise ValueError(f"need 0 <= inner < outer; got inner={inner}, outer={outer}")
    r = radius_map(shape, scale, offset, center)
    # a pixel whose centre lies on a boundary (to 1e-9 of a pixel) is decided the same
    # way whatever the units: in mrad, rad or 1/nm round-off put some in, some out
    eps = 1e-9 * max(abs(float(scale[0])), abs(float(scale[1])))
    return (r >= inner - eps) & (r < outer - eps)


def circle(radius: float, center=(0.0, 0.0), n: int = 181) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) points of the circle ``r = radius`` that bounds :func:`annulus`, in the
    same axis units, for drawing detector outlines."""
    phi = np.linspace(0, 2 * np.pi, n)
    return center[0] + radius * np.sin(phi), center[1] + radius * np.cos(phi)


def wavelength_A(energy_eV: float) -> float:
    """Relativistic electron wavelength [angstrom] at ``energy_eV`` [eV].

    Examples
    --------
    >>> round(float(wavelength_A(200e3)), 6)
    0.025079
    """
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    v = energy_eV * e
    return h / np.sqrt(2 * m0 * v * (1 + v / (2 * m0 * c**2))) * 1e10
