"""The matrix D of the paper's Fig 1d: columns by radius, rows by high-angle intensity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DataMatrix:
    """D with sorted rows and columns.

    Attributes
    ----------
    matrix : ndarray
        ``(p, q)`` float32, ``D[row_order][:, col_order]`` (columns standardised by
        Eq 3 when requested).
    row_order : ndarray
        Scan positions (flat index ``y * scan_x + x``) from low to high high-angle
        intensity.
    col_order : ndarray
        Detector pixels (flat index ``y * det_x + x``) from small to large radius.
    radius : ndarray
        ``(q,)`` radius of each sorted column (detector axis units).
    """

    matrix: np.ndarray
    row_order: np.ndarray
    col_order: np.ndarray
    radius: np.ndarray


def sorted_matrix(data: np.ndarray, radius: np.ndarray, high_angle: np.ndarray,
                  stats=None) -> DataMatrix:
    """Build :class:`DataMatrix` from in-memory data.

    Parameters
    ----------
    data : ndarray
        ``(scan_y, scan_x, det_y, det_x)``.
    radius : ndarray
        ``(det_y, det_x)`` radius of every pixel from the BF-disc centre.
    high_angle : ndarray
        ``(scan_y, scan_x)`` intensity at high angle per scan position.
    stats : ColumnStats, optional
        If given, columns are standardised (Eq 3); constant columns become 0.
    """
    sy, sx, dy, dx = data.shape
    col_order = np.argsort(radius.reshape(-1), kind="stable")
    row_order = np.argsort(high_angle.reshape(-1), kind="stable")
    d = np.asarray(data).reshape(sy * sx, dy * dx)
    m = np.empty((sy * sx, dy * dx), np.float32)  # the result, filled by row blocks
    if stats is not None:
        ok = stats.valid.reshape(-1)[col_order]
        mu = np.where(ok, stats.mean.reshape(-1)[col_order], 0.0).astype(np.float32)
        inv = np.where(ok, 1.0 / np.where(ok, stats.std.reshape(-1)[col_order], 1.0),
                       0.0).astype(np.float32)  # constant columns become 0
    rows = max(1, (32 * 2**20) // (4 * dy * dx))  # about 32 MiB of float32 per block
    for start in range(0, sy * sx, rows):
        block = m[start:start + rows]
        block[...] = d[row_order[start:start + rows]][:, col_order]
        if stats is not None:
            block -= mu
            block *= inv
    return DataMatrix(m, row_order, col_order, radius.reshape(-1)[col_order])
