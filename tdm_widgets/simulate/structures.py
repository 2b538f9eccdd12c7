"""Crystal structures for the simulations, as ASE ``Atoms`` with the beam along z.

All builders return orthogonal cells whose z axis is the beam direction, so that
abTEM projects along z and the scan plane is x-y. Column positions (the projected
x-y sites grouped by species) come from :func:`projected_columns`.
"""

from __future__ import annotations

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
