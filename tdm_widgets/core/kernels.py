"""Fused per-block kernels: each data element is read from memory once.

Numpy blocks go through numba-compiled loops (column tiles that stay in cache, groups
of four rows and four masks per sweep, float64 accumulators, parallel over tiles or
rows); any other array type (e.g. cupy) goes through the equivalent array expressions
of its own module. Both compute the same thing, and the tests hold them to each other.
"""

from __future__ import annotations

import os

import numpy as np

# The compiled loops run on numba's OpenMP pool, which by default keeps idle threads
# spinning after every parallel loop: on a machine whose cores are shared (other
# processes, a notebook's own threads), each of a pass's parallel loops then waits for
# them, and a pass over a few MB took 20-80 times longer (780 ms instead of 10 ms for
# 2.8 MB of float16 on 2 busy cores). Sleeping idle threads cost microseconds per loop.
# Set before the OpenMP runtime loads (numba's first parallel loop); a user's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numba
except ImportError:  # pragma: no cover - numba comes with hyperspy
    numba = None

#: Detector pixels per cache tile of the moments kernel (its float64 sums for a
#: handful of templates stay in the per-core L2 cache).
TILE = 2048

#: LLVM fast-math flags that let the float64 reductions vectorise (reassociation,
#: fused multiply-add) while keeping IEEE NaN and inf, so bad data still shows up.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


if numba is not None:
    @numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
    def _moments_numba(x, shift, rows, weights, s1, s2, proj):  # pragma: no cover
        # per cache tile of pixels, four rows at a time: each element is read from
        # memory once and the tile's float64 sums (fresh local arrays, so the loops
        # vectorise) are loaded and stored once per four rows. Only templates with a
        # non-zero weight in the four rows (few, for painted points) are added: the
        # first in the same sweep as the sums, the others in pairs that share the
        # shifted values (row k of ap is a scratch row for zero weights).
        # With fewer tiles than threads the rows are split into slabs as well, each
        # slab adding to its own row of the outputs (summed by the caller).
        q = x.shape[1]
        k = weights.shape[0]
        nr = rows.size
        ntile = (q + TILE - 1) // TILE
        nslab = s1.shape[0]
        ngroup = (nr + 3) // 4
        for it in numba.prange(ntile * nslab):
            t = it // nslab
            sl = it % nslab
            j0 = t * TILE
            j1 = min(j0 + TILE, q)
            m = j1 - j0
            sh = shift[j0:j1].copy()
            a1 = np.zeros(m)
            a2 = np.zeros(m)
            ap = np.zeros((k + 1, m))
            wl = np.zeros((k + 1, 4))
            act = np.empty(k + 1, np.int64)
            for r in range(4 * (ngroup * sl // nslab), 4 * (ngroup * (sl + 1) // nslab), 4):
                # a group of four rows; past the end, the last row repeats with weight 0
                last = nr - 1
                xa = x[rows[r], j0:j1]
                xb = x[rows[min(r + 1, last)], j0:j1]
                xc = x[rows[min(r + 2, last)], j0:j1]
                xd = x[rows[min(r + 3, last)], j0:j1]
                g1 = 1.0 if r + 1 < nr else 0.0
                g2 = 1.0 if r + 2 < nr else 0.0
                g3 = 1.0 if r + 3 < nr else 0.0
                na = 0
                for kk in range(k):
                    wl[na, 0] = weights[kk, r]
                    wl[na, 1] = g1 * weights[kk, min(r + 1, last)]
                    wl[na, 2] = g2 * weights[kk, min(r + 2, last)]
                    wl[na, 3] = g3 * weights[kk, min(r + 3, last)]
                    if wl[na, 0] != 0.0 or wl[na, 1] != 0.0 or wl[na, 2] != 0.0 \
                            or wl[na, 3] != 0.0:
                        act[na] = kk
                        na += 1
                if na == 0:  # the sums alone; row k of ap takes the zero weights
                    wl[0, :] = 0.0
                    act[0] = k
                    na = 1
                pb = ap[act[0]]
                wb0, wb1, wb2, wb3 = wl[0, 0], wl[0, 1], wl[0, 2], wl[0, 3]
                for j in range(m):
                    c = sh[j]
                    u = np.float64(xa[j]) - c
                    v = g1 * (np.float64(xb[j]) - c)
                    y = g2 * (np.float64(xc[j]) - c)
                    z = g3 * (np.float64(xd[j]) - c)
                    a1[j] += (u + v) + (y + z)
                    a2[j] += (u * u + v * v) + (y * y + z * z)
                    pb[j] += (wb0 * u + wb1 * v) + (wb2 * y + wb3 * z)
                if na % 2 == 0:
                    wl[na, :] = 0.0
                    act[na] = k
                    na += 1
                for p in range(1, na, 2):
                    pa = ap[act[p]]
                    pb = ap[act[p + 1]]
                    wa0, wa1, wa2, wa3 = wl[p, 0], wl[p, 1], wl[p, 2], wl[p, 3]
                    wb0, wb1, wb2, wb3 = wl[p + 1, 0], wl[p + 1, 1], wl[p + 1, 2], wl[p + 1, 3]
                    for j in range(m):
                        c = sh[j]
                        u = np.float64(xa[j]) - c
                        v = np.float64(xb[j]) - c
                        y = np.float64(xc[j]) - c
                        z = np.float64(xd[j]) - c
                        pa[j] += (wa0 * u + wa1 * v) + (wa2 * y + wa3 * z)
                        pb[j] += (wb0 * u + wb1 * v) + (wb2 * y + wb3 * z)
            s1[sl, j0:j1] += a1
            s2[sl, j0:j1] += a2
            proj[sl, :, j0:j1] += ap[:k]

    @numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
    def _project_numba(x, shift, rows, weights, proj):  # pragma: no cover
        # template projections alone, for rows where some template is non-zero
        q = x.shape[1]
        k = weights.shape[0]
        ntile = (q + TILE - 1) // TILE
        for t in numba.prange(ntile):
            j0 = t * TILE
            m = min(j0 + TILE, q) - j0
            sh = shift[j0:j0 + m]
            for r in range(rows.size):
                xi = x[rows[r], j0:j0 + m]
                for kk in range(k):
                    w = weights[kk, r]
                    if w != 0.0:
                        pk = proj[kk, j0:j0 + m]
                        for j in range(m):
                            pk[j] += w * (np.float64(xi[j]) - sh[j])

    @numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
    def _apply_numba(x, w, out):  # pragma: no cover - compiled
        # four rows at a time against four masks at a time: each weight loaded
        # serves four rows and each data value four masks (sixteen float64
        # reductions in one vectorised loop); the four rows stay in cache for the
        # leftover masks. Past the end, the last row is computed again (same value).
        n, q = x.shape
        k = w.shape[0]
        k4 = k - k % 4
        for ib in numba.prange((n + 3) // 4):
            i0 = 4 * ib
            i1 = min(i0 + 1, n - 1)
            i2 = min(i0 + 2, n - 1)
            i3 = min(i0 + 3, n - 1)
            xa, xb, xc, xd = x[i0], x[i1], x[i2], x[i3]
            for kk in range(0, k4, 4):
                w0, w1, w2, w3 = w[kk], w[kk + 1], w[kk + 2], w[kk + 3]
                a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
                c0 = c1 = c2 = c3 = d0 = d1 = d2 = d3 = 0.0
                for j in range(q):
                    u = np.float64(xa[j])
                    v = np.float64(xb[j])
                    y = np.float64(xc[j])
                    z = np.float64(xd[j])
                    a0 += u * w0[j]
                    a1 += u * w1[j]
                    a2 += u * w2[j]
                    a3 += u * w3[j]
                    b0 += v * w0[j]
                    b1 += v * w1[j]
                    b2 += v * w2[j]
                    b3 += v * w3[j]
                    c0 += y * w0[j]
                    c1 += y * w1[j]
                    c2 += y * w2[j]
                    c3 += y * w3[j]
                    d0 += z * w0[j]
                    d1 += z * w1[j]
                    d2 += z * w2[j]
                    d3 += z * w3[j]
                out[i0, kk], out[i0, kk + 1], out[i0, kk + 2], out[i0, kk + 3] = a0, a1, a2, a3
                out[i1, kk], out[i1, kk + 1], out[i1, kk + 2], out[i1, kk + 3] = b0, b1, b2, b3
                out[i2, kk], out[i2, kk + 1], out[i2, kk + 2], out[i2, kk + 3] = c0, c1, c2, c3
                out[i3, kk], out[i3, kk + 1], out[i3, kk + 2], out[i3, kk + 3] = d0, d1, d2, d3
            for kk in range(k4, k):
                wk = w[kk]
                a = b = c = d = 0.0
                for j in range(q):
                    a += np.float64(xa[j]) * wk[j]
                    b += np.float64(xb[j]) * wk[j]
                    c += np.float64(xc[j]) * wk[j]
                    d += np.float64(xd[j]) * wk[j]
                out[i0, kk] = a
                out[i1, kk] = b
                out[i2, kk] = c
                out[i3, kk] = d


def _xp(a):
    mod = type(a).__module__.split(".")[0]
    if mod == "numpy":
        return np
    import importlib

    return importlib.import_module(mod)


def use_numba(x) -> bool:
    """True when the compiled kernels apply (numpy data, numba present)."""
    return numba is not None and isinstance(x, np.ndarray)


#: Data the compiled kernels cannot read as stored (float16, which numba lacks;
#: non-native byte order, e.g. the big-endian ``>u2``/``>u4`` of Merlin 12/24-bit
#: frames; bool) goes through converted copies of at most this many bytes, and of at
#: most 1/32 of the block, so that small data stays small too.
COPY_CHUNK_BYTES = 2 * 2**20


def kernel_dtype(dtype) -> np.dtype | None:
    """The native dtype a row chunk of ``dtype`` data is converted to before the
    compiled kernels read it, or None when they read it as stored.

    float16 becomes float32, bool uint8, and any non-native byte order the same type
    in native order (exact: the values are unchanged).
    """
    dt = np.dtype(dtype)
    if dt.kind == "f" and dt.itemsize == 2:
        return np.dtype(np.float32)
    if dt.kind == "b":
        return np.dtype(np.uint8)
    if not dt.isnative:
        return dt.newbyteorder("=")
    return None


def _row_chunks(x, n: int) -> list[slice]:
    """Slices of ``n`` rows: one for data the kernels read as stored, copy-sized ones
    for data that is converted first (:func:`kernel_dtype`)."""
    target = kernel_dtype(x.dtype)
    if target is None:
        return [slice(0, n)]
    nbytes = x.shape[0] * x.shape[1] * target.itemsize
    step = max(1, min(COPY_CHUNK_BYTES, nbytes // 32) // (target.itemsize * x.shape[1]))
    return [slice(c, min(c + step, n)) for c in range(0, n, step)]


def _slabs(q: int, nrows: int) -> int:
    """Row slabs of the statistics kernel: enough that tiles x slabs keeps every
    thread busy (wide detectors need one), at least 256 rows each."""
    ntile = -(-q // TILE)
    return max(1, min(-(-numba.get_num_threads() // ntile), nrows // 256))


def _converted_rows(x, rows) -> np.ndarray:
    """Copy of the listed rows in :func:`kernel_dtype` (a slice when they are)."""
    target = kernel_dtype(x.dtype)
    if rows[-1] - rows[0] + 1 == rows.size:
        return x[rows[0]:rows[-1] + 1].astype(target)
    return x[rows].astype(target)


def shifted_sums(x, shift, rows, templates):
    """Sums about a per-pixel shift for the selected rows of a 2D block.

    Parameters
    ----------
    x : ndarray
        ``(n, q)`` block, any real dtype and byte order (not converted as a whole:
        see :func:`kernel_dtype`).
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
        nslab = _slabs(q, len(rows))
        s1, s2, proj = np.zeros((nslab, q)), np.zeros((nslab, q)), np.zeros((nslab, k, q))
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        w = np.ascontiguousarray(templates[:, rows], dtype=np.float64)
        convert = kernel_dtype(x.dtype) is not None
        for c in _row_chunks(x, rows.size):  # the kernel adds to s1, s2 and proj
            if convert:
                xc, rc = _converted_rows(x, rows[c]), np.arange(c.stop - c.start)
            else:
                xc, rc = x, rows[c]
            _moments_numba(xc, shift, rc, w[:, c], s1, s2, proj)
            del xc  # one converted copy alive at a time
        return s1.sum(axis=0), s2.sum(axis=0), proj.sum(axis=0)
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
        ``(n, q)`` data (e.g. the whole scan as a 2D view), any real dtype and byte
        order (rows that need converting are copied a chunk at a time).
    rows : ndarray
        Row indices.
    weights : ndarray
        ``(k, len(rows))``.
    """
    k, q = weights.shape[0], x.shape[1]
    if use_numba(x):
        proj = np.zeros((k, q))
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if kernel_dtype(x.dtype) is None:
            _project_numba(x, shift, rows, w, proj)
            return proj
        for c in _row_chunks(x, rows.size):
            _project_numba(_converted_rows(x, rows[c]), shift,
                           np.arange(c.stop - c.start), w[:, c], proj)
        return proj
    xp = _xp(x)
    d = x[xp.asarray(rows)].astype(xp.float64) - xp.asarray(shift)
    out = xp.asarray(weights) @ d
    return xp.asnumpy(out) if hasattr(xp, "asnumpy") else out


def weighted_sums(x, weights) -> np.ndarray:
    """``x @ weights.T`` accumulated in float64: ``(n, q) x (k, q) -> (n, k)``; ``x``
    of any real dtype and byte order (converted a row chunk at a time if needed)."""
    if use_numba(x):
        out = np.empty((x.shape[0], weights.shape[0]))
        w = np.ascontiguousarray(weights, dtype=np.float64)
        target = kernel_dtype(x.dtype)
        for c in _row_chunks(x, x.shape[0]):
            _apply_numba(x[c] if target is None else x[c].astype(target), w, out[c])
        return out
    xp = _xp(x)
    out = x.astype(xp.float64) @ xp.asarray(weights).T
    return xp.asnumpy(out) if hasattr(xp, "asnumpy") else out
