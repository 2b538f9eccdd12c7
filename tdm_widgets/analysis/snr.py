"""Signal-to-noise ratio of an image made with a detector mask.

Two different quantities carry the name SNR:

- :func:`shot_noise_snr_db` measures *noise*: the variance the counting statistics add
  to each image pixel, from the two binomial halves of the counts (``"halves"``) or
  by propagating Poisson variance through the mask (``"poisson"``). It rises by 10 dB
  per decade of dose and is unbounded on noise-free data.
- :func:`unit_cell_snr_db` measures *non-periodicity*: the image folded onto one
  unit cell is the "signal" and every departure from it (noise, but also defects,
  drift, a mis-set cell) the "noise".
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.progress import hyperspy_progressbar


def unit_cell_average(image, cell_px: tuple[int, int]) -> np.ndarray:
    """The image folded onto one unit cell and tiled back to the image size.

    Parameters
    ----------
    image : array_like
        2D image holding whole unit cells.
    cell_px : tuple of int
        Unit-cell size (rows, cols) [px].

    Returns
    -------
    ndarray
        Same shape as ``image`` [image units].

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> tw.unit_cell_average(np.arange(8.0).reshape(2, 4), (2, 2))[0]
    array([1., 2., 1., 2.])
    """
    img = np.asarray(getattr(image, "data", image), float)
    cy, cx = cell_px
    ny, nx = img.shape
    if ny % cy or nx % cx:
        raise ValueError(f"image {img.shape} does not hold whole cells of {cell_px} px")
    cell = img.reshape(ny // cy, cy, nx // cx, cx).mean(axis=(0, 2))
    return np.tile(cell, (ny // cy, nx // cx))


def unit_cell_snr_db(image, cell_px: tuple[int, int]) -> float:
    """Periodic-contrast ratio [dB]: unit-cell average as signal, residual as noise.

    ``10 log10(var(signal) / var(residual))``, with the residual variance corrected
    for the part of it that survives the averaging over ``n`` cells
    (``var_noise = var(residual) n / (n - 1)``) and the signal variance for the noise
    left in it (``var_signal = var(average) - var_noise / n``). Any departure from
    periodicity (a defect, drift) counts as noise: for shot noise use
    :func:`shot_noise_snr_db`.

    Parameters
    ----------
    image : array_like
        2D image holding whole unit cells.
    cell_px : tuple of int
        Unit-cell size (rows, cols) [px].

    Returns
    -------
    float
        [dB]; ``-inf`` when the residual outweighs the periodic part.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> rng = np.random.default_rng(0)
    >>> img = np.tile(rng.standard_normal((8, 8)), (4, 4)) + 0.1 * rng.standard_normal((32, 32))
    >>> round(tw.unit_cell_snr_db(img, (8, 8)))  # cell variance 0.8 over noise 0.01
    19
    """
    img = np.asarray(getattr(image, "data", image), float)
    avg = unit_cell_average(img, cell_px)
    n = img.size // (cell_px[0] * cell_px[1])
    if n < 2:
        raise ValueError("need at least two unit cells to separate signal from noise")
    var_noise = np.var(img - avg) * n / (n - 1)
    var_signal = np.var(avg) - var_noise / n
    if var_signal <= 0:
        return -np.inf
    return float(10 * np.log10(var_signal / var_noise))


@hyperspy_progressbar
def shot_noise_snr_db(s, mask, method: str = "halves", seed: int = 0,
                      show_progressbar: bool | None = None) -> float:
    """Shot-noise SNR [dB] of the image ``D m`` (Eq 2) that a detector mask makes.

    ``SNR = 10 log10(var_signal / var_noise)``: ``var_noise`` is the mean over scan
    positions of the counting-noise variance of an image pixel, ``var_signal`` the
    variance of the noise-free image over the scan.

    - ``method="halves"``: the counts are split into two binomial halves ``A``, ``B``
      (independent Poisson at half the dose; :func:`tdm_widgets.cross_validation.thinned_halves`).
      ``var(Am - Bm)`` over the scan is the noise variance of the full image and
      ``4 cov(Am, Bm)`` its signal variance.
    - ``method="poisson"``: the noise variance of pixel ``i`` is ``sum_k m_k^2 D_ik``
      (Poisson, each count its own variance); the signal variance is ``var(D m)``
      less its mean.

    The mask is used as given (a fixed detector): a mask fitted to the same data
    (``pcc_mask``) correlates weakly with its noise, which both methods count as
    signal.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data of integer counts ``(scan_y, scan_x, det_y, det_x)``; float data are
        taken as noise-free intensities (a simulation) and give ``inf`` with a
        warning.
    mask : array_like
        ``(det_y, det_x)`` detector weights (a binary annulus, a TDM mask).
    method : {"halves", "poisson"}
        Noise from two binomial halves of the counts, or from Poisson statistics.
    seed : int
        Seed of the binomial split (``"halves"``).
    show_progressbar : bool, optional
        Progress bar for long passes.

    Returns
    -------
    float
        [dB]; ``inf`` for noise-free data, ``-inf`` when no signal variance is left.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> rng = np.random.default_rng(1)
    >>> lam = 50 * (1.5 + np.sin(np.arange(16) / 2))[:, None, None, None] * np.ones((16, 8, 4, 4))
    >>> counts = rng.poisson(lam).astype(np.uint16)
    >>> mask = np.ones((4, 4))
    >>> round(tw.shot_noise_snr_db(counts, mask, method="poisson"))  # truth 24.0 dB
    24
    """
    from ..core.apply import apply_masks
    from ..core.blocks import computed
    from ..cross_validation import thinned_halves
    from ..signals import as_array, unwrap

    data, _, _ = unwrap(s)
    m = as_array(mask, "mask", ndim_options=(2,))
    if m.shape != data.shape[2:]:
        raise ValueError(f"mask must have the detector shape {data.shape[2:]}; got {m.shape}")
    if method not in ("halves", "poisson"):
        raise ValueError(f"method must be 'halves' or 'poisson'; got {method!r}")
    if np.dtype(data.dtype).kind not in "ui":
        warnings.warn(f"shot_noise_snr_db: the data are {data.dtype}, not counts; taken as "
                      "noise-free intensities (SNR unbounded). Add noise with "
                      "tdm_widgets.add_poisson_noise to measure a dose.", stacklevel=2)
        return float("inf")
    if method == "halves":
        a, b = thinned_halves(data, seed)
        ia = computed(apply_masks(a, m, progress=show_progressbar))
        ib = computed(apply_masks(b, m, progress=show_progressbar))
        var_noise = float(np.var(ia - ib))
        var_signal = 4.0 * float(np.mean((ia - ia.mean()) * (ib - ib.mean())))
    else:
        img, noise = computed(apply_masks(data, np.stack([m, m * m]), progress=show_progressbar))
        var_noise = float(noise.mean())
        var_signal = float(np.var(img)) - var_noise
    if var_noise == 0:
        return float("inf")
    if var_signal <= 0:
        return -np.inf
    return float(10 * np.log10(var_signal / var_noise))
