"""The PCA link (Eq 6, 9): eigen-images of C = D_hat D_hat^T / p without forming it."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ..core.apply import apply_masks
from ..core.blocks import computed, reduce_scan
from ..core.correlate import column_statistics
from ..core.progress import hyperspy_progressbar
from ..signals import as_column_stats, provenance, unwrap, wrap_scan_images


def _weighted_patterns(block, v):
    """``v^T D`` of one block: its patterns weighted by ``v`` and summed, float64."""
    x = np.asarray(block).reshape(v.size, -1)
    return v.reshape(-1) @ x.astype(np.float64)


def _projector(data, stats, bar=None):
    """``v -> C v`` with two streaming passes: ``w = D_hat^T v / p``, then ``D_hat w``
    (each product counted on ``bar``, a tqdm bar, if given)."""
    sy, sx = data.shape[:2]
    p = sy * sx
    inv = np.where(stats.valid, 1 / np.where(stats.valid, stats.std, 1), 0).reshape(-1)
    mean = stats.mean.reshape(-1)

    def matvec(v):
        v = np.asarray(v, float).reshape(sy, sx)
        dtv = reduce_scan(data, _weighted_patterns, np.add, side=(v,), progress=False)
        w = (dtv - mean * v.sum()) * inv / p
        img = apply_masks(data, w.reshape(data.shape[2:]), normalized=True, stats=stats,
                          progress=False)
        img = computed(img)
        if bar is not None:
            bar.update()
        return img.reshape(-1)

    return LinearOperator((p, p), matvec=matvec, dtype=np.float64)


@hyperspy_progressbar
def eigen_images(s, k: int = 3, tol: float = 1e-8, show_progressbar: bool | None = None):
    """Leading eigenvalues and eigen-images of the correlation matrix C (Eq 9).

    ``C = D_hat D_hat^T / p`` (positions by positions) is never formed: Lanczos
    iteration (scipy ``eigsh``) applies it with two passes over the data per
    iteration.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    k : int
        Number of eigenpairs.
    tol : float
        Relative accuracy of the eigenvalues (``eigsh``'s ``tol``).
    show_progressbar : bool, optional
        Progress bars for the statistics pass and for the Lanczos iterations (two
        passes each; their number is not known ahead); None follows HyperSpy's
        preference.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(k, scan_y, scan_x)`` unit-norm eigenvectors [dimensionless], scan axes
        in [A] when calibrated, largest eigenvalue first, named ``"eigen-image 1"``,
        ...; ``metadata.TDM.eigenvalues`` lists the ``k`` eigenvalues of the
        correlation matrix [dimensionless] in decreasing order.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> data = np.random.default_rng(0).random((6, 5, 4, 4))
    >>> eig = tw.eigen_images(tw.from_array(data, scan_step_A=0.5), k=2, show_progressbar=False)
    >>> eig.data.shape, eig.metadata.TDM.names, eig.axes_manager.signal_axes[0].units
    ((2, 6, 5), ['eigen-image 1', 'eigen-image 2'], 'Å')
    """
    data, cal, src = unwrap(s)
    stats = column_statistics(data, progress=show_progressbar)
    from tqdm.auto import tqdm

    with tqdm(desc="Lanczos iterations (2 passes each)", delay=1.0, leave=False,
              disable=not show_progressbar) as bar:
        vals, vecs = eigsh(_projector(data, stats, bar), k=k, which="LA", tol=tol)
    order = np.argsort(vals)[::-1]
    images = vecs[:, order].T.reshape((k,) + data.shape[:2])
    sig = wrap_scan_images(images, cal, "eigen-images of C (Eq 9)",
                           provenance("eigen_images", src, k=int(k), tol=float(tol)),
                           stack_name="eigen-image",
                           names=[f"eigen-image {i + 1}" for i in range(k)])
    sig.metadata.set_item("TDM.eigenvalues", [float(v) for v in vals[order]])
    return sig


def eigen_closeness(s, image, stats=None) -> float:
    """How close an image is to an eigenvector of C (Eq 9).

    The cosine between the standardised image and ``C`` times it: 1 for an
    eigenvector of the correlation matrix, less the further from one.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    image : array_like
        ``(scan_y, scan_x)`` image, e.g. a TDM image or a template.
    stats : Signal2D, optional
        Column statistics of ``s`` (:func:`column_stats`); computed if None.

    Returns
    -------
    float
        Cosine in [-1, 1] [dimensionless].

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 6, 16, 16)).astype(np.uint16)
    >>> eig = tw.eigen_images(data, k=1, show_progressbar=False)
    >>> round(tw.eigen_closeness(data, eig.data[0]), 6)
    1.0
    """
    data, _, _ = unwrap(s)
    stats = column_statistics(data, progress=False) if stats is None else \
        as_column_stats(stats)
    v = np.asarray(getattr(image, "data", image), float)
    v = (v - v.mean()) / v.std()
    cv = _projector(data, stats).matvec(v.ravel())
    return float(v.ravel() @ cv / (np.linalg.norm(v) * np.linalg.norm(cv)))
