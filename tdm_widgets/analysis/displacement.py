"""Column displacement maps (Fig 5h): each Ti column relative to the centre of its four
neighbouring O columns, from refined positions in TDM images."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..columns import point_templates
from ..templates import refine_positions


def displacement_vectors(centres, neighbours, n: int = 4, max_distance_px: float | None = None,
                         min_distance_px: float = 0.0, period=None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Displacement of each centre column from the mean of its ``n`` nearest
    neighbour columns [px].

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
        ``(m, 2)`` (dy, dx); NaN where fewer than ``n`` neighbours lie within
        ``max_distance_px``.
    cage_centre : ndarray
        ``(m, 2)`` mean neighbour position.
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


def refine_by_tdm(s, columns: dict, species, sigma_px: float = 1.0, window_px: float = 2.0,
                  max_iter: int = 10, tol_px: float = 0.01, **mask_kw) -> tuple[dict, list]:
    """Column positions refined in their own TDM images, re-centring the templates on
    the refined positions until they stop moving.

    A template pulls the measured position towards itself, so the loop starts from
    the positions given (ADF peaks or an ideal lattice) and iterates; compare runs
    from different starts to see how far the answer depends on them.

    Returns
    -------
    positions : dict
        Species to refined ``(n, 2)`` (y, x) [scan px].
    history : list of float
        Largest shift [px] at each iteration.
    """
    from ..imaging import apply_mask, pcc_mask

    pos = {k: np.asarray(v, float) for k, v in columns.items()}
    shape = s.data.shape[:2]
    history = []
    for _ in range(max_iter):
        t, names = point_templates(pos, shape, list(species), sigma_px=sigma_px, combined=None)
        imgs = apply_mask(s, pcc_mask(s, t, progress=False, **mask_kw), progress=False).data
        shift = 0.0
        for i, name in enumerate(names):
            new = refine_positions(imgs[i], pos[name], window_px=window_px)
            shift = max(shift, float(np.max(np.hypot(*(new - pos[name]).T))))
            pos[name] = new
        history.append(shift)
        if shift < tol_px:
            break
    return pos, history


def start_dependence(s, starts: list[dict], species, centre: str = "Ti", cage: str = "O",
                     min_distance_px: float = 1.5, **kw) -> dict:
    """Run :func:`refine_by_tdm` from several starting position sets and report how
    far the displacement depends on where it started.

    Returns
    -------
    dict
        ``displacements`` (one ``(m, 2)`` array per start [px]), ``positions``,
        ``histories`` and ``spread_px``: the largest difference between any two
        starts' displacement of the same column.
    """
    shape = s.data.shape[:2]
    disps, poss, hists = [], [], []
    for st in starts:
        pos, hist = refine_by_tdm(s, st, species, **kw)
        d, _ = displacement_vectors(pos[centre], pos[cage], min_distance_px=min_distance_px,
                                    period=shape)
        disps.append(d)
        poss.append(pos)
        hists.append(hist)
    stack = np.stack(disps)
    spread = float(np.nanmax(np.ptp(stack, axis=0))) if len(starts) > 1 else 0.0
    return {"displacements": disps, "positions": poss, "histories": hists, "spread_px": spread}
