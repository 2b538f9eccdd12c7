"""Fused per-block kernels: each data element is read from memory once.

Numpy blocks go through numba-compiled loops (column tiles that stay in cache, float64
accumulators, parallel over tiles or rows); any other array type (e.g. cupy) goes
through the equivalent array expressions of its own module. Both compute the same
thing, and the tests hold them to each other.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba comes with hyperspy
    numba = None

#: Detector pixels per cache tile of the moments kernel.
TILE = 512


if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _moments_numba(x, shift, rows, weights, s1, s2, proj):  # pragma: no cover
        # per cache tile of pixels: each row is read once; the tile's sums and
        # template projections accumulate in fresh local arrays (no aliasing, so the
        # inner loops vectorise) and are added to the outputs at the end
        q = x.shape[1]
        k = weights.shape[0]
        ntile = (q + TILE - 1) // TILE
        for t in numba.prange(ntile):
            j0 = t * TILE
            m = min(j0 + TILE, q) - j0
            sh = shift[j0:j0 + m].copy()
            a1 = np.zeros(m)
            a2 = np.zeros(m)
            ap = np.zeros((k, m))
            d = np.empty(m)
            for r in range(rows.size):
                xi = x[rows[r], j0:j0 + m]
                for j in range(m):
                    v = np.float64(xi[j]) - sh[j]
                    d[j] = v
                    a1[j] += v
                    a2[j] += v * v
                for kk in range(k):
                    w = weights[kk, r]
                    if w != 0.0:
                        for j in range(m):
                            ap[kk, j] += w * d[j]
            s1[j0:j0 + m] += a1
            s2[j0:j0 + m] += a2
            proj[:, j0:j0 + m] += ap

    @numba.njit(parallel=True, cache=True)
    def _project_numba(x, shift, rows, weights, proj):  # pragma: no cover
        # template projections alone, for rows where some template is non-zero
        q = x.shape[1]
        k = weights.shape[0]
        ntile = (q + TILE - 1) // TILE
        for t in numba.prange(ntile):
            j0 = t * TILE
            j1 = min(j0 + TILE, q)
            for r in range(rows.size):
                i = rows[r]
                for kk in range(k):
                    w = weights[kk, r]
                    if w != 0.0:
                        for j in range(j0, j1):
                            proj[kk, j] += w * (np.float64(x[i, j]) - shift[j])

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _apply_numba(x, w, out):  # pragma: no cover - compiled
        n, q = x.shape
        k = w.shape[0]
        for i in numba.prange(n):
            for kk in range(k):
                acc = 0.0
                for j in range(q):
                    acc += np.float64(x[i, j]) * w[kk, j]
                out[i, kk] = acc


def _xp(a):
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy":
        return np
    import importlib

    return importlib.import_module(mod)


def use_numba(x) -> bool:
    """True when the compiled kernels apply (numpy data, numba present)."""
    return numba is not None and isinstance(x, np.ndarray)


def _numba_ready(x):
    """numba has no float16: such blocks (one at a time) go through float32."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


def shifted_sums(x, shift, rows, templates):
    """Sums about a per-pixel shift for the selected rows of a 2D block.

    Parameters
    ----------
    x : ndarray
        ``(n, q)`` block, any real dtype (not converted as a whole).
    shift : ndarray
        ``(q,)`` float64 shift (close to the mean, for accuracy).
    rows : ndarray
        Indices of the rows to use.
    templates : ndarray
        ``(k, n)`` float64 template values of the block's rows.

    Returns
    -------
    s1, s2 : ndarray
        ``(q,)`` sums of ``x - shift`` and of its square over the rows.
    proj : ndarray
        ``(k, q)`` sums of ``t (x - shift)``; only rows where t is non-zero are read.
    """
    q = x.shape[1]
    k = templates.shape[0]
    if use_numba(x):
        x = _numba_ready(x)
        s1, s2, proj = np.zeros(q), np.zeros(q), np.zeros((k, q))
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        w = np.ascontiguousarray(templates[:, rows], dtype=np.float64)
        _moments_numba(x, shift, rows, w, s1, s2, proj)
        return s1, s2, proj
    xp = _xp(x)
    d = x[xp.asarray(rows)].astype(xp.float64) - xp.asarray(shift)
    t = xp.asarray(templates[:, rows])
    return (xp.asnumpy(v) if hasattr(xp, "asnumpy") else v
            for v in (d.sum(axis=0), (d * d).sum(axis=0), t @ d))


def sparse_projection(x, shift, rows, weights) -> np.ndarray:
    """``sum_r weights[:, r] (x[rows[r]] - shift)``: only the listed rows are read.

    Parameters
    ----------
    x : ndarray
        ``(n, q)`` data (e.g. the whole scan as a 2D view).
    rows : ndarray
        Row indices.
    weights : ndarray
        ``(k, len(rows))``.
    """
    k, q = weights.shape[0], x.shape[1]
    if use_numba(x) and x.dtype != np.float16:
        proj = np.zeros((k, q))
        _project_numba(x, shift, np.ascontiguousarray(rows, dtype=np.int64),
                       np.ascontiguousarray(weights, dtype=np.float64), proj)
        return proj
    xp = _xp(x)
    d = x[xp.asarray(rows)].astype(xp.float64) - xp.asarray(shift)
    out = xp.asarray(weights) @ d
    return xp.asnumpy(out) if hasattr(xp, "asnumpy") else out


def weighted_sums(x, weights) -> np.ndarray:
    """``x @ weights.T`` accumulated in float64: ``(n, q) x (k, q) -> (n, k)``."""
    if use_numba(x):
        x = _numba_ready(x)
        out = np.empty((x.shape[0], weights.shape[0]))
        _apply_numba(x, np.ascontiguousarray(weights, dtype=np.float64), out)
        return out
    xp = _xp(x)
    out = x.astype(xp.float64) @ xp.asarray(weights).T
    return xp.asnumpy(out) if hasattr(xp, "asnumpy") else out
