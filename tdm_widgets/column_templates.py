"""Templates from atom-column positions, and the contrast of an image at each column type."""

from __future__ import annotations

import numpy as np

from .core.blocks import computed


def check_positions(positions, scan_shape=None, name: str = "columns") -> np.ndarray:
    """``(n, 2)`` (row, col) positions [scan px] as float64, all finite and, with
    ``scan_shape``, inside the scan, ``[-0.5, size - 0.5)`` on each axis (their
    nearest pixel exists): a position outside is an error, never wrapped into the scan.

    Examples
    --------
    >>> check_positions([[1.0, 2.0]], (4, 4), "peaks").shape
    (1, 2)

    Raises
    ------
    ValueError
        Naming ``name``, the scan shape and the first offending position.
    """
    try:
        p = np.asarray(positions, float).reshape(-1, 2)
    except (TypeError, ValueError) as err:
        if "convert" in str(err):
            raise ValueError(f"{name} must hold numbers, (row, col) [scan px]: {err}"
                             ) from None
        raise ValueError(f"{name} must be (n, 2) (row, col) positions [scan px]; got "
                         f"{np.shape(positions)}") from None
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} contains NaN or inf positions ({int(bad.sum())} of "
                         f"{len(p)}, first {p[bad][0].tolist()})")
    if scan_shape is None:
        return p
    out = ~np.all((p >= -0.5) & (p < np.asarray(scan_shape, float) - 0.5), axis=1)
    if out.any():
        raise ValueError(
            f"{name}: {int(out.sum())} of {len(p)} positions lie outside the scan "
            f"{tuple(int(v) for v in scan_shape)} (first {p[out][0].tolist()}); positions "
            "are (row, col) [scan px] within [-0.5, size - 0.5): were they made for "
            "another scan?")
    return p


def _pixel_indices(positions, scan_shape):
    # the nearest pixel, halves up: pixel i holds [i - 0.5, i + 0.5), as check_positions
    # bounds the scan (np.rint rounds halves to even: columns at 4.5, 13.5, 22.5 of a
    # 9 px cell fell on pixels 4, 14, 22, and the template was not periodic)
    return np.floor(check_positions(positions, scan_shape) + 0.5).astype(int)


def species_names(columns: dict, species=None, combined: str | None = "all") -> list[str]:
    """The species to make templates of: ``species`` (all keys of ``columns`` if None),
    each in ``columns`` and none named like the ``combined`` template.

    Examples
    --------
    >>> species_names({"O": [[1, 2]], "Li": [[0, 0]]}, ["Li"])
    ['Li']
    """
    names = list(columns) if species is None else list(species)
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(f"species {missing} not in columns (have {list(columns)})")
    if combined is not None and combined in names:
        raise ValueError(f"a species is named {combined!r}, the name of the combined "
                         f"template ({combined!r} is the name of the combined template "
                         "unless combined= names another): rename the species, or pass "
                         "combined= another name (None for none)")
    return names


def point_templates(columns: dict, scan_shape, species=None, sigma_px: float = 0.0,
                    combined: str | None = "all", disc_px: float = 0.0,
                    periodic: bool = True) -> tuple[np.ndarray, list[str]]:
    """Template stack from column positions: single pixels (the paper's binary
    templates), binary discs or periodic Gaussians.

    Parameters
    ----------
    columns : dict of str to array_like
        Species to ``(n, 2)`` (row, col) positions [scan px].
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.
    species : sequence of str, optional
        Which species, in order; all keys of ``columns`` if None.
    sigma_px : float
        0 for binary templates, else the Gaussian width [scan px] (the paper tunes
        positive vs negative correlation with it).
    combined : str or None
        Name of an extra template holding every listed column; None for none.
    disc_px : float
        With ``sigma_px=0``: 0 for single pixels (nearest pixel set to 1), else every
        pixel within this radius [scan px] set to 1.
    periodic : bool
        Gaussians and discs wrap across the scan's edges (a simulated unit cell, whose
        opposite edges meet); False for an experimental scan, whose edges do not: a
        column at one edge then puts no weight at the other.

    Returns
    -------
    templates : ndarray
        ``(k, scan_y, scan_x)`` float64, 1 at the columns [dimensionless].
    names : list of str
        Species of each template, then ``combined``.

    Raises
    ------
    ValueError
        For positions that are NaN or outside the scan (see :func:`check_positions`),
        and for a species named like the combined template.

    Examples
    --------
    >>> t, names = point_templates({"O": [[1, 2], [3, 0]]}, (4, 5))
    >>> t.shape, names, float(t[0, 1, 2])
    ((2, 4, 5), ['O', 'all'], 1.0)
    >>> g, _ = point_templates({"O": [[0, 0]]}, (4, 5), disc_px=1, periodic=False)
    >>> int(g[0].sum()), float(g[0, 3, 0])      # no weight wrapped to the last row
    (3, 0.0)
    """
    for value, arg in ((sigma_px, "sigma_px"), (disc_px, "disc_px")):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{arg} must be a finite number >= 0 [px]; got {value}")
    if not columns:
        raise ValueError("columns is empty: give at least one species with positions")
    if not (len(scan_shape) == 2 and all(isinstance(v, (int, np.integer)) and v > 0
                                         for v in scan_shape)):
        raise ValueError(f"scan_shape must be two positive integers (scan_y, scan_x); got "
                         f"{tuple(scan_shape)!r}")
    names = species_names(columns, species, combined)
    sy, sx = scan_shape
    out = []
    for n in names:
        pos = check_positions(columns[n], scan_shape, f"columns[{n!r}]")
        if len(pos) == 0:
            raise ValueError(f"species {n!r} has no column positions")
        t = np.zeros(scan_shape)
        if sigma_px <= 0 and disc_px <= 0:
            rc = _pixel_indices(pos, scan_shape)
            t[rc[:, 0], rc[:, 1]] = 1.0
        else:
            yy, xx = np.arange(sy)[:, None], np.arange(sx)[None, :]
            for r, c in pos:
                dy, dx = yy - r, xx - c
                if periodic:
                    dy = (dy + sy / 2) % sy - sy / 2
                    dx = (dx + sx / 2) % sx - sx / 2
                if sigma_px > 0:
                    t += np.exp(-(dy**2 + dx**2) / (2 * sigma_px**2))
                else:
                    t = np.maximum(t, (dy**2 + dx**2 <= disc_px**2).astype(float))
        out.append(t)
    if combined is not None:
        out.append(np.sum(out, axis=0) if sigma_px > 0 else np.maximum.reduce(out))
        names.append(combined)
    return np.stack(out), names


def specificity(image, columns: dict, where=None) -> dict[str, float]:
    """Mean z-score of an image at each column type.

    ``z = (image at the columns - mean of image) / std of image``, read at the
    nearest scan pixel of each column and averaged over the columns of a type.

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)`` image.
    columns : dict of str to array_like
        Species to ``(n, 2)`` (row, col) positions [scan px].
    where : ndarray of bool, optional
        Judge only these scan positions (the held-out part of a ``split="cells"``
        cross-validation): mean, std and columns are taken there. If None, the
        held-out positions an image of :func:`tdm_widgets.cross_validated_image`
        records (``metadata.TDM.held_out``), else every position.

    Returns
    -------
    dict of str to float
        Species to mean z-score [image standard deviations]; NaN for a species with
        no column inside ``where``.

    Examples
    --------
    >>> img = np.zeros((6, 6)); img[1, 1] = img[4, 4] = 1.0
    >>> z = tw.specificity(img, {"A": [[1, 1], [4, 4]], "B": [[2, 4]]})
    >>> round(z["A"], 2), round(z["B"], 2)
    (4.12, -0.24)
    """
    if where is None and hasattr(image, "metadata"):
        where = image.metadata.get_item("TDM.held_out")
    img = getattr(image, "data", image)
    img = np.asarray(computed(img), float)
    if img.ndim != 2:
        raise ValueError(f"image must be 2D; got shape {img.shape}")
    sel = np.ones(img.shape, bool) if where is None else np.asarray(where, bool)
    if sel.shape != img.shape or sel.sum() < 2:
        raise ValueError("where must be a boolean image of the image's shape selecting "
                         "at least two pixels")
    sd = img[sel].std()
    if not np.isfinite(sd) or sd == 0:
        raise ValueError("image is constant or not finite: no contrast to measure")
    z = (img - img[sel].mean()) / sd
    out = {}
    for n, pos in columns.items():
        if len(pos) == 0:
            raise ValueError(f"columns[{n!r}] has no positions: no contrast to measure there")
        rc = _pixel_indices(pos, img.shape)
        inside = sel[rc[:, 0], rc[:, 1]]
        out[n] = float(z[rc[inside, 0], rc[inside, 1]].mean()) if inside.any() else np.nan
    return out


def random_positions_template(columns: dict, shape, n: int, seed: int = 0,
                              min_distance_px: float = 1.5) -> np.ndarray:
    """Null-control template: single pixels at random positions away from columns.

    The ``n`` pixels are at least ``min_distance_px`` from every column (the ``n``
    farthest pixels if the scan is too small for that). Its mask and image show what a
    template with no atomic meaning produces from the same data.

    Parameters
    ----------
    columns : dict of str to array_like
        Species to ``(m, 2)`` (y, x) positions [scan px].
    shape : tuple of int
        ``(scan_y, scan_x)``.
    n : int
        Number of pixels set to 1.
    seed : int
        Seed of the random choice.
    min_distance_px : float
        Least distance from every column [scan px].

    Returns
    -------
    ndarray
        ``(scan_y, scan_x)`` float64 binary template [dimensionless].

    Examples
    --------
    >>> t = tw.random_positions_template({"A": [[2, 2], [7, 7]]}, (10, 10), n=3)
    >>> int(t.sum()), float(t[2, 2])
    (3, 0.0)
    """
    size = int(np.prod(shape))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= size:
        raise ValueError(f"n must be an integer from 1 to the {size} scan positions; got {n!r}")
    rng = np.random.default_rng(seed)
    allpos = np.concatenate([np.asarray(v, float).reshape(-1, 2) for v in columns.values()])
    yy, xx = np.indices(shape)
    d = np.min(np.hypot(yy[..., None] - allpos[:, 0], xx[..., None] - allpos[:, 1]), -1)
    free = np.flatnonzero(d.ravel() > min_distance_px)
    if free.size < n:
        free = np.argsort(d.ravel())[-n:]
    t = np.zeros(shape)
    t.flat[rng.choice(free, size=n, replace=False)] = 1
    return t


def format_specificity(rows: dict[str, dict[str, float]]) -> str:
    """A plain-text table: one row per image, one column per column type.

    Parameters
    ----------
    rows : dict of str to dict of str to float
        Image name to {column type: mean z-score}, as :func:`specificity` (one row)
        or :func:`specificity_report` return.

    Returns
    -------
    str
        The table, z-scores with a sign and two decimals.

    Examples
    --------
    >>> print(tw.format_specificity({"TDM Li": {"Li": 4.1, "Fe": -0.3}}))
    image              Li       Fe
    ------------------------------
    TDM Li          +4.10    -0.30
    """
    cols = list(next(iter(rows.values())))
    width = max(12, max(len(k) for k in rows) + 1)
    head = f"{'image':<{width}}" + "".join(f"{c:>9}" for c in cols)
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{r[c]:>+9.2f}" for c in cols))
    return "\n".join(lines)
