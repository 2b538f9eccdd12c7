"""An experiment-like 4D-STEM dataset made from the bundled LiFePO4 simulation (70 nm),
with every ground truth recorded.

What a real 12-bit Merlin acquisition adds to a simulation, each seeded:

- detector resampled (bilinear) from 64 x 64 px at 2 mrad/px to ``det_px`` x
  ``det_px`` at ``mrad_per_px``, the optical axis at a non-integer pixel ``center_px``;
- descan: every pattern's centre moved by a linear ramp across the scan (about 6 px
  from corner to corner) plus 0.1 px of noise, ``descan_px``;
- scan shear (each row displaced along x by ``shear`` px per row) and row jitter
  (0.15 px along x, 0.05 px along y), sampled from the periodic simulation by bilinear
  interpolation between its scan positions; the scan starts at ``scan_start_px`` of the
  simulated cell (default 2 px before its origin along x), so that no column sits on the
  scan's left or right edge, where shear and jitter would decide at which edge it appears;
- +-5 % per-pixel gain, then Poisson counts at ``dose`` [e/A^2], clipped to 12 bits
  (4095) and stored as uint16;
- dead pixels (0), hot pixels (Poisson at 800-3000 counts), stuck pixels (one constant
  value) and one dead column through the bright-field disc.

``clean`` is the same simulation on the same resampled detector with the same dose and
none of the above (no descan, shear, jitter, gain or bad pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

import tdm_widgets as tw
from tdm_widgets.signals import intensity_scale
from tdm_widgets.simulate import columns_of, select

BUNDLED = Path(tw.__file__).parent / "data" / "lifepo4_thickness.hspy"
FULL_WELL = 4095


@dataclass
class ExperimentLike:
    """The dataset and its ground truth.

    Attributes
    ----------
    signal, clean : hyperspy.signals.Signal2D
        uint16 counts, scan in angstrom, detector uncalibrated [px] (as loaded from a
        camera); ``clean`` without descan, scan distortion, gain or bad pixels.
    columns, clean_columns : dict
        Species to (row, col) [scan px] where the columns appear in each scan (after
        shear and jitter for ``signal``).
    center_px : tuple of float
        Optical axis (disc centre without descan) [detector px].
    radius_px : float
        True disc radius: ``semiangle_mrad / mrad_per_px`` [detector px].
    descan_px : ndarray
        ``(scan_y, scan_x, 2)`` shift of every pattern's centre [detector px].
    dead, hot, stuck : ndarray of bool
        Bad pixels by kind (``dead`` includes the dead column).
    dead_column : int
        The dead detector column.
    dose : float
        [e / angstrom^2].
    """

    signal: object
    clean: object
    columns: dict
    clean_columns: dict
    center_px: tuple
    radius_px: float
    mrad_per_px: float
    semiangle_mrad: float
    descan_px: np.ndarray
    dead: np.ndarray
    hot: np.ndarray
    stuck: np.ndarray
    dead_column: int
    dose: float

    @property
    def bad(self) -> np.ndarray:
        """Every bad pixel."""
        return self.dead | self.hot | self.stuck


def _resample(pattern, n, mrad_per_px, center, sim_scale, sim_offset, shift):
    """A simulated pattern on the new detector, its axis at ``center + shift``."""
    yy, xx = np.indices((n, n), dtype=np.float64)
    ky = (yy - center[0] - shift[0]) * mrad_per_px
    kx = (xx - center[1] - shift[1]) * mrad_per_px
    out = ndimage.map_coordinates(pattern, [(ky - sim_offset) / sim_scale,
                                            (kx - sim_offset) / sim_scale],
                                  order=1, mode="constant", cval=0.0)
    return out * (mrad_per_px / sim_scale) ** 2  # intensity per (smaller) pixel


def _sample_scan(sim, y, x):
    """Bilinear interpolation of a periodic scan of patterns at fractional (y, x)."""
    sy, sx = sim.shape[:2]
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    wy, wx = y - y0, x - x0

    def p(i, j):
        return sim[i % sy, j % sx]

    return ((1 - wy) * ((1 - wx) * p(y0, x0) + wx * p(y0, x0 + 1))
            + wy * ((1 - wx) * p(y0 + 1, x0) + wx * p(y0 + 1, x0 + 1)))


def _sheared_columns(columns, shape, shear, jitter_y, jitter_x, start=(0.0, 0.0)):
    """Where each column (periodic over the simulated scan) appears in the scan."""
    sy, sx = shape
    out = {}
    for name, pos in columns.items():
        pts = []
        for r, c in np.asarray(pos, float):
            for m in range(-2, 3):
                for k in range(-2, 3):
                    rr, cc = r + m * sy - start[0], c + k * sx - start[1]
                    i = rr - jitter_y[int(np.clip(np.rint(rr), 0, sy - 1))]
                    j = cc - shear * i - jitter_x[int(np.clip(np.rint(i), 0, sy - 1))]
                    if -0.5 <= i < sy - 0.5 and -0.5 <= j < sx - 0.5:
                        pts.append((i, j))
        out[name] = np.asarray(pts)
    return out


def make_experiment_like(det_px: int = 128, mrad_per_px: float = 1.0,
                         dose: float = 1e5, shear: float = 0.06, seed: int = 0,
                         center_px=(61.4, 66.7), scan_start_px=(0.0, -2.0),
                         with_descan: bool = True) -> ExperimentLike:
    """Build the dataset (deterministic for a seed); see the module docstring.
    ``with_descan=False`` leaves out only the descan (same gain, scan distortion and bad
    pixels; other Poisson draws)."""
    rng = np.random.default_rng(seed)
    series = tw.load(BUNDLED)
    s70 = select(series, thickness_nm=70)
    sim = np.asarray(s70.data, np.float64) / intensity_scale(series)
    sy, sx = sim.shape[:2]
    kax = s70.axes_manager.signal_axes[0]
    sim_scale, sim_offset = float(kax.scale), float(kax.offset)
    step = tuple(float(a.scale) for a in s70.axes_manager.navigation_axes[::-1])  # (y, x)
    semi = float(series.metadata.Acquisition_instrument.TEM.convergence_angle)
    electrons = dose * step[0] * step[1]

    u, v = np.meshgrid(np.linspace(-1, 1, sy), np.linspace(-1, 1, sx), indexing="ij")
    descan = np.stack([0.6 * u - 0.8 * v, 0.4 * u + 2.4 * v], axis=-1)
    descan += rng.normal(0.0, 0.1, descan.shape)
    descan *= float(with_descan)
    jitter_y = rng.normal(0.0, 0.05, sy)
    jitter_x = rng.normal(0.0, 0.15, sy)
    gain = rng.uniform(0.95, 1.05, (det_px, det_px))

    exp = np.empty((sy, sx, det_px, det_px), np.uint16)
    clean = np.empty_like(exp)
    for i in range(sy):
        for j in range(sx):
            y = i + jitter_y[i] + scan_start_px[0]
            x = j + shear * i + jitter_x[i] + scan_start_px[1]
            p = _sample_scan(sim, y, x)
            lam = _resample(p, det_px, mrad_per_px, center_px, sim_scale, sim_offset,
                            descan[i, j]) * electrons * gain
            exp[i, j] = np.minimum(rng.poisson(lam), FULL_WELL)
            lam0 = _resample(sim[i, j], det_px, mrad_per_px, center_px, sim_scale,
                             sim_offset, (0.0, 0.0)) * electrons
            clean[i, j] = np.minimum(rng.poisson(lam0), FULL_WELL)

    r_px = semi / mrad_per_px
    dead = np.zeros((det_px, det_px), bool)
    hot = np.zeros_like(dead)
    stuck = np.zeros_like(dead)
    flat = rng.choice(det_px * det_px, 45, replace=False)
    dead.flat[flat[:30]] = True
    hot.flat[flat[30:42]] = True
    stuck.flat[flat[42:]] = True
    # two hot pixels and three dead pixels inside the disc, where they hurt most
    yy, xx = np.indices(dead.shape)
    inside = np.flatnonzero((np.hypot(yy - center_px[0], xx - center_px[1]) < r_px - 3)
                            .ravel() & ~(dead | hot | stuck).ravel())
    extra = rng.choice(inside, 5, replace=False)
    hot.flat[extra[:2]] = True
    dead.flat[extra[2:]] = True
    dead_column = int(round(center_px[1] + 0.4 * r_px))
    dead[:, dead_column] = True
    hot &= ~dead
    stuck &= ~(dead | hot)
    exp[..., dead] = 0
    nh = int(hot.sum())
    exp[..., hot] = np.minimum(rng.poisson(rng.uniform(800, 3000, nh), (sy, sx, nh)),
                               FULL_WELL)
    exp[..., stuck] = rng.integers(200, 4000, int(stuck.sum()))

    def wrap(a, title):
        sig = tw.from_array(a, scan_step_A=step, title=title)
        sig.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
        sig.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", semi)
        return sig

    cols = columns_of(series)
    return ExperimentLike(
        signal=wrap(exp, "experiment-like LiFePO4 70 nm"),
        clean=wrap(clean, "clean LiFePO4 70 nm"),
        columns=_sheared_columns(cols, (sy, sx), shear, jitter_y, jitter_x, scan_start_px),
        clean_columns=cols, center_px=tuple(center_px), radius_px=r_px,
        mrad_per_px=mrad_per_px, semiangle_mrad=semi, descan_px=descan, dead=dead,
        hot=hot, stuck=stuck, dead_column=dead_column, dose=dose)
