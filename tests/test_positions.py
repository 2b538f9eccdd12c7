"""Templates, lattice registration, position refinement and the positions file."""

import numpy as np
import pytest

import tdm_widgets as tw


def _gaussian_lattice(shape, positions, sigma=1.2, amp=1.0):
    yy, xx = np.indices(shape)
    img = np.zeros(shape)
    for y, x in positions:
        dy = (yy - y + shape[0] / 2) % shape[0] - shape[0] / 2
        dx = (xx - x + shape[1] / 2) % shape[1] - shape[1] / 2
        img += amp * np.exp(-(dy**2 + dx**2) / (2 * sigma**2))
    return img


def test_lattice_replication_and_refinement():
    true = tw.Lattice((2.3, 1.7), (0.4, 9.1), (7.6, -0.3))
    basis = {"A": [[0, 0]], "B": [[0.5, 0.5]]}
    cols = tw.replicate(true, basis, (40, 40))
    guess = tw.lattice_from_points(np.array([true.origin, true.origin + true.a,
                                             true.origin + true.b]) + 0.3)
    refined = tw.refine_lattice(guess, cols["A"])
    np.testing.assert_allclose(refined.a, true.a, atol=1e-9)
    np.testing.assert_allclose(refined.b, true.b, atol=1e-9)
    # each replicated column is a lattice point plus its basis vector
    f = true.to_frac(cols["B"])
    np.testing.assert_allclose(f - np.floor(f), 0.5, atol=1e-9)
    assert np.all((cols["A"] >= -0.5) & (cols["A"] < 39.5))
    with pytest.raises(ValueError, match="collinear"):
        tw.Lattice((0, 0), (1, 1), (2, 2))


@pytest.mark.parametrize("method,tol", [("gaussian", 0.05), ("com", 0.15)])
def test_refine_positions_recovers_known_subpixel_positions(method, tol):
    rng = np.random.default_rng(0)
    lat = tw.Lattice((3.0, 3.0), (0.0, 8.0), (8.0, 0.0))
    true = tw.replicate(lat, {"A": [[0, 0]]}, (32, 32))["A"] + rng.uniform(-0.4, 0.4, (16, 2))
    img = _gaussian_lattice((32, 32), true)
    start = np.rint(true)
    got = tw.refine_positions(img, start, window_px=3, method=method)
    assert np.max(np.abs(got - true)) < tol


def test_find_peaks_on_gaussian_lattice():
    pos = np.array([[4.0, 4.0], [4.0, 12.0], [12.0, 4.0], [12.0, 12.0]])
    peaks = tw.find_peaks(_gaussian_lattice((16, 16), pos), min_distance_px=3)
    np.testing.assert_array_equal(peaks[np.lexsort(peaks.T[::-1])], pos)


def test_templates_point_disc_gaussian():
    cols = {"A": [[2.2, 3.6]], "B": [[7, 7]]}
    t, names = tw.point_templates(cols, (10, 10))
    assert names == ["A", "B", "all"]
    assert t[0, 2, 4] == 1 and t[0].sum() == 1 and t[2].sum() == 2
    d, _ = tw.point_templates(cols, (10, 10), disc_px=1.0, combined=None)
    assert d[1].sum() == 5  # centre and 4 neighbours
    g, _ = tw.point_templates(cols, (10, 10), sigma_px=1.0, combined=None)
    assert g[1, 7, 7] == pytest.approx(1.0) and g[1, 7, 8] == pytest.approx(np.exp(-0.5))
    with pytest.raises(ValueError, match="no column positions"):
        tw.point_templates({"A": np.zeros((0, 2))}, (5, 5))


def test_positions_file_round_trip(tmp_path):
    lat = tw.Lattice((1, 2), (0, 5), (5, 0))
    cols = {"Li": np.array([[1.0, 2.0]]), "O": np.array([[3.5, 4.25], [0.0, 1.0]])}
    tw.save_positions(tmp_path / "p.json", cols, lat, scan_shape=(20, 34), note="x")
    got, lat2, doc = tw.load_positions(tmp_path / "p.json")
    assert set(got) == {"Li", "O"}
    np.testing.assert_array_equal(got["O"], cols["O"])
    np.testing.assert_array_equal(lat2.b, lat.b)
    assert doc["scan_shape"] == [20, 34] and doc["note"] == "x"
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a tdm_widgets positions file"):
        tw.load_positions(tmp_path / "bad.json")


def test_rectangle_region_and_partial_template(rng):
    r = tw.rectangle_region((9, 12), 0, 3, 0, 4)
    assert r.sum() == 12
    with pytest.raises(ValueError, match="fewer than two"):
        tw.rectangle_region((9, 12), 0, 1, 0, 1)


def test_automatic_lattice_from_image_peaks():
    true = tw.Lattice((5.0, 4.0), (0.0, 9.0), (8.0, 1.0))
    cols = tw.replicate(true, {"A": [[0, 0]]}, (48, 48))["A"]
    img = _gaussian_lattice((48, 48), cols, sigma=1.0)
    lat = tw.lattice_from_peaks(tw.find_peaks(img, min_distance_px=3))
    # the same lattice up to the choice of basis: every true point is a lattice point
    f = lat.to_frac(cols)
    np.testing.assert_allclose(f, np.rint(f), atol=0.02)
    assert abs(np.cross(lat.a, lat.b)) == pytest.approx(abs(np.cross(true.a, true.b)), rel=0.01)


def test_columns_on_half_pixels_fall_on_the_same_pixel_of_every_cell():
    """A column at x.5 goes to the pixel above it in every cell (pixel i holds
    [i - 0.5, i + 0.5)), so a lattice's template stays periodic. np.rint rounded halves
    to even: columns at 4.5, 13.5, 22.5, 31.5 of a 9 px cell fell on 4, 14, 22, 32."""
    cols = {"A": [[4.5, 4.5 + 9 * i] for i in range(4)] + [[-0.5, 0.5]]}
    t, _ = tw.point_templates(cols, (9, 36), combined=None)
    assert np.argwhere(t[0]).tolist() == [[0, 1], [5, 5], [5, 14], [5, 23], [5, 32]]
    img = np.zeros((9, 36))
    img[5, 5::9] = 1.0
    img[0, 1] = 1.0
    z = tw.specificity(img, cols)["A"]
    assert z == pytest.approx((1 - img.mean()) / img.std())
