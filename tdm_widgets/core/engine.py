"""A stateful TDM engine: statistics and projections kept from one pass, so that a
sparse template edit reads only the patterns it touches."""

from __future__ import annotations

import numpy as np

from .apply import apply_masks
from .blocks import is_lazy
from .correlate import NORMALIZATIONS, _pass, masks_from, template_sum_of_squares
from .kernels import sparse_projection
from .validate import check_data, detector_mask, region_mask, templates_stack


class TDMEngine:
    """Masks and images for ``k`` templates, with cheap template edits.

    The constructor makes the one pass over the data (column statistics and the
    projections of every template); :meth:`edit` updates one template's projection
    from the scan positions where it changed only; :meth:`masks` needs no pass;
    :meth:`images` makes one pass.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``.
    templates : array_like
        ``(k, scan_y, scan_x)``.
    region : ndarray of bool, optional
        Positions whose statistics define the masks (a partial template).
    """

    def __init__(self, data, templates, region=None, progress: bool = True):
        check_data(data)
        self.data = data
        self.scan_shape = data.shape[:2]
        self.templates, _ = templates_stack(templates, self.scan_shape)
        self.region = region_mask(region, self.scan_shape)
        self._region_given = region is not None
        self.stats, _, self._sums, self._shift = _pass(data, self.templates, self.region,
                                                       progress)

    def _patterns(self, rows: np.ndarray):
        """The data as ``(p, q)`` rows, or just the listed rows for lazy data."""
        sy, sx, dy, dx = self.data.shape
        if hasattr(self.data, "patterns"):  # corrected data: the listed rows, corrected
            return self.data.patterns(rows), np.arange(len(rows))
        if not is_lazy(self.data):
            return self.data.reshape(sy * sx, dy * dx), rows
        ys, xs = np.unravel_index(rows, (sy, sx))
        picked = self.data.vindex[ys, xs].compute().reshape(len(rows), dy * dx)
        return picked, np.arange(len(rows))

    def edit(self, index: int, delta) -> None:
        """Add ``delta`` (scan-shaped, mostly zero) to template ``index``.

        Only the scan positions where ``delta`` is non-zero (inside the region) are
        read from the data.
        """
        delta = np.asarray(delta, float)
        if delta.shape != tuple(self.scan_shape):
            raise ValueError(f"delta must have the scan shape {self.scan_shape}; got "
                             f"{delta.shape}")
        rows = np.flatnonzero((delta != 0) & self.region)
        if rows.size:
            x, r = self._patterns(rows)
            w = delta.reshape(-1)[rows][None]
            self._sums.proj[index] += sparse_projection(x, self._shift, r, w)[0]
            self._sums.tsum[index] += w.sum()
        self.templates[index] += delta

    def masks(self, normalization: str = "pcc", detector_region=None) -> np.ndarray:
        """``(k, det_y, det_x)`` correlation masks from the kept sums (no pass)."""
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}; "
                             f"got {normalization!r}")
        t_ss = template_sum_of_squares(self.templates, self.region, self._region_given)
        _, _, proj = self._sums.finish(self._shift)
        det = detector_mask(detector_region, self.data.shape[2:])
        return masks_from(self.stats, proj, t_ss, normalization, det)

    def images(self, masks, normalized: bool = False, progress: bool = True):
        """Images of ``masks`` (one pass); Eq 6 reuses the kept statistics."""
        return apply_masks(self.data, masks, normalized=normalized, stats=self.stats,
                           progress=progress)
