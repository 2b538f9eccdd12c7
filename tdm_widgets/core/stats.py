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


def roundoff_epsilon(dtype) -> float:
    """Relative size of one unit of round-off for data of ``dtype``.

    Float data carries its own precision; integer counts are exact, so only the
    float64 accumulation error remains.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return float(np.finfo(dtype).eps)
    return float(np.finfo(np.float64).eps)


def finish_stats(n: int, mean: np.ndarray, m2: np.ndarray, det_shape, dtype
                 ) -> ColumnStats:
    """Turn accumulated moments into :class:`ColumnStats`.

    A pixel is constant when its standard deviation is below
    ``ROUNDOFF_FACTOR * eps(dtype) * |mean|`` (the precision of its own stored
    values) or below ``ROUNDOFF_FACTOR * eps(float64) * scale``, with ``scale`` the
    largest RMS intensity of any pixel (the precision of the accumulation): variation
    that small is round-off, not signal.

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
    scale = float(np.sqrt(np.max(mean**2 + var))) if mean.size else 0.0
    tol = ROUNDOFF_FACTOR * np.maximum(roundoff_epsilon(dtype) * np.abs(mean),
                                       np.finfo(np.float64).eps * scale)
    valid = std > tol
    if not valid.any():
        raise ValueError(
            "data has no variation over the scan beyond round-off (every detector pixel "
            "is constant, e.g. a vacuum scan): a template cannot be correlated with it")
    return ColumnStats(n=int(n), mean=mean.reshape(det_shape), std=std.reshape(det_shape),
                       valid=valid.reshape(det_shape))
