"""Detector geometry in calibrated units: annuli in mrad and detector regions.

The one geometry behind :func:`tdm_widgets.virtual_image`, the ``detector_region`` of
the masks and the outlines the widgets draw, so what is shown is what is computed.
"""

from __future__ import annotations

import numpy as np

from .core import geometry
from .core.disk import BFDisk
from .signals import Calibration, unwrap


def center_in_axis_units(center, cal: Calibration) -> tuple[float, float]:
    """A detector centre, (y, x) [detector px] or a :class:`BFDisk`, in the detector
    axis units of ``cal`` (mrad when calibrated); ``(0, 0)`` for None."""
    if center is None:
        return (0.0, 0.0)
    c = center.center_px if isinstance(center, BFDisk) else center
    if len(c) != 2:
        raise ValueError(f"center must be a BFDisk or (y, x) detector px; got {center}")
    return tuple(o + sc * float(v) for o, sc, v in zip(cal.det_offset, cal.det_scale, c))


def require_mrad(cal: Calibration, what: str) -> None:
    """Raise a ``ValueError`` naming the fix when the detector is not in mrad."""
    if not cal.det_mrad:
        raise ValueError(
            f"{what} needs the detector calibrated in mrad; its axes are in "
            f"{cal.det_units!r}. Use tdm_widgets.calibrate_detector(s, "
            "tdm_widgets.bf_disk(s, semiangle_mrad=...)) or from_array(..., mrad_per_px=...)")


def detector_annulus(s_or_cal, det_shape, inner_mrad, outer_mrad, center=None
                     ) -> np.ndarray:
    """Boolean annulus ``inner <= r < outer`` [mrad] on the detector of ``s``.

    Parameters
    ----------
    s_or_cal : hyperspy.signals.Signal2D or Calibration
        Signal (or its calibration) with the detector in mrad.
    det_shape : tuple of int
        ``(det_y, det_x)``.
    inner_mrad, outer_mrad : float
        Radii [mrad].
    center : BFDisk or tuple of float, optional
        Centre (y, x) [detector px]; the calibrated 0 mrad if None.

    Returns
    -------
    ndarray of bool
        ``(det_y, det_x)``.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> s = tw.from_array(np.ones((2, 2, 9, 9)), mrad_per_px=1.0)
    >>> int(detector_annulus(s, (9, 9), 0, 1.5).sum())
    9
    """
    cal = s_or_cal if isinstance(s_or_cal, Calibration) else unwrap(s_or_cal)[1]
    require_mrad(cal, "an annulus in mrad")
    if not np.isfinite(np.concatenate([cal.det_scale, cal.det_offset])).all():
        raise ValueError(f"the detector calibration is not finite (scale {cal.det_scale}, "
                         f"offset {cal.det_offset} mrad); calibrate it again with "
                         "tdm_widgets.calibrate_detector")
    if not (np.isfinite(inner_mrad) and not np.isnan(outer_mrad)
            and 0 <= inner_mrad < outer_mrad):
        raise ValueError(f"annulus needs 0 <= inner_mrad < outer_mrad (outer may be inf: "
                         f"to the detector edge), inner finite; got "
                         f"inner_mrad={inner_mrad}, outer_mrad={outer_mrad}")
    return geometry.annulus(det_shape, float(inner_mrad), float(outer_mrad),
                            cal.det_scale, cal.det_offset, center_in_axis_units(center, cal))


def resolve_detector_region(detector_region, det_shape, cal: Calibration, center=None):
    """A ``detector_region`` argument as a boolean detector mask (or None).

    Accepts None, a boolean ``(det_y, det_x)`` array, or ``(inner_mrad, outer_mrad)``.
    """
    if detector_region is None or isinstance(detector_region, np.ndarray):
        return detector_region
    if len(detector_region) == 2 and np.ndim(detector_region[0]) == 0:
        return detector_annulus(cal, det_shape, *detector_region, center=center)
    return np.asarray(detector_region)


def describe_detector_region(detector_region):
    """A JSON-friendly record of a ``detector_region`` argument for provenance."""
    if detector_region is None or isinstance(detector_region, np.ndarray):
        return detector_region
    if len(detector_region) == 2 and np.ndim(detector_region[0]) == 0:
        return [float(v) for v in detector_region]
    return np.asarray(detector_region)
