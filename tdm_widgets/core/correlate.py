"""Template-derived masks: the Pearson correlation of templates with every
pixel-STEM image (paper Eqs 3-5, 7 and 8), without forming the normalised matrix."""

from __future__ import annotations

import numpy as np

from .blocks import reduce_scan
from .checks import check_data, detector_mask, region_mask, templates_stack
from .moments import block_sums, first_pattern, merge_sums
from .stats import ColumnStats, finish_stats

NORMALIZATIONS = ("pcc", "pcc_over_mean")


def column_statistics(data, region=None, progress: bool = True) -> ColumnStats:
    """Mean and standard deviation of every detector pixel over the scan, one pass.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``.
    region : ndarray of bool, optional
        ``(scan_y, scan_x)`` positions to use; all if None.
    """
    check_data(data)
    return statistics_pass(data, None, region, progress)[0]


def centred(t, reg) -> np.ndarray:
    """Templates less their median over the region.

    A constant added to a template changes neither its correlation nor its mask, but
    the projections ``sum t (D - K)`` would carry it as round-off (``1e8 + t`` loses
    eight digits); the median removes any offset and keeps a point template (mostly
    zero) sparse, which the kernels exploit.
    """
    if t.shape[0] == 0:
        return t
    return t - np.median(t[:, reg], axis=1)[:, None, None]


def statistics_pass(data, templates, region, progress: bool = True):
    """One pass: statistics of the region's positions and template projections.

    Each template is centred on its median over the region before it is projected: a
    correlation does not depend on a template's offset, a large offset would otherwise
    cancel in float64, and the median of a sparse (point) template is its background,
    so the centred template stays sparse for later edits.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``, validated by the caller.
    templates : ndarray or None
        ``(k, scan_y, scan_x)`` float64, or None for the statistics alone.
    region : ndarray of bool or None
        Positions to use (all if None).
    progress : bool
        Progress bar for passes longer than a second.

    Returns
    -------
    stats : ColumnStats
    proj : ndarray
        ``(k, q)`` projections of the centred templates about the column means.
    sums : Sums
        The merged partial sums (about ``shift``), for later sparse edits.
    shift : ndarray
        ``(q,)`` the per-pixel shift of the sums.
    centers : ndarray
        ``(k,)`` the constants subtracted from the templates.
    """
    sy, sx, dy, dx = data.shape
    reg = region_mask(region, (sy, sx))
    t = np.zeros((0, sy, sx)) if templates is None else templates
    centers = np.median(t[:, reg], axis=1) if t.shape[0] else np.zeros(0)
    t = centred(t, reg)
    # the sums are taken about the first pattern, read within the pass (one read)
    sums, shift = reduce_scan(data, block_sums, merge_sums, side=(reg, t), progress=progress,
                              desc="TDM statistics", first=first_pattern)
    mean, m2, proj = sums.finish(shift)
    stats = finish_stats(sums.n, mean, m2, (dy, dx), data.dtype)
    return stats, proj, sums, shift, centers


def template_sum_of_squares(t, reg, region_given: bool) -> np.ndarray:
    """``sum (t - <t>)^2`` of each template over the region; raises for a constant one."""
    tr = t[:, reg]
    t_ss = ((tr - tr.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    flat = t_ss <= (1e-12 * np.abs(tr).max(axis=1)) ** 2 * tr.shape[1]
    if flat.any():
        which = ", ".join(str(i) for i in np.flatnonzero(flat))
        where = "within the region" if region_given else "over the scan"
        raise ValueError(f"template {which} is constant {where} (all-zero or uniform): "
                         "it has no variance to correlate with")
    return t_ss


def masks_from(stats: ColumnStats, proj, t_ss, normalization, det):
    """Correlation masks from statistics and projections about the mean (no pass)."""
    std = stats.std.reshape(-1)
    valid = stats.valid.reshape(-1)
    denom = np.sqrt(t_ss)[:, None] * np.sqrt(stats.n) * np.where(valid, std, 1.0)[None]
    masks = np.where(valid[None], proj / denom, 0.0)
    if normalization == "pcc_over_mean":
        mean = stats.mean.reshape(-1)
        nonpos = valid & (mean <= 0)
        if nonpos.any():
            raise ValueError(
                f"normalization='pcc_over_mean' (Eq 7) divides by each pixel's mean "
                f"intensity, but {int(nonpos.sum())} varying pixels have mean <= 0; "
                "use normalization='pcc' or data with positive intensities")
        masks = np.where(valid[None], masks / np.where(valid, mean, 1.0)[None], 0.0)
    masks = masks.reshape((-1,) + stats.mean.shape)
    return masks if det is None else masks * det


def pcc_masks(data, template, normalization: str = "pcc", region=None,
              detector_region=None, progress: bool = True):
    """Pearson-correlation masks of ``k`` templates in one pass over the data.

    ``m_j = sum_i (t_i - <t>)(D_ij - mu_j) / (n sigma_t sigma_j)`` over the ``n``
    positions of ``region`` (Eq 5/8, a correlation coefficient in [-1, 1]); with
    ``normalization="pcc_over_mean"`` each pixel-STEM image is also divided by its
    mean, ``m'_j = m_j / mu_j`` (Eq 7).

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``, any real dtype; never copied whole.
    template : array_like
        ``(scan_y, scan_x)`` or a stack ``(k, scan_y, scan_x)``.
    normalization : {"pcc", "pcc_over_mean"}
        Eq 5 or Eq 7.
    region : ndarray of bool, optional
        Scan positions whose statistics define the mask (a partial template).
    detector_region : ndarray of bool, optional
        Detector pixels the mask may use; zero elsewhere.
    progress : bool
        Progress bar for passes longer than a second.

    Returns
    -------
    masks : ndarray
        ``(det_y, det_x)`` or ``(k, det_y, det_x)`` float64; 0 at constant pixels
        and at the bad pixels of corrected data.
    stats : ColumnStats
        Statistics of the positions used.

    Raises
    ------
    ValueError
        For a template that is constant over the region, NaN/inf in data or template,
        shapes that do not match, or an unknown normalisation.
    """
    check_data(data)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}; "
                         f"got {normalization!r}")
    sy, sx, dy, dx = data.shape
    t, single = templates_stack(template, (sy, sx))
    reg = region_mask(region, (sy, sx))
    det = detector_mask(detector_region, (dy, dx))
    t_ss = template_sum_of_squares(t, reg, region is not None)
    stats, proj, _, _, _ = statistics_pass(data, t, reg, progress)
    masks = masks_from(stats, proj, t_ss, normalization, det)
    bad = getattr(getattr(data, "correction", None), "bad_pixels", None)
    if bad is not None:  # interpolated pixels carry no signal of their own: weight 0
        masks = masks * ~bad
    return (masks[0] if single else masks), stats
