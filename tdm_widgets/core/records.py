"""What every result records, in plain Python shared by all layers (no HyperSpy): the
names and units of the axes of 4D data, and the provenance of a result.

The signal layer and ``simulate`` both build their signals from these, so loaded and
simulated data carry the same axes, and both record where a result came from the same
way (parameters, with arrays reduced to their shape, dtype and checksum).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib

import numpy as np

from .._version import __version__
from .blocks import computed

#: Axis names of the scan (y, x) [angstrom] and of the detector (ky, kx) [mrad].
SCAN_AXES = ("y", "x")
DETECTOR_AXES = ("ky", "kx")
SCAN_UNITS = "Å"
DETECTOR_UNITS = "mrad"


def axes_4d(shape, scan_step_A=None, mrad_per_px=None, center_px=None) -> list[dict]:
    """HyperSpy axis dictionaries of 4D data ``(scan_y, scan_x, det_y, det_x)``, in
    array order.

    Parameters
    ----------
    shape : tuple of int
        The 4D shape.
    scan_step_A : tuple of float, optional
        (y, x) scan step [angstrom]; scan axes in px (no units) if None.
    mrad_per_px : tuple of float, optional
        (y, x) detector pixel size [mrad]; detector axes in px if None.
    center_px : tuple of float, optional
        (y, x) detector pixel of the optical axis (0 mrad); ``(det_y // 2, det_x //
        2)`` if None, the FFT convention of simulated patterns.

    Examples
    --------
    >>> [(a["name"], a["units"], a["offset"]) for a in axes_4d((4, 4, 5, 5), (0.2, 0.2),
    ...                                                        (2.0, 2.0))][1:3]
    [('x', 'Å', 0.0), ('ky', 'mrad', -4.0)]
    """
    sy, sx, dy, dx = shape
    center = (dy // 2, dx // 2) if center_px is None else center_px
    axes = []
    for name, size, step in zip(SCAN_AXES, (sy, sx), (None, None) if scan_step_A is None
                                else scan_step_A):
        ax = {"name": name, "size": int(size), "navigate": True}
        if step is not None:
            ax.update(scale=float(step), offset=0.0, units=SCAN_UNITS)
        axes.append(ax)
    for name, size, step, c in zip(DETECTOR_AXES, (dy, dx), (None, None) if mrad_per_px
                                   is None else mrad_per_px, center):
        ax = {"name": name, "size": int(size), "navigate": False}
        if step is not None:
            ax.update(scale=float(step), offset=-float(c) * float(step), units=DETECTOR_UNITS)
        axes.append(ax)
    return axes


def array_record(a) -> dict:
    """What provenance keeps of an array: shape, dtype, non-zero count and a sha256
    checksum of its bytes (not the array itself).

    Examples
    --------
    >>> array_record(np.zeros((2, 3)))["shape"]
    [2, 3]
    """
    a = np.ascontiguousarray(computed(a))
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "nonzero": int(np.count_nonzero(a)),
            "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def packed_bits(a) -> dict:
    """A boolean array kept whole but small in provenance (a reference region): its
    shape and its bits, packed eight to a byte, as base64 text.

    Examples
    --------
    >>> region = np.zeros((3, 5), bool); region[1, 2:] = True
    >>> bool(np.array_equal(unpacked_bits(packed_bits(region)), region))
    True
    """
    a = np.asarray(a, bool)
    return {"shape": list(a.shape),
            "bits": base64.b64encode(np.packbits(a.ravel()).tobytes()).decode("ascii")}


def unpacked_bits(record) -> np.ndarray:
    """The boolean array of a :func:`packed_bits` record."""
    shape = tuple(int(n) for n in record["shape"])
    packed = np.frombuffer(base64.b64decode(record["bits"]), np.uint8)
    return np.unpackbits(packed, count=int(np.prod(shape))).astype(bool).reshape(shape)


def recorded(value):
    """``value`` with every array in it (also inside dicts) replaced by its
    :func:`array_record`."""
    if isinstance(value, np.ndarray) or (hasattr(value, "dask") and hasattr(value, "shape")):
        return array_record(value)
    if isinstance(value, dict):
        return {k: recorded(v) for k, v in value.items()}
    return value


def provenance_record(operation: str, source: dict | None = None, **parameters) -> dict:
    """The provenance of a result: operation, package version, time, source and
    parameters (arrays recorded by :func:`array_record`, so a saved file stays small
    however large the scan).

    Examples
    --------
    >>> meta = provenance_record("pcc_mask", template=np.eye(3))
    >>> meta["operation"], sorted(meta["parameters"]["template"])
    ('pcc_mask', ['dtype', 'nonzero', 'sha256', 'shape'])
    """
    return {"operation": operation, "package": "tdm_widgets", "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": dict(source or {}), "parameters": recorded(parameters)}
