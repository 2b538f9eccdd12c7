"""Projected atom columns of a structure, grouped by species, in scan pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ase is the simulate extra; nothing here needs it at run time
    from ase import Atoms

#: Atomic numbers used to name a mixed column after its heaviest species.
_Z = {"H": 1, "Li": 3, "O": 8, "P": 15, "Ti": 22, "Fe": 26, "Pb": 82}


def projected_columns(cell: Atoms, merge_A: float = 0.3) -> dict[str, np.ndarray]:
    """Atom columns of one unit cell projected along z.

    Sites closer than ``merge_A`` in projection form one column; a column holding
    several species is named after the heaviest (in LiFePO4 the O1 column lies
    0.02 angstrom from P and is reported as ``"P"``, the paper's "P(+O)").

    Parameters
    ----------
    cell : ase.Atoms
        One orthogonal unit cell, beam along z.
    merge_A : float
        Projected distance [angstrom] under which sites share a column.

    Returns
    -------
    dict of str to ndarray
        Species name to an ``(n, 2)`` array of fractional (x, y) column positions in
        [0, 1).
    """
    lx, ly = cell.cell.lengths()[:2]
    frac = np.mod(cell.get_scaled_positions(wrap=True)[:, :2], 1.0)
    symbols = cell.get_chemical_symbols()
    columns: list[tuple[np.ndarray, set]] = []
    for f, sym in zip(frac, symbols):
        for pos, species in columns:
            d = (f - pos + 0.5) % 1.0 - 0.5
            if np.hypot(d[0] * lx, d[1] * ly) < merge_A:
                species.add(sym)
                break
        else:
            columns.append((f.copy(), {sym}))
    out: dict[str, list] = {}
    for pos, species in columns:
        name = max(species, key=lambda s: _Z.get(s, 0))
        out.setdefault(name, []).append(pos)
    return {k: np.array(v) for k, v in sorted(out.items())}


def columns_in_scan(fractional: dict[str, np.ndarray], cell_A: tuple[float, float],
                    start_A: tuple[float, float], step_A: tuple[float, float],
                    shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Column positions in scan pixels for a scan over a periodic crystal.

    Parameters
    ----------
    fractional : dict of str to ndarray
        Output of :func:`projected_columns`.
    cell_A : tuple of float
        Unit-cell lengths (x, y) [angstrom].
    start_A : tuple of float
        Position (x, y) of scan pixel (0, 0) [angstrom].
    step_A : tuple of float
        Scan step (x, y) [angstrom].
    shape : tuple of int
        Scan shape ``(scan_y, scan_x)``.

    Returns
    -------
    dict of str to ndarray
        Species to an ``(n, 2)`` array of (row, col) = (y, x) positions [scan px] of
        every column inside the scanned area.
    """
    ny, nx = shape
    extent = np.array([nx * step_A[0], ny * step_A[1]])
    cell = np.asarray(cell_A, float)
    out = {}
    for name, f in fractional.items():
        pts = []
        reps = np.ceil(extent / cell).astype(int) + 2
        for i in range(-1, reps[0]):
            for j in range(-1, reps[1]):
                xy = (f + [i, j]) * cell - np.asarray(start_A)
                pts.append(xy)
        xy = np.concatenate(pts)
        # half-open interval [-0.5 px, n - 0.5 px): each column appears once
        keep = ((xy[:, 0] >= -0.5 * step_A[0]) & (xy[:, 0] < extent[0] - 0.5 * step_A[0])
                & (xy[:, 1] >= -0.5 * step_A[1]) & (xy[:, 1] < extent[1] - 0.5 * step_A[1]))
        xy = xy[keep]
        rc = np.stack([xy[:, 1] / step_A[1], xy[:, 0] / step_A[0]], axis=1)
        out[name] = rc[np.lexsort((rc[:, 1], rc[:, 0]))]
    return out
