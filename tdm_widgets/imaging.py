"""The public imaging functions: virtual detectors, template-derived masks, images.

Each accepts a 4D HyperSpy signal (numpy-backed or lazy) or a 4D array
``(scan_y, scan_x, det_y, det_x)`` and returns HyperSpy signals with calibrated axes
and ``metadata.TDM`` recording what produced them.
"""

from __future__ import annotations

import logging

import numpy as np

from .core import geometry
from .core.apply import apply_masks
from .core.blocks import computed
from .core.checks import templates_stack
from .core.corrections import CorrectedData
from .core.correlate import column_statistics
from .core.disk import MIN_RADIUS_PX, BFDisk, find_bf_disk
from .core.matrix import sorted_matrix
from .core.moments import mean_and_grid_patterns, mean_pattern
from .core.progress import hyperspy_progressbar
from .descan import check_descan as descan_check
from .descan import descan_grid
from .detector import center_in_axis_units, detector_annulus
from .session import TDMSession, reference_region_of, statistics_for
from .signals import (
    as_array,
    as_column_stats,
    check_mask_detector,
    column_stats_signal,
    provenance,
    stack_names,
    unwrap,
    wrap_scan_images,
)

logger = logging.getLogger(__name__)


@hyperspy_progressbar
def bf_disk(s, semiangle_mrad: float | None = None, min_radius_px: float = MIN_RADIUS_PX,
            max_residual_px: float | None = None, check_descan: bool = True,
            show_progressbar: bool | None = None) -> BFDisk:
    """Bright-field disc centre and radius from the position-averaged pattern.

    Bad pixels stored on the signal (:func:`tdm_widgets.set_bad_pixels`) are
    interpolated and a stored descan correction is applied before averaging; remaining
    outliers (hot pixels, a dead column) are replaced by their local median. The
    result carries a fit quality and absurd discs are refused.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    semiangle_mrad : float, optional
        Convergence semi-angle [mrad]; if given, ``mrad_per_px`` is set.
    min_radius_px : float
        Smallest accepted radius [detector px].
    max_residual_px : float, optional
        Largest accepted RMS edge residual [detector px]; ``max(1, 0.05 radius)`` if
        None.
    check_descan : bool
        Without a descan correction, sample a few patterns and warn when the disc
        moves more than ``tdm_widgets.descan.DESCAN_WARN_PX`` across the scan.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    BFDisk
        ``center_px`` (y, x) and ``radius_px`` [detector px, sub-pixel],
        ``mrad_per_px`` [mrad / px], ``residual_px``, ``contrast`` and ``levels``.

    Raises
    ------
    ValueError
        For a radius below ``min_radius_px``, a disc touching the detector edge, a
        low contrast or an edge that is not a circle, and for a ``semiangle_mrad``
        that is not a positive number.

    Examples
    --------
    >>> disk = tdm_widgets.bf_disk(s, semiangle_mrad=23.5)  # doctest: +SKIP
    >>> tdm_widgets.calibrate_detector(s, disk)              # doctest: +SKIP
    """
    if semiangle_mrad is not None and not (np.isfinite(semiangle_mrad) and semiangle_mrad > 0):
        raise ValueError(f"semiangle_mrad must be a positive number [mrad]; got "
                         f"{semiangle_mrad}")
    data, _, _ = unwrap(s)
    descan_set = isinstance(data, CorrectedData) and data.correction.descan_px is not None
    check = check_descan and not descan_set
    grid = descan_grid(data.shape[:2]) if check else (np.arange(0), np.arange(0))
    mean, patterns = mean_and_grid_patterns(data, *grid, progress=show_progressbar)
    disk = find_bf_disk(mean, semiangle_mrad, min_radius_px, max_residual_px)
    logger.info("bf_disk: centre (%.2f, %.2f) px, radius %.2f px, %s mrad/px",
                *disk.center_px, disk.radius_px, disk.mrad_per_px)
    if check:
        descan_check(data, disk, patterns)
    return disk


def calibrate_detector(s, disk: BFDisk):
    """Set a signal's detector axes to mrad from a :class:`BFDisk`.

    Axes only, in place: the data and any file are untouched. The disc centre becomes
    0 mrad and every pixel ``disk.mrad_per_px`` wide.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D signal whose detector axes are set.
    disk : BFDisk
        From :func:`bf_disk` with ``semiangle_mrad`` given (so that it has
        ``mrad_per_px``).

    Returns
    -------
    hyperspy.signals.Signal2D
        ``s`` itself, its detector axes now in [mrad].

    Raises
    ------
    ValueError
        For a disc without calibration, a non-positive or non-finite ``mrad_per_px``,
        a radius below ``MIN_RADIUS_PX`` or a disc not inside the detector.

    Examples
    --------
    >>> from tdm_widgets.core.disk import BFDisk
    >>> disk = BFDisk(center_px=(31.5, 32.0), radius_px=10.0, mrad_per_px=2.35)
    >>> s = tw.from_array(np.ones((2, 2, 64, 64)))
    >>> ky = tw.calibrate_detector(s, disk).axes_manager.signal_axes[1]
    >>> ky.units, ky.scale, round(ky.offset, 3)
    ('mrad', 2.35, -74.025)
    """
    if not isinstance(disk, BFDisk):
        raise TypeError(f"disk must be a BFDisk from tdm_widgets.bf_disk; got {disk!r}")
    if disk.mrad_per_px is None:
        raise ValueError("disk has no mrad_per_px: call bf_disk(s, semiangle_mrad=...)")
    if not (np.isfinite(disk.mrad_per_px) and disk.mrad_per_px > 0):
        raise ValueError(f"disk.mrad_per_px must be a positive number; got "
                         f"{disk.mrad_per_px}")
    dy, dx = s.data.shape[-2:]
    (cy, cx), r = disk.center_px, disk.radius_px
    if not (np.isfinite([cy, cx, r]).all() and r >= MIN_RADIUS_PX
            and 0 <= cy - r and cy + r <= dy - 1 and 0 <= cx - r and cx + r <= dx - 1):
        raise ValueError(
            f"disk (centre ({cy:.2f}, {cx:.2f}) px, radius {r:.2f} px) is not a "
            f"bright-field disc inside this {dy} x {dx} detector (radius must be >= "
            f"{MIN_RADIUS_PX} px and the disc within the detector)")
    kx, ky = s.axes_manager.signal_axes
    for ax, c in ((ky, disk.center_px[0]), (kx, disk.center_px[1])):
        ax.scale, ax.offset, ax.units = disk.mrad_per_px, -c * disk.mrad_per_px, "mrad"
    return s


@hyperspy_progressbar
def virtual_image(s, inner_mrad: float, outer_mrad: float, center=None,
                  show_progressbar: bool | None = None):
    """Virtual image from a binary annular detector (BF, ABF or ADF).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data with the detector calibrated in mrad.
    inner_mrad, outer_mrad : float
        Detector radii [mrad]; ``inner_mrad=0`` gives a disc (BF).
    center : BFDisk or tuple of float, optional
        Detector centre, (y, x) [detector px]; the calibrated 0 mrad if None.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(scan_y, scan_x)`` image: the sum of the data over the annulus [data
        units], scan axes in [A] when calibrated; lazy for lazy input.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> s = tw.from_array(np.ones((4, 5, 9, 9)), scan_step_A=0.2, mrad_per_px=1.0)
    >>> bf = tw.virtual_image(s, 0, 1.5, show_progressbar=False)   # the 9 pixels within 1.5 mrad
    >>> float(bf.data[0, 0]), bf.axes_manager.signal_axes[0].units
    (9.0, 'Å')
    """
    data, cal, src = unwrap(s)
    mask = detector_annulus(cal, data.shape[2:], inner_mrad, outer_mrad, center)
    if not mask.any():
        r = geometry.radius_map(data.shape[2:], cal.det_scale, cal.det_offset,
                                center_in_axis_units(center, cal))
        raise ValueError(f"annulus {inner_mrad:g}-{outer_mrad:g} mrad selects no detector "
                         f"pixel: the detector spans {r.min():.3g}-{r.max():.3g} mrad from "
                         "the centre")
    img = apply_masks(data, mask, progress=show_progressbar)
    if isinstance(img, np.ndarray) and not img.any():  # (a lazy image is not looked at)
        raise ValueError(f"annulus {inner_mrad:g}-{outer_mrad:g} mrad selects only "
                         f"detector pixels that are zero at every scan position "
                         f"({int(mask.sum())} pixels, e.g. corners outside the camera's "
                         "signal): the image would be zero")
    meta = provenance("virtual_image", src, inner_mrad=float(inner_mrad),
                      outer_mrad=float(outer_mrad), n_pixels=int(mask.sum()),
                      center_mrad=list(center_in_axis_units(center, cal)))
    return wrap_scan_images(img, cal, f"virtual {inner_mrad:g}-{outer_mrad:g} mrad", meta)


@hyperspy_progressbar
def pcc_mask(s, template, normalization: str = "pcc", region=None, detector_region=None,
             show_progressbar: bool | None = None, names=None):
    """Template-derived mask: Pearson correlation of a template with every
    pixel-STEM image (paper Eq 5/8; Eq 7 with ``normalization="pcc_over_mean"``).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data, numpy-backed or lazy.
    template : array_like or Signal2D
        ``(scan_y, scan_x)`` image, or a stack ``(k, scan_y, scan_x)`` for ``k``
        masks from one pass.
    normalization : {"pcc", "pcc_over_mean"}
        Eq 5 (correlation coefficient) or Eq 7 (each pixel also divided by its mean
        intensity).
    region : ndarray of bool, optional
        ``(scan_y, scan_x)``: a partial template whose statistics come from these
        positions only; the mask applies to the whole scan.
    detector_region : ndarray of bool or tuple of float, optional
        Detector pixels the mask may use, as a boolean detector-shaped array or
        ``(inner_mrad, outer_mrad)``; zero elsewhere.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.
    names : sequence of str, optional
        One name per template (e.g. the species of :func:`point_templates`);
        ``"template 0"``, ... if None.

    Returns
    -------
    hyperspy.signals.Signal2D
        Mask(s) ``(det_y, det_x)`` or ``(k, det_y, det_x)`` of correlation
        coefficients in [-1, 1] [dimensionless] (Eq 7: divided by each pixel's mean
        [1 / data unit]), axes in [mrad], named in ``metadata.TDM.names`` (the images
        :func:`apply_mask` makes of them too).
        ``metadata.TDM`` records the templates (shape and checksum), region,
        normalisation and the number of zero-variance detector pixels (weight 0).
        The mask keeps the column statistics of ``s``, so
        ``apply_mask(s, mask, normalized=True)`` makes no second statistics pass.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 8, 6, 6)).astype(np.uint16)
    >>> t = np.zeros((8, 8)); t[::4, ::4] = 1
    >>> mask = tw.pcc_mask(data, t, show_progressbar=False)
    >>> mask.data.shape, bool(np.abs(mask.data).max() <= 1)
    ((6, 6), True)
    >>> tw.apply_mask(data, mask, normalized=True, show_progressbar=False).data.shape
    (8, 8)
    """
    session = TDMSession(s, region=region, detector_region=detector_region,
                         normalization=normalization, show_progressbar=show_progressbar)
    stack, single = templates_stack(as_array(template, "template"), session.scan_shape)
    names = [f"template {i}" for i in range(len(stack))] if names is None else list(names)
    if len(names) != len(stack) or len(set(names)) != len(names):
        raise ValueError(f"names must be {len(stack)} distinct names, one per template; "
                         f"got {names}")
    session.set_templates(dict(zip(names, stack)))
    return session.masks(squeeze=single)


@hyperspy_progressbar
def column_stats(s, region=None, show_progressbar: bool | None = None):
    """Per-detector-pixel mean and standard deviation over the scan (one pass).

    These are ``mu`` and ``sigma`` of Eq 3, the statistics Eq 6 and
    :func:`export_weighted_detector` need; stored bad pixels and a descan correction
    are honoured as in every pass.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    region : ndarray of bool, optional
        ``(scan_y, scan_x)``: statistics of these positions only.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(2, det_y, det_x)``: per-pixel mean and population standard deviation
        [data units], detector axes in [mrad] when calibrated, named ``mean`` and
        ``std`` in ``metadata.TDM.names``; the std is 0 at zero-variance pixels
        (constant beyond the data's round-off: weight 0 in every mask, counted in
        ``metadata.TDM.parameters.n_zero_variance``). ``apply_mask(...,
        stats=...)`` and :func:`tdm_widgets.export_weighted_detector` take it.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 8, 6, 6)).astype(np.uint16)
    >>> data[..., 0, 0] = 3                                # a constant pixel
    >>> stats = tw.column_stats(tw.from_array(data, mrad_per_px=2.0), show_progressbar=False)
    >>> stats.metadata.TDM.names, stats.axes_manager.signal_axes[0].units
    (['mean', 'std'], 'mrad')
    >>> float(stats.data[0, 0, 0]), float(stats.data[1, 0, 0])
    (3.0, 0.0)
    """
    data, cal, src = unwrap(s)
    stats = column_statistics(data, region=region, progress=show_progressbar)
    return column_stats_signal(stats, cal, provenance(
        "column_stats", src, region=region, n_zero_variance=stats.n_zero_variance))


@hyperspy_progressbar
def apply_mask(s, mask, normalized: bool = False, stats=None,
               show_progressbar: bool | None = None):
    """Apply a detector mask (or a stack) to the data.

    ``normalized=False`` is Eq 2, ``D m`` on the raw data; ``normalized=True`` is
    Eq 6, the mask applied to the column-normalised data, computed as the raw data
    times ``m / sigma`` plus an offset.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    mask : array_like or Signal2D
        ``(det_y, det_x)`` or ``(k, det_y, det_x)``.
    normalized : bool
        Eq 6 instead of Eq 2.
    stats : Signal2D, optional
        Column statistics (from :func:`column_stats`) that standardise the data for
        Eq 6. If None: those a mask from :func:`pcc_mask` of the same ``s`` keeps
        (no pass); else those of the reference region recorded in the mask's
        metadata, also after saving and loading it (one pass; ``ValueError`` when the
        region does not fit the data's scan); else the whole scan's (one pass, as for a
        mask given as an array). ``metadata.TDM.parameters.statistics`` of the result
        says which were used.
    show_progressbar : bool, optional
        Progress bar for passes longer than a second. For lazy data the image pass
        happens when the lazy result is computed, which takes its own
        (``img.compute(show_progressbar=True)``); here it covers the statistics pass.

    Returns
    -------
    hyperspy.signals.Signal2D
        Image(s) ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)``, scan axes in [A]
        when calibrated; lazy for lazy input. The images of named masks carry their
        names. Values: Eq 2 is the data times the mask, [data units] for a
        dimensionless mask (Eq 5); Eq 6 uses the standardised data, so it takes
        the mask's unit, [dimensionless] for an Eq 5 mask.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 8, 6, 6)).astype(np.uint16)
    >>> centre = np.zeros((6, 6)); centre[3, 3] = 1
    >>> img = tw.apply_mask(data, centre, show_progressbar=False)        # Eq 2: D m
    >>> bool(np.array_equal(img.data, data[:, :, 3, 3]))
    True
    >>> eq6 = tw.apply_mask(data, centre, normalized=True, show_progressbar=False)
    >>> bool(abs(eq6.data.mean()) < 1e-12), round(float(eq6.data.std()), 6)  # D_hat m
    (True, 1.0)
    """
    data, cal, src = unwrap(s)
    m = as_array(mask, "mask")
    check_mask_detector(mask, cal)
    used = "given" if stats is not None else None
    if normalized and stats is None:
        stats = statistics_for(mask, data)  # kept by pcc_mask for the same data
        used = "kept with the mask"
    if normalized and stats is None:
        region = reference_region_of(mask)
        if region is not None and region.shape != tuple(data.shape[:2]):
            raise ValueError(
                f"mask was fitted on a reference region of a {region.shape} scan and Eq 6 "
                f"standardises by that region's statistics, but the data's scan is "
                f"{tuple(data.shape[:2])}: pass stats=column_stats(s) (or of a region "
                "of this scan) to say which positions standardise it")
        stats = column_statistics(data, region=region, progress=show_progressbar)
        used = "whole scan" if region is None else \
            f"reference region of the mask ({int(region.sum())} positions)"
    if stats is not None:
        stats = as_column_stats(stats)
    img = apply_masks(data, m, normalized=normalized, stats=stats, progress=show_progressbar)
    mask_meta = mask.metadata.get_item("TDM") if hasattr(mask, "metadata") else None
    meta = provenance("apply_mask", src, normalized=bool(normalized),
                      equation="Eq 6" if normalized else "Eq 2", statistics=used,
                      mask=m, mask_provenance=mask_meta.as_dictionary()
                      if hasattr(mask_meta, "as_dictionary") else None)
    names = stack_names(mask)  # of the masks given: a slice of a stack names its own
    return wrap_scan_images(img, cal, "TDM image" if mask_meta else "masked image", meta,
                            names=names)  # the images of named masks carry their names


@hyperspy_progressbar
def data_matrix(s, center=None, normalized: bool = True, show_progressbar: bool | None = None):
    """The matrix D of Fig 1d: columns by radius from the BF-disc centre, rows by
    intensity outside the BF disc (high angle), columns standardised by Eq 3.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data; the sorted copy is built in memory (p x q float32).
    center : BFDisk, optional
        BF disc; found with :func:`bf_disk` if None.
    normalized : bool
        Standardise each column (Eq 3).
    show_progressbar : bool, optional
        Progress bar for passes longer than a second.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(p, q)`` float32 sorted D, axes ``scan position`` (rank by high-angle
        intensity) and ``detector pixel`` (rank by radius). ``metadata.DataMatrix``
        holds ``row_order`` (flat scan index of each row), ``col_order`` (flat
        detector index of each column), ``radius`` of each column [``radius_units``,
        mrad when calibrated], ``scan_shape`` and ``det_shape``.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> yy, xx = np.indices((16, 16))
    >>> disc = np.where(np.hypot(yy - 8, xx - 8) < 4, 100.0, 1.0)
    >>> data = disc * np.random.default_rng(0).uniform(0.5, 1.5, (6, 5, 16, 16))
    >>> dm = tw.data_matrix(tw.from_array(data, mrad_per_px=1.0), show_progressbar=False)
    >>> dm.data.shape, dm.metadata.DataMatrix.radius_units
    ((30, 256), 'mrad')
    >>> bool(np.all(np.diff(dm.metadata.DataMatrix.radius) >= 0))   # columns by radius
    True
    """
    import hyperspy.api as hs

    data, cal, src = unwrap(s)
    # the sorted copy needs the data in memory anyway: read a lazy signal once
    arr = data.materialize() if isinstance(data, CorrectedData) else np.asarray(computed(data))
    stats = column_statistics(arr, progress=show_progressbar) if normalized else None
    if isinstance(center, BFDisk):
        disk = center
    else:
        mean = stats.mean if stats is not None else mean_pattern(arr, show_progressbar)
        disk = find_bf_disk(mean)
    c = center_in_axis_units(disk, cal)
    shape = arr.shape[2:]
    radius = geometry.radius_map(shape, cal.det_scale, cal.det_offset, c)
    r_px = geometry.radius_map(shape, center=disk.center_px)
    high = apply_masks(arr, r_px > disk.radius_px, progress=show_progressbar)
    dm = sorted_matrix(arr, radius, high, stats)
    p, q = dm.matrix.shape
    sig = hs.signals.Signal2D(dm.matrix, axes=[
        {"name": "scan position", "size": p, "units": "rank"},
        {"name": "detector pixel", "size": q, "units": "rank"}])
    sig.metadata.General.title = "sorted D (Fig 1d)" + (", Eq 3" if normalized else "")
    sig.metadata.set_item("TDM", provenance(
        "data_matrix", src, normalized=bool(normalized),
        center_px=[float(v) for v in disk.center_px], radius_px=float(disk.radius_px)))
    sig.metadata.set_item("DataMatrix", {
        "row_order": dm.row_order, "col_order": dm.col_order, "radius": dm.radius,
        "radius_units": cal.det_units, "scan_shape": list(arr.shape[:2]),
        "det_shape": list(shape)})
    return sig
