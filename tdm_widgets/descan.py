"""Descan: measure the bright-field disc centre at every scan position, fit a smooth
field across the scan (from the data or from a vacuum reference), and correct it on the
fly in every streaming pass."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np

from .core.blocks import computed, map_scan
from .core.corrections import CorrectedData
from .core.descan import DescanFit, disc_centres, disc_window, fit_field
from .core.disk import BFDisk, find_bf_disk
from .core.moments import mean_pattern
from .core.progress import hyperspy_progressbar
from .signals import CORRECTIONS, unwrap

logger = logging.getLogger(__name__)

#: An uncorrected descan larger than this across the scan [detector px] gives a warning.
DESCAN_WARN_PX = 0.3


@dataclass
class Descan:
    """A measured descan, from :func:`measure_descan`.

    Parameters
    ----------
    measured_px : ndarray
        ``(scan_y, scan_x, 2)`` disc centre measured at every position of the scan it
        was measured on (the data or the reference) [detector px].
    fit : DescanFit
        The polynomial field fitted to it.
    center_px : ndarray
        ``(scan_y, scan_x, 2)`` fitted centre on the data's scan [detector px].
    reference_center_px : tuple of float
        Where the correction puts every disc: the mean of ``center_px``.
    shift_px : ndarray
        ``center_px - reference_center_px``: the shift the correction undoes.
    source : str
        ``"data"`` or ``"reference"`` (a vacuum scan).

    Attributes
    ----------
    range_px : float
        How far the disc centre moves across the scan [detector px].

    Examples
    --------
    >>> yy, xx = np.indices((24, 24))
    >>> frames = np.array([[100.0 * (np.hypot(yy - 12 - 0.2 * i, xx - 12 - 0.1 * j) < 6) + 1
    ...                     for j in range(8)] for i in range(6)])
    >>> s = tw.from_array(frames)
    >>> disk = tw.bf_disk(s, 20, check_descan=False, show_progressbar=False)
    >>> d = tw.measure_descan(s, disk, show_progressbar=False)
    >>> d.source, d.shift_px.shape, round(d.range_px, 1)
    ('data', (6, 8, 2), 1.2)
    """

    measured_px: np.ndarray
    fit: DescanFit
    center_px: np.ndarray
    reference_center_px: tuple[float, float]
    shift_px: np.ndarray
    source: str

    @property
    def range_px(self) -> float:
        """How far the disc centre moves across the scan [detector px]."""
        return float(np.hypot(*np.ptp(self.shift_px.reshape(-1, 2), axis=0)))


def _uncorrected(s):
    """The data with its bad-pixel correction but without any descan correction."""
    data, cal, src = unwrap(s)
    if isinstance(data, CorrectedData):
        corr = data.correction.without_descan()
        data = data.with_correction(corr) if corr.active else data.raw
    return data, cal, src


def _disk_of(data, disk, progress):
    if disk is None:
        return find_bf_disk(mean_pattern(data, progress))
    if not isinstance(disk, BFDisk) or disk.levels is None:
        raise TypeError("disk must be a BFDisk from tdm_widgets.bf_disk (with its "
                        f"intensity levels); got {disk!r}")
    return disk


def _window(data, disk, margin_px):
    margin = max(8.0, 0.5 * disk.radius_px) if margin_px is None else float(margin_px)
    return disc_window(data.shape[2:], disk.center_px, disk.radius_px, margin)


def _level(disk: BFDisk) -> float:
    """A quarter of the way from background to disc intensity."""
    return disk.levels[0] + 0.25 * (disk.levels[1] - disk.levels[0])


@hyperspy_progressbar
def measure_descan(s, disk: BFDisk | None = None, order: int = 1, reference=None,
                   margin_px: float | None = None, show_progressbar: bool | None = None
                   ) -> Descan:
    """Bright-field disc centre at every scan position (one streaming pass) and a
    smooth polynomial field fitted across the scan.

    The centre of a pattern is the centroid of the pixels (3 x 3 averaged) above a
    quarter of the way from background to disc intensity (from ``disk``), in a box
    around the disc grown by ``margin_px``; the fit averages the remaining
    atomic-scale signal out.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data; stored bad pixels are interpolated, a stored descan is ignored.
    disk : BFDisk, optional
        From :func:`tdm_widgets.bf_disk`; found from the mean pattern if None.
    order : int
        Polynomial order of the field in the scan coordinates (1: a plane).
    reference : hyperspy.signals.Signal2D or ndarray, optional
        A vacuum (or thin-area) scan with the same scan settings: the field is
        measured on it, in scan coordinates scaled to [-1, 1], and evaluated on the
        scan of ``s``.
    margin_px : float, optional
        How far a disc may move [detector px]; ``max(8, radius / 2)`` if None.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    Descan
        Measured and fitted centres and the shift to undo [detector px].

    Examples
    --------
    >>> d = tdm_widgets.measure_descan(s, tdm_widgets.bf_disk(s, 23.5))  # doctest: +SKIP
    >>> tdm_widgets.correct_descan(s, d)                                  # doctest: +SKIP
    """
    data, _, _ = _uncorrected(s)
    meas_data = data if reference is None else _uncorrected(reference)[0]
    if meas_data.shape[2:] != data.shape[2:]:
        raise ValueError(f"reference has detector shape {meas_data.shape[2:]}; the data "
                         f"has {data.shape[2:]}")
    disk = _disk_of(meas_data, disk, show_progressbar)
    window = _window(meas_data, disk, margin_px)
    level = _level(disk)
    measured = np.asarray(computed(map_scan(
        meas_data, partial(disc_centres, window=window, level=level), 2,
        progress=show_progressbar, desc="descan")))
    fit = fit_field(measured, order)
    centre = fit.evaluate(data.shape[:2])
    ref = centre.reshape(-1, 2).mean(axis=0)
    out = Descan(measured, fit, centre, (float(ref[0]), float(ref[1])), centre - ref,
                 "data" if reference is None else "reference")
    logger.info("measure_descan: the disc moves %.2f px across the scan (order %d fit, "
                "rms residual %.2f px)", out.range_px, order, fit.rms_residual_px)
    return out


def correct_descan(s, descan: Descan | None, subpixel: bool = True):
    """Store a descan correction on a signal (``metadata.TDM_corrections.descan_px``).

    Every later pass moves each pattern back by its shift before its kernel (bilinear
    with ``subpixel``, else by whole pixels); results record the shift in
    ``metadata.TDM.parameters.corrections``. ``None`` removes it. The data and the
    file are untouched.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D signal.
    descan : Descan or None
        From :func:`measure_descan`; None removes a stored correction.
    subpixel : bool
        Bilinear interpolation of each pattern, or whole-pixel shifts.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``s`` itself, with the shift [detector px] stored in its metadata.

    Examples
    --------
    >>> tdm_widgets.correct_descan(s, tdm_widgets.measure_descan(s))  # doctest: +SKIP
    """
    if not hasattr(s, "metadata"):
        raise TypeError("correct_descan needs a HyperSpy signal (it stores the shift in "
                        f"its metadata); got {type(s).__name__}")
    if descan is None:
        if s.metadata.has_item(f"{CORRECTIONS}.descan_px"):
            del s.metadata[CORRECTIONS].descan_px
        return s
    shift = np.asarray(descan.shift_px, np.float64)
    if shift.shape != tuple(s.data.shape[:2]) + (2,):
        raise ValueError(f"descan has scan shape {shift.shape[:2]}; the signal's scan is "
                         f"{tuple(s.data.shape[:2])}")
    s.metadata.set_item(f"{CORRECTIONS}.descan_px", shift.copy())
    s.metadata.set_item(f"{CORRECTIONS}.descan_subpixel", bool(subpixel))
    return s


def descan_grid(scan_shape, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Scan rows and columns ``(iy, ix)`` of the ``n`` x ``n`` grid (at most)
    :func:`check_descan` samples, spread from edge to edge."""
    sy, sx = scan_shape
    return (np.unique(np.linspace(0, sy - 1, min(n, sy)).round().astype(int)),
            np.unique(np.linspace(0, sx - 1, min(n, sx)).round().astype(int)))


def check_descan(data, disk: BFDisk, patterns: np.ndarray, stacklevel: int = 3) -> float:
    """Warn when the disc centre moves more than :data:`DESCAN_WARN_PX` across the
    scan, measured on the patterns of the grid :func:`descan_grid` (read with the mean
    pattern, :func:`~.core.moments.mean_and_grid_patterns`: no pass of its own).

    Returns
    -------
    float
        The movement of a plane fitted to the sampled centres [detector px].
    """
    if disk.levels is None or patterns.shape[0] * patterns.shape[1] < 4:
        return 0.0
    level = _level(disk)
    centres = disc_centres(patterns, _window(data, disk, None), level)
    try:
        field = fit_field(centres, 1).evaluate(patterns.shape[:2])
    except ValueError:
        return 0.0
    move = float(np.hypot(*np.ptp(field.reshape(-1, 2), axis=0)))
    if move > DESCAN_WARN_PX:
        warnings.warn(
            f"the bright-field disc moves {move:.2f} detector px across the scan "
            "(descan) and no descan correction is set: it costs contrast and dominates "
            "centre of mass; correct it with tdm_widgets.correct_descan(s, "
            "tdm_widgets.measure_descan(s, disk))", UserWarning, stacklevel=stacklevel)
    return move
