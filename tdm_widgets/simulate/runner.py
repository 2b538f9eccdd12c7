"""4D-STEM multislice simulations with abTEM, returned as calibrated arrays.

A thickness series comes from the exit planes of one multislice run; the diffraction
patterns are integrated onto a square detector of uniform angular pixels, as a
pixelated camera would record them.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.progress import hyperspy_progressbar
from .atom_columns import columns_in_scan, projected_columns

logger = logging.getLogger(__name__)


def _abtem():
    """abTEM, or an ImportError that names the extra to install."""
    try:
        import abtem
    except ImportError as err:
        raise ImportError(f"simulations need abTEM ({err}): "
                          'pip install "tdm-widgets[simulate]"') from err
    return abtem

#: Probe positions per abTEM call: larger scans run in strips of rows (memory bound).
MAX_POSITIONS_PER_RUN = 800

#: Electron wavelength at 200 kV is computed by abTEM; these are the paper's optics.
PAPER_OPTICS = {"energy_eV": 200e3, "semiangle_mrad": 23.5, "Cs_A": 3e4}


@dataclass(frozen=True)
class Preset:
    """Cost-controlling parameters of a simulation.

    Attributes
    ----------
    name : str
        Preset name.
    lateral_A : float
        Minimum lateral extent of the slab [angstrom] that holds the probe.
    sampling_A : float
        Largest potential / wave-function sampling [angstrom]; the grid is the next
        size that is a product of 2, 3 and 5.
    slice_cells : int
        Slice thickness in unit cells along the beam.
    num_configs : int
        Frozen-phonon configurations.
    scan_step_A : float
        Target probe step [angstrom]; whole unit cells are scanned, exactly periodic.
    max_angle_mrad : float
        Detector outer angle [mrad].
    mrad_per_px : float
        Detector pixel size after integration [mrad].
    """

    name: str
    lateral_A: float
    sampling_A: float
    slice_cells: int
    num_configs: int
    scan_step_A: float
    max_angle_mrad: float
    mrad_per_px: float

    def repeat_xy(self, cell_xy, scan_cells=(1, 1), margin_cells: int = 1
                  ) -> tuple[int, int]:
        """Unit cells tiled along x and y: the lateral extent, and at least
        ``margin_cells`` of margin around the scanned cells."""
        return tuple(max(int(np.ceil(self.lateral_A / c - 1e-9)), n + 2 * margin_cells)
                     for c, n in zip(cell_xy, scan_cells))

    def scan_px(self, cell_xy) -> tuple[int, int]:
        """Probe positions (x, y) per unit cell."""
        return tuple(max(2, int(round(c / self.scan_step_A))) for c in cell_xy)

    def gpts(self, extent_xy) -> tuple[int, int]:
        """FFT-friendly grid for a slab of ``extent_xy`` [angstrom]."""
        return tuple(fft_friendly(int(np.ceil(e / self.sampling_A))) for e in extent_xy)

    def estimate_s(self, cell_xy, num_slices: int, scan_cells=(1, 1), margin_cells=1
                   ) -> float:
        """Estimated wall time [s] on this project's 2-core CPU machine.

        Calibrated from a measured 2.1 s per slice for 735 probe positions on a
        288 x 288 grid, about 2.9 ms per slice and position; scaled by positions,
        slices, configurations and grid points (N log N).
        """
        rep = self.repeat_xy(cell_xy, scan_cells, margin_cells)
        gx, gy = self.gpts([r * c for r, c in zip(rep, cell_xy)])
        npos = np.prod([p * n for p, n in zip(self.scan_px(cell_xy), scan_cells)])
        scale = gx * gy / 288**2 * np.log2(gx * gy) / np.log2(288**2)
        return 2.9e-3 * scale * num_slices * npos * self.num_configs


#: The presets of the simulation issue; ``paper`` is Table 1 of the paper (80 x 80 A,
#: 0.073 A sampling, 20 phonon configurations, ~0.3 A scan step, 64.2 mrad). ``bundled``
#: has 8 configurations and 1 mrad pixels since issue 14 (the 2 mrad files in the
#: manifest record the 4-configuration, 2 mrad preset they were made with).
PRESETS = {
    "ci": Preset("ci", 20.0, 0.16, 1, 1, 1.0, 40.0, 4.0),
    "bundled": Preset("bundled", 30.0, 0.108, 1, 8, 0.3, 64.0, 1.0),
    "paper": Preset("paper", 80.0, 0.073, 1, 20, 0.3, 64.2, 1.0),
}


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0 and n > 1:
            n //= p
    return n == 1


def fft_friendly(n: int) -> int:
    """Smallest integer >= n whose only prime factors are 2, 3 and 5."""
    n = max(1, int(n))
    while not _smooth(n):
        n += 1
    return n


def detector_rebin_matrix(coords_mrad: np.ndarray, n_out: int, mrad_per_px: float
                          ) -> np.ndarray:
    """Matrix that integrates fine pixels onto coarse detector pixels along one axis.

    Each fine pixel (centre ``coords_mrad``, uniform width) is split between the
    coarse pixels it overlaps in proportion to the overlap, so intensity is
    conserved. Coarse pixel ``i`` is centred at ``(i - n_out // 2) * mrad_per_px``.

    Returns
    -------
    ndarray
        ``(n_out, len(coords_mrad))`` weights.
    """
    step = coords_mrad[1] - coords_mrad[0]
    lo_f, hi_f = coords_mrad - step / 2, coords_mrad + step / 2
    centres = (np.arange(n_out) - n_out // 2) * mrad_per_px
    lo_c, hi_c = centres - mrad_per_px / 2, centres + mrad_per_px / 2
    overlap = (np.minimum(hi_c[:, None], hi_f[None]) - np.maximum(lo_c[:, None], lo_f[None]))
    return np.clip(overlap, 0, None) / step


@dataclass
class SimulationResult:
    """Output of :func:`run_multislice`.

    Attributes
    ----------
    data : ndarray
        ``(n_defocus, n_thickness, scan_y, scan_x, det_y, det_x)`` float32
        intensities, each pattern a fraction of the incident beam per detector pixel.
    pacbed : ndarray
        ``(n_defocus, n_thickness, ky, kx)`` position-averaged patterns at the full
        simulated angular sampling.
    thickness_nm, scan_step_A, mrad_per_px, pacbed_mrad_per_px, columns, parameters
        Calibrations; ``columns`` maps species to (row, col) scan px of the perfect
        crystal's columns.
    truth : dict
        Structure ground truth (defects, per-column polarisation) with positions
        converted to (row, col) scan px under keys ending in ``_px``.
    """

    data: np.ndarray
    pacbed: np.ndarray
    thickness_nm: np.ndarray
    scan_step_A: tuple[float, float]
    mrad_per_px: float
    pacbed_mrad_per_px: tuple[float, float]
    columns: dict
    parameters: dict
    truth: dict = field(default_factory=dict)


@dataclass
class ScanPlan:
    """Everything abTEM needs for one scan, built once by :func:`plan_scan`.

    Attributes
    ----------
    probe, potential
        abTEM objects (the potential holds the frozen phonons and exit planes).
    origin_A : tuple of float
        Slab coordinates [angstrom] of the first scanned cell's corner.
    scan_px : tuple of int
        Probe positions along (x, y).
    scan_step_A : tuple of float
        Probe step along (x, y) [angstrom].
    thickness_nm : ndarray
        Exit-plane thicknesses [nm].
    defocus_nm : ndarray
        Probe defocus values [nm].
    columns, truth : dict
        Column positions and ground truth [scan px].
    parameters : dict
        Every parameter, for the metadata.
    estimate_s : float
        Estimated wall time [s] on one CPU core.
    """

    probe: object
    potential: object
    origin_A: tuple
    scan_px: tuple
    scan_step_A: tuple
    thickness_nm: np.ndarray
    defocus_nm: np.ndarray
    columns: dict
    truth: dict
    parameters: dict
    estimate_s: float


def check_device(device: str) -> str:
    """Validate an abTEM device name; ``"gpu"`` needs CuPy.

    Parameters
    ----------
    device : {"cpu", "gpu"}
        Where abTEM computes.

    Returns
    -------
    str
        ``device``.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu'; got {device!r}")
    if device == "gpu":
        try:
            import cupy  # noqa: F401
        except ImportError as err:
            raise ValueError(
                "device='gpu' needs CuPy, which is not importable here "
                f"({err}); install the CuPy wheel matching the CUDA version "
                "(e.g. pip install cupy-cuda12x) or use device='cpu'") from None
    return device


def plan_scan(structure, preset: Preset, thickness_nm, defocus_nm=(0.0,), seed: int = 0,
              sigmas_A=None, device: str = "cpu") -> ScanPlan:
    """Build the slab, frozen phonons, potential (with exit planes) and probe.

    Parameters are those of :func:`run_multislice`.

    Returns
    -------
    ScanPlan
    """
    abtem = _abtem()

    from .structures import Structure

    if not isinstance(structure, Structure):
        structure = Structure("crystal", structure)
    cell = structure.cell
    cx, cy, cz = cell.cell.lengths()
    dz = cz * preset.slice_cells
    n_slices = np.array([max(1, int(round(t * 10 / dz))) for t in thickness_nm])
    thick = n_slices * dz / 10
    ncx, ncy = structure.scan_cells
    px_cell = preset.scan_px((cx, cy))
    scan_px = (px_cell[0] * ncx, px_cell[1] * ncy)
    repeat = preset.repeat_xy((cx, cy), (ncx, ncy), structure.margin_cells)
    gpts = preset.gpts((repeat[0] * cx, repeat[1] * cy))
    defoci = np.atleast_1d(np.asarray(defocus_nm, float))
    est = len(defoci) * preset.estimate_s((cx, cy), int(n_slices.max()), (ncx, ncy),
                                          structure.margin_cells)
    nz = int(n_slices.max()) * preset.slice_cells
    origin = ((repeat[0] - ncx) // 2 * cx, (repeat[1] - ncy) // 2 * cy)
    if structure.build is None:
        atoms, truth = cell.repeat((*repeat, nz)), {}
    else:
        atoms, truth = structure.build(repeat, nz, origin)
    if sigmas_A is None:
        sigmas_A = {"Li": 0.10, "Fe": 0.07, "P": 0.07, "O": 0.085, "Ti": 0.07, "Pb": 0.09}
    sig = {s: sigmas_A[s] for s in sorted(set(atoms.get_chemical_symbols()))}
    fp = abtem.FrozenPhonons(atoms, num_configs=preset.num_configs, sigmas=sig, seed=seed)
    pot = abtem.Potential(fp, gpts=gpts, slice_thickness=dz, parametrization="kirkland",
                          projection="infinite",
                          exit_planes=tuple(int(n - 1) for n in n_slices),
                          device=check_device(device))
    defocus = (abtem.distributions.from_values(defoci * 10) if len(defoci) > 1
               else float(defoci[0]) * 10)
    probe = abtem.Probe(energy=PAPER_OPTICS["energy_eV"],
                        semiangle_cutoff=PAPER_OPTICS["semiangle_mrad"],
                        Cs=PAPER_OPTICS["Cs_A"], defocus=defocus, device=device)
    probe.grid.match(pot)
    step = (ncx * cx / scan_px[0], ncy * cy / scan_px[1])
    shape = (scan_px[1], scan_px[0])
    cols = columns_in_scan(projected_columns(cell, structure.merge_A), (cx, cy), (0.0, 0.0),
                           step, shape)
    truth_px = {}
    for key, val in truth.items():
        if key.endswith("_A"):
            xy = np.asarray(val, float) - origin
            truth_px[key[:-2] + "_px"] = np.stack([xy[:, 1] / step[1], xy[:, 0] / step[0]], 1)
        else:
            truth_px[key] = np.asarray(val)
    params = {
        "structure": structure.name, "preset": asdict(preset), "repeat_xy": list(repeat),
        "scan_cells": [ncx, ncy], "gpts": list(gpts), "thickness_nm": thick.tolist(),
        "requested_thickness_nm": list(map(float, thickness_nm)),
        "defocus_nm": defoci.tolist(), "seed": int(seed),
        "sigmas_A": {k: float(v) for k, v in sig.items()},
        "slice_thickness_A": float(dz), "potential_sampling_A": list(map(float, pot.sampling)),
        "slab_extent_A": [float(v) for v in atoms.cell.lengths()],
        "parametrization": "kirkland", "projection": "infinite",
        **PAPER_OPTICS, "abtem_version": abtem.__version__,
        "simulated_mrad_per_px": [float(v) for v in probe.angular_sampling],
        "estimated_seconds": round(float(est), 1), "device": device,
    }
    return ScanPlan(probe, pot, origin, scan_px, step, thick, defoci, cols, truth_px,
                    params, float(est))


def scan_strips(plan: ScanPlan, detector, max_bytes: float = 1.5 * 2**30, client=None):
    """Run the scan in strips of rows (the memory bound) and yield each strip.

    Parameters
    ----------
    plan : ScanPlan
        From :func:`plan_scan`.
    detector : abtem detector
        A ``PixelatedDetector``.
    max_bytes : float
        Largest float32 result [bytes] of one strip times the number of phonon
        configurations (abTEM holds every configuration's result before averaging;
        measured), and at most :data:`MAX_POSITIONS_PER_RUN` positions.
    client : distributed.Client, optional
        Compute each strip's lazy abTEM graph (probes x phonon configurations, with
        abTEM's own reduction over configurations) on this cluster; in this process,
        eagerly, if None.

    Yields
    ------
    y0, y1 : int
        Scan rows of the strip.
    strip : ndarray
        ``(n_defocus, n_thickness, y1 - y0, scan_x, ky, kx)`` float32.
    kxy : tuple of ndarray
        Angular coordinates (kx, ky) [mrad] of the detector pixels.
    """
    abtem = _abtem()

    n_t, n_d = len(plan.thickness_nm), len(plan.defocus_nm)
    nx, ny = plan.scan_px
    cut = detector.max_angle
    if isinstance(cut, str):
        det_px = np.prod(plan.probe.antialias_cutoff_gpts)
    else:
        det_px = np.prod([2 * cut / s + 1 for s in plan.probe.angular_sampling])
    per_row = n_t * n_d * nx * det_px * 4 * len(plan.potential.frozen_phonons)
    rows = int(max(1, min(MAX_POSITIONS_PER_RUN // nx, max_bytes // per_row)))
    step_y = plan.scan_step_A[1]
    ox, oy = plan.origin_A
    for y0 in range(0, ny, rows):
        y1 = min(y0 + rows, ny)
        scan = abtem.GridScan(start=(ox, oy + y0 * step_y),
                              end=(ox + nx * plan.scan_step_A[0], oy + y1 * step_y),
                              gpts=(nx, y1 - y0), endpoint=False)
        with abtem.config.set({"dask.lazy": client is not None}):
            meas = plan.probe.scan(plan.potential, scan=scan, detectors=detector)
        if client is not None:
            meas = meas.compute(scheduler=client)
        strip = np.asarray(meas.array, dtype=np.float32)
        # abTEM gives (thickness?, defocus?, x, y, kx, ky); the toolkit's order is
        # (defocus, thickness, y, x, ky, kx)
        strip = strip.reshape((n_t, n_d) + strip.shape[-4:])
        yield y0, y1, np.transpose(strip, (1, 0, 3, 2, 5, 4)), tuple(
            np.asarray(c) for c in meas.angular_coordinates)


def cluster_threads(client) -> int:
    """Worker threads of a ``distributed.Client`` (workers x threads per worker)."""
    return int(sum(client.nthreads().values()))


def estimate_text(plan: ScanPlan, preset: Preset, threads: int = 1,
                  device: str = "cpu") -> str:
    """One line: the run's size and its estimated wall time.

    The one-core estimate is :meth:`Preset.estimate_s`; on a cluster it is divided by
    the worker threads (ideal scaling, a lower bound: abTEM's chunks are probes x
    phonon configurations, so a strip has enough tasks to keep them busy). A GPU run
    has no measurement on this project's machines, so none is claimed.
    """
    p = plan.parameters
    head = (f"{p['structure']}, preset {preset.name!r}: "
            f"{round(max(p['thickness_nm']) * 10 / p['slice_thickness_A'])} slices, "
            f"{preset.num_configs} phonon configs, {plan.scan_px[0] * plan.scan_px[1]} "
            f"positions, grid {tuple(p['gpts'])}; estimated {plan.estimate_s / 60:.1f} min "
            "on one CPU core")
    if threads > 1:
        head += (f", {plan.estimate_s / threads / 60:.1f} min on the cluster's {threads} "
                 "worker threads if it scales ideally")
    if device == "gpu":
        head += "; running on the GPU (no GPU timing was measured for this estimate)"
    return head


def _announce(plan: ScanPlan, preset: Preset, client=None) -> None:
    threads = 1 if client is None else cluster_threads(client)
    logger.info(estimate_text(plan, preset, threads, plan.parameters["device"]))


@contextmanager
def connect(scheduler):
    """A ``distributed.Client`` for ``scheduler`` (an address such as
    ``tcp://host:8786``, or a ``Client``, used as is), or None for None; a client
    made here is closed on exit."""
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    from distributed import Client

    client = Client(scheduler)
    try:
        yield client
    finally:
        client.close()


@hyperspy_progressbar
def run_multislice(structure, preset: Preset, thickness_nm, defocus_nm=(0.0,),
                   seed: int = 0, sigmas_A=None, show_progressbar: bool | None = None,
                   scheduler=None, device: str = "cpu") -> SimulationResult:
    """Run one multislice 4D-STEM scan with exit planes.

    Parameters
    ----------
    structure : Structure or ase.Atoms
        What to simulate (an ``Atoms`` unit cell is a perfect crystal).
    preset : Preset
        Cost parameters.
    thickness_nm : sequence of float
        Requested thicknesses [nm]; each is rounded to whole slices, and all come
        from the exit planes of one run.
    defocus_nm : float or sequence of float
        Probe defocus [nm] (abTEM convention: positive is underfocus). Several
        values run as one probe ensemble (measured faster here than a loop, which
        rebuilds the potential for every value).
    seed : int
        Frozen-phonon seed; the same preset and seed give the same array.
    sigmas_A : dict, optional
        Thermal displacement standard deviation per species [angstrom].
    show_progressbar : bool, optional
        Show abTEM's progress bar.
    scheduler : str or distributed.Client, optional
        A ``dask.distributed`` scheduler address (``tcp://host:8786``) or client: each
        strip of rows is handed to it as abTEM's own lazy graph. The result is the
        same as in one process (seeded phonons). None runs in this process.
    device : {"cpu", "gpu"}
        abTEM's device; ``"gpu"`` needs CuPy.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from tdm_widgets.simulate import PRESETS, pbtio3                # doctest: +SKIP
    >>> res = run_multislice(pbtio3(), PRESETS["ci"], [2.0])            # doctest: +SKIP
    """
    abtem = _abtem()

    plan = plan_scan(structure, preset, thickness_nm, defocus_nm, seed, sigmas_A, device)
    abtem.config.set({"diagnostics.progress_bar": bool(show_progressbar), "precision": "float32"})
    det = abtem.PixelatedDetector(max_angle=preset.max_angle_mrad + 3 * preset.mrad_per_px)
    t0 = time.perf_counter()
    strips = []
    with connect(scheduler) as client:
        _announce(plan, preset, client)
        for _, _, strip, k_axes in scan_strips(plan, det, client=client):
            strips.append(strip)
            kx, ky = k_axes  # detector axes [mrad], the same for every strip
    arr = np.concatenate(strips, axis=2)
    del strips
    elapsed = time.perf_counter() - t0
    n_det = 2 * int(np.ceil(preset.max_angle_mrad / preset.mrad_per_px))
    ry = detector_rebin_matrix(ky, n_det, preset.mrad_per_px)
    rx = detector_rebin_matrix(kx, n_det, preset.mrad_per_px)
    data = np.einsum("ij,dtyxjk,lk->dtyxil", ry, arr, rx, optimize=True).astype(np.float32)
    pacbed = arr.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
    params = dict(plan.parameters, wall_seconds=round(elapsed, 1),
                  simulated_mrad_per_px=[float(kx[1] - kx[0]), float(ky[1] - ky[0])])
    return SimulationResult(data=data, pacbed=pacbed, thickness_nm=plan.thickness_nm,
                            scan_step_A=plan.scan_step_A, mrad_per_px=preset.mrad_per_px,
                            pacbed_mrad_per_px=(float(ky[1] - ky[0]), float(kx[1] - kx[0])),
                            columns=plan.columns, parameters=params, truth=plan.truth)


@hyperspy_progressbar
def run_raw(structure, preset: Preset, thickness_nm, out_dir, defocus_nm=(0.0,),
            seed: int = 0, sigmas_A=None, show_progressbar: bool | None = None,
            command: str = "", scheduler=None, device: str = "cpu") -> Path:
    """Run a scan and write the raw result to a folder, strip by strip.

    The detector is abTEM's native one (its pixel is the reciprocal of the slab
    extent, e.g. 0.81 x 0.83 [mrad] for a 30 angstrom slab at 200 kV) out to the
    antialiasing limit, every exit plane, float32; nothing is integrated.

    Parameters
    ----------
    structure, preset, thickness_nm, defocus_nm, seed, sigmas_A, show_progressbar, scheduler, device
        As :func:`run_multislice`.
    out_dir : str or Path
        Folder to create; gets ``raw.npy`` (``(n_defocus, n_thickness, scan_y, scan_x,
        ky, kx)`` float32, written as a memory map so that only one strip is held),
        ``meta.json`` (parameters, calibrations, columns, truth, wall time) and
        ``done`` when complete.
    command : str
        The generating command, recorded in ``meta.json``.

    Returns
    -------
    Path
        ``out_dir``.

    Examples
    --------
    >>> from tdm_widgets.simulate import PRESETS, pbtio3                # doctest: +SKIP
    >>> run_raw(pbtio3(), PRESETS["ci"], [2.0], "raw_ci")                # doctest: +SKIP
    """
    abtem = _abtem()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_scan(structure, preset, thickness_nm, defocus_nm, seed, sigmas_A, device)
    abtem.config.set({"diagnostics.progress_bar": bool(show_progressbar), "precision": "float32"})
    det = abtem.PixelatedDetector(max_angle="cutoff")
    t0 = time.perf_counter()
    raw = None
    with connect(scheduler) as client:
        _announce(plan, preset, client)
        for y0, y1, strip, k_axes in scan_strips(plan, det, client=client):
            kx, ky = k_axes  # detector axes [mrad], the same for every strip
            if raw is None:
                shape = strip.shape[:2] + (plan.scan_px[1], plan.scan_px[0]) + strip.shape[-2:]
                raw = np.lib.format.open_memmap(out / "raw.npy", mode="w+",
                                                dtype=np.float32, shape=shape)
            raw[:, :, y0:y1] = strip
            raw.flush()
            logger.info("rows %d-%d of %d after %.0f s", y0, y1, plan.scan_px[1],
                        time.perf_counter() - t0)
    elapsed = time.perf_counter() - t0
    meta = {"parameters": dict(plan.parameters, wall_seconds=round(elapsed, 1)),
            "command": command, "shape": list(raw.shape), "dtype": "float32",
            "axes": ["defocus", "thickness", "scan_y", "scan_x", "ky", "kx"],
            "thickness_nm": plan.thickness_nm.tolist(),
            "defocus_nm": plan.defocus_nm.tolist(),
            "scan_step_A": [plan.scan_step_A[1], plan.scan_step_A[0]],
            "ky_mrad": ky.tolist(), "kx_mrad": kx.tolist(),
            "columns": {k: np.asarray(v, float).tolist() for k, v in plan.columns.items()},
            "truth": {k: np.asarray(v).tolist() for k, v in plan.truth.items()},
            "intensity_units": "fraction of the incident beam per detector pixel"}
    del raw
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    (out / "done").write_text(f"{elapsed:.1f}\n")
    return out
