"""Templates from a unit cell: lattice registration, peak finding, position refinement,
reference regions, and a plain JSON file for positions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize
from scipy.spatial import cKDTree

from .column_templates import check_positions


@dataclass
class Lattice:
    """A 2D lattice in scan pixels, (row, col) = (y, x) order.

    Parameters
    ----------
    origin : array_like
        (y, x) of a lattice point [scan px].
    a, b : array_like
        Lattice vectors (y, x) [scan px], not collinear.

    Attributes
    ----------
    matrix : ndarray
        ``(2, 2)`` with columns ``a`` and ``b`` [scan px].

    Examples
    --------
    >>> lat = tw.Lattice((1.0, 2.0), (0.0, 10.0), (8.0, 0.0))
    >>> lat.to_px([[1, 1]]).tolist()
    [[9.0, 12.0]]
    >>> lat.to_frac([[9.0, 12.0]]).tolist()
    [[1.0, 1.0]]
    """

    origin: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        self.origin, self.a, self.b = (np.asarray(v, float) for v in (self.origin, self.a, self.b))
        for name in ("origin", "a", "b"):
            v = getattr(self, name)
            if v.shape != (2,) or not np.isfinite(v).all():
                raise ValueError(f"lattice {name} must be two finite (y, x) values [scan px]; "
                                 f"got {v.tolist()}")
        if abs(np.cross(self.a, self.b)) < 1e-9:
            raise ValueError(f"lattice vectors a={self.a} and b={self.b} are collinear")

    @property
    def matrix(self) -> np.ndarray:
        """Columns a and b."""
        return np.stack([self.a, self.b], axis=1)

    def to_frac(self, points) -> np.ndarray:
        """Fractional coordinates (along a, b) of (y, x) points.

        Parameters
        ----------
        points : array_like
            ``(n, 2)`` or ``(2,)`` (y, x) [scan px].

        Returns
        -------
        ndarray
            Same shape: coordinates along ``a`` and ``b`` [lattice units].

        Examples
        --------
        >>> tw.Lattice((0, 0), (0, 10), (8, 0)).to_frac([4.0, 5.0]).tolist()
        [0.5, 0.5]
        """
        return np.linalg.solve(self.matrix, (np.asarray(points, float) - self.origin).T).T

    def to_px(self, frac) -> np.ndarray:
        """(y, x) points of fractional coordinates.

        Parameters
        ----------
        frac : array_like
            ``(n, 2)`` or ``(2,)`` coordinates along ``a`` and ``b`` [lattice units].

        Returns
        -------
        ndarray
            Same shape: (y, x) [scan px].

        Examples
        --------
        >>> tw.Lattice((0, 0), (0, 10), (8, 0)).to_px([0.5, 0.5]).tolist()
        [4.0, 5.0]
        """
        return self.origin + np.asarray(frac, float) @ self.matrix.T


def lattice_from_points(points) -> Lattice:
    """Lattice from picked columns (e.g. clicked in the explorer).

    Parameters
    ----------
    points : array_like
        ``(3, 2)``: origin, end of a, end of b; or ``(2, 2)``: origin and end of a,
        with b perpendicular to a and of the same length. (y, x) [scan px].

    Returns
    -------
    Lattice
        Origin and vectors [scan px].

    Examples
    --------
    >>> lat = tw.lattice_from_points([[2, 3], [2, 13], [10, 3]])
    >>> lat.a.tolist(), lat.b.tolist()
    ([0.0, 10.0], [8.0, 0.0])
    """
    p = check_positions(points, None, "points")
    if p.shape == (2, 2):
        a = p[1] - p[0]
        return Lattice(p[0], a, np.array([-a[1], a[0]]))
    if p.shape == (3, 2):
        return Lattice(p[0], p[1] - p[0], p[2] - p[0])
    raise ValueError(f"points must be 2 or 3 (y, x) positions; got shape {p.shape}")


def _translation(pk, tree, v, tol):
    """Fraction of peaks ``p`` (with ``p + v`` inside the peaks' box) that have a peak
    within ``tol`` of ``p + v``, ``v`` refined as the mean matched difference, and the
    number of peaks the fraction is of."""
    lo, hi = pk.min(0), pk.max(0)
    q = pk + v
    inside = np.all((q >= lo) & (q <= hi), axis=1)
    if inside.sum() < max(3, 0.1 * len(pk)):
        return 0.0, v, 0
    d, idx = tree.query(q[inside])
    hit = d < tol
    if not hit.any():
        return 0.0, v, int(inside.sum())
    return hit.mean(), (pk[idx[hit]] - pk[inside][hit]).mean(0), int(inside.sum())


def _translation_basis(pk, tol, min_length_px, min_score=0.75, max_tests=3000):
    """The two shortest non-collinear translations that map most peaks onto peaks."""
    tree = cKDTree(pk)
    near = pk[np.argsort(np.hypot(*(pk - pk.mean(0)).T))[:12]]
    d = (pk[None] - near[:, None]).reshape(-1, 2)
    d = d[np.hypot(*d.T) > max(min_length_px, tol)]
    d = d[np.argsort(np.hypot(*d.T))]
    tested = []
    for v in d:
        if any(np.hypot(*(v - t)) < tol for t in tested):
            continue
        tested.append(v)
        if len(tested) >= max_tests:
            break
    scored = [_translation(pk, tree, v, tol) for v in tested]
    # a lattice translation maps every peak but the missing ones, so the short ones
    # (most peaks inside the box) score about the best score; a translation within the
    # cell that maps some sublattices onto others (three columns of a four-site cell)
    # scores clearly less, though it can reach min_score when the misses of one
    # sublattice fall outside the peaks' box
    best = max((sc for sc, _, n in scored if n >= 0.5 * len(pk)), default=0.0)
    found = []
    for score, v, _ in scored:
        # a period must be seen twice (p, p + v, p + 2v): one repeat can be a coincidence
        if score < max(min_score, best - 0.1) or \
                _translation(pk, tree, 2 * v, tol)[0] < min_score:
            continue
        if not found:
            found.append(v)
        elif abs(np.cross(found[0], v)) > 0.2 * np.hypot(*found[0]) * np.hypot(*v):
            return found[0], v
    if not found:
        raise ValueError(f"peaks do not repeat: no translation v maps {min_score:.0%} of the "
                         f"{len(pk)} peaks onto peaks within tol_px={tol:.2g}, also as 2v "
                         "(a lattice needs at least three periods along each direction)")
    raise ValueError(f"peaks repeat along one direction only (a = {np.round(found[0], 2)} "
                     "px): the scan shows less than three periods along the other; use a "
                     "larger scan or give the cell with lattice_from_points")


def _sublattices(pk, lat, tol):
    """Label each peak with its sublattice (offset within the cell); -1 for strays."""
    r = lat.to_frac(pk)
    r -= np.rint(r)
    labels = np.full(len(pk), -1)
    centres: list[np.ndarray] = []
    for i, ri in enumerate(r):
        for g, c in enumerate(centres):
            if np.hypot(*(lat.matrix @ ((ri - c + 0.5) % 1 - 0.5))) < tol:
                labels[i] = g
                break
        else:
            centres.append(ri)
            labels[i] = len(centres) - 1
    sizes = np.bincount(labels)
    keep = np.flatnonzero(sizes >= max(2, 0.25 * sizes.max()))
    remap = np.full(len(sizes), -1)
    remap[keep] = np.arange(len(keep))
    return remap[labels]


def _fit_sublattices(pk, labels, lat):
    """Least squares ``p = o_g + i a + j b`` through every labelled peak: one origin per
    sublattice, shared a and b."""
    use = labels >= 0
    k = labels.max() + 1
    f = lat.to_frac(pk[use])
    off = np.zeros((k, 2))
    for g in range(k):
        fg = f[labels[use] == g]
        off[g] = fg[0] - np.rint(fg[0])
    idx = np.rint(f - off[labels[use]])
    A = np.column_stack([np.eye(k)[labels[use]], idx])
    if np.linalg.matrix_rank(A) < k + 2:
        raise ValueError("peaks do not span two lattice directions")
    sol, *_ = np.linalg.lstsq(A, pk[use], rcond=None)
    return sol[:k], sol[k], sol[k + 1]


def lattice_from_peaks(peaks, intensities=None, allow_basis: bool = False,
                       tol_px: float | None = None, min_contrast: float = 0.1,
                       min_length_px: float = 1.0) -> Lattice:
    """Automatic lattice from peaks (e.g. :func:`find_peaks` of a virtual image).

    The lattice vectors are the two shortest non-collinear translations that map most
    peaks onto peaks (robust to shear, jitter, missing and stray peaks). If every peak
    is a lattice point the lattice is refined by least squares through all of them. If
    the peaks form several sublattices (several columns per cell, e.g. Fe and P in an
    ADF image of LiFePO4) the peaks alone do not say which one holds the lattice
    points: the brightest sublattice is taken if ``intensities`` single it out, the
    pattern's lattice with its origin on any peak if ``allow_basis``; otherwise, or
    when the two brightest sublattices are equally bright, a ``ValueError`` says so.

    Parameters
    ----------
    peaks : array_like
        ``(n, 2)`` (y, x) peak positions [scan px].
    intensities : array_like, optional
        ``(n,)`` peak heights above the background (e.g. the image at the peaks
        minus its median), to pick the brightest sublattice.
    allow_basis : bool
        Return the translation lattice even if the peaks form several sublattices.
    tol_px : float, optional
        Distance under which two peaks coincide [scan px]; default a quarter of the
        median nearest-neighbour distance.
    min_contrast : float
        The brightest sublattice must exceed the next by this fraction of its mean
        intensity (and by three standard errors).
    min_length_px : float
        Shortest lattice vector considered [scan px].

    Returns
    -------
    Lattice
        Origin at the lattice point nearest the centre of the peaks.

    Examples
    --------
    >>> lat = Lattice((2, 1), (0, 7), (6, 1))
    >>> pts = replicate(lat, {"A": [[0, 0]]}, (40, 40))["A"]
    >>> got = lattice_from_peaks(pts)
    >>> sorted(np.round(np.abs([got.a, got.b]), 6).tolist())
    [[0.0, 7.0], [6.0, 1.0]]
    """
    pk = check_positions(peaks, None, "peaks")
    if len(pk) < 3:
        raise ValueError(f"need at least 3 peaks for a lattice; got {len(pk)}")
    if tol_px is None:
        nn = cKDTree(pk).query(pk, k=2)[0][:, 1]
        tol_px = 0.25 * float(np.median(nn))
    a, b = _translation_basis(pk, float(tol_px), min_length_px)
    centre = pk[np.argmin(np.hypot(*(pk - pk.mean(0)).T))]
    lat = Lattice(centre, a, b)
    labels = _sublattices(pk, lat, float(tol_px))
    origins, a, b = _fit_sublattices(pk, labels, lat)
    k = len(origins)
    pick = int(labels[np.argmin(np.where(labels >= 0, np.hypot(*(pk - pk.mean(0)).T),
                                         np.inf))])
    if k > 1 and not allow_basis:
        if intensities is None:
            raise ValueError(
                f"peaks form {k} sublattices (a = {np.round(a, 2)}, b = {np.round(b, 2)} "
                f"px with {k} peaks per cell): they do not define one lattice of points. "
                "Pass intensities= to take the brightest, allow_basis=True for the "
                "pattern's lattice, or register the known cell with register_cell")
        inten = np.asarray(intensities, float).reshape(-1)
        if inten.shape != (len(pk),) or not np.isfinite(inten).all():
            raise ValueError(f"intensities must be {len(pk)} finite values, one per peak; "
                             f"got shape {np.shape(intensities)}")
        groups = [inten[labels == g] for g in range(k)]
        mean = np.array([g.mean() for g in groups])
        o = np.argsort(mean)[::-1]
        g1, g2 = groups[o[0]], groups[o[1]]
        se = np.sqrt(g1.var() / len(g1) + g2.var() / len(g2))
        diff = mean[o[0]] - mean[o[1]]
        if not diff > max(min_contrast * abs(mean[o[0]]), 3 * se):
            raise ValueError(
                f"ambiguous lattice: the peaks form {k} sublattices and the two brightest "
                f"are equally bright ({mean[o[0]]:.4g} vs {mean[o[1]]:.4g}, "
                f"min_contrast={min_contrast}); register the known cell with "
                "register_cell, or pick the columns with lattice_from_points")
        pick = int(o[0])
    out = Lattice(origins[pick], a, b)
    return Lattice(out.to_px(np.rint(out.to_frac(pk.mean(0)))), a, b)


def refine_lattice(lattice: Lattice, peaks) -> Lattice:
    """Least-squares lattice through peaks that lie on lattice points.

    Each peak is assigned the nearest integer lattice index of ``lattice``; origin
    and vectors are then fitted through all of them.

    Parameters
    ----------
    lattice : Lattice
        Starting lattice, close enough that every peak rounds to its own index.
    peaks : array_like
        ``(n, 2)`` (y, x) peak positions [scan px] on lattice points, spanning two
        directions.

    Returns
    -------
    Lattice
        The fitted lattice [scan px].

    Examples
    --------
    >>> true = tw.Lattice((0.3, 0.2), (0.0, 10.2), (7.9, 0.0))
    >>> peaks = true.to_px([[i, j] for i in range(3) for j in range(3)])
    >>> fit = tw.refine_lattice(tw.Lattice((0, 0), (0, 10), (8, 0)), peaks)
    >>> np.round(fit.a, 6) + 0.0, np.round(fit.b, 6) + 0.0
    (array([ 0. , 10.2]), array([7.9, 0. ]))
    """
    pk = check_positions(peaks, None, "peaks")
    idx = np.rint(lattice.to_frac(pk))
    A = np.column_stack([np.ones(len(pk)), idx])
    if np.linalg.matrix_rank(A) < 3:
        raise ValueError("peaks do not span two lattice directions")
    sol, *_ = np.linalg.lstsq(A, pk, rcond=None)
    return Lattice(sol[0], sol[1], sol[2])


def find_peaks(image, min_distance_px: float = 2.0, threshold: float = 0.5,
               periodic: bool = True) -> np.ndarray:
    """Local maxima of an image above ``threshold`` (fraction of its range).

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)``.
    min_distance_px : float
        Half-width of the neighbourhood a peak is the maximum of [scan px].
    threshold : float
        Fraction of the image's range above its minimum.
    periodic : bool
        True for a periodic image (a simulation of whole cells); False for a scan,
        whose edges then do not meet.

    Returns
    -------
    ndarray
        ``(n, 2)`` (y, x) integer positions [scan px].

    Examples
    --------
    >>> img = np.zeros((6, 6)); img[2, 3] = 1
    >>> find_peaks(img).tolist()
    [[2.0, 3.0]]
    """
    img = np.asarray(getattr(image, "data", image), float)
    size = int(2 * np.ceil(min_distance_px) + 1)
    peak = ndimage.maximum_filter(img, size=size, mode="wrap" if periodic else "nearest") == img
    level = img.min() + threshold * np.ptp(img)
    return np.argwhere(peak & (img > level)).astype(float)


def peak_heights(image, peaks) -> np.ndarray:
    """Heights of an image above its median at sub-pixel peaks (bilinear), for
    ``lattice_from_peaks(intensities=...)`` and ``register_cell(intensities=...)``.

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)``.
    peaks : array_like
        ``(n, 2)`` (y, x) positions inside the image [scan px].

    Returns
    -------
    ndarray
        ``(n,)`` heights [image units].

    Examples
    --------
    >>> img = np.zeros((4, 4)); img[1, 1] = 2.0
    >>> peak_heights(img, [[1, 1], [1, 1.5]]).tolist()
    [2.0, 1.0]
    """
    img = np.asarray(getattr(image, "data", image), float)
    pk = check_positions(peaks, img.shape, "peaks")
    return ndimage.map_coordinates(img, pk.T, order=1, mode="nearest") - np.median(img)


def replicate(lattice: Lattice, basis: dict, shape) -> dict[str, np.ndarray]:
    """Columns of a unit-cell basis replicated over the field of view.

    Parameters
    ----------
    lattice : Lattice
        Origin and cell vectors [scan px].
    basis : dict of str to array_like
        Species to ``(n, 2)`` fractional coordinates (along a, b).
    shape : tuple of int
        ``(scan_y, scan_x)``.

    Returns
    -------
    dict of str to ndarray
        Species to ``(m, 2)`` (y, x) positions inside [-0.5, shape - 0.5) [scan px].

    Examples
    --------
    >>> lat = tw.Lattice((0, 0), (0, 5), (4, 0))
    >>> cols = tw.replicate(lat, {"A": [[0, 0]], "B": [[0.5, 0.5]]}, (8, 10))
    >>> len(cols["A"]), cols["B"][0].tolist()
    (4, [2.0, 2.5])
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
                     sign: int = 1, periodic: bool = True) -> np.ndarray:
    """Sub-pixel column positions by a 2D Gaussian fit or the centre of mass in a
    window around each starting position.

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)``.
    positions : array_like
        ``(n, 2)`` starting (y, x) [scan px].
    window_px : float
        Half-width of the fitting window [scan px].
    method : {"gaussian", "com"}
        A 2D Gaussian fit, or the centre of mass of the window above its minimum.
    sign : {1, -1}
        -1 for dark columns (ABF).
    periodic : bool
        True: windows wrap around the edges (a simulation of whole cells); False: a
        window is cut at the edges of the scan.

    Returns
    -------
    ndarray
        ``(n, 2)`` refined (y, x) [scan px].

    Examples
    --------
    >>> yy, xx = np.indices((20, 20))
    >>> img = np.exp(-((yy - 8.3) ** 2 + (xx - 11.6) ** 2) / 4.0)
    >>> np.round(tw.refine_positions(img, [[8, 12]]), 2).tolist()
    [[8.3, 11.6]]
    """
    img = sign * np.asarray(getattr(image, "data", image), float)
    ny, nx = img.shape
    h = int(np.ceil(window_px))
    out = []
    for y0, x0 in check_positions(positions, img.shape, "positions"):
        cy, cx = int(round(y0)), int(round(x0))
        dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
        keep = np.ones(dy.shape, bool) if periodic else \
            (cy + dy >= 0) & (cy + dy < ny) & (cx + dx >= 0) & (cx + dx < nx)
        py, px = dy[keep], dx[keep]
        patch = img[(cy + py) % ny, (cx + px) % nx]
        if method == "com":
            w = np.clip(patch - patch.min(), 0, None)
            out.append((cy + (w * py).sum() / w.sum(), cx + (w * px).sum() / w.sum()))
            continue
        if method != "gaussian":
            raise ValueError(f"method must be 'gaussian' or 'com'; got {method!r}")
        p0 = (np.ptp(patch), 0.0, 0.0, max(window_px / 2, 0.7), patch.min())
        # the centre stays within the window's pixels (cut at the edges of a scan):
        # a refined position is never outside the scan
        lo_y, hi_y = max(-h, py.min() - 0.49), min(h, py.max() + 0.49)
        lo_x, hi_x = max(-h, px.min() - 0.49), min(h, px.max() + 0.49)
        res = optimize.least_squares(
            lambda p, py=py, px=px, patch=patch: _gauss(p, py, px) - patch, p0,
            bounds=([0, lo_y, lo_x, 0.3, -np.inf], [np.inf, hi_y, hi_x, 3 * h, np.inf]))
        out.append((cy + res.x[1], cx + res.x[2]))
    return np.array(out)


def rectangle_region(shape, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Boolean reference region ``[y0:y1, x0:x1]`` for a partial template.

    Parameters
    ----------
    shape : tuple of int
        ``(scan_y, scan_x)``.
    y0, y1, x0, x1 : int
        Row and column limits (Python slices) [scan px]; at least two positions.

    Returns
    -------
    ndarray of bool
        ``(scan_y, scan_x)``, True inside the rectangle: the ``region`` of
        :func:`pcc_mask`.

    Examples
    --------
    >>> int(tw.rectangle_region((20, 34), 0, 10, 0, 17).sum())
    170
    """
    r = np.zeros(shape, bool)
    r[y0:y1, x0:x1] = True
    if r.sum() < 2:
        raise ValueError(f"rectangle [{y0}:{y1}, {x0}:{x1}] selects fewer than two positions")
    return r


def save_positions(path, columns: dict, lattice: Lattice | None = None,
                   scan_shape=None, **extra) -> None:
    """Write per-species column positions (and the lattice) as a JSON positions file.

    Parameters
    ----------
    path : str or Path
        File to write (overwritten).
    columns : dict of str to array_like
        Species to ``(n, 2)`` (y, x) positions [scan px].
    lattice : Lattice, optional
        Stored with the positions.
    scan_shape : tuple of int, optional
        ``(scan_y, scan_x)`` the positions belong to: recorded, and positions outside
        it are a ``ValueError``.
    **extra
        Further JSON-serialisable entries of the document (e.g. a note).

    Returns
    -------
    None
        The file is the result; read it with :func:`load_positions`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "positions.json"
    >>> tw.save_positions(f, {"O": [[1.0, 2.0]]}, scan_shape=(20, 34))
    >>> tw.load_positions(f, (20, 34))[0]["O"].tolist()
    [[1.0, 2.0]]
    """
    for k, v in columns.items():
        check_positions(np.asarray(v, float).reshape(-1, 2), scan_shape, f"columns[{k!r}]")
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

    Returns
    -------
    columns : dict of str to ndarray
        Species to ``(n, 2)`` (y, x) positions [scan px].
    lattice : Lattice or None
        The stored lattice [scan px], if any.
    document : dict
        The whole JSON document (format, version, scan shape, extra entries).

    Examples
    --------
    >>> cols, lattice, doc = load_positions("positions.json", (20, 34))  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"positions file {path} "
                                f"{'is a folder' if path.is_dir() else 'does not exist'}")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a tdm_widgets positions file (not a JSON positions "
                         f"file: {err})") from None
    if not isinstance(doc, dict) or doc.get("format") != "tdm_widgets.positions" \
            or not isinstance(doc.get("columns"), dict):
        raise ValueError(f"{path} is not a tdm_widgets positions file")
    if not isinstance(doc.get("version", 1), int) or doc.get("version", 1) > 1:
        raise ValueError(f"{path} is a positions file of version {doc.get('version')!r}; "
                         "this tdm_widgets reads version 1 (update tdm_widgets)")
    made_for = doc.get("scan_shape")
    if scan_shape is not None and made_for is not None \
            and tuple(made_for) != tuple(scan_shape):
        raise ValueError(f"{path} holds positions for a scan of shape {tuple(made_for)}; "
                         f"this scan is {tuple(scan_shape)}")
    unnamed = [k for k in doc["columns"] if not k.strip()]
    if unnamed:
        raise ValueError(f"{path}: a species name must be a non-empty string; got {unnamed}")
    cols = {k: check_positions(v, scan_shape or made_for, f"{path} columns[{k!r}]")
            for k, v in doc["columns"].items()}
    if not any(len(v) for v in cols.values()):  # an empty species alone is fine (a layer
        raise ValueError(f"{path}: no species holds a position")  # the painter exported)
    lat = doc.get("lattice")
    if not lat:
        return cols, None, doc
    try:
        lattice = Lattice(lat["origin"], lat["a"], lat["b"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: lattice must hold 'origin', 'a' and 'b', each (row, col) "
                         f"[scan px]; {type(err).__name__}: {err}") from None
    return cols, lattice, doc
