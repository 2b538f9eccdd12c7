"""Simulation results as HyperSpy signals calibrated like loaded experimental data."""

from __future__ import annotations

import logging

import numpy as np

from ..core.records import axes_4d, provenance_record

logger = logging.getLogger(__name__)


def to_signal(result, title: str, command: str = ""):
    """A Signal2D with the scan in angstrom, the detector in mrad and extra
    navigation axes ``thickness`` [nm] and ``defocus`` [nm] where a series has more
    than one value.

    Parameters
    ----------
    result : SimulationResult
        A run with ``(n_defocus, n_thickness, ...)`` data.
    title : str
        Signal title.
    command : str
        The command that generated it, for the manifest.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``metadata.Simulation`` holds every parameter, the abTEM version, the column
        positions per species and any ground truth [scan px], and the PACBED series
        at full angular sampling.
    """
    import hyperspy.api as hs

    defocus = np.atleast_1d(np.asarray(result.parameters["defocus_nm"], float))
    thick = np.asarray(result.thickness_nm, float)
    lead = [("defocus", defocus), ("thickness", thick)]
    keep = [i for i, (_, v) in enumerate(lead) if len(v) > 1]
    data = result.data.reshape(tuple(len(lead[i][1]) for i in keep) + result.data.shape[2:])
    pacbed = result.pacbed.reshape(tuple(len(lead[i][1]) for i in keep)
                                   + result.pacbed.shape[2:])
    axes = []
    for name, vals in (lead[i] for i in keep):
        ax = {"name": name, "size": len(vals), "units": "nm", "navigate": True}
        step = np.diff(vals)
        if np.allclose(step, step[0], rtol=0.05):
            ax.update(scale=float(np.mean(step)), offset=float(vals[0]))
        axes.append(ax)
    mrad = np.broadcast_to(np.asarray(result.mrad_per_px, float), (2,))
    axes += axes_4d(result.data.shape[2:], (result.scan_step_A[1], result.scan_step_A[0]),
                    mrad)
    s = hs.signals.Signal2D(data, axes=axes)
    s.metadata.General.title = title
    params = dict(result.parameters)
    s.metadata.set_item("Simulation", {
        "structure": params["structure"], "parameters": params,
        "thickness_nm": thick, "defocus_nm": defocus,
        "columns": {k: np.asarray(v, float) for k, v in result.columns.items()},
        # a 0-d array cannot be written to .hspy (RosettaSciIO): scalars as scalars
        "truth": {k: (np.asarray(v).item() if np.ndim(v) == 0 else np.asarray(v))
                  for k, v in result.truth.items()},
        "pacbed": pacbed, "pacbed_thickness_nm": thick,
        "pacbed_mrad_per_px": list(result.pacbed_mrad_per_px),
        "intensity_units": "fraction of the incident beam per detector pixel",
        "generator_command": command,
    })
    s.metadata.set_item("TDM", provenance_record("simulate", command=command))
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy",
                        params["energy_eV"] / 1e3)
    s.metadata.set_item("Acquisition_instrument.TEM.convergence_angle",
                        params["semiangle_mrad"])
    return s


def columns_of(s) -> dict:
    """Column positions per species [scan px] stored with a simulated signal."""
    cols = s.metadata.get_item("Simulation.columns")
    if cols is None:
        raise ValueError("signal has no Simulation.columns metadata")
    return {k: np.asarray(v) for k, v in cols.as_dictionary().items()}


def truth_of(s) -> dict:
    """Ground truth stored with a simulated signal, polarisation along the Ti shift.

    PbTiO3 files made before the polarisation convention was fixed (no
    ``polarisation_along_ti_shift`` entry, e.g. the bundled domain wall) stored each
    column's polarisation opposite to the Ti displacement from its O cage; their
    ``polarisation_*`` vectors are negated here, the file is not changed.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        A signal from :func:`to_signal` or a file it wrote.

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> truth = truth_of(tw.load("data/bundled/pbtio3_domain_wall.hspy"))  # doctest: +SKIP
    >>> truth["polarisation_Ti"][0]  # doctest: +SKIP
    """
    node = s.metadata.get_item("Simulation.truth")
    if node is None:
        raise ValueError("signal has no Simulation.truth metadata")
    truth = {k: np.asarray(v) for k, v in node.as_dictionary().items()}
    if "polarisation_along_ti_shift" not in truth:
        truth = {k: -v if k.startswith("polarisation_") else v for k, v in truth.items()}
    return truth
def _take(s, name: str, index: int):
    """``s`` with its navigation axis ``name`` fixed at ``index`` (the axis dropped):
    what ``s.inav`` gives, a view of the same data, made without HyperSpy's slicing
    machinery (which imports matplotlib, a second or more before the first figure)."""
    axes = list(s.axes_manager.as_dictionary().values())  # in the data's axis order
    k = next(j for j, a in enumerate(axes) if a["name"] == name and a["navigate"])
    data = s.data[tuple(index if j == k else slice(None) for j in range(len(axes)))]
    return s.__class__(data, axes=[a for j, a in enumerate(axes) if j != k],
                       metadata=s.metadata.as_dictionary(),
                       original_metadata=s.original_metadata.as_dictionary())


def select(s, thickness_nm: float | None = None, defocus_nm: float | None = None):
    """The 4D member of a simulated series nearest the given thickness and defocus.

    A series axis not named takes its first value (logged). A member already picked
    (a file saved from one) or a single-valued simulation is returned as it is when the
    value asked for is the nearest of its series, or not given.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        A simulated series (:func:`to_signal` or a file it wrote) or a 4D signal.
    thickness_nm, defocus_nm : float, optional
        The member wanted [nm]: a finite number (thickness > 0) no further outside the
        series than half its spacing there.

    Returns
    -------
    hyperspy.signals.Signal2D
        The member (a view of the same data), with ``Simulation.selected_*_nm`` and
        the file it was loaded from (``tmp_parameters``) kept.

    Raises
    ------
    ValueError
        Naming the argument: not finite, outside the series, or given for data that
        is not a series along that axis (a measured file) or holds another member.

    Examples
    --------
    >>> series = tw.load(tw.data_path("lifepo4_thickness"))
    >>> select(series, thickness_nm=70).metadata.Simulation.selected_thickness_nm
    69.881
    """
    out = s
    picked = {}
    present = {a.name for a in s.axes_manager.navigation_axes}
    for name, want in (("defocus", defocus_nm), ("thickness", thickness_nm)):
        arg = f"{name}_nm"
        if want is not None:
            try:
                want = float(want)
            except (TypeError, ValueError):
                raise ValueError(f"{arg} must be a number [nm]; got {want!r}") from None
        if want is not None and not (np.isfinite(want) and (name != "thickness" or want > 0)):
            raise ValueError(f"{arg} must be a finite number{' > 0' if name == 'thickness' else ''}"
                             f" [nm]; got {want}")
        vals = s.metadata.get_item(f"Simulation.{arg}")
        vals = None if vals is None else np.atleast_1d(np.asarray(vals, float))
        if vals is None:
            if want is not None:
                raise ValueError(f"{arg}={want:g} given, but the data is not a simulated "
                                 f"{name} series (no Simulation.{arg} metadata)")
            continue
        i = 0 if want is None else _nearest_member(vals, want, arg)
        if name in present and vals.size > 1:
            if want is None:
                logger.info("select: %s not given, the first member %g nm of %s taken",
                            arg, vals[0], np.round(vals, 3).tolist())
            out = _take(out, name, i)
            picked[name] = float(vals[i])
        elif want is not None:  # one member only: the one asked for?
            have = float(s.metadata.get_item(f"Simulation.selected_{arg}", vals[0]))
            if not np.isclose(vals[i], have):
                raise ValueError(f"{arg}={want:g}: the data holds only the {have:g} nm member "
                                 f"of its series")
    if picked:
        tmp = s.tmp_parameters.as_dictionary()
        out.metadata.General.title = s.metadata.General.title + "".join(
            f" {k} {v:g} nm" for k, v in picked.items())
        for k, v in picked.items():
            out.metadata.set_item(f"Simulation.selected_{k}_nm", v)
        for k, v in tmp.items():  # the file it came from: results never overwrite it
            out.tmp_parameters.set_item(k, v)
    return out


def _nearest_member(vals: np.ndarray, want: float, arg: str) -> int:
    """Index of the series value nearest ``want``; ValueError naming ``arg`` when
    ``want`` lies beyond either end by more than half the spacing there."""
    if vals.size == 1 and not np.isclose(vals[0], want):
        raise ValueError(f"{arg}={want:g}: the data holds only {vals[0]:g} nm")
    i = int(np.argmin(np.abs(vals - want)))
    order = np.sort(vals)
    lo_gap = order[1] - order[0] if vals.size > 1 else 0.0
    hi_gap = order[-1] - order[-2] if vals.size > 1 else 0.0
    if want < order[0] - lo_gap / 2 - 1e-9 or want > order[-1] + hi_gap / 2 + 1e-9:
        raise ValueError(f"{arg}={want:g} lies outside the series "
                         f"{np.round(order, 3).tolist()} nm")
    return i


def tile_cells(s, reps):
    """A larger field of view from a scan of exactly whole periodic unit cells: the
    4D data repeated ``reps = (n_y, n_x)`` times along the scan, the column positions
    in ``metadata.Simulation.columns`` (and any ``truth`` positions) repeated with it.

    The tiled patterns are identical copies: add noise *after* tiling (e.g.
    :func:`tdm_widgets.add_poisson_noise`), so every cell gets its own independent
    counts. A tiling is no substitute for a multi-cell simulation where the
    specimen is not periodic; it is exact for a perfect crystal scanned over one
    period (the bundled thickness series).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        One 4D member ``(scan_y, scan_x | det_y, det_x)`` of a simulated series (see
        :func:`select`); numpy-backed.
    reps : tuple of int
        Cells along y and x (each >= 1).

    Returns
    -------
    hyperspy.signals.Signal2D
        Same calibration and metadata; ``metadata.Simulation.tiled_cells`` records
        ``reps``.

    Examples
    --------
    >>> big = tile_cells(select(series, thickness_nm=70), (3, 3))  # doctest: +SKIP
    >>> noisy = tdm_widgets.add_poisson_noise(big, 2e4, seed=0)     # doctest: +SKIP
    """
    import hyperspy.api as hs

    ny, nx = (int(r) for r in reps)
    if ny < 1 or nx < 1 or tuple(reps) != (ny, nx):
        raise ValueError(f"reps must be two whole numbers >= 1; got {reps}")
    if s.axes_manager.navigation_dimension != 2 or s.axes_manager.signal_dimension != 2:
        raise ValueError("tile_cells needs one 4D member (scan_y, scan_x | det_y, det_x); "
                         "pick it from a series with select()")
    data = np.asarray(s.data)
    sy, sx = data.shape[:2]
    out = hs.signals.Signal2D(np.tile(data, (ny, nx, 1, 1)),
                              metadata=s.metadata.as_dictionary(),
                              original_metadata=s.original_metadata.as_dictionary())
    for new, old in zip(out.axes_manager._axes, s.axes_manager._axes):
        new.name, new.scale, new.offset, new.units = old.name, old.scale, old.offset, old.units
    shifts = np.array([(i * sy, j * sx) for i in range(ny) for j in range(nx)], float)
    for group in ("columns", "truth"):
        node = s.metadata.get_item(f"Simulation.{group}")
        if node is None:
            continue
        tiled = {}
        for k, v in node.as_dictionary().items():
            v = np.asarray(v)
            if group == "columns" or (v.ndim == 2 and v.shape[1] == 2 and k.endswith("_px")):
                v = (v[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
            tiled[k] = v
        out.metadata.set_item(f"Simulation.{group}", tiled)
    out.metadata.set_item("Simulation.tiled_cells", [ny, nx])
    out.metadata.General.title = f"{s.metadata.General.title} tiled {ny} x {nx}"
    return out
