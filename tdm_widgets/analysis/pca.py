"""The PCA link (Eq 6, 9): eigen-images of C = D_hat D_hat^T / p without forming it."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ..core.apply import apply_masks
from ..core.blocks import computed, reduce_scan
from ..core.correlate import column_statistics
from ..core.progress import hyperspy_progressbar
from ..signals import unwrap


def _projector(data, stats):
    """``v -> C v`` with two streaming passes: ``w = D_hat^T v / p``, then ``D_hat w``."""
    sy, sx = data.shape[:2]
    p = sy * sx
    inv = np.where(stats.valid, 1 / np.where(stats.valid, stats.std, 1), 0).reshape(-1)
    mean = stats.mean.reshape(-1)

    def kernel(block, v):
        x = np.asarray(block).reshape(v.size, -1)
        return v.reshape(-1) @ x.astype(np.float64)

    def matvec(v):
        v = np.asarray(v, float).reshape(sy, sx)
        dtv = reduce_scan(data, kernel, np.add, side=(v,), progress=False)
        w = (dtv - mean * v.sum()) * inv / p
        img = apply_masks(data, w.reshape(data.shape[2:]), normalized=True, stats=stats,
                          progress=False)
        img = computed(img)
        return img.reshape(-1)

    return LinearOperator((p, p), matvec=matvec, dtype=np.float64)


@hyperspy_progressbar
def eigen_images(s, k: int = 3, tol: float = 1e-8, show_progressbar: bool | None = None):
    """Leading eigenvalues and eigen-images of the correlation matrix by Lanczos
    iteration (scipy ``eigsh``), two passes over the data per iteration.

    Returns
    -------
    eigenvalues : ndarray
        ``(k,)`` in decreasing order.
    images : ndarray
        ``(k, scan_y, scan_x)`` unit-norm eigenvectors.
    """
    data, _, _ = unwrap(s)
    stats = column_statistics(data, progress=show_progressbar)
    op = _projector(data, stats)
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order].T.reshape((k,) + data.shape[:2])


def eigen_closeness(s, image, stats=None) -> float:
    """How close an image is to an eigenvector of C: the cosine between the
    standardised image and ``C`` times it (1 for an eigenvector, Eq 9)."""
    data, _, _ = unwrap(s)
    stats = stats or column_statistics(data, progress=False)
    v = np.asarray(getattr(image, "data", image), float)
    v = (v - v.mean()) / v.std()
    cv = _projector(data, stats).matvec(v.ravel())
    return float(v.ravel() @ cv / (np.linalg.norm(v) * np.linalg.norm(cv)))
