"""Streaming over the scan: the one place that knows numpy from dask.

A *kernel* takes one block of whole diffraction patterns ``(by, bx, det_y, det_x)``
plus the matching window of every scan-shaped side array and returns a partial
result; partial results are merged pairwise. Numpy data is walked in row blocks
(views, never copies); dask data is walked chunk by chunk through ``dask.delayed``
so that the same graph runs on the threaded scheduler or on a ``dask.distributed``
cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

#: Size of one block as float64 [bytes]: the most a kernel that converts its block
#: (the array-module path, e.g. cupy) holds at once. The compiled numpy kernels read
#: blocks in place; fewer, larger blocks keep their per-block overhead small.
BLOCK_BYTES = 128 * 2**20
#: Size of a dask chunk [bytes, as stored] that :func:`whole_patterns` aims at when it
#: has to rechunk: whole patterns, a bounded memory per task.
CHUNK_BYTES = 64 * 2**20

logger = logging.getLogger(__name__)


def is_lazy(data) -> bool:
    """True for a dask array (or corrected data over one)."""
    data = getattr(data, "raw", data)
    return hasattr(data, "dask") and hasattr(data, "chunks")


class _Blockwise:
    """A kernel called on ``(block, ys, xs, *windows)``: the block is corrected first
    when the data is a :class:`~.corrections.CorrectedData` (a per-block transform)."""

    def __init__(self, kernel: Callable, correction):
        self.kernel, self.correction = kernel, correction

    def __call__(self, block, ys: slice, xs: slice, *windows):
        if self.correction is not None:
            block = self.correction.apply(block, ys, xs)
        return self.kernel(block, *windows)


class _FirstPattern:
    """``first`` of the first pattern of a block, corrected (that pattern only) when
    there is a correction."""

    def __init__(self, first: Callable, correction):
        self.first = _Blockwise(first, correction)

    def __call__(self, block):
        return self.first(block[:1, :1], slice(0, 1), slice(0, 1))


class _Located:
    """A blockwise kernel on one dask block at its place in the scan. A module-level
    class, so that dask.distributed ships the graph by plain pickle (a closure sends
    the whole graph through cloudpickle, which cannot take the h5py dataset a lazy
    ``.hspy`` reads from)."""

    def __init__(self, kernel: Callable, side: Sequence[np.ndarray]):
        self.kernel, self.side = kernel, tuple(side)

    def __call__(self, block, block_info=None):
        (y0, y1), (x0, x1) = block_info[0]["array-location"][:2]
        return self.kernel(block, slice(y0, y1), slice(x0, x1),
                           *(a[..., y0:y1, x0:x1] for a in self.side))


def _raw(data, kernel):
    """``(raw data, blockwise kernel)``."""
    return getattr(data, "raw", data), _Blockwise(kernel, getattr(data, "correction", None))


def row_blocks(shape: Sequence[int], block_bytes: int | None = None) -> list[slice]:
    """Slices of scan rows whose float64 copy holds about ``block_bytes``
    (:data:`BLOCK_BYTES` if None)."""
    sy, sx, dy, dx = shape
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    rows = max(1, int(block_bytes // max(1, sx * dy * dx * 8)))
    return [slice(y, min(y + rows, sy)) for y in range(0, sy, rows)]


def computed(x):
    """``x`` computed if it is a dask collection, unchanged otherwise."""
    return x.compute() if hasattr(x, "compute") else x


def whole_patterns(data):
    """A dask array rechunked (if needed) so each chunk holds whole patterns, in chunks
    of about :data:`CHUNK_BYTES`.

    Chunks that split the detector are joined into whole patterns with the scan re-split
    to that size (joining them along the detector alone multiplies the chunk by the
    number of detector pieces); a chunk over eight times that size is split along the
    scan, and many chunks under a thirty-second of it are joined (each chunk costs graph
    and scheduling time). Other chunkings are kept as they are: no rechunk.
    """
    largest = np.prod([max(c) for c in data.chunks]) * data.dtype.itemsize
    split = len(data.chunks[2]) > 1 or len(data.chunks[3]) > 1
    huge = largest > 8 * CHUNK_BYTES
    tiny = data.npartitions > 64 and largest < CHUNK_BYTES / 32
    if not (split or huge or tiny):
        return data
    if split or huge:
        import warnings

        warnings.warn(
            f"the data's dask chunks ({', '.join(str(max(c)) for c in data.chunks)}; "
            f"{largest / 2**20:.0f} MiB) {'split the detector' if split else 'are large'}: "
            f"each pass rechunks them to whole patterns of about {CHUNK_BYTES // 2**20} MiB, "
            "and reading chunks of this shape can hold much of the data in memory at once. "
            "Store or load it in chunks of whole patterns and a few scan rows "
            "(tdm_widgets.load does for .mib, .npy and .zarr; "
            "s.rechunk(nav_chunks=..., sig_chunks=-1) for a HyperSpy signal)",
            UserWarning, stacklevel=2)
    return data.rechunk({0: "auto", 1: "auto", 2: -1, 3: -1}, block_size_limit=CHUNK_BYTES)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, delay=1.0, disable=not enabled, leave=False)


def compute_with_progress(*values, progress: bool = True):
    """Compute dask collections, with a progress bar after one second."""
    import dask

    if not progress:
        return dask.compute(*values)
    import sys

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0, out=sys.stderr):  # stdout keeps the results
            return dask.compute(*values)
    return _distributed_compute(client, values)


def _distributed_compute(client, values):
    """``values`` computed on a dask.distributed cluster with the cluster's own text
    progress bar, on stderr (stdout keeps the results; a notebook shows it too)."""
    import contextlib
    import sys

    from distributed.diagnostics.progressbar import TextProgressBar

    futures = client.compute(list(values))
    with contextlib.redirect_stdout(sys.stderr):
        TextProgressBar(futures, complete=True)  # returns when they are done
    return tuple(client.gather(futures))


def reduce_scan(data, kernel: Callable, merge: Callable, side: Sequence[np.ndarray] = (),
                progress: bool = True, desc: str = "statistics", first: Callable | None = None):
    """One pass over the scan: ``merge`` of ``kernel(block, *side_windows)``, each
    block corrected first when ``data`` is a :class:`~.corrections.CorrectedData`.

    Parameters
    ----------
    data : ndarray, dask.array.Array or CorrectedData
        4D data ``(scan_y, scan_x, det_y, det_x)``.
    kernel : callable
        ``kernel(block, *windows) -> partial`` (``kernel(block, *windows, value)``
        with ``first``).
    merge : callable
        Associative ``merge(a, b) -> partial``.
    side : sequence of ndarray
        Arrays whose last two axes are the scan; each block gets its window.
    progress : bool
        Show a progress bar for passes longer than a second.
    first : callable, optional
        ``first(pattern) -> value`` of the first pattern, a ``(1, 1, det_y, det_x)``
        block (e.g. the shift of the sums), made within the pass from the first block
        (read once) and given to every kernel.

    Returns
    -------
    object
        The merged partial result; ``(result, value)`` with ``first``.
    """
    firstk = None if first is None else _FirstPattern(first, getattr(data, "correction", None))
    data, kernel = _raw(data, kernel)
    logger.debug("%s: one pass over %s %s data (%s)", desc, data.shape, data.dtype,
                 "dask" if is_lazy(data) else "numpy")
    if not is_lazy(data):
        acc = None
        blocks = row_blocks(data.shape)
        extra = () if first is None else (firstk(data[blocks[0]]),)
        with _progress(len(blocks), desc, progress) as bar:
            for ys in blocks:
                part = kernel(data[ys], ys, slice(None), *(a[..., ys, :] for a in side),
                              *extra)
                acc = part if acc is None else merge(acc, part)
                bar.update()
        return acc if first is None else (acc, extra[0])

    import dask

    data = whole_patterns(data)
    ystarts = np.cumsum((0,) + data.chunks[0])
    xstarts = np.cumsum((0,) + data.chunks[1])
    delayed_blocks = data.to_delayed()
    parts = []
    dkernel = dask.delayed(kernel, pure=True)
    extra = () if first is None else (dask.delayed(firstk, pure=True)(delayed_blocks[0, 0, 0, 0]),)
    for i in range(len(data.chunks[0])):
        for j in range(len(data.chunks[1])):
            ys = slice(ystarts[i], ystarts[i + 1])
            xs = slice(xstarts[j], xstarts[j + 1])
            parts.append(dkernel(delayed_blocks[i, j, 0, 0], ys, xs,
                                 *(a[..., ys, xs] for a in side), *extra))
    dmerge = dask.delayed(merge, pure=True)
    while len(parts) > 1:
        parts = [dmerge(parts[k], parts[k + 1]) if k + 1 < len(parts) else parts[k]
                 for k in range(0, len(parts), 2)]
    result = compute_with_progress(parts[0], *extra, progress=progress)
    return result[0] if first is None else result


def map_scan(data, kernel: Callable, n_out: int, progress: bool = True,
             desc: str = "images", side: Sequence[np.ndarray] = ()):
    """Apply ``kernel(block, *side_windows) -> (by, bx, n_out)`` over the scan (each
    block corrected first when ``data`` is a :class:`~.corrections.CorrectedData`).

    Numpy input gives a numpy ``(scan_y, scan_x, n_out)`` float64 array; dask input
    gives a lazy dask array of the same shape (nothing is computed). ``side`` are
    arrays whose last two axes are the scan; each block gets its window.
    """
    data, kernel = _raw(data, kernel)
    logger.debug("%s: one pass over %s %s data (%s)", desc, data.shape, data.dtype,
                 "dask, lazy result" if is_lazy(data) else "numpy")
    if not is_lazy(data):
        out = np.empty(data.shape[:2] + (n_out,), dtype=np.float64)
        blocks = row_blocks(data.shape)
        with _progress(len(blocks), desc, progress) as bar:
            for ys in blocks:
                out[ys] = kernel(data[ys], ys, slice(None), *(a[..., ys, :] for a in side))
                bar.update()
        return out
    data = whole_patterns(data)
    return data.map_blocks(_Located(kernel, side), dtype=np.float64, drop_axis=(2, 3),
                           new_axis=2, chunks=data.chunks[:2] + ((n_out,),))
