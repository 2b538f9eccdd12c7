"""Descan: the bright-field disc centre of every pattern and a smooth field across the
scan fitted to it (a polynomial in the scan coordinates)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def disc_window(det_shape, center, radius: float, margin_px: float):
    """Detector slices of the box around a disc grown by ``margin_px``."""
    m = radius + margin_px
    return tuple(slice(max(0, int(np.floor(c - m))), min(n, int(np.ceil(c + m)) + 1))
                 for c, n in zip(center, det_shape))


def disc_centres(block: np.ndarray, window, level: float) -> np.ndarray:
    """Centre of the bright-field disc of every pattern in a block [detector px]: the
    centroid of the pixels inside ``window`` whose 3 x 3 average exceeds ``level``.

    The disc's outline, not its inner intensity, sets the centre, so the atomic-scale
    redistribution of intensity inside the disc barely moves it. NaN where no pixel
    exceeds ``level``.

    Parameters
    ----------
    block : ndarray
        ``(by, bx, det_y, det_x)``.
    window : tuple of slice
        Detector box holding the disc at every position.
    level : float
        Between background and disc intensity (a quarter of the way up works at
        low counts).

    Returns
    -------
    ndarray
        ``(by, bx, 2)`` (y, x) float64.
    """
    from scipy import ndimage  # imported when used: it is slow to import

    wy, wx = window
    sub = np.asarray(block[:, :, wy, wx], np.float64)
    q = ndimage.uniform_filter(sub, size=(1, 1, 3, 3), mode="nearest") > level
    tot = q.sum(axis=(2, 3))
    ys = np.arange(wy.start, wy.stop, dtype=np.float64)
    xs = np.arange(wx.start, wx.stop, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (q.sum(axis=3) @ ys) / tot
        cx = (q.sum(axis=2) @ xs) / tot
    out = np.stack([cy, cx], axis=-1)
    out[tot <= 0] = np.nan
    return out


def _unit(n: int) -> np.ndarray:
    return np.zeros(1) if n == 1 else np.linspace(-1.0, 1.0, n)


def design(scan_shape, order: int) -> np.ndarray:
    """Monomials ``u^a v^b`` (``a + b <= order``) of the scan coordinates scaled to
    [-1, 1], ``(scan_y * scan_x, n_terms)``; the same field evaluates on any grid."""
    u, v = np.meshgrid(_unit(scan_shape[0]), _unit(scan_shape[1]), indexing="ij")
    cols = [u.ravel() ** a * v.ravel() ** b for a in range(order + 1)
            for b in range(order + 1 - a)]
    return np.column_stack(cols)


@dataclass(frozen=True)
class DescanFit:
    """A polynomial field of disc centres across the scan.

    Attributes
    ----------
    order : int
        Polynomial order (1: a plane).
    coefficients : ndarray
        ``(n_terms, 2)`` for y and x [detector px].
    rms_residual_px : float
        RMS of the measured centres about the field [detector px].
    n_used : int
        Positions used (outliers and empty windows left out).
    """

    order: int
    coefficients: np.ndarray
    rms_residual_px: float
    n_used: int

    def evaluate(self, scan_shape) -> np.ndarray:
        """The fitted centres ``(scan_y, scan_x, 2)`` on a scan of ``scan_shape``."""
        return (design(scan_shape, self.order) @ self.coefficients).reshape(
            tuple(scan_shape) + (2,))


def fit_field(centres: np.ndarray, order: int = 1) -> DescanFit:
    """Least-squares polynomial field through measured centres ``(sy, sx, 2)``, refitted
    once without the positions further than 4 robust standard deviations from it.

    Raises
    ------
    ValueError
        For an order below 0, or fewer usable positions than terms.
    """
    if int(order) != order or order < 0:
        raise ValueError(f"order must be a non-negative integer; got {order}")
    sy, sx = centres.shape[:2]
    a = design((sy, sx), int(order))
    c = centres.reshape(-1, 2)
    use = np.isfinite(c).all(axis=1)
    for _ in range(2):
        if use.sum() < a.shape[1] + 1:
            raise ValueError(f"only {int(use.sum())} scan positions show a bright-field disc; "
                             f"a descan field of order {order} needs more than {a.shape[1]}")
        coef, *_ = np.linalg.lstsq(a[use], c[use], rcond=None)
        dist = np.hypot(*(c - a @ coef).T)
        mad = 1.4826 * np.median(dist[use]) + 1e-9
        use = use & (np.nan_to_num(dist, nan=np.inf) <= 4 * mad + 0.05)
    rms = float(np.sqrt(np.mean(dist[use] ** 2)))
    return DescanFit(int(order), coef, rms, int(use.sum()))
