"""Crystal structures for the simulations, as ASE ``Atoms`` with the beam along z.

All builders return orthogonal cells whose z axis is the beam direction, so that
abTEM projects along z and the scan plane is x-y. Column positions (the projected
x-y sites grouped by species) come from :func:`projected_columns`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.spacegroup import crystal

#: LiFePO4 (olivine, Pnma) lattice parameters [angstrom]. The issue's a, b, c.
LFP_CELL_A = (10.33, 6.01, 4.69)

#: Fractional coordinates of the asymmetric unit of LiFePO4 in Pnma (No. 62, standard
#: setting): Li on 4a, Fe, P, O1 and O2 on 4c, O3 on 8d (literature values for the
#: olivine structure, e.g. Streltsov et al. 1993).
LFP_BASIS = (
    ("Li", (0.0, 0.0, 0.0)),
    ("Fe", (0.2822, 0.25, 0.9747)),
    ("P", (0.0950, 0.25, 0.4182)),
    ("O", (0.0966, 0.25, 0.7428)),
    ("O", (0.4571, 0.25, 0.2060)),
    ("O", (0.1656, 0.0465, 0.2848)),
)


def lifepo4_cell() -> Atoms:
    """One orthorhombic LiFePO4 unit cell viewed along [001].

    Returns
    -------
    ase.Atoms
        28 atoms (4 formula units) in a 10.33 x 6.01 x 4.69 [angstrom] cell; x = a,
        y = b, z = c is the beam direction.
    """
    symbols = [s for s, _ in LFP_BASIS]
    basis = [p for _, p in LFP_BASIS]
    atoms = crystal(symbols, basis=basis, spacegroup=62,
                    cellpar=[*LFP_CELL_A, 90, 90, 90])
    atoms.wrap()
    return atoms


def lifepo4(repeat_xy: tuple[int, int] = (1, 1), thickness_A: float | None = None
            ) -> Atoms:
    """A LiFePO4 [001] slab, ``repeat_xy`` cells laterally.

    Parameters
    ----------
    repeat_xy : tuple of int
        Number of unit cells along x (a) and y (b).
    thickness_A : float, optional
        Slab thickness [angstrom]; rounded up to whole cells along c. One cell if
        not given.

    Returns
    -------
    ase.Atoms
    """
    nz = 1 if thickness_A is None else max(1, int(np.ceil(thickness_A / LFP_CELL_A[2] - 1e-9)))
    return lifepo4_cell().repeat((int(repeat_xy[0]), int(repeat_xy[1]), nz))


@dataclass
class Structure:
    """A structure to simulate: its unit cell and how to build the slab.

    Attributes
    ----------
    name : str
        Structure name.
    cell : ase.Atoms
        Orthogonal unit cell, beam along z (defines columns, scan period and slices).
    scan_cells : tuple of int
        Unit cells scanned along (x, y).
    build : callable, optional
        ``build(repeat_xy, n_cells_z, scan_origin_A) -> (atoms, truth)``: the slab and
        its ground truth, positions as (x, y) [angstrom] in slab coordinates under
        keys ending in ``_A``. ``cell.repeat`` with no ground truth if None.
    merge_A : float
        Projected distance [angstrom] under which sites share a column.
    margin_cells : int
        Unit cells of slab kept around the scanned cells on every side.
    """

    name: str
    cell: Atoms
    scan_cells: tuple[int, int] = (1, 1)
    build: Callable | None = None
    merge_A: float = 0.3
    margin_cells: int = 1


def _column_members(atoms: Atoms, xy, tol=0.3) -> np.ndarray:
    """Indices of the atoms in the column at projected position ``xy`` [angstrom]."""
    d = atoms.positions[:, :2] - np.asarray(xy)
    return np.flatnonzero(np.hypot(d[:, 0], d[:, 1]) < tol)


def _emptiest_site(cell: Atoms, step=0.05) -> np.ndarray:
    """Fractional (x, y) farthest from every projected column of the cell."""
    lx, ly = cell.cell.lengths()[:2]
    f = np.mod(cell.get_scaled_positions()[:, :2], 1)
    gy, gx = np.meshgrid(np.arange(0, 1, step / ly), np.arange(0, 1, step / lx), indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    d = (pts[:, None, :] - f[None] + 0.5) % 1 - 0.5
    dist = np.hypot(d[..., 0] * lx, d[..., 1] * ly).min(axis=1)
    return pts[int(np.argmax(dist))]


def lifepo4_defects(scan_cells=(2, 2)) -> Structure:
    """LiFePO4 [001] with the three defects of the paper's Fig 4 in the scanned area.

    In scan cell (0, 0) an O column (the O2 site at x=0.457, y=0.25) is removed; in
    scan cell (1, 0) the Li column at (0.5, 0.5) holds alternating Li and Fe along the
    beam (Fe_Li anti-site); in scan cell (0, 1) an extra Fe column sits at the site of
    the projected cell farthest from every column (one Fe per c). Scan cell (1, 1) is
    perfect. The ground truth (``vacancy_O_A``, ``antisite_FeLi_A``,
    ``extra_Fe_A``) is stored in slab coordinates and converted to scan px.
    """
    cell = lifepo4_cell()
    a, b, c = LFP_CELL_A
    interstitial = _emptiest_site(cell)

    def build(repeat, nz, origin_A):
        atoms = cell.repeat((repeat[0], repeat[1], nz))
        o = np.asarray(origin_A)
        vac = o + np.array([0.4571 * a, 0.25 * b])
        anti = o + np.array([1.5 * a, 0.5 * b])
        extra = o + np.array([interstitial[0] * a, (1 + interstitial[1]) * b])
        drop = _column_members(atoms, vac)
        if not all(atoms[i].symbol == "O" for i in drop) or len(drop) != nz:
            raise RuntimeError("O vacancy site does not hold one O per cell")
        li = _column_members(atoms, anti)
        li = li[np.argsort(atoms.positions[li, 2])]
        syms = atoms.get_chemical_symbols()
        for i in li[1::2]:
            syms[i] = "Fe"
        atoms.set_chemical_symbols(syms)
        extra_atoms = Atoms(["Fe"] * nz, positions=[(extra[0], extra[1], (k + 0.25) * c)
                                                     for k in range(nz)])
        del atoms[drop]
        atoms += extra_atoms
        truth = {"vacancy_O_A": vac[None], "antisite_FeLi_A": anti[None],
                 "extra_Fe_A": extra[None]}
        return atoms, truth

    return Structure("lifepo4_defects", cell, tuple(scan_cells), build)


#: PbTiO3 tetragonal lattice [angstrom] with c/a = 1.06, and fractional positions along
#: c of the polar displacements (room-temperature values, Glazer & Mabud 1978).
PTO_A = 3.90
PTO_C = 3.90 * 1.06
PTO_SITES = (("Pb", 0.0, 0.0, 0.0), ("Ti", 0.5, 0.5, 0.538), ("O", 0.5, 0.5, 0.112),
             ("O", 0.5, 0.0, 0.617), ("O", 0.0, 0.5, 0.617))


#: Ti displacement [angstrom] along c from the centre of its four O neighbours in the
#: [100] projection (two apical O at 0.112 and 1.112 c, two equatorial O at 0.617 c):
#: Ti sits 0.0765 c = 0.317 angstrom below the cage centre.
PTO_TI_SHIFT_A = (PTO_SITES[1][3] - (2 * PTO_SITES[2][3] + 1 + 2 * PTO_SITES[3][3]) / 4) * PTO_C


def pbtio3_cell(ti_displacement_A: float | None = None) -> Atoms:
    """PbTiO3 viewed along [100]: x = [010] (a), y = [001] (c, the polar axis),
    z = [100] (a, the beam).

    Ti sits below the centre of its O cage (along -y, :data:`PTO_TI_SHIFT_A`); Ti
    moves along the polarisation in PbTiO3, so the polarisation points along -y.

    Parameters
    ----------
    ti_displacement_A : float, optional
        Ti displacement along y from the centre of its four projected O neighbours
        [angstrom]; the O and Pb sites stay. The room-temperature structure
        (-0.317) if None.

    Returns
    -------
    ase.Atoms
        5 atoms in a 3.90 x 4.134 x 3.90 [angstrom] cell.

    Examples
    --------
    >>> pbtio3_cell(0.0).positions[1, 1]  # Ti at the cage centre  # doctest: +SKIP
    """
    sites = [list(s) for s in PTO_SITES]
    if ti_displacement_A is not None:
        sites[1][3] += (float(ti_displacement_A) - PTO_TI_SHIFT_A) / PTO_C
    pos = [(f2 * PTO_A, f3 * PTO_C, f1 * PTO_A) for _, f1, f2, f3 in sites]
    return Atoms([s for s, *_ in sites], positions=pos,
                 cell=[PTO_A, PTO_C, PTO_A], pbc=True)


def pbtio3(ti_displacement_A: float | None = None) -> Structure:
    """Perfect tetragonal PbTiO3 [100], polarisation along -y (Ti below its O cage).

    Parameters
    ----------
    ti_displacement_A : float, optional
        As in :func:`pbtio3_cell`.

    Returns
    -------
    Structure
        Ground truth ``ti_displacement_angstrom`` (the Ti shift from its cage centre).
    """
    cell = pbtio3_cell(ti_displacement_A)
    shift = PTO_TI_SHIFT_A if ti_displacement_A is None else float(ti_displacement_A)

    def build(repeat, nz, origin_A):
        return cell.repeat((repeat[0], repeat[1], nz)), {"ti_displacement_angstrom": shift}

    return Structure("pbtio3", cell, (1, 1), build, merge_A=0.2)


def pbtio3_domain_wall(scan_cells=(6, 6)) -> Structure:
    """PbTiO3 [100] with a 90 degree {011} domain wall across the scan diagonal.

    Domain 1 (upper right of the wall in the image, y down) has c along y and P along
    -y (Ti below the centre of its O cage, as in :func:`pbtio3_cell`); domain 2 has c
    along x and P along +x (before the twin rotation), a head-to-tail (neutral) wall.
    Domain 2
    is rotated by the twin angle so that the lattice vector along the wall, (a, c) in
    domain 1 and (c, a) in domain 2, coincides: the wall is coherent and runs along
    (a, c). Both domains share the [100] beam axis. Simplification: the rotated lattice
    is not periodic in the simulation box, so the box edges carry a seam; the scan
    stays two cells away from them.

    Ground truth: ``columns_A`` per species and ``polarisation`` (unit vectors, along
    the Ti displacement from its O cage) and ``domain`` (1 or 2) per column, in the
    order of ``columns_A``; ``polarisation_along_ti_shift`` marks this convention
    (files made before it carry the opposite sign, which
    :func:`tdm_widgets.simulate.truth_of` corrects when they are read).
    """
    cell = pbtio3_cell()
    theta = np.arctan2(PTO_C, PTO_A) - np.arctan2(PTO_A, PTO_C)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def build(repeat, nz, origin_A):
        lx, ly = repeat[0] * PTO_A, repeat[1] * PTO_C
        centre = np.asarray(origin_A) + np.array([scan_cells[0] * PTO_A / 2,
                                                  scan_cells[1] * PTO_C / 2])
        centre = np.round(centre / [PTO_A, PTO_C]) * [PTO_A, PTO_C]
        wall = np.array([PTO_A, PTO_C]) / np.hypot(PTO_A, PTO_C)
        normal = np.array([wall[1], -wall[0]])  # points to domain 1 (upper right)
        n = int(np.ceil(max(lx, ly) / min(PTO_A, PTO_C))) + 2
        symbols, pos, cols = [], [], {}
        pol2 = tuple(rot @ np.array([1.0, 0.0]))  # P along +c of domain 2, rotated
        # domain 1: c along y
        for s, f1, f2, f3 in PTO_SITES:
            for i in range(-n, n):
                for j in range(-n, n):
                    xy1 = centre + [(i + f2) * PTO_A, (j + f3) * PTO_C]
                    # domain 2: swap the roles of a and c, P along -x, then rotate
                    local = np.array([(i + 1 - f3) * PTO_C, (j + f2) * PTO_A])
                    xy2 = centre + rot @ local
                    for xy, dom, pol in ((xy1, 1, (0.0, -1.0)), (xy2, 2, pol2)):
                        side = (xy - centre) @ normal  # sites on the wall: domain 1
                        inside = 0 <= xy[0] < lx and 0 <= xy[1] < ly
                        if (dom == 1) != (side >= -1e-6) or not inside:
                            continue
                        cols.setdefault(s, []).append((*xy, dom, *pol))
                        for k in range(nz):
                            symbols.append(s)
                            pos.append((xy[0], xy[1], (k + f1) * PTO_A))
        atoms = Atoms(symbols, positions=pos, cell=[lx, ly, nz * PTO_A], pbc=True)
        truth = {}
        for s, v in cols.items():
            v = np.array(v)
            truth[f"columns_{s}_A"] = v[:, :2]
            truth[f"domain_{s}"] = v[:, 2].astype(int)
            truth[f"polarisation_{s}"] = v[:, 3:]
        truth["wall_point_A"] = centre[None]
        truth["wall_direction"] = wall
        truth["polarisation_along_ti_shift"] = np.array(True)
        return atoms, truth

    return Structure("pbtio3_domain_wall", cell, tuple(scan_cells), build, merge_A=0.2,
                     margin_cells=2)
