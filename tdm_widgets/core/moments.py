"""Column statistics and template projections of D in one streaming pass.

For the rows (scan positions) selected by a region, the pass accumulates, per detector
pixel j, the weighted count n, the mean, the centred sum of squares M2 and, for each
template t_k, the projection ``P_kj = sum_i t_ki (D_ij - mean_j)``. Blocks are merged
with the pairwise update of Chan, Golub and LeVeque, so nothing is accumulated as a raw
sum of squares and the result does not depend on how the data is chunked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    """Partial statistics of a set of scan positions.

    Attributes
    ----------
    n : int
        Number of scan positions.
    mean : ndarray
        ``(q,)`` mean of each detector pixel over the positions.
    m2 : ndarray
        ``(q,)`` sum of squared deviations from ``mean``.
    proj : ndarray
        ``(k, q)`` template projections about ``mean``.
    tsum : ndarray
        ``(k,)`` sum of each template over the positions.
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray
    proj: np.ndarray
    tsum: np.ndarray


def block_moments(block: np.ndarray, weights: np.ndarray, templates: np.ndarray
                  ) -> Moments:
    """Moments of one block of whole patterns.

    Parameters
    ----------
    block : ndarray
        ``(by, bx, det_y, det_x)`` data of any real dtype.
    weights : ndarray
        ``(by, bx)`` boolean region window.
    templates : ndarray
        ``(k, by, bx)`` float64 template window.

    Returns
    -------
    Moments
    """
    by, bx, dy, dx = block.shape
    q = dy * dx
    k = templates.shape[0]
    sel = np.asarray(weights, bool).reshape(-1)
    x = np.asarray(block).reshape(by * bx, q)
    if not sel.all():
        x = x[sel]
    n = x.shape[0]
    if n == 0:
        z = np.zeros(q)
        return Moments(0, z, z.copy(), np.zeros((k, q)), np.zeros(k))
    x = x.astype(np.float64)  # one block at a time, never the whole data
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf reported by the caller
        mean = x.mean(axis=0)
        x -= mean
        m2 = np.einsum("ij,ij->j", x, x)
    t = templates.reshape(k, by * bx)[:, sel]
    return Moments(n, mean, m2, t @ x, t.sum(axis=1))


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Combine the moments of two disjoint sets of positions (associative)."""
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta**2 * (a.n * b.n / n)
    # re-centre each projection on the merged mean: sum t (x - c) = P + S (mean - c)
    proj = (a.proj + np.outer(a.tsum, a.mean - mean)
            + b.proj + np.outer(b.tsum, b.mean - mean))
    return Moments(n, mean, m2, proj, a.tsum + b.tsum)
