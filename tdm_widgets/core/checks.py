"""Shape and value checks at the public boundary, with messages naming the argument."""

from __future__ import annotations

import numpy as np


def check_data(data) -> None:
    """Require 4D data ``(scan_y, scan_x, det_y, det_x)`` of a real dtype."""
    shape = getattr(data, "shape", None)
    if shape is None or len(shape) != 4:
        got = "no shape" if shape is None else f"{len(shape)}D shape {tuple(shape)}"
        raise ValueError(
            f"data must be 4D (scan_y, scan_x, det_y, det_x); got {got}")
    if np.dtype(data.dtype).kind not in "biuf":
        raise TypeError(f"data must be real-valued; got dtype {data.dtype}")
    if min(shape) < 1:
        raise ValueError(f"data has an empty axis: shape {tuple(shape)}")


def _stack(x, name: str, shape, what: str) -> tuple[np.ndarray, bool]:
    """A 2D array or a stack of them as ``(k, *shape)`` float64, and whether a single
    one was given; raises naming ``name`` for a wrong dtype, shape, empty stack or
    NaN/inf."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real-valued; got dtype {a.dtype}")
    single = a.ndim == 2
    if single:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != tuple(shape):
        raise ValueError(
            f"{name} must have the {what} shape {tuple(shape)} or be a stack "
            f"(k, {shape[0]}, {shape[1]}); got shape {np.shape(x)}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} stack is empty (k = 0)")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return a, single


def templates_stack(template, scan_shape) -> tuple[np.ndarray, bool]:
    """Validate a template or stack; return ``(k, scan_y, scan_x)`` float64 and whether
    a single template was given."""
    return _stack(template, "template", scan_shape, "scan")


def region_mask(region, scan_shape) -> np.ndarray:
    """Validate a boolean scan-shaped region (None means the whole scan)."""
    if region is None:
        return np.ones(scan_shape, bool)
    r = np.asarray(region)
    if r.shape != tuple(scan_shape):
        raise ValueError(f"region must have the scan shape {tuple(scan_shape)}; "
                         f"got shape {r.shape}")
    if r.dtype != bool:
        raise TypeError(f"region must be a boolean array; got dtype {r.dtype}")
    if np.count_nonzero(r) < 2:
        raise ValueError(f"region must select at least two scan positions; it selects "
                         f"{np.count_nonzero(r)}")
    return r


def masks_stack(mask, det_shape) -> tuple[np.ndarray, bool]:
    """Validate a detector mask or stack; return ``(k, det_y, det_x)`` float64. A mask
    that is zero everywhere (it would make a zero image) is an error."""
    m, single = _stack(mask, "mask", det_shape, "detector")
    zero = np.flatnonzero(~m.reshape(len(m), -1).any(axis=1))
    if zero.size:
        which = "mask" if single else f"mask {', '.join(map(str, zero))} of the stack"
        raise ValueError(f"{which} is zero at every detector pixel: it would make a zero "
                         "image")
    return m, single


def detector_mask(detector_region, det_shape) -> np.ndarray | None:
    """Validate a boolean detector-shaped region (None means the whole detector)."""
    if detector_region is None:
        return None
    r = np.asarray(detector_region)
    if r.shape != tuple(det_shape) or r.dtype != bool:
        raise ValueError(
            f"detector_region must be a boolean array of the detector shape "
            f"{tuple(det_shape)} or (inner_mrad, outer_mrad); got {r.dtype} {r.shape}")
    if not r.any():
        raise ValueError("detector_region selects no detector pixel")
    return r
