"""Lattice from peaks and registration of a known unit cell on a distorted scan."""

import numpy as np
import pytest
from scipy import ndimage

import tdm_widgets as tw

#: A three-column cell: a bright and a dim species and one that gives no peak.
CELL = {"A": [[0.0, 0.0]], "B": [[0.5, 0.42]], "C": [[0.25, 0.8]]}


def _gauss_image(shape, positions, sigma=1.1, amps=None):
    yy, xx = np.indices(shape, dtype=float)
    img = np.zeros(shape)
    amps = np.ones(len(positions)) if amps is None else amps
    for (y, x), a in zip(positions, amps):
        img += a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return img


def _peaks(img, min_distance_px=2, threshold=0.3, edge=2):
    """Sub-pixel peaks away from the edges (find_peaks treats the image as periodic)."""
    pk = tw.find_peaks(img, min_distance_px=min_distance_px, threshold=threshold)
    pk = pk[np.all((pk >= edge) & (pk <= np.array(img.shape) - 1 - edge), axis=1)]
    return tw.refine_positions(img, pk)


def _truth(lattice, cell, shape, margin=2):
    """Every column within ``margin`` px around the scan, and those at least 1 px inside."""
    ext = tw.replicate(tw.Lattice(lattice.origin + margin, lattice.a, lattice.b), cell,
                       (shape[0] + 2 * margin, shape[1] + 2 * margin))
    ext = {k: v - margin for k, v in ext.items()}
    inner = {k: v[np.all((v >= 0.5) & (v <= np.array(shape) - 1.5), 1)] for k, v in ext.items()}
    return ext, inner


def _assert_columns(reg, ext, inner, tol):
    for k in ext:
        assert _nearest(reg.columns[k], ext[k]).max() < tol, k
        assert _nearest(inner[k], reg.columns[k]).max() < tol, k


def _nearest(a, b):
    """Distance from each point of a to the nearest point of b [px]."""
    return np.hypot(*(np.asarray(a)[:, None] - np.asarray(b)[None]).transpose(2, 0, 1)).min(1)


def _same_lattice(got: tw.Lattice, true_matrix):
    """The two bases generate the same lattice: the change of basis is unimodular."""
    n = np.linalg.solve(true_matrix, got.matrix)
    np.testing.assert_allclose(n, np.rint(n), atol=0.03)
    assert abs(np.linalg.det(np.rint(n))) == 1


NOMINAL = tw.Lattice((0, 0), (0, 12.0), (10.0, 0))


@pytest.mark.parametrize("name,matrix,jitter", [
    ("shear", [[1.0, 0.12], [0.0, 1.0]], 0.0),
    ("scale", [[1.08, 0.0], [0.0, 0.93]], 0.0),
    ("rotation 20 deg", [[np.cos(0.35), -np.sin(0.35)], [np.sin(0.35), np.cos(0.35)]], 0.0),
    ("rotation 90 deg + shear", [[0.05, -1.0], [1.0, 0.08]], 0.0),
    ("all with jitter", [[1.05, 0.1], [-0.06, 0.96]], 0.15),
])
def test_register_recovers_known_affine_distortion(name, matrix, jitter):
    shape = (70, 80)
    true = tw.Lattice((4.3, 6.1), np.asarray(matrix) @ NOMINAL.a, np.asarray(matrix) @ NOMINAL.b)
    cols = tw.replicate(true, CELL, shape)
    rng = np.random.default_rng(3)
    seen = {k: v + rng.normal(0, jitter, v.shape) for k, v in cols.items()}
    img = _gauss_image(shape, np.concatenate([seen["A"], seen["B"]]),
                       amps=np.r_[np.ones(len(seen["A"])), 0.6 * np.ones(len(seen["B"]))])
    pk = _peaks(img)
    reg = tw.register_cell(pk, CELL, NOMINAL, shape, visible={"A": 1.0, "B": 0.6},
                           intensities=tw.peak_heights(img, pk))
    # every column, also the invisible C, within a fraction of a px
    _assert_columns(reg, *_truth(true, CELL, shape), 0.1 + 2 * jitter)
    _same_lattice(reg.lattice, true.matrix)
    # every peak is a column; columns at the edge lost their peak to the 2 px margin
    assert reg.peak_fraction > 0.97 and reg.matched_fraction > 0.75
    assert not reg.matched["C"].any()
    m = reg.matched["A"]
    np.testing.assert_allclose(np.hypot(*reg.residuals_px["A"][m].T).max(), 0,
                               atol=0.1 + 4 * jitter)
    assert np.isnan(reg.residuals_px["C"]).all()


def test_smooth_distortion_needs_order_2():
    """A quadratic scan distortion (drift): the affine fit misses, order 2 recovers it."""
    shape = (80, 80)
    lat = tw.Lattice((3.0, 5.0), NOMINAL.a, NOMINAL.b)
    cols = tw.replicate(lat, CELL, shape)

    def warp(p):
        y, x = p[:, 0], p[:, 1]
        return np.stack([y + 8e-4 * x**2, x + 6e-4 * y**2 + 3e-4 * x * y], 1)

    seen = {k: warp(v) for k, v in cols.items()}
    img = _gauss_image(shape, np.concatenate([seen["A"], seen["B"]]),
                       amps=np.r_[np.ones(len(seen["A"])), 0.6 * np.ones(len(seen["B"]))])
    pk = _peaks(img)
    kw = {"visible": {"A": 1.0, "B": 0.6}, "intensities": tw.peak_heights(img, pk)}
    with pytest.raises(ValueError, match="registration failed"):
        tw.register_cell(pk, CELL, NOMINAL, shape, max_rms_px=0.3, **kw)
    reg = tw.register_cell(pk, CELL, NOMINAL, shape, order=2, **kw)
    ext, inner = _truth(lat, CELL, shape, margin=4)
    ext = {k: warp(v) for k, v in ext.items()}
    inner = {k: v[np.all((v >= 0.5) & (v <= np.array(shape) - 1.5), 1)] for k, v in ext.items()}
    _assert_columns(reg, ext, inner, 0.15)
    assert reg.rms_px < 0.1 and reg.order == 2


def test_two_species_without_intensities_are_ambiguous():
    """Two columns per cell always look the same after a half-turn about their
    midpoint with the species swapped: only the brightness can tell."""
    shape = (60, 60)
    true = tw.Lattice((4.0, 5.0), NOMINAL.a, NOMINAL.b)
    cols = tw.replicate(true, CELL, shape)
    pk = np.concatenate([cols["A"], cols["B"]])
    with pytest.raises(ValueError, match="ambiguous registration"):
        tw.register_cell(pk, CELL, NOMINAL, shape, visible=["A", "B"])
    heights = np.r_[np.full(len(cols["A"]), 1.0), np.full(len(cols["B"]), 0.5)]
    reg = tw.register_cell(pk, CELL, NOMINAL, shape, visible={"A": 1.0, "B": 0.5},
                           intensities=heights)
    _assert_columns(reg, *_truth(true, CELL, shape), 1e-6)
    # with the brightness the wrong way round the swapped placement wins
    swapped = tw.register_cell(pk, CELL, NOMINAL, shape, visible={"A": 0.5, "B": 1.0},
                               intensities=heights)
    assert _nearest(swapped.columns["A"], cols["B"]).max() < 1e-6


def test_register_refuses_a_poor_fit_and_bad_peaks():
    shape = (60, 60)
    rng = np.random.default_rng(0)
    noise_peaks = rng.uniform(0, 59, (40, 2))
    with pytest.raises(ValueError, match="registration failed"):
        tw.register_cell(noise_peaks, CELL, NOMINAL, shape, visible=["A", "B"])
    good = np.concatenate(list(tw.replicate(tw.Lattice((2, 2), (0, 12), (10, 0)),
                                            {"A": CELL["A"]}, shape).values()))
    with pytest.raises(ValueError, match="peaks: 1 of .* lie outside the scan"):
        tw.register_cell(np.r_[good, [[60.2, 3.0]]], CELL, NOMINAL, shape)
    with pytest.raises(ValueError, match="peaks contains NaN"):
        tw.register_cell(np.r_[good, [[np.nan, 3.0]]], CELL, NOMINAL, shape)
    with pytest.raises(ValueError, match="visible must name species"):
        tw.register_cell(good, CELL, NOMINAL, shape, visible=["Z"])
    with pytest.raises(ValueError, match="order must be"):
        tw.register_cell(good, CELL, NOMINAL, shape, order=5)


def test_cell_from_columns_round_trip():
    lat = tw.Lattice((1.5, -2.0), (0.5, 11.0), (9.0, 0.3))
    cols = tw.replicate(lat, CELL, (50, 50))
    cell = tw.cell_from_columns(cols, lat)
    for k, v in CELL.items():
        np.testing.assert_allclose(cell[k], v, atol=1e-9)


# ---- lattice_from_peaks -------------------------------------------------------------

def test_lattice_from_peaks_two_sublattices():
    shape = (60, 64)
    lat = tw.Lattice((3.0, 2.0), (0.4, 10.0), (9.0, -0.5))
    basis = {"A": [[0, 0]], "B": [[0.5, 0.25]]}
    cols = tw.replicate(lat, basis, shape)
    pk = np.concatenate([cols["A"], cols["B"]])
    with pytest.raises(ValueError, match="2 sublattices"):
        tw.lattice_from_peaks(pk)
    equal = np.ones(len(pk))
    with pytest.raises(ValueError, match="ambiguous lattice"):
        noisy = equal + np.random.default_rng(0).normal(0, 0.01, len(pk))
        tw.lattice_from_peaks(pk, intensities=noisy)
    # A brighter: the lattice points are the A columns
    inten = np.r_[np.full(len(cols["A"]), 2.0), np.full(len(cols["B"]), 1.0)]
    got = tw.lattice_from_peaks(pk, intensities=inten)
    _same_lattice(got, lat.matrix)
    f = lat.to_frac(got.origin[None])[0]
    np.testing.assert_allclose(f, np.rint(f), atol=1e-6)
    both = tw.lattice_from_peaks(pk, allow_basis=True)
    _same_lattice(both, lat.matrix)


def test_lattice_from_peaks_needs_three_periods():
    lat = tw.Lattice((2.0, 2.0), (0.0, 8.0), (7.0, 0.0))
    pts = tw.replicate(lat, {"A": [[0, 0]]}, (12, 60))["A"]  # two rows of points
    with pytest.raises(ValueError, match="one direction only"):
        tw.lattice_from_peaks(pts)


@pytest.fixture(scope="module")
def lifepo4():
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    adf = tw.virtual_image(s, 30, 64, show_progressbar=False).data
    return s, columns_of(series), adf


def _sheared_adf(adf, shape, T, c, jitter_px=0.0, seed=0):
    """The periodic ADF of one cell (20 x 34 px) seen through an affine scan
    distortion ``q = T u + c`` with a random horizontal jitter per scan row."""
    big = np.tile(adf, (6, 6))
    rng = np.random.default_rng(seed)
    jit = rng.normal(0, jitter_px, shape[0])
    yy, xx = np.indices(shape, dtype=float)
    q = np.stack([yy, xx + jit[:, None]], -1)
    p = (q - c) @ np.linalg.inv(T).T
    return ndimage.map_coordinates(big, [p[..., 0], p[..., 1]], order=3, mode="grid-wrap")


LFP_CELL = tw.Lattice((0, 0), (0, 34.0), (20.0, 0))
LFP_PERIOD = np.array([[0, 20.0], [17.0, 0]])  # the projection repeats every a/2 along x
SHEAR = (np.array([[1.04, 0.10], [-0.06, 0.97]]), np.array([3.3, -2.1]))


def test_lattice_from_peaks_on_lifepo4_adf(lifepo4):
    _, _, adf = lifepo4
    with pytest.raises(ValueError, match="do not repeat|one direction only"):
        tw.lattice_from_peaks(_peaks(adf, threshold=0.5, edge=0))  # one cell only
    T, c = SHEAR
    for img, matrix in ((np.tile(adf, (3, 3)), LFP_PERIOD),
                        (_sheared_adf(adf, (64, 96), T, c, 0.2), T @ LFP_PERIOD)):
        pk = _peaks(img, threshold=0.5)
        # Fe and P at two sites each: four sublattices, the two Fe equally bright
        with pytest.raises(ValueError, match="4 sublattices"):
            tw.lattice_from_peaks(pk)
        heights = tw.peak_heights(img, pk)
        with pytest.raises(ValueError, match="ambiguous"):
            tw.lattice_from_peaks(pk, intensities=heights)
        lat = tw.lattice_from_peaks(pk, allow_basis=True)
        n = np.linalg.solve(matrix, lat.matrix)
        np.testing.assert_allclose(n, np.rint(n), atol=0.02)
        assert abs(np.linalg.det(np.rint(n))) == 1


def test_register_lifepo4_cell_on_sheared_adf(lifepo4):
    """The bundled simulation's ADF under shear, scale and jitter: every column of the
    cell (also Li and O, invisible in ADF) registered within 0.5 px."""
    _, cols, adf = lifepo4
    cell = tw.cell_from_columns(cols, LFP_CELL)
    T, c = SHEAR
    shape = (64, 96)
    img = _sheared_adf(adf, shape, T, c, jitter_px=0.2)
    pk = _peaks(img, threshold=0.5)
    reg = tw.register_cell(pk, cell, LFP_CELL, shape, visible={"Fe": 1.0, "P": 0.75},
                           intensities=tw.peak_heights(img, pk))
    _assert_columns(reg, *_truth(tw.Lattice(c, T @ LFP_CELL.a, T @ LFP_CELL.b), cell, shape),
                    0.5)
    assert reg.matched_fraction > 0.85


def test_specificity_report_virtual_rows_catch_a_misregistered_cell(lifepo4):
    """At the right columns the virtual ADF is bright at Fe and P; with the cell shifted
    by half a period (the simulation is periodic) the ADF row collapses while the TDM
    rows are still computed."""
    s, cols, _ = lifepo4
    noisy = tw.add_poisson_noise(s, 1e5, seed=1)
    kw = {"species": ["Li"], "detector_region": (0, 23.5), "show_progressbar": False}
    right = tw.specificity_report(noisy, cols, **kw)
    assert list(right)[:2] == ["virtual ABF", "virtual ADF"]
    adf = right["virtual ADF"]
    assert adf["Fe"] > 1.5 and adf["P"] > 1.0 and adf["Fe"] > adf["Li"] + 1.5
    assert right["virtual ABF"]["Fe"] < 0  # ABF: dark at the heavy columns
    shape = np.array(s.data.shape[:2])
    shifted = {k: (v + shape / 2) % shape for k, v in cols.items()}
    wrong = tw.specificity_report(noisy, shifted, **kw)
    assert wrong["virtual ADF"]["Fe"] < 0.5 and wrong["virtual ADF"]["P"] < 0.5
    # explicit detectors, and none at all
    own = tw.specificity_report(noisy, cols, virtual={"BF": (0, 10)}, **kw)
    assert "BF" in own and "virtual ADF" not in own
    assert "virtual ADF" not in tw.specificity_report(noisy, cols, virtual=None, **kw)
    with pytest.raises(ValueError, match="holds no detector pixel"):
        tw.specificity_report(noisy, cols, virtual={"far": (500, 600)}, **kw)


def test_positions_are_never_wrapped(tmp_path):
    img = np.zeros((10, 12))
    img[4, 5] = 1
    with pytest.raises(ValueError, match="positions: 1 of 2 positions lie outside the scan"):
        tw.refine_positions(img, [[4, 5], [10.2, 3]])
    with pytest.raises(ValueError, match="columns\\['O'\\]: 1 of 1 positions lie outside"):
        tw.save_positions(tmp_path / "p.json", {"O": [[-1, 2]]}, scan_shape=(10, 12))
    tw.save_positions(tmp_path / "p.json", {"O": [[9, 2]]}, scan_shape=(10, 12))
    doc = (tmp_path / "p.json").read_text().replace('"scan_shape": [\n  10', '"scan_shape": [\n  8')
    (tmp_path / "q.json").write_text(doc)
    with pytest.raises(ValueError, match="q.json columns\\['O'\\]: 1 of 1 positions lie outside"):
        tw.load_positions(tmp_path / "q.json")
    (tmp_path / "r.json").write_text("not json")
    with pytest.raises(ValueError, match="not a tdm_widgets positions file \\(not a JSON"):
        tw.load_positions(tmp_path / "r.json")
    with pytest.raises(ValueError, match="lattice origin must be two finite"):
        tw.Lattice((np.nan, 0), (0, 1), (1, 0))
    with pytest.raises(ValueError, match="points contains NaN"):
        tw.lattice_from_points([[0, 0], [np.nan, 1], [1, 0]])


def test_scan_edges_do_not_meet_unless_periodic():
    """A column at the top edge of a scan next to a brighter one at the bottom edge:
    treated as periodic, the bottom one hides it and pulls its position; not periodic,
    it is found where it is."""
    shape = (12, 12)
    img = _gauss_image(shape, [[0.6, 5.3], [11.2, 5.0]], sigma=1.0, amps=[1.0, 3.0])
    assert [0.0, 5.0] not in tw.find_peaks(img, min_distance_px=2, threshold=0.1).tolist()
    assert [1.0, 5.0] in tw.find_peaks(img, min_distance_px=2, threshold=0.1,
                                       periodic=False).tolist()
    got = tw.refine_positions(img, [[1, 5]], window_px=2.5, periodic=False)[0]
    np.testing.assert_allclose(got, [0.6, 5.3], atol=0.1)
    wrapped = tw.refine_positions(img, [[1, 5]], window_px=2.5)[0]
    assert np.hypot(*(wrapped - [0.6, 5.3])) > 0.3
    np.testing.assert_allclose(tw.peak_heights(img, [[11, 5], [10.5, 5]]),
                               [img[11, 5] - np.median(img),
                                (img[10, 5] + img[11, 5]) / 2 - np.median(img)])


def test_lattice_from_peaks_with_missing_stray_and_jittered_peaks():
    rng = np.random.default_rng(5)
    true = tw.Lattice((4.0, 3.0), (1.2, 9.0), (8.0, -2.5))
    pts = tw.replicate(true, {"A": [[0, 0]]}, (80, 80))["A"]
    keep = rng.random(len(pts)) > 0.1
    seen = pts[keep] + rng.normal(0, 0.2, (keep.sum(), 2))
    seen = np.r_[seen, rng.uniform(0, 79, (5, 2))]
    lat = tw.lattice_from_peaks(seen)
    _same_lattice(lat, true.matrix)
    f = true.to_frac(lat.origin[None])[0]
    assert np.hypot(*(true.matrix @ (f - np.rint(f)))) < 0.15


def test_refined_positions_at_the_scan_edge_stay_inside_the_scan():
    """A peak on the edge of a small scan (periodic=False): the Gaussian centre may not
    run off beyond the pixels of its window, so the position stays inside the scan."""
    img = np.array([[0, 1, 2, 3], [1, 2, 5, 9.0]])
    peaks = tw.find_peaks(img, 3, 0.5, periodic=False)
    ref = tw.refine_positions(img, peaks, periodic=False)
    assert ((ref > -0.5) & (ref < np.array(img.shape) - 0.5)).all(), ref
    tw.point_templates({"A": ref}, img.shape)  # usable as columns of this scan


def test_lattice_from_peaks_is_not_fooled_by_a_translation_within_the_cell():
    """Three columns of a 12 x 12 px cell at (3, 3), (3, 9), (9, 6): (6, -3) maps two of
    them onto each other and the third, at the box's edge, mostly outside the peaks'
    box, so it scored the 0.75 threshold and gave a 36 px^2 cell; the true cell is
    12 x 12 with the brightest column (9, 6) at a lattice point."""
    yy, xx = np.mgrid[0:48, 0:36].astype(float)
    cols = [(y0 + dy, x0 + dx) for y0 in range(0, 48, 12) for x0 in range(0, 36, 12)
            for dy, dx in ((3, 3), (3, 9), (9, 6))]
    amp = [1.0, 1.0, 1.5] * (len(cols) // 3)
    img = sum(a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.3 ** 2))
              for (y, x), a in zip(cols, amp))
    pk = tw.refine_positions(img, tw.find_peaks(img, 3, 0.3, periodic=False), periodic=False)
    lat = tw.lattice_from_peaks(pk, intensities=tw.peak_heights(img, pk))
    _same_lattice(lat, np.array([[12.0, 0.0], [0.0, 12.0]]).T)
    f = lat.origin - np.array([9.0, 6.0])
    assert np.hypot(*(f - 12 * np.rint(f / 12))) < 0.05
