"""abTEM + ASE structures and 4D-STEM series (depends on nothing above it).

Reading simulated data needs neither abTEM nor ase: :func:`select`, :func:`columns_of`
and :func:`to_signal` work in the core install. The structures (ase) and the
simulations (abTEM) are the ``simulate`` extra, ``pip install "tdm-widgets[simulate]"``;
their names are imported from here on first use.
"""

from __future__ import annotations

from dataclasses import replace

from ..core.progress import hyperspy_progressbar
from .output import columns_of, select, tile_cells, to_signal, truth_of
from .runner import PRESETS, Preset, run_multislice, run_raw

#: Names of :mod:`tdm_widgets.simulate.structures` (needs ase) served from this package.
_STRUCTURE_NAMES = ("Structure", "lifepo4", "lifepo4_cell", "lifepo4_defects", "pbtio3",
                    "pbtio3_cell", "pbtio3_domain_wall")


def _structures():
    try:
        from . import structures
    except ImportError as err:
        raise ImportError(f"the simulation structures need ase and abTEM ({err}): "
                          'pip install "tdm-widgets[simulate]"') from err
    return structures


def structures_table() -> dict:
    """Structures known to ``tdm simulate``: name to a function returning a
    :class:`~tdm_widgets.simulate.structures.Structure` (needs the ``simulate`` extra)."""
    st = _structures()
    return {
        "lifepo4": lambda: st.Structure("lifepo4", st.lifepo4_cell()),
        "lifepo4_defects": st.lifepo4_defects,
        "pbtio3": st.pbtio3,
        "pbtio3_domain_wall": st.pbtio3_domain_wall,
    }


def __getattr__(name):  # PEP 562: ase is imported only when a structure is asked for
    if name == "STRUCTURES":
        return structures_table()
    if name in _STRUCTURE_NAMES:
        return getattr(_structures(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hyperspy_progressbar
def simulate(preset: str, structure: str, thickness_nm=(20.0,), defocus_nm=(0.0,),
             seed: int = 0, show_progressbar: bool | None = None, command: str = "",
             scheduler=None, device: str = "cpu", **overrides):
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
    table = structures_table()
    if structure not in table:
        raise ValueError(f"structure must be one of {list(table)}; got {structure!r}")
    p = replace(PRESETS[preset], **overrides)
    st = table[structure]()
    res = run_multislice(st, p, list(thickness_nm), defocus_nm=defocus_nm, seed=seed,
                         show_progressbar=show_progressbar, scheduler=scheduler, device=device)
    return to_signal(res, f"{structure} ({preset})", command)


__all__ = ["PRESETS", "Preset", "STRUCTURES", "Structure", "columns_of", "lifepo4",
           "lifepo4_cell", "lifepo4_defects", "pbtio3", "pbtio3_cell", "pbtio3_domain_wall",
           "run_multislice", "run_raw", "select", "simulate", "tile_cells", "to_signal",
           "truth_of"]
