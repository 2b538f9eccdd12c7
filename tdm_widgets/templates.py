"""Templates from a unit cell: lattice registration, peak finding, position refinement,
reference regions, and a plain JSON file for positions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize

from .columns import check_positions


@dataclass
class Lattice:
    """A 2D lattice in scan pixels, (row, col) = (y, x) order.

    Attributes
    ----------
    origin : ndarray
        (y, x) of a lattice point [scan px].
    a, b : ndarray
        Lattice vectors (y, x) [scan px].
    """

    origin: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        self.origin, self.a, self.b = (np.asarray(v, float) for v in (self.origin, self.a, self.b))
        if abs(np.cross(self.a, self.b)) < 1e-9:
            raise ValueError(f"lattice vectors a={self.a} and b={self.b} are collinear")

    @property
    def matrix(self) -> np.ndarray:
        """Columns a and b."""
        return np.stack([self.a, self.b], axis=1)

    def to_frac(self, points) -> np.ndarray:
        """Fractional coordinates (along a, b) of (y, x) points."""
        return np.linalg.solve(self.matrix, (np.asarray(points, float) - self.origin).T).T

    def to_px(self, frac) -> np.ndarray:
        """(y, x) points of fractional coordinates."""
        return self.origin + np.asarray(frac, float) @ self.matrix.T


def lattice_from_points(points) -> Lattice:
    """Lattice from picked columns: origin, end of a, end of b (3 points), or origin
    and end of a with b perpendicular of the same length (2 points)."""
    p = np.asarray(points, float)
    if p.shape == (2, 2):
        a = p[1] - p[0]
        return Lattice(p[0], a, np.array([-a[1], a[0]]))
    if p.shape == (3, 2):
        return Lattice(p[0], p[1] - p[0], p[2] - p[0])
    raise ValueError(f"points must be 2 or 3 (y, x) positions; got shape {p.shape}")


def lattice_from_peaks(peaks, min_length_px: float = 1.0) -> Lattice:
    """Automatic lattice from peaks (e.g. :func:`find_peaks` of a virtual image):
    origin at the peak nearest the centre of the peaks, ``a`` the shortest
    difference vector, ``b`` the shortest one not parallel to it; then refined by
    least squares through every peak."""
    pk = np.asarray(peaks, float)
    if len(pk) < 3:
        raise ValueError(f"need at least 3 peaks for a lattice; got {len(pk)}")
    o = pk[np.argmin(np.hypot(*(pk - pk.mean(0)).T))]
    d = pk - o
    d = d[np.hypot(*d.T) > min_length_px]
    d = d[np.argsort(np.hypot(*d.T))]
    a = d[0]
    for v in d[1:]:
        if abs(np.cross(a, v)) > 0.2 * np.hypot(*a) * np.hypot(*v):
            return refine_lattice(Lattice(o, a, v), pk)
    raise ValueError("peaks are collinear: no second lattice vector")


def refine_lattice(lattice: Lattice, peaks) -> Lattice:
    """Least-squares lattice through peaks that lie on lattice points (each peak is
    assigned the nearest integer lattice index)."""
    pk = np.asarray(peaks, float)
    idx = np.rint(lattice.to_frac(pk))
    A = np.column_stack([np.ones(len(pk)), idx])
    if np.linalg.matrix_rank(A) < 3:
        raise ValueError("peaks do not span two lattice directions")
    sol, *_ = np.linalg.lstsq(A, pk, rcond=None)
    return Lattice(sol[0], sol[1], sol[2])


def find_peaks(image, min_distance_px: float = 2.0, threshold: float = 0.5) -> np.ndarray:
    """Local maxima of an image above ``threshold`` (fraction of its range).

    Returns
    -------
    ndarray
        ``(n, 2)`` (y, x) integer positions [scan px].
    """
    img = np.asarray(getattr(image, "data", image), float)
    size = int(2 * np.ceil(min_distance_px) + 1)
    peak = ndimage.maximum_filter(img, size=size, mode="wrap") == img
    level = img.min() + threshold * np.ptp(img)
    return np.argwhere(peak & (img > level)).astype(float)


def replicate(lattice: Lattice, basis: dict, shape) -> dict[str, np.ndarray]:
    """Columns of a unit-cell basis replicated over the field of view.

    Parameters
    ----------
    lattice : Lattice
    basis : dict of str to array_like
        Species to ``(n, 2)`` fractional coordinates (along a, b).
    shape : tuple of int
        ``(scan_y, scan_x)``.

    Returns
    -------
    dict of str to ndarray
        Species to ``(m, 2)`` (y, x) positions inside [-0.5, shape - 0.5) [scan px].
    """
    corners = np.array([[0, 0], [0, shape[1]], [shape[0], 0], [shape[0], shape[1]]], float)
    f = lattice.to_frac(corners)
    lo, hi = np.floor(f.min(0)) - 1, np.ceil(f.max(0)) + 1
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = np.stack([ii.ravel(), jj.ravel()], 1)
    out = {}
    for name, fr in basis.items():
        pts = lattice.to_px((cells[:, None, :] + np.asarray(fr, float)[None]).reshape(-1, 2))
        inside = np.all((pts >= -0.5) & (pts < np.asarray(shape) - 0.5), axis=1)
        out[name] = pts[inside]
    return out


def _gauss(params, yy, xx):
    amp, y0, x0, s, off = params
    return amp * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * s**2)) + off


def refine_positions(image, positions, window_px: float = 2.5, method: str = "gaussian",
                     sign: int = 1) -> np.ndarray:
    """Sub-pixel column positions by a 2D Gaussian fit or the centre of mass in a
    window around each starting position.

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)``; periodic boundaries.
    positions : array_like
        ``(n, 2)`` starting (y, x) [scan px].
    window_px : float
        Half-width of the fitting window [scan px].
    method : {"gaussian", "com"}
    sign : {1, -1}
        -1 for dark columns (ABF).

    Returns
    -------
    ndarray
        ``(n, 2)`` refined (y, x) [scan px].
    """
    img = sign * np.asarray(getattr(image, "data", image), float)
    ny, nx = img.shape
    h = int(np.ceil(window_px))
    out = []
    for y0, x0 in np.asarray(positions, float):
        cy, cx = int(round(y0)), int(round(x0))
        dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
        patch = img[(cy + dy) % ny, (cx + dx) % nx]
        if method == "com":
            w = np.clip(patch - patch.min(), 0, None)
            out.append((cy + (w * dy).sum() / w.sum(), cx + (w * dx).sum() / w.sum()))
            continue
        if method != "gaussian":
            raise ValueError(f"method must be 'gaussian' or 'com'; got {method!r}")
        p0 = (np.ptp(patch), 0.0, 0.0, max(window_px / 2, 0.7), patch.min())
        res = optimize.least_squares(
            lambda p: (_gauss(p, dy, dx) - patch).ravel(), p0,
            bounds=([0, -h, -h, 0.3, -np.inf], [np.inf, h, h, 3 * h, np.inf]))
        out.append((cy + res.x[1], cx + res.x[2]))
    return np.array(out)


def rectangle_region(shape, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Boolean reference region ``[y0:y1, x0:x1]`` for a partial template."""
    r = np.zeros(shape, bool)
    r[y0:y1, x0:x1] = True
    if r.sum() < 2:
        raise ValueError(f"rectangle [{y0}:{y1}, {x0}:{x1}] selects fewer than two positions")
    return r


def save_positions(path, columns: dict, lattice: Lattice | None = None,
                   scan_shape=None, **extra) -> None:
    """Write per-species positions [scan px] (and the lattice) as JSON."""
    doc = {"format": "tdm_widgets.positions", "version": 1, "units": "scan px (row, col)",
           "scan_shape": None if scan_shape is None else list(map(int, scan_shape)),
           "columns": {k: np.asarray(v, float).tolist() for k, v in columns.items()}, **extra}
    if lattice is not None:
        doc["lattice"] = {"origin": lattice.origin.tolist(), "a": lattice.a.tolist(),
                          "b": lattice.b.tolist()}
    Path(path).write_text(json.dumps(doc, indent=1))


def load_positions(path, scan_shape=None) -> tuple[dict, Lattice | None, dict]:
    """Read a positions file: ``(columns, lattice or None, whole document)``.

    Parameters
    ----------
    path : str or Path
        JSON written by :func:`save_positions`.
    scan_shape : tuple of int, optional
        ``(scan_y, scan_x)`` of the scan the positions are for: a file recorded for
        another scan shape, or positions outside this one, is a ``ValueError``.

    Examples
    --------
    >>> cols, lattice, doc = load_positions("positions.json", (20, 34))  # doctest: +SKIP
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON positions file: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != "tdm_widgets.positions" \
            or not isinstance(doc.get("columns"), dict):
        raise ValueError(f"{path} is not a tdm_widgets positions file")
    made_for = doc.get("scan_shape")
    if scan_shape is not None and made_for is not None \
            and tuple(made_for) != tuple(scan_shape):
        raise ValueError(f"{path} holds positions for a scan of shape {tuple(made_for)}; "
                         f"this scan is {tuple(scan_shape)}")
    cols = {k: (np.asarray(v, float).reshape(-1, 2) if scan_shape is None
                else check_positions(v, scan_shape, f"{path} columns[{k!r}]"))
            for k, v in doc["columns"].items()}
    lat = doc.get("lattice")
    return cols, (Lattice(lat["origin"], lat["a"], lat["b"]) if lat else None), doc
