"""Centre of mass of every diffraction pattern and its integration to a phase (iCoM)."""

from __future__ import annotations

import warnings

import numpy as np

from ..core.apply import apply_masks
from ..core.blocks import computed
from ..core.descan import design
from ..core.geometry import detector_coordinates, wavelength_A
from ..core.progress import hyperspy_progressbar
from ..descan import DESCAN_WARN_PX
from ..signals import provenance, unwrap, wrap_scan_images


@hyperspy_progressbar
def center_of_mass(s, show_progressbar: bool | None = None):
    """Centre of mass of each pattern [mrad], from one pass (masks 1, ky, kx).

    Stored bad pixels are interpolated and a stored descan correction is applied in
    the pass; without a descan correction, a warning says when a ramp across the scan
    dominates the result.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data, detector calibrated in mrad (else the CoM is in detector axis
        units).
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(2, scan_y, scan_x)``: CoM along detector y and x [mrad].

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 6, 16, 16)).astype(np.uint16)
    >>> com = tw.center_of_mass(tw.from_array(data, mrad_per_px=2.0), show_progressbar=False)
    >>> com.data.shape, bool(np.abs(com.data).max() < 2.0)
    ((2, 8, 6), True)
    """
    data, cal, src = unwrap(s)
    if not cal.det_mrad:
        raise ValueError("center_of_mass needs the detector calibrated in mrad")
    ky, kx = detector_coordinates(data.shape[2:], cal.det_scale, cal.det_offset)
    masks = np.stack([np.ones(data.shape[2:]), np.broadcast_to(ky[:, None], data.shape[2:]),
                      np.broadcast_to(kx[None, :], data.shape[2:])])
    tot, my, mx = np.asarray(computed(apply_masks(data, masks, progress=show_progressbar)))
    if np.any(tot <= 0):
        raise ValueError("some patterns have zero or negative total intensity")
    com = np.stack([my / tot, mx / tot])
    if getattr(getattr(data, "correction", None), "descan_px", None) is None:
        warn_if_ramp(com, min(abs(v) for v in cal.det_scale))
    sig = wrap_scan_images(com, cal, "centre of mass [mrad]",
                           provenance("center_of_mass", src), stack_name="component")
    return sig


def warn_if_ramp(com: np.ndarray, mrad_per_px: float) -> float:
    """Warn when a plane across the scan explains most of an (uncorrected) centre of
    mass and moves more than ``DESCAN_WARN_PX`` detector px: descan, not specimen.

    Returns
    -------
    float
        The fraction of the CoM variance the plane explains.
    """
    sy, sx = com.shape[1:]
    if sy * sx < 4:
        return 0.0
    a = design((sy, sx), 1)
    c = com.reshape(2, -1).T - com.reshape(2, -1).mean(axis=1)
    coef, *_ = np.linalg.lstsq(a, c, rcond=None)
    fit = a @ coef
    total = float((c**2).sum())
    frac = float((fit**2).sum()) / total if total > 0 else 0.0
    move = float(np.hypot(*np.ptp(fit, axis=0))) / mrad_per_px
    if frac > 0.5 and move > DESCAN_WARN_PX:
        warnings.warn(
            f"a ramp across the scan ({move:.2f} detector px) explains {100 * frac:.0f} % "
            "of the centre of mass: descan, not specimen; correct it with "
            "tdm_widgets.correct_descan(s, tdm_widgets.measure_descan(s))",
            UserWarning, stacklevel=3)
    return frac


def curl_rotation(com_y, com_x, step=(1.0, 1.0)) -> tuple[float, bool]:
    """Rotation [deg] (and whether to swap the detector axes) between detector and
    scan that makes the CoM field curl-free, as a gradient must be.

    A rotation by 180 degrees negates the field and keeps it curl-free, so the
    rotation is found in [-90, 90); add 180 if the phase comes out inverted (atom
    columns dark in a thin specimen).

    Returns
    -------
    rotation_deg : float
    transpose : bool
    """
    best = (np.inf, 0.0, False)
    for transpose in (False, True):
        gy, gx = (com_x, com_y) if transpose else (com_y, com_x)
        for deg in np.arange(-90.0, 90.0, 1.0):
            ry, rx = _rotate(gy, gx, deg)
            curl = np.gradient(rx, step[0], axis=0) - np.gradient(ry, step[1], axis=1)
            val = float(np.mean(curl**2))
            if val < best[0]:
                best = (val, deg, transpose)
    # refine around the best degree
    from scipy.optimize import minimize_scalar

    gy, gx = (com_x, com_y) if best[2] else (com_y, com_x)

    def cost(d):
        ry, rx = _rotate(gy, gx, d)
        return float(np.mean((np.gradient(rx, step[0], axis=0)
                              - np.gradient(ry, step[1], axis=1)) ** 2))

    res = minimize_scalar(cost, bounds=(best[1] - 1, best[1] + 1), method="bounded")
    return float(res.x), best[2]


def _rotate(gy, gx, deg):
    t = np.radians(deg)
    return np.cos(t) * gy + np.sin(t) * gx, -np.sin(t) * gy + np.cos(t) * gx


def integrate_gradient(gy, gx, step=(1.0, 1.0)) -> np.ndarray:
    """Periodic Fourier integration of a gradient field; zero mean.

    ``F(phi) = (ky F(gy) + kx F(gx)) / (2 pi i |k|^2)`` with k in cycles per unit of
    ``step``.
    """
    ny, nx = gy.shape
    ky = np.fft.fftfreq(ny, d=step[0])[:, None]
    kx = np.fft.fftfreq(nx, d=step[1])[None, :]
    k2 = ky**2 + kx**2
    k2[0, 0] = 1.0
    f = (ky * np.fft.fft2(gy) + kx * np.fft.fft2(gx)) / (2j * np.pi * k2)
    f[0, 0] = 0.0
    return np.real(np.fft.ifft2(f))


@hyperspy_progressbar
def icom(s, rotation_deg: float | None = None, transpose: bool | None = None,
         energy_eV: float | None = None, show_progressbar: bool | None = None):
    """Integrated centre of mass: the phase [rad] whose gradient is the CoM shift.

    ``grad phi = 2 pi theta / lambda`` (theta the CoM [rad], lambda the wavelength),
    rotated into the scan frame (by the curl-free rotation if not given) and
    integrated in Fourier space (periodic boundaries, zero mean).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D data, scan in angstrom and detector in mrad.
    rotation_deg : float, optional
        Scan-detector rotation [degrees]; found from the data (curl-free) if None.
    transpose : bool, optional
        Whether the detector axes are swapped relative to the scan; found with the
        rotation if None.
    energy_eV : float, optional
        Beam energy [eV]; from ``metadata.Acquisition_instrument.TEM.beam_energy``
        [keV] if None.

    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(scan_y, scan_x)`` phase [rad] with the rotation used in metadata.

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 6, 16, 16)).astype(np.uint16)
    >>> s = tw.from_array(data, scan_step_A=0.5, mrad_per_px=2.0)
    >>> phase = tw.icom(s, rotation_deg=0, transpose=False, energy_eV=300e3, show_progressbar=False)
    >>> phase.data.shape, phase.metadata.TDM.parameters.energy_eV
    ((8, 6), 300000.0)
    """
    data, cal, src = unwrap(s)
    if cal.scan_units != "Å":
        raise ValueError("icom needs the scan step in angstrom")
    if energy_eV is None:
        kev = getattr(s, "metadata", None) and s.metadata.get_item(
            "Acquisition_instrument.TEM.beam_energy")
        if not kev:
            raise ValueError("give energy_eV or set metadata Acquisition_instrument.TEM."
                             "beam_energy [keV]")
        energy_eV = float(kev) * 1e3
    com = center_of_mass(s, show_progressbar=show_progressbar).data
    step = cal.scan_scale
    if rotation_deg is None or transpose is None:
        rotation_deg, transpose = curl_rotation(com[0], com[1], step)
    gy, gx = (com[1], com[0]) if transpose else (com[0], com[1])
    gy, gx = _rotate(gy, gx, rotation_deg)
    k = 2 * np.pi / wavelength_A(energy_eV) * 1e-3  # rad/A per mrad
    phase = integrate_gradient(gy * k, gx * k, step)
    meta = provenance("icom", src, rotation_deg=float(rotation_deg),
                      transpose=bool(transpose), energy_eV=float(energy_eV))
    return wrap_scan_images(phase, cal, "iCoM phase [rad]", meta)
