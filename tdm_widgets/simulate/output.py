"""Simulation results as HyperSpy signals calibrated like loaded experimental data."""

from __future__ import annotations

import numpy as np

from ..io import from_array
from ..signals import provenance


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
    ref = from_array(result.data[0, 0], mrad_per_px=result.mrad_per_px,
                     scan_step_A=(result.scan_step_A[1], result.scan_step_A[0]))
    s = hs.signals.Signal2D(data)
    axes = s.axes_manager._axes
    for ax, (name, vals) in zip(axes, [lead[i] for i in keep]):
        ax.name, ax.units = name, "nm"
        step = np.diff(vals)
        if np.allclose(step, step[0], rtol=0.05):
            ax.scale, ax.offset = float(np.mean(step)), float(vals[0])
    for ax, r in zip(axes[len(keep):], ref.axes_manager._axes):
        ax.name, ax.scale, ax.offset, ax.units = r.name, r.scale, r.offset, r.units
    s.metadata.General.title = title
    params = dict(result.parameters)
    s.metadata.set_item("Simulation", {
        "structure": params["structure"], "parameters": params,
        "thickness_nm": thick, "defocus_nm": defocus,
        "columns": {k: np.asarray(v, float) for k, v in result.columns.items()},
        "truth": {k: np.asarray(v) for k, v in result.truth.items()},
        "pacbed": pacbed, "pacbed_thickness_nm": thick,
        "pacbed_mrad_per_px": list(result.pacbed_mrad_per_px),
        "intensity_units": "fraction of the incident beam per detector pixel",
        "generator_command": command,
    })
    s.metadata.set_item("TDM", provenance("simulate", None, command=command))
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
    """The 4D member of a simulated series nearest the given thickness and defocus
    [nm]; a series axis not named takes its first value."""
    out = s
    picked = {}
    for name, want in (("defocus", defocus_nm), ("thickness", thickness_nm)):
        vals = s.metadata.get_item(f"Simulation.{name}_nm")
        if vals is None or np.size(vals) < 2:
            continue
        vals = np.asarray(vals, float)
        i = 0 if want is None else int(np.argmin(np.abs(vals - want)))
        out = _take(out, name, i)
        picked[name] = float(vals[i])
    if picked:
        out.metadata.General.title = s.metadata.General.title + "".join(
            f" {k} {v:g} nm" for k, v in picked.items())
        for k, v in picked.items():
            out.metadata.set_item(f"Simulation.selected_{k}_nm", v)
    return out
