"""Per-block detector corrections applied inside the streaming passes.

A :class:`Correction` holds what is wrong with the detector or the scan: a boolean
*bad-pixel* mask (those pixels are replaced by the mean of their valid neighbours) and
a *descan* field (the shift [detector px] of every pattern's centre, which is undone by
moving each pattern back, sub-pixel by bilinear interpolation or to the nearest pixel).
:class:`CorrectedData` pairs raw data with a correction; the passes of
:mod:`tdm_widgets.core.blocks` call :meth:`Correction.apply` on each block of whole
patterns just before the kernel, so the corrected data never exists as a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def neighbour_weights(bad: np.ndarray) -> scipy.sparse.csr_matrix:  # noqa: F821
    """Sparse ``(q, n_bad)`` matrix whose columns average the valid neighbours of each
    bad pixel (the 8-neighbourhood, grown ring by ring until one is valid).

    Raises
    ------
    ValueError
        If every pixel is bad.
    """
    bad = np.asarray(bad, bool)
    if bad.all():
        raise ValueError("bad_pixels marks every detector pixel: nothing to interpolate from")
    dy, dx = bad.shape
    rows, cols, vals = [], [], []
    for k, (y, x) in enumerate(zip(*np.nonzero(bad))):
        for r in range(1, max(dy, dx)):
            ys = np.arange(max(0, y - r), min(dy, y + r + 1))
            xs = np.arange(max(0, x - r), min(dx, x + r + 1))
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            ok = ~bad[yy, xx]
            if ok.any():
                idx = (yy[ok] * dx + xx[ok]).ravel()
                rows.extend(idx)
                cols.extend([k] * idx.size)
                vals.extend([1.0 / idx.size] * idx.size)
                break
    from scipy import sparse  # here: importing scipy.sparse costs every user of the package

    return sparse.csr_matrix((vals, (rows, cols)), shape=(dy * dx, int(bad.sum())))


try:
    import numba
except ImportError:  # pragma: no cover - numba comes with hyperspy
    numba = None

#: Least block size [values] :func:`shift_patterns` moves with its compiled loop (whose
#: parallel start costs a few ms; the numpy loop costs about 20 ns a value).
_COMPILED_SHIFT_MIN = 2**20

if numba is not None:
    @numba.njit(parallel=True, cache=True)
    def _shift_numba(block, shifts, subpixel, out):  # pragma: no cover - compiled
        # the arithmetic of the numpy loop below, element by element (no fast-math:
        # the same float64 results), one pattern per thread
        n, dy, dx = block.shape
        for k in numba.prange(n):
            sy = shifts[k, 0]
            sx = shifts[k, 1]
            if subpixel:
                fy = np.floor(sy)
                fx = np.floor(sx)
            else:
                fy = np.rint(sy)
                fx = np.rint(sx)
            wy = sy - fy
            wx = sx - fx
            iy = int(fy)
            ix = int(fx)
            for i in range(dy):
                y0 = min(max(i + iy, 0), dy - 1)
                y1 = min(max(i + iy + 1, 0), dy - 1)
                for j in range(dx):
                    x0 = min(max(j + ix, 0), dx - 1)
                    if not subpixel:
                        out[k, i, j] = block[k, y0, x0]
                        continue
                    x1 = min(max(j + ix + 1, 0), dx - 1)
                    top = (1 - wx) * block[k, y0, x0] + wx * block[k, y0, x1]
                    bot = (1 - wx) * block[k, y1, x0] + wx * block[k, y1, x1]
                    out[k, i, j] = (1 - wy) * top + wy * bot


def shift_patterns(block: np.ndarray, shifts: np.ndarray, subpixel: bool = True
                   ) -> np.ndarray:
    """Patterns moved so that what was at ``c + shift`` lands at ``c``.

    Parameters
    ----------
    block : ndarray
        ``(by, bx, dy, dx)`` float64.
    shifts : ndarray
        ``(by, bx, 2)`` (y, x) shift of each pattern [detector px].
    subpixel : bool
        Bilinear interpolation; else the nearest whole pixel. Samples beyond the
        detector take the value of its edge.

    Returns
    -------
    ndarray
        ``(by, bx, dy, dx)`` float64.
    """
    by, bx, dy, dx = block.shape
    if numba is not None and isinstance(block, np.ndarray) and \
            block.dtype == np.float64 and block.size >= _COMPILED_SHIFT_MIN:
        # compiled: the loop below made a pass 34 times slower than an uncorrected one
        out = np.empty((by * bx, dy, dx))
        _shift_numba(np.ascontiguousarray(block).reshape(by * bx, dy, dx),
                     np.ascontiguousarray(shifts, np.float64).reshape(by * bx, 2),
                     bool(subpixel), out)
        return out.reshape(block.shape)
    out = np.empty_like(block)
    ry, rx = np.arange(dy), np.arange(dx)
    for i in range(by):
        for j in range(bx):
            sy, sx = shifts[i, j]
            p = block[i, j]
            if not subpixel:
                ys = np.clip(ry + int(np.rint(sy)), 0, dy - 1)
                xs = np.clip(rx + int(np.rint(sx)), 0, dx - 1)
                out[i, j] = p[np.ix_(ys, xs)]
                continue
            fy, fx = np.floor(sy), np.floor(sx)
            wy, wx = sy - fy, sx - fx
            y0 = np.clip(ry + int(fy), 0, dy - 1)
            y1 = np.clip(ry + int(fy) + 1, 0, dy - 1)
            x0 = np.clip(rx + int(fx), 0, dx - 1)
            x1 = np.clip(rx + int(fx) + 1, 0, dx - 1)
            top = (1 - wx) * p[np.ix_(y0, x0)] + wx * p[np.ix_(y0, x1)]
            bot = (1 - wx) * p[np.ix_(y1, x0)] + wx * p[np.ix_(y1, x1)]
            out[i, j] = (1 - wy) * top + wy * bot
    return out


@dataclass(frozen=True)
class Correction:
    """Detector corrections applied to every block of patterns.

    Attributes
    ----------
    bad_pixels : ndarray of bool or None
        ``(det_y, det_x)``: pixels replaced by the mean of their valid neighbours.
    descan_px : ndarray or None
        ``(scan_y, scan_x, 2)``: (y, x) shift [detector px] of each pattern's centre
        from where it should be; patterns are moved back by it.
    subpixel : bool
        Bilinear (True) or nearest-pixel (False) descan correction.
    """

    bad_pixels: np.ndarray | None = None
    descan_px: np.ndarray | None = None
    subpixel: bool = True

    def __post_init__(self):
        if self.bad_pixels is not None:
            b = np.asarray(self.bad_pixels)
            if b.ndim != 2 or b.dtype != bool:
                raise ValueError(f"bad_pixels must be a 2D boolean detector mask; got "
                                 f"{b.dtype} {b.shape}")
            if b.any():  # the weights by column: bad pixel k averages
                # flat[:, _rows[_start[k]:_start[k + 1]]] with weights _vals (a gather: the
                # sparse product with the transposed block copied every block whole)
                w = neighbour_weights(b).tocsc()
                w.sort_indices()
                object.__setattr__(self, "_rows", w.indices)
                object.__setattr__(self, "_vals", w.data)
                object.__setattr__(self, "_start", w.indptr[:-1])
        if self.descan_px is not None:
            d = np.asarray(self.descan_px, np.float64)
            if d.ndim != 3 or d.shape[2] != 2 or not np.isfinite(d).all():
                raise ValueError("descan_px must be a finite (scan_y, scan_x, 2) array of "
                                 f"shifts [px]; got shape {d.shape}")
            object.__setattr__(self, "descan_px", d)

    @property
    def active(self) -> bool:
        """True when the correction changes the data."""
        return (self.bad_pixels is not None and bool(np.any(self.bad_pixels))) or \
            self.descan_px is not None

    def check(self, shape) -> None:
        """Raise ``ValueError`` unless the correction fits 4D data of ``shape``."""
        if self.bad_pixels is not None and np.shape(self.bad_pixels) != tuple(shape[2:]):
            raise ValueError(f"bad_pixels has shape {np.shape(self.bad_pixels)}; the "
                             f"detector is {tuple(shape[2:])}")
        if self.descan_px is not None and self.descan_px.shape[:2] != tuple(shape[:2]):
            raise ValueError(f"descan_px has scan shape {self.descan_px.shape[:2]}; the "
                             f"scan is {tuple(shape[:2])}")

    def apply(self, block, ys: slice, xs: slice) -> np.ndarray:
        """The corrected float64 copy of one block of whole patterns.

        Parameters
        ----------
        block : ndarray
            ``(by, bx, det_y, det_x)`` raw data at scan rows ``ys``, columns ``xs``.
        """
        out = np.array(block, dtype=np.float64)
        by, bx, dy, dx = out.shape
        rows = getattr(self, "_rows", None)
        if rows is not None:
            flat = out.reshape(by * bx, dy * dx)
            flat[:, self.bad_pixels.reshape(-1)] = np.add.reduceat(
                flat[:, rows] * self._vals, self._start, axis=1)
        if self.descan_px is not None:
            out = shift_patterns(out, self.descan_px[ys, xs], self.subpixel)
        return out

    def without_descan(self) -> Correction:
        """The same bad-pixel correction, no descan."""
        return Correction(self.bad_pixels, None, self.subpixel)


class CorrectedData:
    """Raw 4D data (numpy or dask) seen through a :class:`Correction`, block by block.

    Only the streaming passes read it (``reduce_scan``, ``map_scan``); ``dtype`` is the
    raw data's, whose precision the corrected values carry.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.ones((2, 2, 4, 4)); raw[..., 1, 1] = 100
    >>> bad = np.zeros((4, 4), bool); bad[1, 1] = True
    >>> float(CorrectedData(raw, Correction(bad)).block(slice(0, 1), slice(0, 1))[0, 0, 1, 1])
    1.0
    """

    def __init__(self, raw, correction: Correction):
        correction.check(raw.shape)
        self.raw = raw
        self.correction = correction
        self.shape = tuple(raw.shape)
        self.dtype = raw.dtype
        self.ndim = 4

    def block(self, ys: slice, xs: slice) -> np.ndarray:
        """Corrected float64 patterns at scan rows ``ys`` and columns ``xs``."""
        b = self.raw[ys, xs]
        if hasattr(b, "compute"):
            b = b.compute()
        return self.correction.apply(b, ys, xs)

    def patterns(self, rows: np.ndarray) -> np.ndarray:
        """Corrected float64 patterns at flat scan indices ``rows``, ``(n, q)``."""
        sy, sx, dy, dx = self.shape
        out = np.empty((len(rows), dy * dx))
        for k, (y, x) in enumerate(zip(*np.unravel_index(rows, (sy, sx)))):
            out[k] = self.block(slice(y, y + 1), slice(x, x + 1)).reshape(-1)
        return out

    def with_correction(self, correction: Correction) -> CorrectedData:
        """The same raw data through another correction."""
        return CorrectedData(self.raw, correction)

    def materialize(self) -> np.ndarray:
        """The whole corrected array in memory (only for functions that need a copy)."""
        return self.block(slice(None), slice(None))


def raw_and_correction(data):
    """``(raw, correction_or_None)`` of data that may be :class:`CorrectedData`."""
    if isinstance(data, CorrectedData):
        return data.raw, data.correction
    return data, None
