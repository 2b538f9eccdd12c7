"""Shot noise: noise-free simulated intensities to Poisson counts at a stated dose."""

from __future__ import annotations

import numpy as np

from .signals import intensity_scale, provenance, unwrap

#: Values drawn per call in the in-memory path of :func:`add_poisson_noise` (scan rows in
#: blocks of about this many): bounds the float64/int64 temporaries.
POISSON_BLOCK_VALUES = 2**24


def _expected_counts(block, electrons: float) -> np.ndarray:
    """Expected counts ``max(I, 0) * electrons`` of a block (round-off below zero of a
    simulation clipped); raises for NaN, inf, intensities clearly below zero (more than
    1e-6 of the block's largest magnitude: dark-subtracted or not intensities), or
    counts beyond uint32 (a wrong dose or an unnormalised file)."""
    block = np.asarray(block, np.float64)
    if block.size and np.isfinite(block).all() and \
            block.min() < -1e-6 * np.abs(block).max():
        raise ValueError(f"data has intensities below zero (down to {block.min():.3g}): "
                         "Poisson noise needs non-negative intensities, fractions of the "
                         "beam")
    lam = np.clip(block, 0, None) * electrons
    if not np.isfinite(lam).all():
        raise ValueError("data contains NaN or inf values: Poisson noise needs finite "
                         "intensities")
    if lam.size and lam.max() > 2**31:
        raise ValueError(f"expected counts up to {lam.max():.3g} per pixel exceed the "
                         "uint32 range: is dose_e_per_A2 right, and is the file "
                         "normalised to the incident beam?")
    return lam


def add_poisson_noise(s, dose_e_per_A2: float, seed: int = 0):
    """Poisson counts for a dose, from patterns normalised to the incident beam.

    Each pattern's intensities are fractions of the incident beam (divided by
    ``metadata.Simulation.intensity_scale`` where a file stores them scaled), so the
    expected count at a pixel is ``I * dose * step_y * step_x``.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        Noise-free 4D signal (floating point) with the scan calibrated in angstrom.
    dose_e_per_A2 : float
        Electron dose [e / angstrom^2].
    seed : int
        Seed of the random generator (>= 0); the same seed gives the same counts
        for the same array layout: a lazy signal draws one stream per dask chunk,
        so its counts differ from the in-memory signal's and change with the
        chunks (the same statistics, another draw).

    Returns
    -------
    hyperspy.signals.Signal2D
        A new signal of uint32 counts [electrons per pixel] (lazy if ``s`` is lazy);
        ``s`` is not modified.

    Examples
    --------
    >>> sim = tw.from_array(np.full((4, 4, 8, 8), 1e-3), scan_step_A=0.5)
    >>> counts = tw.add_poisson_noise(sim, dose_e_per_A2=1e5, seed=1)
    >>> counts.data.dtype, round(float(counts.data.mean()))   # 1e-3 * 1e5 * 0.5 * 0.5
    (dtype('uint32'), 25)
    """
    data, cal, _ = unwrap(s, corrected=False)  # noise on the raw intensities
    if not (np.isfinite(dose_e_per_A2) and dose_e_per_A2 > 0):
        raise ValueError(f"dose_e_per_A2 must be positive and finite; got {dose_e_per_A2}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"s holds integer data ({data.dtype}), i.e. counts already: "
                         "add_poisson_noise turns noise-free intensities (fractions of the "
                         "beam) into counts")
    if cal.scan_units != "Å":
        raise ValueError("add_poisson_noise needs the scan step in angstrom to turn a dose "
                         f"per area into electrons per position; scan units are "
                         f"{cal.scan_units!r}")
    electrons = float(dose_e_per_A2) * abs(cal.scan_scale[0] * cal.scan_scale[1])
    electrons /= intensity_scale(s)
    if hasattr(data, "dask"):
        import dask.array as da

        # one independent, reproducible stream per chunk
        seeds = np.random.SeedSequence(seed).spawn(data.npartitions)
        def draw(block, block_info=None):
            idx = block_info[0]["chunk-location"]
            nums = block_info[0]["num-chunks"]
            k = int(np.ravel_multi_index(idx, nums))
            rng = np.random.default_rng(seeds[k])
            return rng.poisson(_expected_counts(block, electrons)).astype(np.uint32)

        counts = da.map_blocks(draw, data, dtype=np.uint32)
    else:
        rng = np.random.default_rng(seed)
        data = np.asarray(data)
        counts = np.empty(data.shape, np.uint32)
        # scan rows in blocks of about POISSON_BLOCK_VALUES: the same draws in the same
        # order as one call (the generator runs through the array in C order), without
        # float64 and int64 copies of the whole array
        rows = max(1, POISSON_BLOCK_VALUES // max(1, data[0].size))
        for i in range(0, data.shape[0], rows):
            counts[i:i + rows] = rng.poisson(_expected_counts(data[i:i + rows], electrons))
    out = s._deepcopy_with_new_data(counts)
    out.metadata.set_item("TDM.noise", provenance(
        "add_poisson_noise", s, dose_e_per_A2=float(dose_e_per_A2), seed=int(seed),
        electrons_per_position=electrons))
    return out
