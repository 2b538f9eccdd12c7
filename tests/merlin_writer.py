"""A small writer of Quantum Detectors Merlin ``.mib`` files (with their ``.hdr``), for
tests and benchmarks: 1/6-bit (``U08``), 12-bit (``U16``) and 24-bit (``U32``) counter
depths, single-chip (384-byte frame headers) layout.

The layout follows the real 6-bit acquisition in ``../shared/data/merlin/``: every frame
is a 384-byte ASCII header (``MQ1,<frame>,00384,01,<width>,<height>,<U08|U16|U32>,
   1x1,01,<date time>,<exposure s>,...,MQ1A,<ISO time>Z,<exposure>ns,<counter depth>,``
padded with NUL) followed by the frame's counts, big-endian, row by row. The ``.hdr``
holds ``Counter Depth (number)`` and ``Frames in Acquisition (Number)``.

The Merlin stores detector rows bottom-up: RosettaSciIO flips them on reading
(``np.flip(data, axis=-2)``), so the writer stores each frame flipped and a file
written from ``data`` reads back as ``data``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

HEADER_BYTES = 384
#: counter depth -> (header dtype code, big-endian storage dtype)
DEPTHS = {1: ("U08", ">u1"), 6: ("U08", ">u1"), 12: ("U16", ">u2"), 24: ("U32", ">u4")}
_DACS = ("068,511,000,000,000,000,000,000,100,255,100,125,100,100,080,100,090,030,128,"
         "004,255,126,128,174,172,511,511")
_THRESHOLDS = ("4.000000E+1,5.110000E+2,0.000000E+0,0.000000E+0,0.000000E+0,"
               "0.000000E+0,0.000000E+0,0.000000E+0")
_START = datetime(2026, 11, 23, 10, 0, 0)


def frame_dtype(det_shape, counter_depth: int) -> np.dtype:
    """Structured dtype of one frame on disk: header bytes then big-endian counts."""
    return np.dtype([("header", f"S{HEADER_BYTES}"),
                     ("data", DEPTHS[counter_depth][1], tuple(det_shape))])


def _header(index: int, det_shape, counter_depth: int, t: datetime, exposure_s: float
            ) -> bytes:
    code = DEPTHS[counter_depth][0]
    h, w = det_shape
    text = (f"MQ1,{index + 1:06d},{HEADER_BYTES:05d},01,{w:04d},{h:04d},{code},   1x1,01,"
            f"{t:%Y-%m-%d %H:%M:%S.%f},{exposure_s:.6f},0,0,0,{_THRESHOLDS},3RX,{_DACS},"
            f"MQ1A,{t:%Y-%m-%dT%H:%M:%S.%f}000Z,{round(exposure_s * 1e9)}ns,"
            f"{counter_depth},")
    return text.encode().ljust(HEADER_BYTES, b"\0")


def write_hdr(path, n_frames: int, counter_depth: int, frames_per_trigger: int = 1
              ) -> Path:
    """Write the acquisition ``.hdr`` (the fields RosettaSciIO reads)."""
    lines = ["HDR,",
             f"Time and Date Stamp (day, mnth, yr, hr, min, s):\t{_START:%d/%m/%Y %H:%M:%S}",
             "Chip ID:\tW000_A00, - , - , - ",
             "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX):\tMedipix 3RX",
             "Assembly Size (NX1, 2X2):\t   1x1", "Chip Mode  (SPM, CSM, CM, CSCM):\tSPM",
             f"Counter Depth (number):\t{counter_depth}", "Gain:\tSLGM",
             "Active Counters:\tCounter 0", f"Thresholds (keV):\t{_THRESHOLDS}",
             "Acquisition Type (Normal, Th_scan, Config):\tNormal",
             f"Frames in Acquisition (Number):\t{n_frames}",
             f"Frames per Trigger (Number):\t{frames_per_trigger}",
             "Trigger Start (Positive, Negative, Internal):\tRising Edge",
             "Trigger Stop (Positive, Negative, Internal):\tInternal",
             "Readout System:\tMerlin Quad", "End\t"]
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_mib(path, data, counter_depth: int, exposure_s: float = 1e-3,
              flyback_s: float = 0.05, hdr: bool = True) -> Path:
    """Write 4D counts ``(scan_y, scan_x, det_y, det_x)`` as a Merlin ``.mib``.

    Parameters
    ----------
    path : str or Path
        The ``.mib`` file; the ``.hdr`` goes next to it.
    data : array_like
        Anything with a 4D ``shape`` whose iteration yields scan rows ``(scan_x, det_y,
        det_x)`` of non-negative integers below ``2**counter_depth`` (a numpy or dask
        array, or a generator object with ``shape`` for files larger than memory).
    counter_depth : {1, 6, 12, 24}
        Merlin counter depth [bit]; 12 and 24 bit store big-endian uint16 / uint32.
    exposure_s : float
        Frame time [s] in the headers.
    flyback_s : float
        Extra time [s] before each scan row's first frame (as on a real scan; RosettaSciIO
        infers the row length from it when no navigation shape is given).
    hdr : bool
        Also write the ``.hdr``.
    """
    sy, sx, dy, dx = data.shape
    dt = frame_dtype((dy, dx), counter_depth)
    top = 2 ** counter_depth
    path = Path(path)
    row = np.empty(sx, dt)
    with open(path, "wb") as f:
        for y, frames in enumerate(data):
            frames = np.asarray(frames)
            if frames.shape != (sx, dy, dx):
                raise ValueError(f"scan row {y} has shape {frames.shape}; expected "
                                 f"{(sx, dy, dx)}")
            if frames.min() < 0 or frames.max() >= top:
                raise ValueError(f"counts of row {y} outside 0..{top - 1} "
                                 f"({counter_depth}-bit)")
            for x in range(sx):
                i = y * sx + x
                t = _START + timedelta(seconds=i * exposure_s + (y + 1) * flyback_s)
                row["header"][x] = _header(i, (dy, dx), counter_depth, t, exposure_s)
            row["data"] = frames[:, ::-1]  # the Merlin stores rows bottom-up
            row.tofile(f)
    if hdr:
        write_hdr(path.with_suffix(".hdr"), sy * sx, counter_depth)
    return path


def read_mib_plain(path, det_shape, counter_depth: int) -> np.ndarray:
    """A plain numpy read of every frame ``(n, det_y, det_x)`` as stored (rows
    bottom-up, big-endian), independent of RosettaSciIO."""
    return np.fromfile(path, dtype=frame_dtype(det_shape, counter_depth))["data"]
