"""Cross-validated TDM images: the mask is never fitted to the data it images.

A template-derived mask is fitted to the data it is applied to; with fewer scan
positions than detector pixels a template can be reproduced from noise alone. Two
honest splits:

- ``split="dose"``: the counts of every pattern are split by binomial thinning into two
  independent halves (for Poisson counts each half is Poisson at half the dose); the
  mask from one half images the other, both ways, and the two images are averaged.
- ``split="cells"``: the mask comes from one set of scan positions (``fit_region``)
  and the image is judged on the others (``held_out`` in the result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core.apply import apply_masks
from .core.blocks import computed, is_lazy, whole_patterns
from .core.corrections import CorrectedData, raw_and_correction
from .core.correlate import pcc_masks
from .core.progress import hyperspy_progressbar
from .core.split import check_counts, dose_split_images, fold_counts
from .detector import resolve_detector_region
from .signals import as_array, pick, provenance, unwrap, wrap_scan_images


def thinned_folds(data, seed: int = 0, folds: int = 2) -> list:
    """``folds`` independent parts of count data that add up to it (multinomial
    thinning with equal probabilities, :func:`tdm_widgets.core.split.fold_counts`),
    lazily for dask input (drawn on whole patterns, so the draw equals the eager one
    for any chunking) and as arrays for numpy input.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        4D counts, integer and >= 0, scan axes first.
    seed, folds : int
        The split's seed, and into how many parts (at least 2).

    Returns
    -------
    list
        Arrays shaped like ``data``; for Poisson counts each is Poisson at
        ``1/folds`` of the dose.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(9.0, (3, 4, 5, 5))
    >>> parts = thinned_folds(counts, seed=2, folds=4)
    >>> len(parts), bool((sum(parts) == counts).all())
    (4, True)
    """
    check_counts(data.dtype)
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    sy, sx = data.shape[:2]
    index = np.arange(sy * sx).reshape(sy, sx)
    if not is_lazy(data):
        return fold_counts(np.asarray(data), index, seed, folds)
    import dask.array as da

    data = whole_patterns(data)
    idx = da.from_array(index[:, :, None, None], chunks=data.chunks[:2] + ((1,), (1,)))
    dtype = np.dtype(data.dtype).newbyteorder("=")
    parts = [da.map_blocks(lambda b, i, j=j: fold_counts(b, i[:, :, 0, 0], seed, folds)[j],
                           data, idx, dtype=dtype) for j in range(folds - 1)]
    return parts + [data - sum(parts)]  # the last part is what is left: no further draw


def thinned_halves(data, seed: int = 0):
    """Two independent halves ``(A, D - A)`` of count data: :func:`thinned_folds`
    with two folds. :func:`cross_validated_image` never stores them; this is for
    looking."""
    return tuple(thinned_folds(data, seed, 2))


@hyperspy_progressbar
def cross_validated_image(s, template, split: str = "dose", normalization: str = "pcc",
                          detector_region=None, fit_region=None, normalized: bool = False,
                          seed: int = 0, show_progressbar: bool | None = None, names=None):
    """A TDM image whose mask was fitted to independent data.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data; ``split="dose"`` needs integer counts.
    template : array_like
        ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)``.
    split : {"dose", "cells"}
        Binomial thinning of the counts, or a split of the scan positions.
    normalization : {"pcc", "pcc_over_mean"}
        As in :func:`tdm_widgets.pcc_mask`.
    detector_region : ndarray of bool or tuple of float, optional
        As in :func:`tdm_widgets.pcc_mask`: ``(inner_mrad, outer_mrad)`` or a mask.
    fit_region : ndarray of bool, optional
        ``split="cells"``: the positions that fit the mask; default the left half of
        the scan. The image is judged on the complement.
    normalized : bool
        Eq 6 instead of Eq 2, as in :func:`tdm_widgets.apply_mask`.
    seed : int
        Seed of the thinning.
    show_progressbar : bool, optional
        Progress bars for passes longer than a second; None follows HyperSpy's
        preference.
    names : sequence of str, optional
        One name per template, recorded in ``metadata.TDM.names``.

    Returns
    -------
    hyperspy.signals.Signal2D
        ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)`` images, scan axes in [A]
        when calibrated; values as in :func:`tdm_widgets.apply_mask`: Eq 2 [data
        units] for Eq 5 masks (with ``split="dose"`` each half holds about half
        the counts, so the image is at half the dose), Eq 6 [dimensionless].
        ``metadata.TDM.held_out`` is the boolean ``(scan_y, scan_x)`` array of the
        positions whose pixels were not used to fit the mask (all of them for
        ``split="dose"``, where the counts, not the positions, are held out);
        :func:`tdm_widgets.specificity` judges the image there.

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> counts = np.random.default_rng(0).poisson(20.0, (8, 8, 6, 6)).astype(np.uint16)
    >>> t = np.zeros((8, 8)); t[::4, ::4] = 1
    >>> cv = tw.cross_validated_image(counts, t, split="cells", show_progressbar=False)
    >>> cv.data.shape, int(cv.metadata.TDM.held_out.sum())   # the right half held out
    ((8, 8), 32)
    """
    data, cal, src = unwrap(s)
    t = as_array(template, "template")
    det = resolve_detector_region(detector_region, data.shape[2:], cal)
    kw = dict(normalization=normalization, detector_region=det, progress=show_progressbar)
    if split == "dose":  # thinning, corrections and both halves fused into two passes
        img = computed(dose_split_images(data, t, seed=seed, normalized=normalized, **kw))
        held = np.ones(data.shape[:2], bool)
    elif split == "cells":
        sy, sx = data.shape[:2]
        if fit_region is None:
            fit_region = np.zeros((sy, sx), bool)
            fit_region[:, : sx // 2] = True
        fit_region = np.asarray(fit_region, bool)
        if fit_region.all() or not fit_region.any():
            raise ValueError("the cells split needs positions to fit on and positions held "
                             f"out: fit_region {'covers' if fit_region.any() else 'misses'} "
                             f"the whole {sy} x {sx} scan (a scan one column wide has no "
                             "left half; use the dose split for counts)")
        m, _ = pcc_masks(data, t, region=fit_region, **kw)
        img = _apply(data, m, normalized, None, show_progressbar)
        held = ~fit_region
    else:
        raise ValueError(f"split must be 'dose' or 'cells'; got {split!r}")
    meta = provenance("cross_validated_image", src, split=split, normalization=normalization,
                      normalized=bool(normalized), seed=int(seed), template=t,
                      held_out=held)
    sig = wrap_scan_images(img, cal, f"cross-validated TDM ({split})", meta, names=names)
    sig.metadata.set_item("TDM.held_out", held)  # a result: where the image may be judged
    return sig


def _apply(data, masks, normalized, stats, progress):
    img = apply_masks(data, masks, normalized=normalized, stats=stats, progress=progress)
    return computed(img)


@hyperspy_progressbar
def virtual_detectors(s, virtual="auto", show_progressbar: bool | None = None) -> dict:
    """Annular detectors for the check rows of :func:`specificity_report`.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    virtual : "auto", dict or None
        ``{name: (inner_mrad, outer_mrad)}``; ``"auto"``: ``"virtual ABF"`` from half
        the convergence semi-angle to the semi-angle and ``"virtual ADF"`` from 1.25
        times it to the detector edge, the semi-angle [mrad] from
        ``metadata.Acquisition_instrument.TEM.convergence_angle`` or else from the
        bright-field disc of the (mrad-calibrated) data; None for none.

    Returns
    -------
    dict of str to (float, float)
        Name to ``(inner_mrad, outer_mrad)`` (each holding detector pixels), as
        :meth:`tdm_widgets.TDMSession.images` takes them; empty if ``virtual`` is None
        or, with ``"auto"``, the detector is not calibrated in mrad (with a warning).

    Examples
    --------
    >>> masks = virtual_detectors(s)  # doctest: +SKIP
    """
    import warnings

    from .imaging import bf_disk, detector_annulus

    if virtual is None:
        return {}
    data, cal, _ = unwrap(s)
    if isinstance(virtual, str):
        if virtual != "auto":
            raise ValueError(f"virtual must be 'auto', a dict or None; got {virtual!r}")
        if not cal.det_mrad:
            warnings.warn("specificity_report: no virtual ABF/ADF rows, the detector is "
                          f"in {cal.det_units!r}, not mrad (calibrate_detector first)",
                          stacklevel=3)
            return {}
        meta = getattr(s, "metadata", None)
        alpha = meta.get_item("Acquisition_instrument.TEM.convergence_angle") \
            if meta is not None else None
        if alpha is None:
            alpha = (bf_disk(s, show_progressbar=show_progressbar).radius_px
                     * float(np.mean(cal.det_scale)))
        alpha = float(alpha)
        virtual = {"virtual ABF": (0.5 * alpha, alpha), "virtual ADF": (1.25 * alpha, np.inf)}
    if not isinstance(virtual, dict):
        raise TypeError(f"virtual must be 'auto', a dict or None; got {type(virtual).__name__}")
    for name, radii in virtual.items():
        if np.shape(radii) != (2,):
            raise ValueError(f"virtual[{name!r}] must be (inner_mrad, outer_mrad); got {radii}")
        if not detector_annulus(cal, data.shape[2:], *radii).any():
            raise ValueError(f"virtual[{name!r}] = {tuple(radii)} mrad holds no detector "
                             "pixel (outside the detector?)")
    return {name: (float(a), float(b)) for name, (a, b) in virtual.items()}


@hyperspy_progressbar
def specificity_report(s, columns: dict, species=None, split: str = "dose",
                       sigma_px: float = 0.0, normalization: str = "pcc",
                       detector_region=None, normalized: bool = False, fit_region=None,
                       seed: int = 0, show_progressbar: bool | None = None, virtual="auto"
                       ) -> dict[str, dict[str, float]]:
    """Specificity of every species' TDM image, same-data and cross-validated side by
    side, with null controls (single pixels at random positions away from columns, one
    for each number of columns among the species, :func:`null_templates`), and the
    virtual ABF and ADF images at the same columns.

    The virtual rows check the columns themselves: with the columns registered right,
    ADF is bright at the heavy columns and ABF dark at the columns; columns that miss
    the real ones show there at once (a TDM image can look specific even then).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    columns : dict of str to array_like
        Species to ``(n, 2)`` (y, x) positions [scan px].
    species : sequence of str, optional
        Which species get a row, in order; all keys of ``columns`` if None.
    split : {"dose", "cells"}
        As in :func:`cross_validated_image`.
    sigma_px : float
        Template width [scan px], as in :func:`point_templates`.
    normalization : {"pcc", "pcc_over_mean"}
        As in :func:`pcc_mask`.
    detector_region : ndarray of bool or tuple of float, optional
        As in :func:`pcc_mask`.
    normalized : bool
        As in :func:`apply_mask`.
    fit_region : ndarray of bool, optional
        As in :func:`cross_validated_image`.
    seed : int
        Seed of the split and of the null controls' random positions.
    show_progressbar : bool, optional
        Progress bars for passes longer than a second; None follows HyperSpy's
        preference.
    virtual : "auto", dict or None
        Virtual detectors for the check rows: "auto" for ABF and ADF from the
        convergence semi-angle, a dict of name to ``(inner_mrad, outer_mrad)``, or
        None for no check rows.

    Returns
    -------
    dict
        Row name (``"virtual ABF"``, ``"virtual ADF"``, ``"Li same-data"``,
        ``"Li cross-validated"``, ..., ``"null 4 same-data"``, ...) to {column type:
        mean z-score [image standard deviations]}, the column types followed by each
        null's own positions (``"null"``, or ``"null N"`` for ``N`` columns when the
        species differ in number): there the same-data null image reproduces its
        template from noise and from every position's own pattern, and the
        cross-validated one keeps the second part under the dose split; read each
        species against the null of its size. Cross-validated rows are judged on
        held-out positions only.

    Examples
    --------
    >>> rep = tdm_widgets.specificity_report(s, cols, detector_region=(0, 23.5))  # doctest: +SKIP
    >>> print(tdm_widgets.format_specificity(rep))                                # doctest: +SKIP
    """
    from .column_templates import specificity
    from .session import TDMSession

    session = TDMSession.from_columns(s, columns, species, sigma_px=sigma_px, combined=None,
                                      normalization=normalization,
                                      detector_region=detector_region,
                                      show_progressbar=show_progressbar)
    judged = add_null_controls(session, columns, species, seed)
    virtual = virtual_detectors(s, virtual, show_progressbar)
    same = session.images(virtual=virtual, normalized=normalized)  # with the statistics: 2
    cv = session.cross_validated(split, normalized=normalized, seed=seed,
                                 fit_region=fit_region)  # 2 passes
    rows = {name: specificity(pick(same, name), judged) for name in virtual}
    for n in session.names:
        rows[f"{n} same-data"] = specificity(pick(same, n), judged)
        rows[f"{n} cross-validated"] = specificity(pick(cv, n), judged)  # held-out positions
    return rows


def add_null_controls(session, columns: dict, species=None, seed: int = 0) -> dict:
    """The null controls of :func:`null_templates` added to ``session`` as templates
    (one read of their positions once the statistics exist), and ``columns`` with each
    null's own positions (:func:`with_null_positions`), to judge images at.

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 8, 6, 6)).astype(np.uint16)
    >>> session = tw.TDMSession.from_columns(tw.from_array(data), {"A": [[1, 1], [5, 5]]},
    ...                                      combined=None, show_progressbar=False)
    >>> judged = add_null_controls(session, {"A": [[1, 1], [5, 5]]})
    >>> session.names, judged["null"].shape
    (['A', 'null'], (2, 2))
    """
    nulls = null_templates(columns, session.scan_shape, species, seed)
    session.set_templates(nulls)
    return with_null_positions(columns, nulls)


def with_null_positions(columns: dict, nulls: dict) -> dict:
    """``columns`` and each null control's own positions as one more column type, under
    the null's name: where a null image shows the template it was fitted to (same-data)
    and should not (cross-validated).

    Examples
    --------
    >>> t = np.zeros((4, 4)); t[1, 2] = 1
    >>> with_null_positions({"A": [[0, 0]]}, {"null": t})["null"].tolist()
    [[1, 2]]
    """
    clash = sorted(set(columns) & set(nulls))
    if clash:
        raise ValueError(f"a column type is called {clash[0]!r}, the name of a null "
                         "control: rename it")
    return {**columns, **{name: np.argwhere(np.asarray(t) > 0) for name, t in nulls.items()}}


def null_templates(columns: dict, scan_shape, species=None, seed: int = 0
                   ) -> dict[str, np.ndarray]:
    """The null controls of :func:`specificity_report`: single pixels at random positions
    away from every column, one null for each number of columns among the species, so
    that each species is read against a null of its own size (a template of fewer
    positions reproduces itself more strongly from the same data: on the bundled cell,
    noise-free, a 4-pixel null reads about +3.9 at its own positions, a 12-pixel one
    about +1.8).

    Returns
    -------
    dict of str to ndarray
        ``"null"`` when every species has the same number of columns, else ``"null N"``
        for each number ``N`` (smallest first), each ``(scan_y, scan_x)`` binary
        [dimensionless]; the ``k``-th drawn with seed ``seed + k``.

    Examples
    --------
    >>> t = null_templates({"A": [[1, 1], [5, 5]], "B": [[1, 5]]}, (8, 8), seed=1)
    >>> {k: int(v.sum()) for k, v in t.items()}
    {'null 1': 1, 'null 2': 2}
    """
    from .column_templates import random_positions_template, species_names

    names = species_names(columns, species, combined=None)
    sizes = sorted({len(np.asarray(columns[n], float).reshape(-1, 2)) for n in names})
    label = (lambda n: "null") if len(sizes) == 1 else (lambda n: f"null {n}")
    return {label(n): random_positions_template(columns, scan_shape, n, seed + k)
            for k, n in enumerate(sizes)}


@dataclass
class JointCrossValidated:
    """Cross-validated species images, independent (Pearson) and joint.

    Parameters
    ----------
    pearson : hyperspy.signals.Signal2D
        ``(k, scan_y, scan_x)`` dose-split images [dimensionless], masks fitted on
        ``fit_region``; axes in [A], named in ``metadata.TDM.names``.
    joint : hyperspy.signals.Signal2D
        ``(k, scan_y, scan_x)`` the same images combined by
        :func:`tdm_widgets.unmix_images` at the chosen ridge [dimensionless].
    ridge : float
        The ridge with the smallest cross-validated error.
    cv_error : dict
        Ridge to error: mean over templates and both halves of
        ``1 - corr^2`` between the held-out joint image and the template on
        ``fit_region``.

    Examples
    --------
    >>> r = tw.cross_validated_joint_images(counts, templates)   # doctest: +SKIP
    >>> r.ridge, r.joint.data.shape                              # doctest: +SKIP
    (0.1, (3, 20, 34))
    """

    pearson: object
    joint: object
    ridge: float
    cv_error: dict


@hyperspy_progressbar
def cross_validated_joint_images(s, template, fit_region=None,
                                 ridges=(0.0, 0.01, 0.1, 1.0, 10.0),
                                 normalization: str = "pcc", detector_region=None,
                                 seed: int = 0, show_progressbar: bool | None = None,
                                 names=None, folds: int = 2) -> JointCrossValidated:
    """Dose-split images with masks fitted on a reference region, independent and
    joint, the joint ridge chosen by cross-validation.

    The counts are split into ``folds`` independent parts (multinomial thinning,
    :func:`thinned_folds`; two folds are the binomial halves). For each part the
    masks are fitted on the other parts together, within ``fit_region`` (a perfect
    reference cell, so defects elsewhere do not shape them), with the combination
    ``W`` of the joint fit (:func:`tdm_widgets.unmix_images`) on their own images;
    both are then applied to the held-out part, and the images of all parts are
    averaged. More folds fit each mask on more of the counts (``1 - 1/folds`` of
    them: less noise in the masks at low dose) for ``folds`` mask fits instead of
    two. A ridge's error is how badly the held-out joint images reproduce the
    templates on ``fit_region``.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D integer counts.
    template : array_like
        ``(k, scan_y, scan_x)`` templates, k >= 2.
    fit_region : ndarray of bool, optional
        ``(scan_y, scan_x)`` positions that fit the masks and ``W``; all if None.
    ridges : sequence of float
        Candidate ridges (relative, >= 0).
    normalization : {"pcc", "pcc_over_mean"}
        As in :func:`tdm_widgets.pcc_mask`.
    detector_region : ndarray of bool or tuple of float, optional
        As in :func:`tdm_widgets.pcc_mask`.
    seed : int
        Seed of the binomial split.
    show_progressbar : bool, optional
        Progress bars.
    names : sequence of str, optional
        One name per template, recorded in ``metadata.TDM.names`` of both stacks.
    folds : int
        Parts of the dose split (>= 2); numpy input holds them all in memory.

    Returns
    -------
    JointCrossValidated
        ``pearson`` and ``joint`` images ``(k, scan_y, scan_x)`` [dimensionless:
        standardised, as Eq 6 gives them], the chosen ``ridge`` and the error of
        every ridge.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> counts = rng.poisson(20.0, (10, 8, 12, 12)).astype(np.uint16)
    >>> t = np.zeros((2, 10, 8)); t[0, ::5, ::4] = 1; t[1, 2::5, 2::4] = 1
    >>> r = tw.cross_validated_joint_images(tw.from_array(counts, scan_step_A=0.3), t,
    ...                                     ridges=(0.0, 1.0))
    >>> r.joint.data.shape, r.joint.axes_manager.signal_axes[0].units, sorted(r.cv_error)
    ((2, 10, 8), 'Å', [0.0, 1.0])
    """
    from .analysis.unmix import unmix_images

    data, cal, src = unwrap(s)
    t = as_array(template, "template", ndim_options=(3,))
    check_counts(data.dtype)
    if len(t) < 2:
        raise ValueError(f"template must hold at least two templates; got {len(t)}")
    region = np.ones(data.shape[:2], bool) if fit_region is None else np.asarray(fit_region)
    if region.shape != data.shape[:2] or region.dtype != bool or region.sum() < 2:
        raise ValueError(f"fit_region must be a boolean {data.shape[:2]} array with at least "
                         "two positions")
    if len(ridges) == 0 or not all(r >= 0 for r in ridges):
        raise ValueError(f"ridges must be non-negative values; got {ridges}")
    det = resolve_detector_region(detector_region, data.shape[2:], cal)
    kw = dict(normalization=normalization, detector_region=det, progress=show_progressbar,
              region=None if fit_region is None else region)
    raw, corr = raw_and_correction(data)  # thin the raw counts, then correct each part
    parts = thinned_folds(raw, seed, folds)
    fits = []
    for held in parts:
        fit = raw - held  # the other parts together
        if corr is not None:
            fit, held = CorrectedData(fit, corr), CorrectedData(held, corr)
        m, _ = pcc_masks(fit, t, **kw)
        fits.append((_apply(fit, m, False, None, show_progressbar),
                     _apply(held, m, False, None, show_progressbar)))
    pearson = np.mean([held for _, held in fits], axis=0)
    tr = t[:, region]
    errors, weights = {}, {}
    for r in ridges:
        ws = [unmix_images(own, t, r, region=region)[1] for own, _ in fits]
        err = []
        for w, (_, held) in zip(ws, fits):
            img = np.einsum("sj,syx->jyx", w, held)[:, region]
            err += [1 - np.corrcoef(i, ti)[0, 1] ** 2 for i, ti in zip(img, tr)]
        errors[float(r)] = float(np.mean(err))
        weights[float(r)] = ws
    best = min(errors, key=errors.get)
    joint = np.mean([np.einsum("sj,syx->jyx", w, held)
                     for w, (_, held) in zip(weights[best], fits)], axis=0)
    meta = provenance("cross_validated_joint_images", src, normalization=normalization,
                      seed=int(seed), template=t, fit_region=region, ridge=float(best),
                      folds=int(folds))
    pearson, joint = (wrap_scan_images(img, cal, f"cross-validated {kind} images", meta,
                                       names=names)
                      for img, kind in ((pearson, "Pearson"), (joint, "joint")))
    return JointCrossValidated(pearson, joint, best, errors)
