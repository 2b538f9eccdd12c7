"""Bad detector pixels (dead, hot, stuck) from the data's own statistics, and the mask
that makes every function exclude or interpolate them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy import ndimage, stats

from .core.blocks import reduce_scan
from .core.moments import first_pattern
from .core.progress import hyperspy_progressbar
from .signals import CORRECTIONS, unwrap

logger = logging.getLogger(__name__)


@dataclass
class BadPixels:
    """Bad detector pixels found by :func:`find_bad_pixels`.

    Parameters
    ----------
    mask : ndarray of bool
        ``(det_y, det_x)``: every bad pixel (dead | hot | stuck | nonfinite).
    dead, hot, stuck, nonfinite : ndarray of bool
        The classes: no or far too little signal where the neighbours have some; far
        more than the neighbours; one constant non-zero value over the whole scan;
        NaN or inf somewhere.
    report : dict
        Counts per class, the thresholds used and the (y, x) pixels of each class;
        also ``"saturated"`` pixels (constant at the counter's full well), which are
        reported but not in ``mask``.

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(50, (8, 8, 16, 16)).astype(np.uint16)
    >>> data[..., 3, 4] += 2000                        # a hot pixel
    >>> data[..., 9, 9] = 0                            # a dead one
    >>> bp = tw.find_bad_pixels(data, show_progressbar=False)
    >>> bp.report["counts"]
    {'dead': 1, 'hot': 1, 'stuck': 0, 'nonfinite': 0, 'total': 2, 'saturated': 0}
    >>> np.argwhere(bp.hot).tolist(), np.argwhere(bp.dead).tolist()
    ([[3, 4]], [[9, 9]])
    """

    mask: np.ndarray
    dead: np.ndarray
    hot: np.ndarray
    stuck: np.ndarray
    nonfinite: np.ndarray
    report: dict = field(default_factory=dict)


#: Patterns converted to float64 at a time inside a block: the temporaries stay a few
#: MB however large the chunk (whole-block float64 copies took 25x a chunk per thread).
SUMS_PATTERNS = 64


def _pixel_sums(block, shift):
    """Per-pixel n finite, sums about ``shift``, min and max of one block."""
    by, bx, dy, dx = block.shape
    flat = np.asarray(block).reshape(by * bx, dy * dx)
    out = None
    for i in range(0, len(flat), SUMS_PATTERNS):
        x = flat[i:i + SUMS_PATTERNS].astype(np.float64)
        fin = np.isfinite(x)
        d = np.where(fin, x - shift, 0.0)
        part = (fin.sum(axis=0), d.sum(axis=0), (d * d).sum(axis=0),
                np.where(fin, x, np.inf).min(axis=0), np.where(fin, x, -np.inf).max(axis=0),
                (~fin).any(axis=0))
        out = part if out is None else _merge(out, part)
    return out


def _merge(a, b):
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], np.minimum(a[3], b[3]),
            np.maximum(a[4], b[4]), a[5] | b[5])


def _second_brightest_neighbour(m: np.ndarray) -> np.ndarray:
    """The second-largest of each pixel's 8 neighbours (the detector edge repeated)."""
    pad = np.pad(m, 1, mode="edge")
    dy, dx = m.shape
    ring = np.stack([pad[1 + i:1 + i + dy, 1 + j:1 + j + dx]
                     for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j])
    return np.partition(ring, 6, axis=0)[6]


@hyperspy_progressbar
def find_bad_pixels(s, hot_sigma: float = 10.0, hot_ratio: float = 1.5,
                    dead_ratio: float = 0.2, dead_min_counts: float = 20.0,
                    neighbourhood_px: int = 5, show_progressbar: bool | None = None
                    ) -> BadPixels:
    """Dead, hot and stuck detector pixels from the data's own statistics (one pass).

    Each pixel's mean over the scan is compared with the median of its
    ``neighbourhood_px`` x ``neighbourhood_px`` neighbourhood (``local``); the spread
    ``scale`` is 1.4826 x the local median absolute deviation of ``mean - local``
    (at least that of the whole detector and, for counts, the Poisson error of the
    mean).

    - hot: ``mean - local > hot_sigma * scale``, ``mean > hot_ratio * local`` and
      ``mean > hot_ratio *`` the second-brightest of its 8 neighbours (an isolated pixel
      or pair, not the rim of a sharp bright-field disc);
    - dead: ``mean < dead_ratio * local`` where the neighbours collect, over the scan,
      more than ``dead_min_counts`` (so a pixel is not called dead for the zeros of a
      dark corner); a dead column is found pixel by pixel;
    - stuck: one constant non-zero value at every position while the neighbours vary
      (or are far darker, as hot); for integer counts only where Poisson counts could
      not be that constant by chance over the scan (a few positions of a faint pixel);
      a pixel constant at the data's largest value, which varying pixels also reach, is
      *saturated*: reported, not stuck;
    - nonfinite: NaN or inf at some position.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data (raw: corrections stored on the signal are not applied).
    hot_sigma, hot_ratio : float
        Hot-pixel thresholds [robust sd] and [x local median].
    dead_ratio : float
        Dead-pixel threshold [x local median].
    dead_min_counts : float
        Least total signal [data units summed over the scan] the neighbourhood must
        have for a dark pixel to count as dead.
    neighbourhood_px : int
        Width of the median neighbourhood [detector px], odd, at least 3.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    BadPixels
        ``(det_y, det_x)`` boolean masks per class and a ``report``.

    Examples
    --------
    >>> bp = tdm_widgets.find_bad_pixels(s)          # doctest: +SKIP
    >>> print(bp.report["counts"])                   # doctest: +SKIP
    {'dead': 33, 'hot': 14, 'stuck': 3, 'nonfinite': 0, 'total': 50}
    >>> tdm_widgets.set_bad_pixels(s, bp)            # doctest: +SKIP
    """
    for name, v in (("hot_sigma", hot_sigma), ("hot_ratio", hot_ratio),
                    ("dead_min_counts", dead_min_counts)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number; got {v}")
    if not 0 < dead_ratio < 1:
        raise ValueError(f"dead_ratio must be in (0, 1); got {dead_ratio}")
    if int(neighbourhood_px) != neighbourhood_px or neighbourhood_px < 3 or \
            neighbourhood_px % 2 == 0:
        raise ValueError(f"neighbourhood_px must be an odd integer >= 3; got "
                         f"{neighbourhood_px}")
    data, _, _ = unwrap(s, corrected=False)
    det = data.shape[2:]
    shift = first_pattern(data)
    n, s1, s2, lo, hi, nonfin = reduce_scan(data, partial(_pixel_sums, shift=shift),
                                            _merge, progress=show_progressbar,
                                            desc="bad pixels")
    nn = np.maximum(n, 1)
    mean = (shift + s1 / nn).reshape(det)
    std = np.sqrt(np.maximum(s2 / nn - (s1 / nn) ** 2, 0.0)).reshape(det)
    nonfinite = nonfin.reshape(det)
    const = (hi <= lo).reshape(det) & ~nonfinite
    size = int(neighbourhood_px)
    m = np.where(nonfinite, 0.0, mean)
    local = ndimage.median_filter(m, size=size, mode="nearest")
    resid = m - local
    scale = 1.4826 * ndimage.median_filter(np.abs(resid), size=size + 2, mode="nearest")
    floor = 1.4826 * np.median(np.abs(resid))
    counts = np.dtype(data.dtype).kind in "ui"
    npos = data.shape[0] * data.shape[1]
    if counts:
        floor = np.maximum(floor, np.sqrt(np.maximum(local, 0.0) / npos))
    scale = np.maximum(scale, floor)
    # a hot pixel also stands out from its own 8 neighbours (all but one, so pairs are
    # found): a pixel on a sharp disc edge has bright neighbours inside the disc
    hot = (resid > hot_sigma * scale) & (m > hot_ratio * local) \
        & (m > hot_ratio * _second_brightest_neighbour(m)) & ~nonfinite & ~const
    if counts:
        # sparse counts (low dose, high angles): the neighbourhood median and its spread
        # are 0, and one count in 680 frames passed the tests above. A hot pixel must
        # also be that many sigma from Poisson counts at its neighbours' mean rate
        # (never below one count in the scan), the pixel itself left out
        k = size * size
        around = (ndimage.uniform_filter(m, size=size, mode="nearest") * k - m) / (k - 1)
        rate = np.maximum(np.maximum(local, around), 1.0 / npos) * npos
        total = np.rint(np.maximum(m, 0.0) * npos)
        hot &= stats.poisson.sf(total - 1, rate) < stats.norm.sf(hot_sigma)
    signal = local * npos > dead_min_counts
    dead = ((m < dead_ratio * local) & signal) | (const & (m == 0) & signal)
    local_std = ndimage.median_filter(std, size=size, mode="nearest")
    stuck = const & (m != 0) & ((local_std > 0) | (resid > hot_sigma * scale))
    # constant at the data's largest value, which varying pixels also reach: saturated
    # (the counter's full well, e.g. 63 in a 6-bit disc), not stuck; reported only
    # (constant, so it has weight 0 in every mask anyway)
    top = hi[np.isfinite(hi)].max(initial=-np.inf)
    saturated = const & (m == top) & ((hi.reshape(det) == top) & ~const).any()
    stuck &= ~saturated
    if counts:  # not stuck if Poisson counts (rate = the value) are that constant by chance
        v = np.maximum(np.rint(m), 1.0)
        chance = npos * stats.poisson.logpmf(v, v) + np.log(m.size)
        stuck &= chance < np.log(1e-3)
    dead &= ~nonfinite
    mask = dead | hot | stuck | nonfinite
    report = {
        "counts": {"dead": int(dead.sum()), "hot": int(hot.sum()),
                   "stuck": int(stuck.sum()), "nonfinite": int(nonfinite.sum()),
                   "total": int(mask.sum()), "saturated": int(saturated.sum())},
        "thresholds": {"hot_sigma": float(hot_sigma), "hot_ratio": float(hot_ratio),
                       "dead_ratio": float(dead_ratio),
                       "dead_min_counts": float(dead_min_counts),
                       "neighbourhood_px": size},
        "pixels": {k: np.argwhere(v).tolist() for k, v in
                   (("dead", dead), ("hot", hot), ("stuck", stuck),
                    ("nonfinite", nonfinite), ("saturated", saturated))},
    }
    logger.info("find_bad_pixels: %s", report["counts"])
    return BadPixels(mask, dead, hot, stuck, nonfinite, report)


def set_bad_pixels(s, bad_pixels):
    """Store a bad-pixel mask on a signal (``metadata.TDM_corrections.bad_pixels``).

    From then on every function excludes them (weight 0 in masks) or interpolates
    them from their valid neighbours (virtual images, centre of mass, mean pattern).
    The data and the file are untouched. ``None`` removes the mask.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D signal.
    bad_pixels : BadPixels or ndarray of bool or None
        ``(det_y, det_x)``.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``s`` itself (values unchanged [data units]), with the mask stored in its
        metadata.

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(50, (8, 8, 16, 16)).astype(np.uint16)
    >>> data[..., 9, 9] = 0
    >>> s = tw.from_array(data)
    >>> s = tw.set_bad_pixels(s, tw.find_bad_pixels(s, show_progressbar=False))
    >>> int(s.metadata.TDM_corrections.bad_pixels.sum())
    1
    """
    if not hasattr(s, "metadata"):
        raise TypeError("set_bad_pixels needs a HyperSpy signal (it stores the mask in "
                        f"its metadata); got {type(s).__name__}")
    if bad_pixels is None:
        if s.metadata.has_item(f"{CORRECTIONS}.bad_pixels"):
            del s.metadata[CORRECTIONS].bad_pixels
        return s
    mask = np.asarray(getattr(bad_pixels, "mask", bad_pixels))
    det = s.data.shape[2:]
    if mask.dtype != bool or mask.shape != tuple(det):
        raise ValueError(f"bad_pixels must be a boolean mask of the detector shape "
                         f"{tuple(det)}; got {mask.dtype} {mask.shape}")
    if mask.all():
        raise ValueError("bad_pixels marks every detector pixel")
    s.metadata.set_item(f"{CORRECTIONS}.bad_pixels", mask.copy())
    return s
