"""Column displacement maps (Fig 5h): each Ti column relative to the centre of its four
neighbouring O columns, from refined positions in TDM images."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..column_templates import point_templates
from ..positions import refine_positions


def displacement_vectors(centres, neighbours, n: int = 4, max_distance_px: float | None = None,
                         min_distance_px: float = 0.0, period=None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Displacement of each centre column from the mean of its ``n`` nearest
    neighbour columns.

    Parameters
    ----------
    centres, neighbours : array_like
        ``(m, 2)`` and ``(k, 2)`` (y, x) positions [px].
    n : int
        Neighbours forming the cage (4 O around Ti in perovskite [100]).
    max_distance_px : float, optional
        Cages with a neighbour farther than this give NaN (image edges).
    min_distance_px : float
        Neighbours closer than this are skipped (in PbTiO3 [100] one O shares the
        Ti column, 0.33 angstrom away in projection).
    period : tuple of float, optional
        (rows, cols) of a periodic image: neighbours are searched among periodic
        copies too.

    Returns
    -------
    displacement : ndarray
        ``(m, 2)`` (dy, dx) [px]; NaN where fewer than ``n`` neighbours lie within
        ``max_distance_px``.
    cage_centre : ndarray
        ``(m, 2)`` mean neighbour position [px].

    Examples
    --------
    >>> cage = [[0, 5], [10, 5], [5, 0], [5, 10]]             # 4 O around one Ti
    >>> d, centre = tw.displacement_vectors([[5.0, 5.2]], cage, n=4)
    >>> np.round(d, 6).tolist(), centre.tolist()
    ([[0.0, 0.2]], [[5.0, 5.0]])
    """
    c = np.asarray(centres, float)
    nb = np.asarray(neighbours, float)
    if period is not None:
        shifts = np.array([(i * period[0], j * period[1]) for i in (-1, 0, 1) for j in (-1, 0, 1)])
        nb = (nb[None] + shifts[:, None]).reshape(-1, 2)
    tree = cKDTree(nb)
    extra = int(np.sum(tree.query_ball_point(c, min_distance_px, return_length=True))) \
        if min_distance_px > 0 else 0
    d, idx = tree.query(c, k=min(len(nb), n + extra + 1))
    keep = d >= min_distance_px
    disp = np.full(c.shape, np.nan)
    cage = np.full(c.shape, np.nan)
    for i in range(len(c)):
        di, ii = d[i][keep[i]][:n], idx[i][keep[i]][:n]
        if len(ii) < n or (max_distance_px is not None and di.max() > max_distance_px):
            continue
        cage[i] = nb[ii].mean(axis=0)
        disp[i] = c[i] - cage[i]
    return disp, cage


@dataclass
class Refinement:
    """Result of :func:`refine_by_tdm`.

    Attributes
    ----------
    positions : dict
        Species to refined ``(n, 2)`` (y, x) [scan px].
    history : list of float
        Largest shift [scan px] at each iteration.
    converged : bool
        The last shift was below ``tol_px``.
    """

    positions: dict
    history: list
    converged: bool

    @property
    def iterations(self) -> int:
        """Number of refinement iterations run."""
        return len(self.history)


def refine_by_tdm(s, columns: dict, species, sigma_px: float = 1.0, window_px: float = 2.0,
                  max_iter: int = 10, tol_px: float = 0.01, **mask_kw) -> Refinement:
    """Column positions refined in their own TDM images, re-centring the templates on
    the refined positions until they stop moving.

    A template pulls the measured position towards itself, so the loop starts from
    the positions given (ADF peaks or an ideal lattice) and iterates; compare runs
    from different starts (:func:`start_dependence`) to see how far the answer
    depends on them. A run that reaches ``max_iter`` with columns still moving by
    ``tol_px`` or more warns and reports ``converged=False``.

    Known bias (README, validation table): in PbTiO3 [100] the O column 0.33
    angstrom from Ti in projection is not separated from it, and the Ti-O
    displacement comes out wrong by up to 0.4 angstrom depending on thickness,
    whichever start is used.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    columns : dict
        Species to starting ``(n, 2)`` (y, x) [scan px].
    species : list of str
        Species whose templates make the masks (and whose positions are refined).
    sigma_px : float
        Gaussian width of the templates [scan px].
    window_px : float
        Half-width of the fitting window [scan px].
    max_iter : int
        Most iterations.
    tol_px : float
        Converged when no column moves by this much in one iteration [scan px].
    **mask_kw
        Passed to :func:`tdm_widgets.pcc_mask` (``detector_region``, ...).

    Returns
    -------
    Refinement
        ``positions`` (species to ``(n, 2)`` [scan px]), ``history`` (largest shift
        per iteration [scan px]), ``converged`` and ``iterations``.

    Examples
    --------
    >>> r = tw.refine_by_tdm(s, columns, ["Pb", "Ti", "O"],
    ...                      detector_region=(0, 23.5))   # doctest: +SKIP
    >>> r.converged, r.iterations                         # doctest: +SKIP
    (True, 3)
    """
    from ..imaging import apply_mask, pcc_mask

    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    pos = {k: np.asarray(v, float) for k, v in columns.items()}
    shape = s.data.shape[:2]
    history = []
    for _ in range(max_iter):
        t, names = point_templates(pos, shape, list(species), sigma_px=sigma_px, combined=None)
        imgs = apply_mask(s, pcc_mask(s, t, show_progressbar=False, **mask_kw),
                          show_progressbar=False).data
        shift = 0.0
        for i, name in enumerate(names):
            new = refine_positions(imgs[i], pos[name], window_px=window_px)
            shift = max(shift, float(np.max(np.hypot(*(new - pos[name]).T))))
            pos[name] = new
        history.append(shift)
        if shift < tol_px:
            break
    converged = history[-1] < tol_px
    if not converged:
        warnings.warn(f"refine_by_tdm did not converge: columns still moved by "
                      f"{history[-1]:.3f} px (tol_px={tol_px}) after {max_iter} iterations; "
                      "raise max_iter or check the starting positions", stacklevel=2)
    return Refinement(pos, history, converged)


def start_dependence(s, starts: list[dict], species, centre: str = "Ti", cage: str = "O",
                     min_distance_px: float = 1.5, match_px: float = 1.0, **kw) -> dict:
    """Run :func:`refine_by_tdm` from several starting position sets and report how
    far the displacement depends on where it started.

    The starts may hold different numbers of columns (an ideal lattice, peaks found
    in an image): columns are paired by their refined centre positions (nearest
    within ``match_px``, periodic scan) and compared where they pair.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data.
    starts : list of dict
        Starting positions, species to ``(n, 2)`` (y, x) [scan px].
    species : list of str
        As in :func:`refine_by_tdm`.
    centre, cage : str
        Species of the displaced column and of its neighbours.
    min_distance_px : float
        As in :func:`displacement_vectors`.
    match_px : float
        Refined centres of two starts closer than this are the same column [scan px].
    **kw
        Passed to :func:`refine_by_tdm`.

    Returns
    -------
    dict
        ``displacements`` (one ``(m, 2)`` array per start [px]), ``positions``,
        ``histories``, ``converged`` (one bool per start), ``n_matched`` (columns of
        each start paired with the first start's) and ``spread_px``: the largest
        difference between two starts' displacement of the same column [px].

    Examples
    --------
    >>> rep = tw.start_dependence(s, [peaks, ideal], ["Pb", "Ti", "O"])  # doctest: +SKIP
    >>> rep["spread_px"]                                                 # doctest: +SKIP
    """
    shape = s.data.shape[:2]
    disps, poss, hists, conv = [], [], [], []
    for st in starts:
        r = refine_by_tdm(s, st, species, **kw)
        d, _ = displacement_vectors(r.positions[centre], r.positions[cage],
                                    min_distance_px=min_distance_px, period=shape)
        disps.append(d)
        poss.append(r.positions)
        hists.append(r.history)
        conv.append(r.converged)
    ref = np.mod(np.mod(poss[0][centre], shape), shape)  # twice: -1e-17 -> shape -> 0
    tree = cKDTree(ref, boxsize=np.asarray(shape, float))
    spread, n_matched = 0.0, [len(ref)]
    for d, p in zip(disps[1:], poss[1:]):
        dist, idx = tree.query(np.mod(np.mod(p[centre], shape), shape),
                               distance_upper_bound=match_px)
        ok = np.isfinite(dist)
        n_matched.append(int(ok.sum()))
        diff = np.abs(d[ok] - disps[0][idx[ok]])
        if np.isfinite(diff).any():
            spread = max(spread, float(np.nanmax(diff)))
    return {"displacements": disps, "positions": poss, "histories": hists,
            "converged": conv, "n_matched": n_matched, "spread_px": spread}
