"""abTEM + ASE structures and 4D-STEM series (depends on nothing above it)."""

from __future__ import annotations

from dataclasses import replace

from .output import columns_of, select, to_signal
from .runner import PRESETS, Preset, run_multislice, run_raw

#: The structures (ASE, slow to import) are imported on first use (PEP 562): reading a
#: bundled simulation does not need them.
_STRUCTURE_NAMES = ("Structure", "lifepo4", "lifepo4_cell", "lifepo4_defects", "pbtio3",
                    "pbtio3_cell", "pbtio3_domain_wall")


def __getattr__(name):
    if name not in _STRUCTURE_NAMES:
        raise AttributeError(f"module 'tdm_widgets.simulate' has no attribute {name!r}")
    from . import structures

    value = getattr(structures, name)
    globals()[name] = value
    return value


def _structure(name: str):
    """A structure-making function of :mod:`.structures`, imported when called."""
    def make():
        from . import structures

        if name == "lifepo4":
            return structures.Structure("lifepo4", structures.lifepo4_cell())
        return getattr(structures, name)()
    return make


#: Structures known to ``tdm simulate``.
STRUCTURES = {name: _structure(name) for name in
              ("lifepo4", "lifepo4_defects", "pbtio3", "pbtio3_domain_wall")}


def simulate(preset: str, structure: str, thickness_nm=(20.0,), defocus_nm=(0.0,),
             seed: int = 0, progress: bool = True, command: str = "", scheduler=None,
             device: str = "cpu", **overrides):
    """Simulate a 4D-STEM scan: a thickness series from one run's exit planes, a
    defocus series as one probe ensemble.

    Parameters
    ----------
    preset : {"ci", "bundled", "paper"}
        Cost preset (see :data:`PRESETS`).
    structure : str
        A key of :data:`STRUCTURES`.
    thickness_nm : sequence of float
        Thicknesses [nm].
    defocus_nm : float or sequence of float
        Probe defocus values [nm].
    seed : int
        Frozen-phonon seed; the same preset and seed give the same array.
    scheduler : str or distributed.Client, optional
        Run abTEM's graph on this ``dask.distributed`` scheduler (address or client),
        strip by strip; the array is the same as a run in this process.
    device : {"cpu", "gpu"}
        abTEM's device (``"gpu"`` needs CuPy).
    **overrides
        Preset fields to change (e.g. ``num_configs=1``, ``scan_step_A=0.4``),
        recorded in the metadata.

    Returns
    -------
    hyperspy.signals.Signal2D
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}; got {preset!r}")
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {list(STRUCTURES)}; got {structure!r}")
    p = replace(PRESETS[preset], **overrides)
    st = STRUCTURES[structure]()
    res = run_multislice(st, p, list(thickness_nm), defocus_nm=defocus_nm, seed=seed,
                         progress=progress, scheduler=scheduler, device=device)
    return to_signal(res, f"{structure} ({preset})", command)


__all__ = ["PRESETS", "Preset", "STRUCTURES", "Structure", "columns_of", "lifepo4",
           "lifepo4_cell", "lifepo4_defects", "pbtio3", "pbtio3_cell", "pbtio3_domain_wall",
           "run_multislice", "run_raw", "select", "simulate", "to_signal"]
