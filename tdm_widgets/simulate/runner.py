"""4D-STEM multislice simulations with abTEM, returned as calibrated arrays.

A thickness series comes from the exit planes of one multislice run; the diffraction
patterns are integrated onto a square detector of uniform angular pixels, as a
pixelated camera would record them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .columns import columns_in_scan, projected_columns

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
#: 0.073 A sampling, 20 phonon configurations, ~0.3 A scan step, 64.2 mrad).
PRESETS = {
    "ci": Preset("ci", 20.0, 0.16, 1, 1, 1.0, 40.0, 4.0),
    "bundled": Preset("bundled", 30.0, 0.108, 1, 4, 0.3, 64.0, 2.0),
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


def run_multislice(structure, preset: Preset, thickness_nm, defocus_nm=(0.0,),
                   seed: int = 0, sigmas_A=None, progress: bool = True) -> SimulationResult:
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
    progress : bool
        Show abTEM's progress bar.

    Returns
    -------
    SimulationResult
    """
    import abtem

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
    n_def = len(np.atleast_1d(defocus_nm))
    est = n_def * preset.estimate_s((cx, cy), int(n_slices.max()), (ncx, ncy),
                                    structure.margin_cells)
    note = " (needs a GPU, abTEM's cupy device, or many hours)" if preset.name == "paper" else ""
    print(f"[tdm simulate] {structure.name}, preset {preset.name!r}: {n_slices.max()} slices, "
          f"{preset.num_configs} phonon configs, {scan_px[0] * scan_px[1]} positions, "
          f"grid {gpts}; estimated {est / 60:.1f} min on one CPU core{note}", flush=True)
    nz = int(n_slices.max()) * preset.slice_cells
    origin = ((repeat[0] - ncx) // 2 * cx, (repeat[1] - ncy) // 2 * cy)
    if structure.build is None:
        atoms, truth = cell.repeat((*repeat, nz)), {}
    else:
        atoms, truth = structure.build(repeat, nz, origin)
    if sigmas_A is None:
        sigmas_A = {"Li": 0.10, "Fe": 0.07, "P": 0.07, "O": 0.085, "Ti": 0.07, "Pb": 0.09}
    sig = {s: sigmas_A[s] for s in sorted(set(atoms.get_chemical_symbols()))}
    abtem.config.set({"dask.lazy": False, "diagnostics.progress_bar": bool(progress),
                      "precision": "float32"})
    fp = abtem.FrozenPhonons(atoms, num_configs=preset.num_configs, sigmas=sig, seed=seed)
    pot = abtem.Potential(fp, gpts=gpts, slice_thickness=dz, parametrization="kirkland",
                          projection="infinite",
                          exit_planes=tuple(int(n - 1) for n in n_slices))
    defoci = np.atleast_1d(np.asarray(defocus_nm, float))
    defocus = (abtem.distributions.from_values(defoci * 10) if len(defoci) > 1
               else float(defoci[0]) * 10)
    probe = abtem.Probe(energy=PAPER_OPTICS["energy_eV"],
                        semiangle_cutoff=PAPER_OPTICS["semiangle_mrad"],
                        Cs=PAPER_OPTICS["Cs_A"], defocus=defocus)
    probe.grid.match(pot)
    det = abtem.PixelatedDetector(max_angle=preset.max_angle_mrad + 3 * preset.mrad_per_px)
    step_y = ncy * cy / scan_px[1]
    rows = max(1, MAX_POSITIONS_PER_RUN // scan_px[0])
    t0 = time.perf_counter()
    strips = []
    for y0 in range(0, scan_px[1], rows):  # strips of scan rows bound the memory
        y1 = min(y0 + rows, scan_px[1])
        scan = abtem.GridScan(start=(origin[0], origin[1] + y0 * step_y),
                              end=(origin[0] + ncx * cx, origin[1] + y1 * step_y),
                              gpts=(scan_px[0], y1 - y0), endpoint=False)
        meas = probe.scan(pot, scan=scan, detectors=det)
        strip = np.asarray(meas.array, dtype=np.float32)
        # abTEM gives (thickness?, defocus?, x, y, kx, ky); the toolkit's order is
        # (defocus, thickness, y, x, ky, kx)
        strip = strip.reshape((len(n_slices), len(defoci)) + strip.shape[-4:])
        strips.append(np.transpose(strip, (1, 0, 3, 2, 5, 4)))
    arr = np.concatenate(strips, axis=2)
    del strips
    elapsed = time.perf_counter() - t0
    kx, ky = (np.asarray(c) for c in meas.angular_coordinates)
    n_det = 2 * int(np.ceil(preset.max_angle_mrad / preset.mrad_per_px))
    ry = detector_rebin_matrix(ky, n_det, preset.mrad_per_px)
    rx = detector_rebin_matrix(kx, n_det, preset.mrad_per_px)
    data = np.einsum("ij,dtyxjk,lk->dtyxil", ry, arr, rx, optimize=True).astype(np.float32)
    pacbed = arr.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
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
        "simulated_mrad_per_px": [float(kx[1] - kx[0]), float(ky[1] - ky[0])],
        "wall_seconds": round(elapsed, 1), "estimated_seconds": round(float(est), 1),
    }
    return SimulationResult(data=data, pacbed=pacbed, thickness_nm=thick,
                            scan_step_A=step, mrad_per_px=preset.mrad_per_px,
                            pacbed_mrad_per_px=(float(ky[1] - ky[0]), float(kx[1] - kx[0])),
                            columns=cols, parameters=params, truth=truth_px)
