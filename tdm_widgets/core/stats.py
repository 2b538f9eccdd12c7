"""Column statistics with an explicit notion of zero variance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Multiple of the input's machine epsilon under which a column is round-off.
ROUNDOFF_FACTOR = 8.0


@dataclass
class ColumnStats:
    """Per-detector-pixel statistics over the scan (or over a region of it).

    Attributes
    ----------
    n : int
        Scan positions used.
    mean, std : ndarray
        ``(det_y, det_x)`` mean and population standard deviation.
    valid : ndarray
        ``(det_y, det_x)`` bool: the pixel varies beyond round-off.
    """

    n: int
    mean: np.ndarray
    std: np.ndarray
    valid: np.ndarray

    @property
    def n_zero_variance(self) -> int:
        """Number of detector pixels treated as constant (weight 0)."""
        return int(self.valid.size - np.count_nonzero(self.valid))


#: Fraction of the detector's brightest pixels left out of the bright level ``B``
#: of :func:`roundoff_tolerance` (hot pixels up to this fraction do not move it).
BRIGHT_QUANTILE = 1.0 - 1.0 / 32


def roundoff_tolerance(mean: np.ndarray, var: np.ndarray, dtype) -> np.ndarray:
    """Per-pixel standard deviation below which variation is round-off, not signal.

    The precision of the data, pixel by pixel, is the largest of

    - storage: ``eps(dtype) |mean|`` for float data (each value is rounded relative to
      itself), and the format's smallest step (the float16 subnormal 6e-8) near 0;
    - computation: a float simulation (abTEM computes in float32, whatever it stores)
      rounds the *amplitudes* relative to the brightest of the pattern, so an intensity
      ``I`` carries about ``eps (2 sqrt(I B) + eps B)``, with ``B`` the bright level
      (the :data:`BRIGHT_QUANTILE` quantile of the pixel means, so a few hot pixels,
      even at 1e20, do not raise it);
    - accumulation: float64 sums about each pixel's own shift, ``eps64 sqrt(mean^2 +
      var)`` of that pixel alone.

    Integer counts are exact: only the accumulation term applies. The tolerance is
    :data:`ROUNDOFF_FACTOR` times the largest term.

    Parameters
    ----------
    mean, var : ndarray
        ``(q,)`` per-pixel mean and variance [data units].
    dtype : numpy.dtype
        Stored dtype of the data.

    Returns
    -------
    ndarray
        ``(q,)`` tolerance on the standard deviation [data units].

    Examples
    --------
    >>> roundoff_tolerance(np.array([1.0, 0.0]), np.array([0.1, 0.0]), np.float32) > 0
    array([ True,  True])
    """
    dtype = np.dtype(dtype)
    acc = np.finfo(np.float64).eps * np.sqrt(mean**2 + var)
    if dtype.kind != "f":
        return ROUNDOFF_FACTOR * acc
    info = np.finfo(dtype)
    eps = float(info.eps)
    comp = float(np.finfo(np.float32).eps) if dtype.itemsize <= 4 else eps
    bright = float(np.quantile(np.abs(mean), BRIGHT_QUANTILE, method="lower")) \
        if mean.size else 0.0
    terms = (acc, eps * np.abs(mean), float(info.smallest_subnormal),
             comp * (2 * np.sqrt(np.abs(mean) * bright) + comp * bright))
    return ROUNDOFF_FACTOR * np.maximum.reduce(np.broadcast_arrays(*terms))


def finish_stats(n: int, mean: np.ndarray, m2: np.ndarray, det_shape, dtype
                 ) -> ColumnStats:
    """Turn accumulated moments into :class:`ColumnStats`.

    A pixel is constant when its standard deviation is within
    :func:`roundoff_tolerance` (the data's own precision at that pixel).

    Raises
    ------
    ValueError
        If the data holds NaN or inf, or if no pixel varies over the scan.
    """
    bad = ~(np.isfinite(mean) & np.isfinite(m2))
    if bad.any():
        raise ValueError(
            f"data contains NaN or inf values at {int(bad.sum())} of {bad.size} detector "
            "pixels; replace them (e.g. with a dead-pixel mask) before computing masks")
    var = np.maximum(m2 / n, 0.0)
    std = np.sqrt(var)
    valid = std > roundoff_tolerance(mean, var, dtype)
    if not valid.any():
        raise ValueError(
            "data has no variation over the scan beyond round-off (every detector pixel "
            "is constant, e.g. a vacuum scan, or counts at a dose too low to register an "
            "electron): a template cannot be correlated with it")
    return ColumnStats(n=int(n), mean=mean.reshape(det_shape), std=std.reshape(det_shape),
                       valid=valid.reshape(det_shape))
