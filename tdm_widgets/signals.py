"""HyperSpy in and out: unwrap signals to arrays with calibrations, wrap results with
axes in angstrom / mrad and provenance metadata."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .core.blocks import computed, is_lazy
from .core.checks import check_data
from .core.corrections import CorrectedData, Correction
from .core.geometry import wavelength_A
from .core.progress import use_preference
from .core.records import DETECTOR_AXES, SCAN_AXES, provenance_record
from .core.stats import ColumnStats


def hyperspy_show_progressbar() -> bool:
    """HyperSpy's progress-bar preference (``hs.preferences.General.show_progressbar``),
    the default of every ``show_progressbar=None`` in the package."""
    from hyperspy.defaults_parser import preferences

    return bool(preferences.General.show_progressbar)


use_preference(hyperspy_show_progressbar)

#: Metadata node holding a signal's detector corrections (see :func:`correction_of`).
CORRECTIONS = "TDM_corrections"

#: Length units converted to angstrom.
_TO_ANGSTROM = {"Å": 1.0, "A": 1.0, "angstrom": 1.0, "Angstrom": 1.0, "angstroms": 1.0,
                "Angstroms": 1.0, "nm": 10.0, "pm": 0.01, "µm": 1e4, "um": 1e4}
#: Angle units converted to mrad.
_TO_MRAD = {"mrad": 1.0, "rad": 1e3, "µrad": 1e-3, "urad": 1e-3}
#: Reciprocal-length units of a diffraction axis (k = 1/d, as pyxem and RosettaSciIO
#: write them, LaTeX spellings included) converted to 1/angstrom.
_TO_INV_ANGSTROM = {
    **dict.fromkeys(("1/Å", "1/A", "Å^-1", "A^-1", "Å⁻¹", "A⁻¹", "A-1", "Å-1", "k_A^-1",
                     "$A^{-1}$", r"$\AA^{-1}$", "1 / Å", "1 / A", "1/angstrom",
                     "1/Angstrom"), 1.0),
    **dict.fromkeys(("1/nm", "nm^-1", "nm⁻¹", "nm-1", "k_nm^-1", "nm$^{-1}$",
                     "$nm^{-1}$", "1 / nm"), 0.1),
}


def _unit_key(units) -> str:
    """A unit string as the tables spell it: NFKC (the Angstrom sign U+212B is Å, the
    micro sign and the Greek mu are one letter) without spaces and without LaTeX's
    ``$``, braces and ``\\AA`` (``nm^{-1}``, ``Å$^{-1}$`` and ``$\\AA^{-1}$`` are
    ``nm^-1``, ``Å^-1`` and ``Å^-1``)."""
    key = unicodedata.normalize("NFKC", str(units or "")).replace("\\AA", "Å")
    return "".join(c for c in key if c not in "${} \t")


_TO_ANGSTROM = {_unit_key(k): v for k, v in _TO_ANGSTROM.items()}
_TO_MRAD = {_unit_key(k): v for k, v in _TO_MRAD.items()}
_TO_INV_ANGSTROM = {_unit_key(k): v for k, v in _TO_INV_ANGSTROM.items()}
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
    units = _unit_key(getattr(axis, "units", ""))
    scale, offset = float(axis.scale), float(axis.offset)
    if units in table:
        f = table[units]
        return scale * f, offset * f, target
    return scale, offset, units or "px"


#: Beam energies accepted [keV]: outside them a value is taken for a unit mistake.
MIN_BEAM_KEV, MAX_BEAM_KEV = 1.0, 3000.0


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
    units = _unit_key(getattr(axis, "units", ""))
    if units not in _TO_INV_ANGSTROM:
        return _axis_cal(axis, _TO_MRAD, "mrad")
    kev = _beam_energy_keV(s)
    if kev is not None and not MIN_BEAM_KEV <= kev <= MAX_BEAM_KEV:
        raise ValueError(
            f"metadata.{BEAM_ENERGY} is {kev:g}, read as keV: no electron microscope "
            f"runs at {kev:g} keV ({MIN_BEAM_KEV:g}-{MAX_BEAM_KEV:g} keV expected; "
            f"{kev / 1e3:g} if it was given in eV). Set it in keV, e.g. "
            f"s.metadata.set_item('{BEAM_ENERGY}', 200)")
    if kev is None:
        raise ValueError(
            f"the detector axes are in {units!r} (reciprocal space); converting them to "
            f"mrad needs the beam energy, which metadata.{BEAM_ENERGY} [keV] does not "
            "give. Set it, e.g. s.metadata.set_item("
            f"'{BEAM_ENERGY}', 200) (pyxem: s.set_experimental_parameters(beam_energy=200))")
    f = _TO_INV_ANGSTROM[units] * wavelength_A(kev * 1e3) * 1e3  # mrad per unit
    return float(axis.scale) * f, float(axis.offset) * f, "mrad"


def check_mask_detector(mask, cal: Calibration) -> None:
    """Warn when a mask signal's detector calibration is not the data's.

    A mask weights detector pixels; on data with another camera length (scale
    differing by more than 1 %) or another centre (offset differing by more than half a
    pixel) the same weights fall on other angles. Masks given as arrays, and either
    side without a detector in mrad, are not compared.

    Parameters
    ----------
    mask : Signal2D or array_like
        ``(det_y, det_x)`` or ``(k, det_y, det_x)`` mask(s) with detector axes.
    cal : Calibration
        The data's calibration (from :func:`unwrap`).

    Examples
    --------
    >>> import warnings, hyperspy.api as hs
    >>> m = hs.signals.Signal2D(np.ones((4, 4)))
    >>> for ax in m.axes_manager.signal_axes:
    ...     ax.scale, ax.units = 2.0, "mrad"
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_mask_detector(m, Calibration(det_scale=(1.0, 1.0), det_units="mrad"))
    >>> "camera length" in str(caught[0].message)
    True
    """
    axes = getattr(getattr(mask, "axes_manager", None), "signal_axes", ())
    if not cal.det_mrad or len(axes) != 2:
        return
    try:
        ky, kx = (_detector_cal(a, mask) for a in (axes[1], axes[0]))
    except (ValueError, AttributeError):  # no beam energy, a non-uniform axis
        return
    if ky[2] != "mrad" or kx[2] != "mrad":
        return
    scale, offset = np.array([ky[0], kx[0]]), np.array([ky[1], kx[1]])
    data_scale, data_offset = np.array(cal.det_scale), np.array(cal.det_offset)
    if (np.allclose(scale, data_scale, rtol=0.01, atol=0)
            and np.all(np.abs(offset - data_offset) <= 0.5 * np.abs(data_scale))):
        return
    import warnings

    warnings.warn(
        f"the mask's detector calibration ({_fmt_pair(scale)} mrad/px, origin "
        f"{_fmt_pair(offset)} mrad) is not the data's ({_fmt_pair(data_scale)} mrad/px, "
        f"origin {_fmt_pair(data_offset)} mrad): a mask weights detector pixels, so on "
        "data with another camera length or centre its weights fall on other angles. "
        "Fit the mask on data calibrated like this, or calibrate both alike",
        UserWarning, stacklevel=4)


def _fmt_pair(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def intensity_scale(s) -> float:
    """Factor by which a signal's values exceed fractions of the incident beam.

    Bundled simulations store ``metadata.Simulation.intensity_scale`` times the beam
    fraction per detector pixel (so that float16 keeps high-angle values normal); data
    without that item (arrays, experiments, other simulations) count as 1.

    Parameters
    ----------
    s : hyperspy.signals.BaseSignal or array_like
        The data.

    Returns
    -------
    float
        ``values / intensity_scale(s)`` are beam fractions [1].

    Examples
    --------
    >>> intensity_scale(np.ones((2, 2, 3, 3)))
    1.0
    """
    meta = getattr(s, "metadata", None)
    return 1.0 if meta is None else float(meta.get_item("Simulation.intensity_scale", 1.0))


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
                f"signal dimension {am.signal_dimension}. "
                + ("For 4 signal axes (a 4D EMD as py4DSTEM writes it), make the first "
                   "two the scan: s.transpose(signal_axes=2), or read the file with "
                   "tdm_widgets.load" if am.navigation_dimension == 0 and
                   am.signal_dimension == 4 else
                   "For a series, pick one member first, e.g. s.inav[:, :, 0]"))
        uneven = [f"{kind} axis {i}" + (f" ({a.name!r})" if isinstance(a.name, str) else "")
                  for kind, axes in
                  (("navigation", am.navigation_axes), ("signal", am.signal_axes))
                  for i, a in enumerate(axes) if not getattr(a, "is_uniform", True)]
        if uneven:
            raise ValueError(
                f"the {', '.join(uneven)} of the data {'is' if len(uneven) == 1 else 'are'}"
                " non-uniform; tdm_widgets needs evenly spaced scan and detector axes "
                "(HyperSpy: axis.convert_to_uniform_axis())")
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


def source_file(sig):
    """The file a signal was loaded from, or None for data made in memory.

    Read from ``tmp_parameters`` (set by RosettaSciIO and by :func:`tdm_widgets.load`
    for every format), else from a result's provenance (``metadata.TDM.source.path``).

    Parameters
    ----------
    sig : Signal, str, Path or array_like
        A loaded signal, a result of the toolkit, a file's path (itself), or anything
        else (None then).

    Returns
    -------
    pathlib.Path or None
        Absolute path of the input file.

    Examples
    --------
    >>> source_file(np.zeros(3)) is None
    True
    """
    from pathlib import Path

    if isinstance(sig, (str, Path)):
        return Path(sig).resolve()
    tmp = getattr(sig, "tmp_parameters", None)
    if tmp is not None and tmp.has_item("folder") and tmp.has_item("filename"):
        return (Path(tmp.folder) / (tmp.filename + tmp.get_item("extension", ""))).resolve()
    meta = getattr(sig, "metadata", None)
    path = meta.get_item("TDM.source.path", "") if meta is not None else ""
    return Path(path) if path else None


def refuse_overwriting_input(targets, *sources) -> None:
    """Raise when writing any of ``targets`` would overwrite the file a source came from.

    Parameters
    ----------
    targets : iterable of str or Path
        Files about to be written.
    *sources : Signal, str, Path or None
        The signals (data, masks) or files the written results come from.

    Raises
    ------
    ValueError
        Naming the target and the input file it would replace.

    Examples
    --------
    >>> refuse_overwriting_input(["out/masks.hspy"], None)   # nothing loaded: fine
    """
    import os
    from pathlib import Path

    inputs = {p for p in map(source_file, (s for s in sources if s is not None))
              if p is not None}
    for target in map(Path, targets):
        target = target.resolve()
        for src in inputs:
            same = target == src or (target.exists() and src.exists()
                                     and os.path.samefile(target, src))
            if same:
                raise ValueError(f"writing {target} would overwrite the input file {src}: "
                                 "choose another folder or name")


def provenance(operation: str, source, **parameters) -> dict:
    """Metadata recording what produced a result, from the source signal (title, file
    and the corrections the passes applied) and the parameters.

    Array parameters (templates, masks, regions) are recorded by
    :func:`~tdm_widgets.core.records.array_record`, so a saved file stays small
    however large the scan.

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
        path = source_file(source)
        if path is not None:
            src["path"] = str(path)
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
    return provenance_record(operation, src, **parameters)


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


def _wrap(arr, axes, title, meta, stack_name, names, cal: Calibration, signal_type: str = ""):
    """A Signal2D of ``(y, x)`` or ``(k, y, x)`` with the given calibrated 2D axes, the
    source's ``Acquisition_instrument`` and the given signal type; a stack's images are
    named in ``metadata.TDM.names`` (the one place names are set)."""
    import hyperspy.api as hs

    if arr.ndim == 3:
        axes = [(stack_name, 1.0, 0.0, "")] + axes
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != (arr.shape[0] if arr.ndim == 3 else 1):
            raise ValueError(f"{len(names)} names for {arr.shape[0] if arr.ndim == 3 else 1}"
                             f" images: {names}")
    sig = hs.signals.Signal2D(arr, axes=[
        {"name": n, "size": size, "scale": float(sc), "offset": float(off), "units": u}
        for (n, sc, off, u), size in zip(axes, arr.shape)])
    if hasattr(arr, "dask"):
        sig = sig.as_lazy()
    sig.metadata.General.title = title
    if cal.acquisition:
        sig.metadata.set_item("Acquisition_instrument", cal.acquisition)
    sig.metadata.set_item("TDM", meta)
    if names is not None:
        sig.metadata.set_item("TDM.names", names)
    return set_signal_type(sig, signal_type)


def wrap_scan_images(images, cal: Calibration, title: str, meta: dict,
                     stack_name: str = "template", names=None):
    """Scan-shaped image(s) ``(sy, sx)`` or ``(k, sy, sx)`` as a Signal2D in angstrom
    (lazy for a dask array), named by ``names`` (one per image) if given, with the
    source's ``Acquisition_instrument``. Real-space images are plain Signal2D (no signal
    type); ``metadata.TDM.source.signal_type`` records the source's."""
    axes = [(n, sc, off, cal.scan_units)
            for n, sc, off in zip(SCAN_AXES, cal.scan_scale, cal.scan_offset)]
    return _wrap(images, axes, title, meta, stack_name, names, cal)


def wrap_detector_images(masks, cal: Calibration, title: str, meta: dict,
                         stack_name: str = "template", names=None):
    """Detector-shaped mask(s) ``(dy, dx)`` or ``(k, dy, dx)`` as a Signal2D in mrad,
    named by ``names`` (one per mask) if given, on the source's detector: its
    ``Acquisition_instrument`` and signal type (e.g. pyxem's ``"electron_diffraction"``)."""
    axes = [(n, sc, off, cal.det_units)
            for n, sc, off in zip(DETECTOR_AXES, cal.det_scale, cal.det_offset)]
    return _wrap(np.asarray(masks), axes, title, meta, stack_name, names, cal,
                 cal.signal_type)


def stack_names(sig):
    """The names (``metadata.TDM.names``) of the images a stack holds now, in order.

    HyperSpy's slicing of a named stack (``s.inav[1:3]``, ``s.inav[::-1]``,
    ``s.inav[0]``) copies the metadata whole, names of the images left out included;
    the stack axis keeps which images are left (its values are their indices in the
    stack the names belong to), so the names are picked the same way.

    Parameters
    ----------
    sig : hyperspy.signals.BaseSignal or array_like
        A signal, possibly a named stack or one image of it.

    Returns
    -------
    list of str or None
        One name per image; None without names, or when they cannot be matched to the
        images (one image cut out of a stack of several, which the axis no longer
        says; an axis rescaled by hand).

    Examples
    --------
    >>> stack = wrap_scan_images(np.zeros((3, 4, 5)), Calibration(), "", {},
    ...                          names=["Li", "O", "BF"])
    >>> stack_names(stack.inav[::-1]), stack_names(stack.inav[1:]), stack_names(stack.inav[0])
    (['BF', 'O', 'Li'], ['O', 'BF'], None)
    """
    meta = getattr(sig, "metadata", None)
    names = meta.get_item("TDM.names") if meta is not None else None
    if names is None:
        return None
    names = [str(n) for n in names]
    nav = sig.axes_manager.navigation_axes
    if len(nav) == 0:  # one image: named only if the names are its own
        return names if len(names) == 1 else None
    if len(nav) != 1:
        return None
    at = np.asarray(nav[0].axis, float)
    idx = np.rint(at)
    if not (np.allclose(at, idx) and idx.min() >= 0 and idx.max() < len(names)):
        return None
    return [names[int(i)] for i in idx]


def pick(sig, names):
    """The images of a named stack (``metadata.TDM.names``) called ``names``: a named
    stack for a list, one image for a single name.

    Parameters
    ----------
    sig : hyperspy.signals.Signal2D
        A named stack ``(k, y, x)``, e.g. from :func:`tdm_widgets.pcc_mask`,
        :func:`tdm_widgets.apply_mask`, :func:`tdm_widgets.column_stats` or
        :meth:`tdm_widgets.TDMSession.images`.
    names : str or sequence of str
        One name for one image, or a list of names (in the order wanted) for a stack.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(y, x)`` for one name or ``(len(names), y, x)`` for a list. Values and
        axes keep the units of ``sig`` (e.g. [data units] on axes in [A] for Eq 2
        images, [dimensionless] on axes in [mrad] for Eq 5 masks); the metadata is
        ``sig``'s with ``metadata.TDM.names`` set to the names picked. Lazy for a
        lazy stack.

    Raises
    ------
    ValueError
        For a name the stack does not hold.

    Examples
    --------
    >>> from tdm_widgets.signals import Calibration
    >>> stack = wrap_scan_images(np.zeros((3, 4, 5)), Calibration(), "", {},
    ...                          names=["Li", "O", "BF"])
    >>> pick(stack, ["O", "BF"]).metadata.TDM.names, pick(stack, "BF").data.shape
    (['O', 'BF'], (4, 5))
    """
    have = stack_names(sig)
    if have is None and sig.metadata.get_item("TDM.names") is not None:
        raise ValueError(
            f"the stack's names {list(sig.metadata.get_item('TDM.names'))} do not say "
            "which images it holds now (one image cut out of a stack with s.inav[i], or "
            "a stack axis rescaled): pick from the whole stack")
    have = have or []
    wanted = [names] if isinstance(names, str) else list(names)
    missing = [n for n in wanted if n not in have]
    if missing:
        raise ValueError(f"no images named {missing}; the stack holds {have}")
    idx = [have.index(n) for n in wanted]
    if isinstance(names, str):
        out = sig.inav[idx[0]]
        out.metadata.General.title = f"{sig.metadata.General.title}: {names}"
    else:  # a new stack of the chosen images, with the same axes and metadata
        import hyperspy.api as hs

        axes = list(sig.axes_manager.as_dictionary().values())
        # a new stack: its axis counts its own images (names and axis agree again)
        axes[0] = dict(axes[0], size=len(idx), offset=0.0, scale=1.0)
        out = hs.signals.Signal2D(sig.data[idx], axes=axes,
                                  metadata=sig.metadata.as_dictionary())
        if is_lazy(sig.data):
            out = out.as_lazy()
    out.metadata.set_item("TDM.names", wanted)
    return out


def column_stats_signal(stats: ColumnStats, cal: Calibration, meta: dict):
    """Column statistics as a ``(2, det_y, det_x)`` Signal2D in mrad named ``["mean",
    "std"]``; the std is 0 at zero-variance pixels (constant beyond round-off: weight 0
    in every mask) and ``metadata.TDM.n_positions`` counts the positions used."""
    sig = wrap_detector_images(np.stack([stats.mean, np.where(stats.valid, stats.std, 0.0)]),
                               cal, "column statistics", meta, stack_name="statistic",
                               names=["mean", "std"])
    sig.metadata.set_item("TDM.n_positions", int(stats.n))
    return sig


def as_column_stats(stats) -> ColumnStats:
    """:class:`~tdm_widgets.core.stats.ColumnStats` from the signal of
    :func:`tdm_widgets.column_stats` (or unchanged when it already is one)."""
    if isinstance(stats, ColumnStats):
        return stats
    meta = getattr(stats, "metadata", None)
    if meta is None or list(meta.get_item("TDM.names", [])) != ["mean", "std"]:
        raise TypeError("stats must be the result of tdm_widgets.column_stats (a mean and "
                        f"std stack); got {type(stats).__name__}")
    mean, std = (np.asarray(computed(stats.data[i]), np.float64) for i in (0, 1))
    return ColumnStats(int(meta.get_item("TDM.n_positions")), mean, std, std > 0)


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
