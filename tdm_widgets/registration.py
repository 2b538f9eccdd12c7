"""Registration of a known unit cell on the peaks of a user's image: an affine lattice
(origin, two basis vectors: rotation, scale and shear) or a smooth polynomial map,
fitted by matching the cell's visible columns to the peaks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .column_templates import check_positions
from .positions import Lattice, lattice_from_peaks


@dataclass
class Registration:
    """A unit cell registered on a scan, from :func:`register_cell`.

    Parameters
    ----------
    lattice : Lattice
        Affine fit: origin of a cell and its vectors a, b [scan px].
    columns : dict of str to ndarray
        Species to ``(n, 2)`` (y, x) positions [scan px] of every column of the cell
        inside the scan, from the fitted map (``order`` > 1 adds the smooth distortion).
    matched : dict of str to ndarray
        Species to ``(n,)`` bool: the column was matched to a peak (always False for
        species not in ``visible``).
    residuals_px : dict of str to ndarray
        Species to ``(n, 2)`` peak minus fitted column [scan px]; NaN where unmatched.
    rms_px : float
        Root-mean-square distance of the matched pairs [scan px].
    matched_fraction : float
        Matched visible columns / visible columns inside the scan.
    peak_fraction : float
        Matched peaks / peaks.
    order : int
        Polynomial order of the map (1: affine).

    Examples
    --------
    >>> reg = tw.register_cell(peaks, cell, nominal, (20, 34),
    ...                        visible=["Fe", "P"])                  # doctest: +SKIP
    >>> reg.rms_px, reg.matched_fraction                             # doctest: +SKIP
    (0.04, 1.0)
    >>> tw.save_positions("positions.json", reg.columns, reg.lattice,
    ...                   (20, 34))                                  # doctest: +SKIP
    """

    lattice: Lattice
    columns: dict
    matched: dict
    residuals_px: dict
    rms_px: float
    matched_fraction: float
    peak_fraction: float
    order: int


def cell_from_columns(columns: dict, lattice: Lattice, tol: float = 1e-3) -> dict:
    """Fractional basis of a cell (species to ``(m, 2)`` coordinates along a, b in
    [0, 1)) from column positions and their lattice, e.g. a positions file of a
    simulation (:func:`tdm_widgets.load_positions`) or a simulation's columns.

    Parameters
    ----------
    columns : dict of str to array_like
        Species to ``(n, 2)`` (y, x) positions [px of ``lattice``].
    lattice : Lattice
        The cell the positions belong to.
    tol : float
        Fractional distance under which two positions are the same site.

    Returns
    -------
    dict of str to ndarray
        Species to ``(m, 2)`` fractional coordinates in [0, 1) [cell fractions], one
        row per site of the cell.

    Examples
    --------
    >>> lat = Lattice((0, 0), (0, 10), (10, 0))
    >>> cell_from_columns({"A": [[5, 0], [5, 10], [15, 0]]}, lat)["A"].tolist()
    [[0.0, 0.5]]
    """
    out = {}
    for name, pos in columns.items():
        f = lattice.to_frac(check_positions(pos, None, f"columns[{name!r}]")) % 1.0
        f[f > 1 - tol] = 0.0
        sites: list[np.ndarray] = []
        for fi in f:
            if not any(np.all(np.abs((fi - s + 0.5) % 1 - 0.5) < tol) for s in sites):
                sites.append(fi)
        out[name] = np.array(sites).reshape(-1, 2)
    return out


def _terms(u, order):
    """Polynomial terms of (u, v) up to ``order``: 1, u, v, u^2, u v, v^2, ..."""
    return np.column_stack([u[:, 0] ** (d - j) * u[:, 1] ** j
                            for d in range(order + 1) for j in range(d + 1)])


class _Map:
    """Fractional coordinates (cell index + basis) to scan px: a polynomial in
    normalised coordinates (order 1 is affine)."""

    def __init__(self, origin, matrix, order=1, f0=(0.0, 0.0), fs=1.0):
        self.order, self.f0, self.fs = order, np.asarray(f0, float), float(fs)
        n = (order + 1) * (order + 2) // 2
        self.coef = np.zeros((n, 2))
        self.coef[0] = np.asarray(origin) + np.asarray(matrix) @ self.f0
        self.coef[1:3] = (np.asarray(matrix) * self.fs).T

    def __call__(self, f):
        return _terms((f - self.f0) / self.fs, self.order) @ self.coef

    def fit(self, f, p):
        self.coef, *_ = np.linalg.lstsq(_terms((f - self.f0) / self.fs, self.order), p,
                                        rcond=None)

    def lattice(self, at):
        """Affine part (origin and vectors at fractional point ``at``)."""
        h = 1e-3
        m = np.stack([(self(at + d) - self(at - d))[0] / (2 * h)
                      for d in (np.array([[h, 0]]), np.array([[0, h]]))], axis=1)
        return Lattice(self(at)[0] - m @ at[0], m[:, 0], m[:, 1])


def _model(mp, cell, species, shape, margin=1):
    """Fractional coordinates, species index and px of the cell's columns inside the
    scan."""
    corners = np.array([[0, 0], [0, shape[1]], [shape[0], 0], [shape[0], shape[1]]], float)
    lin = mp.lattice(mp.f0[None])
    fc = lin.to_frac(corners)
    lo, hi = np.floor(fc.min(0)) - margin, np.ceil(fc.max(0)) + margin
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1),
                         indexing="ij")
    cells = np.stack([ii.ravel(), jj.ravel()], 1)
    f, sp = [], []
    for k, name in enumerate(species):
        fk = (cells[:, None, :] + cell[name][None]).reshape(-1, 2)
        f.append(fk)
        sp.append(np.full(len(fk), k))
    f, sp = np.concatenate(f), np.concatenate(sp)
    px = mp(f)
    inside = np.all((px >= -0.5) & (px < np.asarray(shape) - 0.5), axis=1)
    return f[inside], sp[inside], px[inside]


def _pairs(px, tree, pk, tol):
    """Mutual nearest neighbours closer than ``tol``: (model index, peak index)."""
    if len(px) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    d, ip = tree.query(px)
    _, back = cKDTree(px).query(pk)
    im = np.flatnonzero((d < tol) & (back[ip] == np.arange(len(px))))
    return im, ip[im]


def _score(px, tree, n_peaks, tol):
    """Soft F1 of model columns and peaks: 1 when every column sits on a peak and
    every peak on a column."""
    if len(px) == 0:
        return 0.0
    d, _ = tree.query(px)
    soft = np.exp(-0.5 * (d / (0.5 * tol)) ** 2).sum()
    return 2 * soft / (len(px) + n_peaks)


def _candidates(pk, nominal: Lattice, tol, max_strain, max_rotation_deg):
    """Cell vectors (A, B) from the peaks' lattice whose lengths, angle and handedness
    match the nominal cell; the nominal cell itself first."""
    out = [nominal.matrix]
    try:
        pl = lattice_from_peaks(pk, allow_basis=True, tol_px=tol)
    except ValueError:
        return out
    ij = np.array([(i, j) for i in range(-4, 5) for j in range(-4, 5) if (i, j) != (0, 0)])
    vec = ij @ pl.matrix.T
    an, bn = nominal.a, nominal.b

    def near(v, ref):
        ang = np.degrees(np.abs(np.arctan2(np.cross(ref, v), v @ ref)))
        return (np.abs(np.hypot(*v.T) / np.hypot(*ref) - 1) < max_strain) & \
            (ang <= max_rotation_deg)

    cand_a, cand_b = vec[near(vec, an)], vec[near(vec, bn)]
    ang_n = np.arctan2(np.cross(an, bn), an @ bn)
    scored = []
    for A in cand_a:
        for B in cand_b:
            c = np.cross(A, B)
            if np.sign(c) != np.sign(np.cross(an, bn)) or abs(c) < 1e-9:
                continue
            dang = abs(np.arctan2(c, A @ B) - ang_n)
            if np.degrees(dang) > 20:
                continue
            rot = np.arctan2(np.cross(an, A), an @ A)
            scored.append((dang + abs(np.log(np.hypot(*A) / np.hypot(*B)
                                             * np.hypot(*bn) / np.hypot(*an))), rot, A, B))
    scored.sort(key=lambda t: t[0])
    out += [np.stack([A, B], 1) for *_, A, B in scored[:12]]
    return out


def _icp(mp, order, vis, visible, shape, tree, pk, tol, max_iter=50):
    """Iterate: match model columns and peaks (mutual nearest), least squares fit of
    the map, until the matches stop changing."""
    prev = None
    for _ in range(max_iter):
        f, _, px = _model(mp, vis, visible, shape)
        im, ip = _pairs(px, tree, pk, tol)
        if len(im) < (order + 1) * (order + 2) // 2 + 1:
            break
        key = (tuple(im), tuple(ip))
        if key == prev:
            break
        prev = key
        mp.fit(f[im], pk[ip])
    return mp


def _same_placement(m1, m2, n_species, tol):
    """Two placements put the same species at the same positions (within tol / 2)."""
    for k in range(n_species):
        a, b = m1[2][m1[1] == k], m2[2][m2[1] == k]
        if len(a) == 0 or len(b) == 0:
            return len(a) == len(b)
        if np.mean(cKDTree(b).query(a)[0] < 0.5 * tol) < 0.9:
            return False
    return True


def _choose(placements, brightness, visible, inten, pk, tree, tol):
    """The best placement; among placements that fit the positions equally well, the
    one whose expected brightness per species agrees with the peak intensities."""
    close = [q for q in placements if q[0] >= placements[0][0] - 0.05]
    if len(close) == 1:
        return close[0][1]
    expected = np.array([brightness[k] for k in visible])
    hint = ("pass intensities= (the image at the peaks minus its background) and visible "
            "as {species: relative brightness}, e.g. {'Fe': 1.0, 'P': 0.7}")
    if inten is None or np.ptp(expected) == 0:
        raise ValueError(f"ambiguous registration: {len(close)} placements of the cell that "
                         "put different species on the peaks fit the positions equally "
                         f"well; {hint}")
    agree = []
    for _, _, (_f, sp, px) in close:
        im, ip = _pairs(px, tree, pk, tol)
        e, i = expected[sp[im]], inten[ip]
        agree.append(np.corrcoef(e, i)[0, 1] if len(im) > 2 and np.ptp(e) > 0
                     and np.ptp(i) > 0 else -np.inf)
    order = np.argsort(agree)[::-1]
    if not agree[order[0]] - agree[order[1]] > 0.2:
        raise ValueError(f"ambiguous registration: {len(close)} placements fit the positions "
                         "equally well and the peak intensities do not tell them apart "
                         "(brightness correlations "
                         f"{np.round(sorted(agree)[::-1], 2).tolist()}); "
                         "check visible and its relative brightness")
    return close[order[0]][1]


def register_cell(peaks, cell: dict, lattice: Lattice, shape, visible=None,
                  intensities=None, order: int = 1, tol_px: float | None = None,
                  max_strain: float = 0.25,
                  max_rotation_deg: float = 180.0, min_matched: float = 0.7,
                  max_rms_px: float | None = None) -> Registration:
    """Register a known unit cell on the peaks of a user's image.

    The cell's visible columns (those that appear as peaks, e.g. the heavy columns in
    ADF) are matched to the peaks: candidate cell vectors come from the peaks' own
    lattice (any rotation, scale within ``max_strain``) and the nominal cell; the
    origin is searched over every peak near the centre; the best start is refined by
    iterative mutual-nearest-neighbour assignment and least squares (affine, or a
    polynomial of ``order`` for a smooth distortion field on top).

    Parameters
    ----------
    peaks : array_like
        ``(n, 2)`` (y, x) sub-pixel peak positions [scan px], e.g.
        ``refine_positions(adf, find_peaks(adf))``; all inside ``shape``.
    cell : dict of str to array_like
        Species to ``(m, 2)`` fractional coordinates along a, b (from
        :func:`cell_from_columns`, or ``projected_columns`` of a structure).
    lattice : Lattice
        The nominal cell in this scan's px (e.g. cell length / scan step); only its
        vectors are used, as a starting guess and to pick the cell among the peaks'
        lattice vectors.
    shape : tuple of int
        ``(scan_y, scan_x)``.
    visible : sequence of str or dict of str to float, optional
        Species that appear as peaks, or species to their relative peak brightness
        (e.g. ``{"Fe": 1.0, "P": 0.7}`` in ADF); all of ``cell``, equally bright, if
        None.
    intensities : array_like, optional
        ``(n,)`` peak heights above the background. Several placements of a cell can
        fit the positions equally well with the species swapped (any two columns per
        cell, for one); the heights and the relative brightness in ``visible`` pick
        the right one, and without them such a case is an error.
    order : int
        1 for an affine lattice, 2 or 3 for a smooth polynomial distortion on top.
    tol_px : float, optional
        Largest peak-to-column distance of a match [scan px]; default 0.3 of the
        shortest distance between visible columns.
    max_strain : float
        Largest relative change of the cell vectors' lengths from ``lattice``.
    max_rotation_deg : float
        Largest rotation of the cell from ``lattice`` [degrees].
    min_matched : float
        Smallest acceptable fraction of visible columns with a peak.
    max_rms_px : float, optional
        Largest acceptable rms residual [scan px]; default half of ``tol_px``.

    Returns
    -------
    Registration
        The fitted lattice and map, every column of the cell inside the scan
        [scan px], which ones matched a peak and the residuals [scan px].

    Raises
    ------
    ValueError
        If the fit is poor (too few matches or a large rms residual), or if an
        argument is invalid; peaks outside the scan are an error, never wrapped.

    Examples
    --------
    >>> true = Lattice((3.2, 2.1), (0.8, 12.0), (9.0, -1.5))
    >>> cell = {"A": [[0, 0]], "B": [[0.5, 0.4]]}
    >>> from tdm_widgets.positions import replicate
    >>> cols = replicate(true, cell, (60, 60))
    >>> peaks = np.concatenate([cols["A"], cols["B"]])
    >>> heights = np.r_[np.full(len(cols["A"]), 2.0), np.ones(len(cols["B"]))]
    >>> reg = register_cell(peaks, cell, Lattice((0, 0), (0, 12), (9, 0)), (60, 60),
    ...                     visible={"A": 2.0, "B": 1.0}, intensities=heights)
    >>> bool(reg.rms_px < 1e-6), reg.matched_fraction
    (True, 1.0)
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (scan_y, scan_x); got {shape}")
    pk = check_positions(peaks, shape, "peaks")
    if not isinstance(lattice, Lattice):
        raise TypeError(f"lattice must be a Lattice; got {type(lattice).__name__}")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1 (affine), 2 or 3; got {order!r}")
    cell = {k: np.asarray(v, float).reshape(-1, 2) for k, v in cell.items()}
    for k, v in cell.items():
        if len(v) == 0 or not np.isfinite(v).all():
            raise ValueError(f"cell[{k!r}] must hold finite fractional coordinates; got {v}")
    brightness = dict(visible) if isinstance(visible, dict) else \
        {k: 1.0 for k in (cell if visible is None else visible)}
    visible = list(brightness)
    missing = [v for v in visible if v not in cell]
    if missing or not visible:
        raise ValueError(f"visible must name species of cell {list(cell)}; got {visible}")
    inten = None
    if intensities is not None:
        inten = np.asarray(intensities, float).reshape(-1)
        if inten.shape != (len(pk),) or not np.isfinite(inten).all():
            raise ValueError(f"intensities must be {len(pk)} finite values, one per peak; "
                             f"got shape {np.shape(intensities)}")
    if tol_px is None:
        sites = np.concatenate([cell[k] for k in visible])
        d = (sites[:, None] - sites[None] + 0.5) % 1 - 0.5
        shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)])
        dd = np.hypot(*((d[:, :, None] + shifts) @ lattice.matrix.T).transpose(3, 0, 1, 2))
        dd[dd < 1e-6] = np.inf
        tol_px = 0.3 * float(dd.min())
    tol = float(tol_px)
    if len(pk) < 3:
        raise ValueError(f"need at least 3 peaks to register a cell; got {len(pk)}")
    tree = cKDTree(pk)
    vis = {k: cell[k] for k in visible}

    limit = 0.5 * tol if max_rms_px is None else float(max_rms_px)

    def _checked(mp):
        fv, spv, pxv = _model(mp, vis, visible, shape)
        im, ip = _pairs(pxv, tree, pk, tol)
        res = pk[ip] - pxv[im]
        rms = float(np.sqrt((res ** 2).sum(1).mean())) if len(im) else np.inf
        frac_m = len(im) / max(len(pxv), 1)
        if frac_m < min_matched or rms > limit:
            raise ValueError(
                f"registration failed: {len(im)} of {len(pxv)} visible columns ({frac_m:.0%}; "
                f"min_matched={min_matched:.0%}) have a peak within tol_px={tol:.2g}, rms "
                f"residual {rms:.2f} px (max_rms_px={limit:.2g}); check visible={visible}, "
                "the nominal lattice (scan step) and the peaks")
        return fv, spv, pxv, im, res, rms, frac_m

    centre = pk.mean(0)
    starts = []
    for m in _candidates(pk, lattice, tol, max_strain, max_rotation_deg):
        reach = max(np.hypot(*m[:, 0]), np.hypot(*m[:, 1]))
        f0 = vis[visible[0]][0]
        for p in pk[np.hypot(*(pk - centre).T) <= reach]:
            mp = _Map(p - m @ f0, m)
            starts.append((_score(_model(mp, vis, visible, shape)[2], tree, len(pk), tol), mp))
    starts.sort(key=lambda t: -t[0])
    placements = []  # distinct placements of the labelled columns, best first
    for sc, mp in starts[:16]:
        if sc < starts[0][0] - 0.1:
            break
        mp = _icp(mp, 1, vis, visible, shape, tree, pk, tol)
        model = _model(mp, vis, visible, shape)
        if not any(_same_placement(model, q[2], len(visible), tol) for q in placements):
            placements.append((_score(model[2], tree, len(pk), tol), mp, model))
    placements.sort(key=lambda t: -t[0])
    _checked(placements[0][1])
    mp = _choose(placements, brightness, visible, inten, pk, tree, tol)
    for o in range(2, order + 1):
        f = _model(mp, vis, visible, shape)[0]
        lin = mp.lattice(f.mean(0)[None])
        mp = _icp(_Map(lin.origin, lin.matrix, o, f.mean(0), max(1.0, f.std(0).max())),
                  o, vis, visible, shape, tree, pk, tol)

    fv, spv, _, im, res, rms, frac_m = _checked(mp)
    f_all, sp_all, px_all = _model(mp, cell, list(cell), shape, margin=1)
    columns, matched, residuals = {}, {}, {}
    names = list(cell)
    vis_key = {(visible[s], tuple(np.round(fi, 9))): n for n, (s, fi) in enumerate(zip(spv, fv))}
    res_of = {n: r for n, r in zip(im, res)}
    for k, name in enumerate(names):
        sel = sp_all == k
        columns[name] = px_all[sel]
        matched[name] = np.zeros(sel.sum(), bool)
        residuals[name] = np.full((sel.sum(), 2), np.nan)
        for i, fi in enumerate(f_all[sel]):
            n = vis_key.get((name, tuple(np.round(fi, 9))))
            if n is not None and n in res_of:
                matched[name][i] = True
                residuals[name][i] = res_of[n]
    return Registration(mp.lattice(fv.mean(0)[None]), columns, matched, residuals, rms,
                        frac_m, len(im) / len(pk), order)
