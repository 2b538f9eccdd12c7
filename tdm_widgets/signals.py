"""HyperSpy in and out: unwrap signals to arrays with calibrations, wrap results with
axes in angstrom / mrad and provenance metadata."""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ._version import __version__
from .core.blocks import computed
from .core.corrections import CorrectedData, Correction
from .core.geometry import wavelength_A
from .core.validate import check_data

#: Metadata node holding a signal's detector corrections (see :func:`correction_of`).
CORRECTIONS = "TDM_corrections"

#: Length units converted to angstrom.
_TO_ANGSTROM = {"Å": 1.0, "A": 1.0, "angstrom": 1.0, "Angstrom": 1.0, "nm": 10.0,
                "pm": 0.01, "µm": 1e4, "um": 1e4}
#: Angle units converted to mrad.
_TO_MRAD = {"mrad": 1.0, "rad": 1e3, "µrad": 1e-3, "urad": 1e-3}
#: Reciprocal-length units of a diffraction axis (k = 1/d, as pyxem and RosettaSciIO
#: write them, LaTeX spellings included) converted to 1/angstrom.
_TO_INV_ANGSTROM = {
    **dict.fromkeys(("1/Å", "1/A", "Å^-1", "A^-1", "Å⁻¹", "A⁻¹", "A-1", "k_A^-1",
                     "$A^{-1}$", r"$\AA^{-1}$", "1 / Å", "1 / A", "1/angstrom"), 1.0),
    **dict.fromkeys(("1/nm", "nm^-1", "nm⁻¹", "nm-1", "k_nm^-1", "nm$^{-1}$",
                     "$nm^{-1}$", "1 / nm"), 0.1),
}
#: Where HyperSpy (and pyxem) keep the beam energy [keV].
BEAM_ENERGY = "Acquisition_instrument.TEM.beam_energy"


@dataclass(frozen=True)
class Calibration:
    """Axis calibrations of 4D data, (y, x) order.

    Attributes
    ----------
    scan_scale, scan_offset : tuple of float
        Scan step and origin, in ``scan_units``.
    scan_units : str
        ``"Å"`` when the scan was calibrated, else the file's units (e.g. ``"px"``).
    det_scale, det_offset : tuple of float
        Detector pixel size and origin, in ``det_units``.
    det_units : str
        ``"mrad"`` when calibrated.
    """

    scan_scale: tuple[float, float] = (1.0, 1.0)
    scan_offset: tuple[float, float] = (0.0, 0.0)
    scan_units: str = "px"
    det_scale: tuple[float, float] = (1.0, 1.0)
    det_offset: tuple[float, float] = (0.0, 0.0)
    det_units: str = "px"
    #: ``metadata.Acquisition_instrument`` of the source (beam energy, convergence
    #: angle, ...) and its ``metadata.Signal.signal_type``, carried to every result.
    acquisition: dict | None = field(default=None, compare=False, repr=False)
    signal_type: str = ""

    @property
    def det_mrad(self) -> bool:
        """True when the detector axes are in mrad."""
        return self.det_units == "mrad"


def _axis_cal(axis, table, target):
    units = str(getattr(axis, "units", "") or "")
    scale, offset = float(axis.scale), float(axis.offset)
    if units in table:
        f = table[units]
        return scale * f, offset * f, target
    return scale, offset, units or "px"


def _beam_energy_keV(s) -> float | None:
    kev = s.metadata.get_item(BEAM_ENERGY)
    if hasattr(kev, "m_as"):  # a pint quantity
        kev = kev.m_as("kV")
    try:
        kev = float(kev)
    except (TypeError, ValueError):
        return None
    return kev if np.isfinite(kev) and kev > 0 else None


def _detector_cal(axis, s):
    """A detector axis in mrad: angles converted, reciprocal lengths (k = 1/d) through
    the relativistic wavelength at the signal's beam energy (theta = lambda k, the
    small-angle relation pyxem uses for its mrad scale)."""
    units = str(getattr(axis, "units", "") or "")
    if units.strip() not in _TO_INV_ANGSTROM:
        return _axis_cal(axis, _TO_MRAD, "mrad")
    kev = _beam_energy_keV(s)
    if kev is None:
        raise ValueError(
            f"the detector axes are in {units!r} (reciprocal space); converting them to "
            f"mrad needs the beam energy, which metadata.{BEAM_ENERGY} [keV] does not "
            "give. Set it, e.g. s.metadata.set_item("
            f"'{BEAM_ENERGY}', 200) (pyxem: s.set_experimental_parameters(beam_energy=200))")
    f = _TO_INV_ANGSTROM[units.strip()] * wavelength_A(kev * 1e3) * 1e3  # mrad per unit
    return float(axis.scale) * f, float(axis.offset) * f, "mrad"


def correction_of(s) -> Correction | None:
    """The corrections stored on a signal (``metadata.TDM_corrections``: ``bad_pixels``
    and ``descan_px``), or None when it has none."""
    node = s.metadata.get_item(CORRECTIONS) if hasattr(s, "metadata") else None
    if node is None:
        return None
    bad = node.get_item("bad_pixels")
    descan = node.get_item("descan_px")
    corr = Correction(None if bad is None else np.asarray(bad, bool),
                      None if descan is None else np.asarray(descan, np.float64),
                      bool(node.get_item("descan_subpixel", True)))
    return corr if corr.active else None


def unwrap(s, corrected: bool = True):
    """Return ``(data, calibration, signal_or_None)`` for a signal or a 4D array.

    The data is the signal's own array (numpy or dask): never a copy. With
    ``corrected`` and corrections stored on the signal (bad pixels, descan), it is a
    :class:`~tdm_widgets.core.corrections.CorrectedData` that the streaming passes
    correct block by block.
    """
    try:
        from hyperspy.signal import BaseSignal
    except ImportError:  # pragma: no cover - hyperspy is a dependency
        BaseSignal = ()
    if isinstance(s, BaseSignal):
        am = s.axes_manager
        if am.navigation_dimension != 2 or am.signal_dimension != 2:
            raise ValueError(
                "data must be a 4D signal with 2 navigation (scan) and 2 signal "
                f"(detector) axes; got navigation dimension {am.navigation_dimension}, "
                f"signal dimension {am.signal_dimension}. For a series, pick one "
                "member first, e.g. s.inav[:, :, 0]")
        nx, ny = am.navigation_axes
        kx, ky = am.signal_axes
        sx = [_axis_cal(a, _TO_ANGSTROM, "Å") for a in (ny, nx)]
        dx = [_detector_cal(a, s) for a in (ky, kx)]
        scan_units = sx[0][2] if sx[0][2] == sx[1][2] else "px"
        det_units = dx[0][2] if dx[0][2] == dx[1][2] else "px"
        acq = s.metadata.get_item("Acquisition_instrument")
        cal = Calibration((sx[0][0], sx[1][0]), (sx[0][1], sx[1][1]), scan_units,
                          (dx[0][0], dx[1][0]), (dx[0][1], dx[1][1]), det_units,
                          acq.as_dictionary() if acq is not None else None,
                          str(s.metadata.get_item("Signal.signal_type", "") or ""))
        data = s.data
        check_data(data)
        corr = correction_of(s) if corrected else None
        return (data if corr is None else CorrectedData(data, corr)), cal, s
    if isinstance(s, (np.ndarray, CorrectedData)) or (hasattr(s, "dask") and
                                                      hasattr(s, "chunks")):
        check_data(s)
        return s, Calibration(), None
    raise TypeError(f"data must be a HyperSpy signal or a 4D array; got {type(s).__name__}")


def array_record(a) -> dict:
    """What provenance keeps of an array: shape, dtype, non-zero count and a sha256
    checksum of its bytes (not the array itself).

    Examples
    --------
    >>> array_record(np.zeros((2, 3)))["shape"]
    [2, 3]
    """
    a = np.ascontiguousarray(computed(a))
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "nonzero": int(np.count_nonzero(a)),
            "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def _recorded(value):
    if isinstance(value, np.ndarray) or (hasattr(value, "dask") and hasattr(value, "shape")):
        return array_record(value)
    if isinstance(value, dict):
        return {k: _recorded(v) for k, v in value.items()}
    return value


def provenance(operation: str, source, **parameters) -> dict:
    """Metadata recording what produced a result.

    Array parameters (templates, masks, regions) are recorded by
    :func:`array_record`, so a saved file stays small however large the scan.

    Examples
    --------
    >>> meta = provenance("pcc_mask", None, template=np.eye(3))
    >>> sorted(meta["parameters"]["template"])
    ['dtype', 'nonzero', 'sha256', 'shape']
    """
    src = {}
    if source is not None:
        src["title"] = source.metadata.get_item("General.title", "")
        src["original_filename"] = source.metadata.get_item(
            "General.original_filename", "")
        src["signal_type"] = str(source.metadata.get_item("Signal.signal_type", "") or "")
        corr = correction_of(source)
        if corr is not None:  # what the passes applied to the data
            applied = {"n_bad_pixels": 0, "descan_subpixel": corr.subpixel}
            if corr.bad_pixels is not None:
                applied.update(n_bad_pixels=int(corr.bad_pixels.sum()),
                               bad_pixels=corr.bad_pixels)
            if corr.descan_px is not None:
                applied["descan_shift_px"] = corr.descan_px
            parameters = dict(parameters, corrections=applied)
    return {"operation": operation, "package": "tdm_widgets", "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": src, "parameters": _recorded(parameters)}


def set_signal_type(sig, signal_type: str):
    """Record ``signal_type`` on a result; its class changes only when an installed
    HyperSpy extension provides that type (pyxem for ``"electron_diffraction"``), so
    no "not understood" warning is printed without it. Returns the signal."""
    if not signal_type:
        return sig
    from hyperspy.extensions import ALL_EXTENSIONS

    known = {v.get("signal_type") for v in ALL_EXTENSIONS["signals"].values()}
    if signal_type in known:
        sig.set_signal_type(signal_type)
    else:
        sig.metadata.set_item("Signal.signal_type", signal_type)
    return sig


def _wrap(arr, axes, title, meta, stack_name, cal: Calibration, signal_type: str = ""):
    """A Signal2D of ``(y, x)`` or ``(k, y, x)`` with the given calibrated 2D axes, the
    source's ``Acquisition_instrument`` and the given signal type."""
    import hyperspy.api as hs

    sig = hs.signals.Signal2D(arr)
    if hasattr(arr, "dask"):
        sig = sig.as_lazy()
    if arr.ndim == 3:
        axes = [(stack_name, 1.0, 0.0, "")] + axes
    for ax, (name, scale, offset, units) in zip(sig.axes_manager._axes, axes):
        ax.name, ax.scale, ax.offset, ax.units = name, float(scale), float(offset), units
    sig.metadata.General.title = title
    if cal.acquisition:
        sig.metadata.set_item("Acquisition_instrument", cal.acquisition)
    sig.metadata.set_item("TDM", meta)
    return set_signal_type(sig, signal_type)


def wrap_scan_images(images, cal: Calibration, title: str, meta: dict,
                     stack_name: str = "template"):
    """Scan-shaped image(s) ``(sy, sx)`` or ``(k, sy, sx)`` as a Signal2D in angstrom
    (lazy for a dask array), with the source's ``Acquisition_instrument``. Real-space
    images are plain Signal2D (no signal type); ``metadata.TDM.source.signal_type``
    records the source's."""
    axes = [(n, sc, off, cal.scan_units)
            for n, sc, off in zip(("y", "x"), cal.scan_scale, cal.scan_offset)]
    return _wrap(images, axes, title, meta, stack_name, cal)


def wrap_detector_images(masks, cal: Calibration, title: str, meta: dict,
                         stack_name: str = "template"):
    """Detector-shaped mask(s) ``(dy, dx)`` or ``(k, dy, dx)`` as a Signal2D in mrad,
    on the source's detector: its ``Acquisition_instrument`` and signal type (e.g.
    pyxem's ``"electron_diffraction"``)."""
    axes = [(n, sc, off, cal.det_units)
            for n, sc, off in zip(("ky", "kx"), cal.det_scale, cal.det_offset)]
    return _wrap(np.asarray(masks), axes, title, meta, stack_name, cal, cal.signal_type)


def as_array(x, name: str, ndim_options=(2, 3)):
    """Plain array from a HyperSpy signal or array-like (for templates and masks)."""
    try:
        from hyperspy.signal import BaseSignal
    except ImportError:  # pragma: no cover
        BaseSignal = ()
    arr = x.data if isinstance(x, BaseSignal) else x
    arr = np.asarray(computed(arr))
    if arr.ndim not in ndim_options:
        raise ValueError(f"{name} must be {' or '.join(f'{d}D' for d in ndim_options)}; "
                         f"got shape {arr.shape}")
    return arr
