"""Dose split of count data: binomial thinning of every pattern into two independent
halves ``A`` and ``B = D - A``, fitted and imaged crosswise.

The halves are never stored: each block is thinned inside the kernels, so one pass
gives the statistics and projections of both halves and one more pass both images.
Every scan position has its own random generator, seeded by ``(seed, position)``, and
the kernels see whole patterns, so the draw does not depend on chunking or order.
Detector corrections (bad pixels, descan) are applied to each half of a block right
after it is thinned, inside the same two passes (counts are thinned as recorded).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .apply import physical_weights
from .blocks import map_scan, reduce_scan
from .checks import check_data, detector_mask, templates_stack
from .corrections import raw_and_correction
from .correlate import NORMALIZATIONS, centred, masks_from, template_sum_of_squares
from .kernels import weighted_sums
from .moments import block_sums, first_pattern, merge_sums
from .stats import finish_stats


def check_counts(dtype) -> None:
    """Require integer counts (the dose split divides counts, not intensities)."""
    if np.dtype(dtype).kind not in "ui":
        raise ValueError(
            "split='dose' needs integer counts (it splits each count between two "
            f"halves); this data is {np.dtype(dtype)}. For noise-free simulations use "
            "split='cells', or add noise first with tdm_widgets.add_poisson_noise")


def fold_counts(block, index, seed: int, folds: int = 2) -> list[np.ndarray]:
    """Every pattern split into ``folds`` independent parts by multinomial thinning
    with equal probabilities (for Poisson counts each part is Poisson at ``1/folds``
    of the dose).

    Part ``j`` is drawn as ``Binomial(n - parts before it, 1 / (folds - j))`` and the
    last part is what is left, all from the position's own generator, so two folds
    give a binomial thinning with p = 1/2 and its complement.

    Parameters
    ----------
    block : ndarray
        ``(by, bx, det_y, det_x)`` non-negative integer counts, any byte order.
    index : ndarray
        ``(by, bx)`` flat scan index of each position: its generator is
        ``default_rng((seed, index))``.
    seed : int
        Seed of the split.
    folds : int
        Number of parts (>= 2).

    Returns
    -------
    list of ndarray
        ``folds`` arrays in the block's integer type (native byte order) that add
        up to the block.

    Raises
    ------
    ValueError
        For negative counts (e.g. dark-subtracted data), naming the scan position.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(30.0, (2, 2, 4, 4))
    >>> parts = fold_counts(counts, np.arange(4).reshape(2, 2), seed=1, folds=3)
    >>> len(parts), bool((sum(parts) == counts).all())
    (3, True)
    """
    by, bx = block.shape[:2]
    flat = block.reshape((by * bx,) + block.shape[2:])
    out = np.empty((folds,) + flat.shape, dtype=np.dtype(block.dtype).newbyteorder("="))
    for k, idx in enumerate(np.asarray(index).ravel()):
        n = flat[k].astype(np.int64)  # one pattern at a time
        if n.min() < 0:
            raise ValueError(
                f"data has negative counts (minimum {int(n.min())} at flat scan position "
                f"{int(idx)}): split='dose' splits non-negative counts; use "
                "split='cells' for dark-subtracted or signed data")
        rng = np.random.default_rng((seed, int(idx)))
        for j in range(folds - 1):
            out[j, k] = rng.binomial(n, 1.0 / (folds - j))
            n = n - out[j, k]
        out[folds - 1, k] = n
    return list(out.reshape((folds,) + block.shape))


def halves(block, index, seed: int, correction=None, scan_x: int = 1):
    """Both halves ``(A, D - A)`` of one block of raw counts, each corrected (bad
    pixels, descan) when a :class:`~.corrections.Correction` is given; ``index`` is
    the block's window of flat scan indices (it also locates the block in the scan)."""
    a, b = fold_counts(block, index, seed, 2)
    if correction is not None:
        first, last = int(index[0, 0]), int(index[-1, -1])
        ys = slice(first // scan_x, last // scan_x + 1)
        xs = slice(first % scan_x, last % scan_x + 1)
        a, b = correction.apply(a, ys, xs), correction.apply(b, ys, xs)
    return a, b


def _halves_sums(block, index, region, templates, shift, seed, correction, scan_x):
    a, b = halves(block, index, seed, correction, scan_x)
    return (block_sums(a, region, templates, shift), block_sums(b, region, templates, shift))


def _merge_pairs(x, y):
    return merge_sums(x[0], y[0]), merge_sums(x[1], y[1])


def _crossed_images(block, index, w_on_b, w_on_a, seed, correction, scan_x):
    by, bx = block.shape[:2]
    a, b = halves(block, index, seed, correction, scan_x)
    img = weighted_sums(b.reshape(by * bx, -1), w_on_b)
    img += weighted_sums(a.reshape(by * bx, -1), w_on_a)
    if not np.isfinite(img).all():
        raise ValueError("data contains NaN or inf values")
    return 0.5 * img.reshape(by, bx, -1)


def dose_split_images(data, template, normalization: str = "pcc", detector_region=None,
                      normalized: bool = False, seed: int = 0, progress: bool = True):
    """``(B m_A + A m_B) / 2``: the mask of each half applied to the other half.

    Two passes over the data in all: the statistics and template projections of both
    halves in one, both images in the other.

    Parameters
    ----------
    data : ndarray, dask.array.Array or CorrectedData
        ``(scan_y, scan_x, det_y, det_x)`` non-negative integer counts, any byte order;
        for :class:`~.corrections.CorrectedData` the raw counts are thinned and each
        half corrected block by block (bad pixels then get weight 0 in the masks).
    template : array_like
        ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)``.
    normalization : {"pcc", "pcc_over_mean"}
        Eq 5 or Eq 7 masks.
    detector_region : ndarray of bool, optional
        Detector pixels the masks may use.
    normalized : bool
        Eq 6 images (each half's mask over the other half's column statistics).
    seed : int
        Seed of the split.
    progress : bool
        Progress bar for passes longer than a second.

    Returns
    -------
    ndarray or dask.array.Array
        ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)`` float64; lazy for lazy input.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(5.0, (6, 6, 8, 8))
    >>> t = np.zeros((6, 6)); t[2, 3] = 1.0
    >>> dose_split_images(counts, t).shape
    (6, 6)
    """
    check_data(data)
    check_counts(data.dtype)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; "
                         f"got {normalization!r}")
    sy, sx, dy, dx = data.shape
    t, single = templates_stack(template, (sy, sx))
    det = detector_mask(detector_region, (dy, dx))
    region = np.ones((sy, sx), bool)
    t_ss = template_sum_of_squares(t, region, False)
    t = centred(t, region)
    index = np.arange(sy * sx).reshape(sy, sx)
    shift = 0.5 * first_pattern(data)  # either half's expected (corrected) first pattern
    raw, corr = raw_and_correction(data)  # thin the raw counts, then correct each half
    located = dict(seed=seed, correction=corr, scan_x=sx)
    sums = reduce_scan(raw, partial(_halves_sums, shift=shift, **located), _merge_pairs,
                       side=(index, region, t), progress=progress,
                       desc="TDM statistics (both halves)")
    stats, masks = [], []
    for half in sums:
        mean, m2, proj = half.finish(shift)
        stats.append(finish_stats(half.n, mean, m2, (dy, dx), data.dtype))
        masks.append(masks_from(stats[-1], proj, t_ss, normalization, det))
        if corr is not None and corr.bad_pixels is not None:
            masks[-1] = masks[-1] * ~corr.bad_pixels  # interpolated: no signal of their own
    offsets = np.zeros(t.shape[0])
    if normalized:  # A's mask over B's statistics, and the other way round
        (wa, oa), (wb, ob) = (physical_weights(masks[0], stats[1]),
                              physical_weights(masks[1], stats[0]))
        masks, offsets = [wa, wb], 0.5 * (oa + ob)
    k = t.shape[0]
    images = map_scan(raw, partial(_crossed_images, w_on_b=masks[0].reshape(k, -1),
                                   w_on_a=masks[1].reshape(k, -1), **located),
                      k, progress=progress, desc="images (both halves)", side=(index,))
    images = images.transpose(2, 0, 1) + offsets[:, None, None]
    return images[0] if single else images
