"""Column statistics and template projections of D in one streaming pass.

Every block contributes, for the scan positions selected by a region, sums about a
fixed per-pixel shift (the first diffraction pattern, close to the mean): the count n,
``S1 = sum (D - K)``, ``S2 = sum (D - K)^2`` and, for each template, ``P = sum t (D - K)``.
Sums about a common shift merge by addition, in any order and any chunking, and the
shift keeps the float64 variance ``S2 - S1^2 / n`` free of cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blocks import computed, reduce_scan
from .kernels import shifted_sums


@dataclass
class Sums:
    """Partial sums of a set of scan positions about a shift ``K``.

    Attributes
    ----------
    n : int
        Scan positions.
    s1, s2 : ndarray
        ``(q,)`` sums of ``D - K`` and ``(D - K)^2``.
    proj : ndarray
        ``(k, q)`` sums of ``t (D - K)``.
    tsum : ndarray
        ``(k,)`` sums of ``t``.
    """

    n: int
    s1: np.ndarray
    s2: np.ndarray
    proj: np.ndarray
    tsum: np.ndarray

    def finish(self, shift: np.ndarray):
        """Mean, centred sum of squares and projections about the mean."""
        with np.errstate(invalid="ignore"):  # NaN/inf in the data is reported by the caller
            d = self.s1 / self.n
            mean = shift + d
            m2 = self.s2 - self.s1 * d
            proj = self.proj - np.outer(self.tsum, d)
        return mean, m2, proj


def first_pattern(data) -> np.ndarray:
    """The shift: the first diffraction pattern as float64 (NaN/inf replaced by 0),
    corrected when ``data`` is a :class:`~.corrections.CorrectedData`."""
    p = data.block(slice(0, 1), slice(0, 1))[0, 0] if hasattr(data, "block") \
        else computed(data[0, 0])
    p = np.asarray(p.get() if hasattr(p, "get") else p, dtype=np.float64)  # cupy: to host
    return np.nan_to_num(p.reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)


def block_sums(block, weights, templates, shift) -> Sums:
    """Sums of one block of whole patterns.

    Parameters
    ----------
    block : ndarray
        ``(by, bx, det_y, det_x)`` data of any real dtype.
    weights : ndarray
        ``(by, bx)`` boolean region window.
    templates : ndarray
        ``(k, by, bx)`` float64 template window.
    shift : ndarray
        ``(q,)`` float64 shift.
    """
    by, bx, dy, dx = block.shape
    x = block.reshape(by * bx, dy * dx)
    rows = np.flatnonzero(np.asarray(weights, bool).reshape(-1))
    t = np.asarray(templates, np.float64).reshape(templates.shape[0], by * bx)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf reported by the caller
        s1, s2, proj = shifted_sums(x, shift, rows, t)
    return Sums(len(rows), s1, s2, proj, t[:, rows].sum(axis=1))


def merge_sums(a: Sums, b: Sums) -> Sums:
    """Combine the sums of two disjoint sets of positions (associative, commutative)."""
    return Sums(a.n + b.n, a.s1 + b.s1, a.s2 + b.s2, a.proj + b.proj, a.tsum + b.tsum)


def _pattern_sum(block):
    return np.asarray(block).sum(axis=(0, 1), dtype=np.float64)


def mean_pattern(data, progress: bool = True) -> np.ndarray:
    """Position-averaged pattern ``(det_y, det_x)`` float64 in one pass (corrected
    block by block for :class:`~.corrections.CorrectedData`)."""
    total = reduce_scan(data, _pattern_sum, np.add, progress=progress, desc="mean pattern")
    return total / (data.shape[0] * data.shape[1])


def _sum_and_picks(block, marks):
    block = np.asarray(block)
    ys, xs = np.nonzero(marks >= 0)
    return (_pattern_sum(block),
            {int(marks[y, x]): np.asarray(block[y, x], np.float64) for y, x in zip(ys, xs)})


def _merge_sum_and_picks(a, b):
    return a[0] + b[0], {**a[1], **b[1]}


def mean_and_grid_patterns(data, iy: np.ndarray, ix: np.ndarray,
                           progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Position-averaged pattern and the patterns at the scan grid ``iy x ix``, both
    read in the same single pass (no chunk is read again for the grid).

    Returns
    -------
    mean : ndarray
        ``(det_y, det_x)`` float64.
    patterns : ndarray
        ``(len(iy), len(ix), det_y, det_x)`` float64, corrected like the mean.
    """
    marks = np.full(data.shape[:2], -1, np.int64)
    marks[np.ix_(iy, ix)] = np.arange(len(iy) * len(ix)).reshape(len(iy), len(ix))
    total, picks = reduce_scan(data, _sum_and_picks, _merge_sum_and_picks, side=(marks,),
                               progress=progress, desc="mean pattern")
    patterns = np.zeros((len(iy) * len(ix),) + tuple(data.shape[2:]))
    for k, pattern in picks.items():
        patterns[k] = pattern
    return (total / (data.shape[0] * data.shape[1]),
            patterns.reshape((len(iy), len(ix)) + tuple(data.shape[2:])))
