"""Signal-to-noise ratio of a periodic image."""

from __future__ import annotations

import numpy as np


def unit_cell_average(image, cell_px: tuple[int, int]) -> np.ndarray:
    """The image folded onto one unit cell of ``cell_px`` (rows, cols) pixels (the
    image must hold whole cells) and tiled back to the image size."""
    img = np.asarray(getattr(image, "data", image), float)
    cy, cx = cell_px
    ny, nx = img.shape
    if ny % cy or nx % cx:
        raise ValueError(f"image {img.shape} does not hold whole cells of {cell_px} px")
    cell = img.reshape(ny // cy, cy, nx // cx, cx).mean(axis=(0, 2))
    return np.tile(cell, (ny // cy, nx // cx))


def snr_db(image, cell_px: tuple[int, int]) -> float:
    """SNR [dB] of a periodic image: signal = unit-cell average, noise = residual.

    ``SNR = 10 log10(var(signal) / var(residual))``, with the residual variance
    corrected for the part of the noise that survives the averaging over ``n`` cells
    (``var_noise = var(residual) * n / (n - 1)``) and the signal variance for the
    noise left in it (``var_signal = var(average) - var_noise / n``).

    Parameters
    ----------
    image : array_like
        2D image holding whole unit cells.
    cell_px : tuple of int
        Unit-cell size (rows, cols) [px].
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
