"""Joint species images: every template fitted by all TDM images at once.

A Pearson (TDM) mask is fitted to one template at a time, so a species whose signal
resembles another's shows in that image too (Fe and P, the O column 0.33 angstrom
from Ti in PbTiO3). Fitting each template by a linear combination of *all* the
species images removes what the others explain: the combined image is the data
seen through the same combination of masks.
"""

from __future__ import annotations

import numpy as np


def unmix_images(images, templates, ridge: float = 0.0, region=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each template fitted by a regularised least-squares combination of all images.

    With ``A`` the ``(n_pixels, k)`` centred images (each scaled to unit norm) and
    ``B`` the centred templates, ``W = argmin |A W - B|^2 + r |W - D|^2`` where ``D``
    is diagonal (each template's own image alone: the Pearson answer) and
    ``r = ridge * trace(A^T A) / k``. ``ridge=0`` is the plain joint fit, a large
    ridge returns the independent images.

    Parameters
    ----------
    images : array_like
        ``(k, scan_y, scan_x)`` TDM images, one per template.
    templates : array_like
        ``(k, scan_y, scan_x)`` templates, in the same order.
    ridge : float
        Regularisation towards the independent images, relative to the mean
        image power (>= 0).
    region : ndarray of bool, optional
        ``(scan_y, scan_x)`` positions that fit ``W`` (a perfect reference cell);
        all if None. The combination is applied everywhere.

    Returns
    -------
    unmixed : ndarray
        ``(k, scan_y, scan_x)`` images ``sum_s W[s, j] images[s]`` [units of the
        input images], offsets kept.
    weights : ndarray
        ``(k, k)`` ``W`` [dimensionless]; the masks that make ``unmixed`` are
        ``W.T @ masks``.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> t = np.zeros((2, 8, 8)); t[0, 2, 2] = t[1, 5, 5] = 1
    >>> images = np.stack([t[0] + 0.5 * t[1], t[1] + 0.5 * t[0]])   # cross-talk
    >>> clean, w = tw.unmix_images(images, t)
    >>> bool(np.isclose(clean[0, 5, 5], clean[0, 0, 0]))  # species 1 gone from image 0
    True
    """
    img = np.asarray(getattr(images, "data", images), float)
    t = np.asarray(getattr(templates, "data", templates), float)
    if img.ndim != 3 or t.shape != img.shape:
        raise ValueError(f"images and templates must both be (k, scan_y, scan_x) of one "
                         f"shape; got {img.shape} and {t.shape}")
    if not ridge >= 0:
        raise ValueError(f"ridge must be >= 0; got {ridge}")
    k = img.shape[0]
    sel = np.ones(img.shape[1:], bool) if region is None else np.asarray(region)
    if sel.shape != img.shape[1:] or sel.dtype != bool or sel.sum() < 2:
        raise ValueError(f"region must be a boolean {img.shape[1:]} array with at least two "
                         "positions")
    a = (img[:, sel] - img[:, sel].mean(axis=1, keepdims=True)).T
    norm = np.linalg.norm(a, axis=0)
    if np.any(norm == 0):
        raise ValueError("an image is constant: it cannot fit a template")
    a = a / norm
    b = (t[:, sel] - t[:, sel].mean(axis=1, keepdims=True)).T
    ata = a.T @ a
    d = np.diag(np.einsum("pk,pk->k", a, b))            # own image's least-squares scale
    r = ridge * np.trace(ata) / k
    # pinv: images that are combinations of others (an "all" template) leave the
    # unregularised system singular; the minimum-norm W is then the answer
    w = np.linalg.pinv(ata + r * np.eye(k)) @ (a.T @ b + r * d)
    w = w / norm[:, None]                                  # back to the input images
    unmixed = np.einsum("sj,syx->jyx", w, img)
    return unmixed, w
