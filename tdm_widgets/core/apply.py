"""Applying detector masks to the data (paper Eq 2 and Eq 6)."""

from __future__ import annotations

from functools import partial

import numpy as np

from .blocks import map_scan
from .checks import check_data, masks_stack
from .kernels import weighted_sums
from .stats import ColumnStats


def physical_weights(masks: np.ndarray, stats: ColumnStats
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Weights and offsets that apply masks to the column-normalised data.

    ``D_hat @ m = D @ (m / sigma) - mu . (m / sigma)`` (Eq 6), so a mask on the
    normalised data is the physical weighted detector ``m / sigma`` plus a constant.

    Parameters
    ----------
    masks : ndarray
        ``(k, det_y, det_x)``.
    stats : ColumnStats
        Statistics of the data the masks are applied to.

    Returns
    -------
    weights : ndarray
        ``(k, det_y, det_x)``, 0 at constant pixels.
    offsets : ndarray
        ``(k,)`` added to every image pixel.
    """
    if masks.shape[1:] != stats.mean.shape:
        raise ValueError(f"stats are of a detector of shape {stats.mean.shape}; the masks "
                         f"are {masks.shape[1:]}: compute the statistics of this data")
    inv = np.where(stats.valid, 1.0 / np.where(stats.valid, stats.std, 1.0), 0.0)
    w = masks * inv[None]
    return w, -np.einsum("kij,ij->k", w, stats.mean)


def _weighted_block(block, weights_kq: np.ndarray):
    """``(by, bx, k)`` weighted sums of one block (a module-level kernel: dask.distributed
    ships it by reference)."""
    by, bx, dy, dx = block.shape
    out = weighted_sums(block.reshape(by * bx, dy * dx), weights_kq)
    if not np.isfinite(out).all():
        raise ValueError("data contains NaN or inf values; replace them (e.g. with "
                         "a dead-pixel mask) before applying masks")
    return out.reshape(by, bx, -1)


def apply_masks(data, mask, normalized: bool = False, stats: ColumnStats | None = None,
                progress: bool = True):
    """Images from masks: ``D m`` (Eq 2) or ``D_hat m`` (Eq 6, ``normalized=True``).

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``.
    mask : array_like
        ``(det_y, det_x)`` or ``(k, det_y, det_x)``.
    normalized : bool
        Apply to the column-normalised data (needs ``stats``; computed if None).
    stats : ColumnStats, optional
        Statistics of ``data`` for ``normalized=True``.
    progress : bool
        Progress bar for passes longer than a second.

    Returns
    -------
    ndarray or dask.array.Array
        ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)`` float64; lazy for lazy input.
    """
    check_data(data)
    m, single = masks_stack(mask, data.shape[2:])
    offsets = np.zeros(m.shape[0])
    if normalized:
        if stats is None:
            from .correlate import column_statistics

            stats = column_statistics(data, progress=progress)
        m, offsets = physical_weights(m, stats)
    k = m.shape[0]
    images = map_scan(data, partial(_weighted_block, weights_kq=m.reshape(k, -1)), k,
                      progress=progress)
    images = images.transpose(2, 0, 1) + offsets[:, None, None]
    return images[0] if single else images
