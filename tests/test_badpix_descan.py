"""Bad pixels, a robust BF disc and descan, on synthetic data with a numpy reference
and on the experiment-like dataset of ``tests/experiment_like.py`` (issue 11)."""

import hashlib
import warnings

import numpy as np
import pytest
from experiment_like import make_experiment_like
from scipy import ndimage

import tdm_widgets as tw
from tdm_widgets.core.corrections import CorrectedData, Correction, shift_patterns
from tdm_widgets.core.correlate import pcc_masks
from tdm_widgets.core.descan import design
from tdm_widgets.core.disk import find_bf_disk


@pytest.fixture(scope="module")
def experiment():
    return make_experiment_like()


def _fresh():
    """A new experiment-like dataset (corrections are stored on the signal)."""
    return make_experiment_like()


def _disc_stack(scan, det, center, radius, shifts=None, lo=1.0, hi=20.0):
    yy, xx = np.indices(det)
    out = np.empty(scan + det)
    for i in range(scan[0]):
        for j in range(scan[1]):
            dy, dx = (0.0, 0.0) if shifts is None else shifts[i, j]
            r = np.hypot(yy - center[0] - dy, xx - center[1] - dx)
            out[i, j] = lo + (hi - lo) * np.clip(radius + 0.5 - r, 0, 1)
    return out


# -- corrections on synthetic data, against plain numpy ---------------------------------

def test_bad_pixel_interpolation_is_mean_of_valid_neighbours(rng):
    raw = rng.random((3, 2, 9, 8))
    bad = np.zeros((9, 8), bool)
    bad[4, 3] = bad[4, 4] = bad[0, 0] = True
    got = CorrectedData(raw, Correction(bad)).block(slice(None), slice(None))
    for (y, x) in zip(*np.nonzero(bad)):
        ys, xs = slice(max(0, y - 1), y + 2), slice(max(0, x - 1), x + 2)
        ok = ~bad[ys, xs]
        want = raw[:, :, ys, xs][..., ok].mean(axis=-1)
        np.testing.assert_allclose(got[:, :, y, x], want)
    np.testing.assert_array_equal(got[..., ~bad], raw[..., ~bad])


def test_shift_patterns_against_roll_and_linear_ramp():
    yy, xx = np.indices((12, 14), dtype=float)
    ramp = (3.0 * yy + 0.5 * xx)[None, None]
    shifts = np.array([[[1.25, -0.5]]])
    got = shift_patterns(ramp, shifts)[0, 0]
    # a linear ramp is reproduced exactly by bilinear sampling at y + 1.25, x - 0.5
    np.testing.assert_allclose(got[1:-3, 2:-2], (3.0 * (yy + 1.25) + 0.5 * (xx - 0.5))[1:-3, 2:-2])
    p = np.random.default_rng(0).random((1, 1, 12, 14))
    whole = shift_patterns(p, np.array([[[2.0, -3.0]]]), subpixel=False)[0, 0]
    np.testing.assert_array_equal(whole[:-2, 3:], np.roll(p[0, 0], (-2, 3), (0, 1))[:-2, 3:])


def test_stored_corrections_give_the_same_results_as_a_corrected_copy(rng):
    """Streaming passes (eager and lazy) equal the functions on a materialised copy."""
    import dask.array as da

    raw = (rng.poisson(5.0, (6, 7, 16, 15))).astype(np.uint16)
    bad = np.zeros((16, 15), bool)
    bad[3, 4] = bad[:, 9] = True
    raw[..., 3, 4] = 4000
    shifts = rng.normal(0, 1.0, (6, 7, 2))
    corr = Correction(bad, shifts)
    copy = CorrectedData(raw, corr).materialize()
    t = rng.random((2, 6, 7))
    want_masks, _ = pcc_masks(copy, t)
    want_masks = want_masks * ~bad
    for arr in (raw, da.from_array(raw, chunks=(2, 3, 16, 15))):
        s = tw.from_array(arr, scan_step_A=0.3, mrad_per_px=1.0)
        tw.set_bad_pixels(s, bad)
        s.metadata.set_item("TDM_corrections.descan_px", shifts)
        masks = tw.pcc_mask(s, t, show_progressbar=False)
        np.testing.assert_allclose(masks.data, want_masks, atol=1e-12)
        img = tw.virtual_image(s, 0, 5.0, show_progressbar=False)
        ring = tw.detector_annulus(s, (16, 15), 0, 5.0)
        np.testing.assert_allclose(np.asarray(img.data), copy[..., ring].sum(-1), rtol=1e-12)
        rec = img.metadata.TDM.parameters.corrections
        # provenance records the applied shift field by shape and checksum
        assert list(rec.descan_shift_px["shape"]) == list(shifts.shape)
        assert rec.descan_shift_px["sha256"] == hashlib.sha256(
            np.ascontiguousarray(shifts, float).tobytes()).hexdigest()
        assert rec.n_bad_pixels == bad.sum()


def test_find_bad_pixels_synthetic_classes(rng):
    lam = np.full((10, 12), 6.0)
    data = rng.poisson(lam, (8, 9, 10, 12)).astype(np.float32)
    data[..., 2, 3] = 0                      # dead
    data[..., 5, 5] = rng.poisson(300, (8, 9))  # hot
    data[..., 7, 8] = 17                     # stuck
    data[1, 1, 0, 11] = np.nan               # one NaN
    bp = tw.find_bad_pixels(data, show_progressbar=False)
    assert np.argwhere(bp.dead).tolist() == [[2, 3]]
    assert np.argwhere(bp.hot).tolist() == [[5, 5]]
    assert np.argwhere(bp.stuck).tolist() == [[7, 8]]
    assert np.argwhere(bp.nonfinite).tolist() == [[0, 11]]
    assert bp.report["counts"]["total"] == 4 == bp.mask.sum()


@pytest.mark.parametrize("kw,name", [({"hot_sigma": -1}, "hot_sigma"),
                                     ({"dead_ratio": 1.5}, "dead_ratio"),
                                     ({"neighbourhood_px": 4}, "neighbourhood_px")])
def test_find_bad_pixels_rejects_bad_thresholds(rng, kw, name):
    with pytest.raises(ValueError, match=name):
        tw.find_bad_pixels(rng.random((3, 3, 8, 8)), **kw)


# -- bright-field disc -----------------------------------------------------------------

def test_bf_disk_ignores_hot_pixels_and_a_dead_column():
    p = _disc_stack((1, 1), (80, 80), (38.3, 41.6), 17.0)[0, 0]
    p[10, 70] = p[60, 12] = 5e4          # hot pixels far brighter than the disc
    p[:, 45] = 0                         # dead column through the disc
    d = find_bf_disk(p, semiangle_mrad=20.0)
    assert d.center_px == pytest.approx((38.3, 41.6), abs=0.3)
    assert d.radius_px == pytest.approx(17.0, rel=0.02)
    assert d.residual_px < 1.0 and d.contrast > 0.9


@pytest.mark.parametrize("what,match", [("dot", "radius"), ("edge", "edge"),
                                        ("flat", "contrast")])
def test_bf_disk_refuses_absurd_discs(what, match):
    p = np.ones((40, 40))
    if what == "dot":
        p[20:24, 20:24] = 100.0  # survives the outlier filter, radius ~2 px
    elif what == "edge":
        p = _disc_stack((1, 1), (40, 40), (5.0, 20.0), 10.0)[0, 0]
    else:
        p = _disc_stack((1, 1), (40, 40), (20.0, 20.0), 10.0, lo=10.0, hi=10.5)[0, 0]
    with pytest.raises(ValueError, match=match):
        find_bf_disk(p)


def test_bf_disk_refuses_hot_pixels_alone():
    p = np.ones((40, 40))
    p[5, 7] = p[30, 2] = 1e4
    with pytest.raises(ValueError, match="hot"):
        find_bf_disk(p)


def test_calibrate_detector_refuses_an_absurd_disk(rng):
    s = tw.from_array(rng.random((2, 2, 30, 30)), scan_step_A=0.3)
    with pytest.raises(ValueError, match="not a bright-field disc"):
        tw.calibrate_detector(s, tw.BFDisk((15.0, 15.0), 0.56, 41.6))
    with pytest.raises(ValueError, match="mrad_per_px"):
        tw.calibrate_detector(s, tw.BFDisk((15.0, 15.0), 10.0, float("nan")))


# -- descan -----------------------------------------------------------------------------

def test_descan_from_a_vacuum_reference_on_another_scan_grid():
    """A plane measured on a 9 x 11 vacuum scan, evaluated on the 18 x 22 data scan."""
    def plane(shape):
        u, v = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]),
                           indexing="ij")
        return np.stack([1.5 * u - 0.5 * v, 0.7 * u + 2.0 * v], axis=-1)

    vac = tw.from_array(_disc_stack((9, 11), (48, 48), (23.0, 24.5), 9.0, plane((9, 11))))
    data = tw.from_array(_disc_stack((18, 22), (48, 48), (23.0, 24.5), 9.0, plane((18, 22))))
    disk = tw.bf_disk(vac, check_descan=False, show_progressbar=False)
    d = tw.measure_descan(data, disk, reference=vac, show_progressbar=False)
    want = plane((18, 22))
    np.testing.assert_allclose(d.shift_px, want - want.reshape(-1, 2).mean(0), atol=0.08)
    assert d.source == "reference"
    tw.correct_descan(data, d)
    np.testing.assert_allclose(tw.bf_disk(data, show_progressbar=False).center_px,
                               np.add((23.0, 24.5), want.reshape(-1, 2).mean(0)), atol=0.1)


def test_descan_measured_on_the_experiment_like_data(experiment):
    ex = _fresh()
    s = ex.signal
    tw.set_bad_pixels(s, tw.find_bad_pixels(s, show_progressbar=False))
    with pytest.warns(UserWarning, match="descan"):
        disk = tw.bf_disk(s, ex.semiangle_mrad, show_progressbar=False)
    d = tw.measure_descan(s, disk, show_progressbar=False)
    # the plane through the true (noisy) descan, independent of the measurement
    a = design(s.data.shape[:2], 1)
    coef, *_ = np.linalg.lstsq(a, ex.descan_px.reshape(-1, 2), rcond=None)
    truth = (a @ coef).reshape(ex.descan_px.shape)
    truth -= truth.reshape(-1, 2).mean(0)
    assert np.abs(d.shift_px - truth).max() < 0.2
    assert d.range_px == pytest.approx(np.hypot(*np.ptp(truth.reshape(-1, 2), 0)), abs=0.3)
    tw.correct_descan(s, d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tw.bf_disk(s, ex.semiangle_mrad, show_progressbar=False)


def _com_spread(s):
    com = tw.center_of_mass(s, show_progressbar=False).data
    return np.sqrt((com.reshape(2, -1).var(axis=1)).sum())


def test_descan_dominates_com_until_corrected(experiment):
    """Uncorrected, the ramp dominates the centre of mass; corrected, its spread is the
    clean simulation's (the atomic signal) again."""
    clean = _fresh().clean
    tw.calibrate_detector(clean, tw.bf_disk(clean, 23.5, show_progressbar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ramp warning on the clean data
        want = _com_spread(clean)
    s = _fresh().signal
    tw.set_bad_pixels(s, tw.find_bad_pixels(s, show_progressbar=False))
    with pytest.warns(UserWarning, match="descan"):
        disk = tw.bf_disk(s, 23.5, show_progressbar=False)
    tw.calibrate_detector(s, disk)
    with pytest.warns(UserWarning, match="centre of mass: descan"):
        raw = _com_spread(s)
    tw.correct_descan(s, tw.measure_descan(s, disk, show_progressbar=False))
    fixed = _com_spread(s)
    assert raw > 2.0 * want
    assert fixed == pytest.approx(want, rel=0.1)
    phase = tw.icom(s, show_progressbar=False)
    assert list(phase.metadata.TDM.parameters.corrections.descan_shift_px["shape"]) == [20, 34, 2]


# -- bad pixels and the whole recipe on the experiment-like data ------------------------

def test_find_bad_pixels_on_experiment_like_data(experiment):
    ex = experiment
    bp = tw.find_bad_pixels(ex.signal, show_progressbar=False)
    assert not (bp.mask & ~ex.bad).any()                       # no false alarm
    assert (bp.mask[ex.hot | ex.stuck]).all()                  # every hot and stuck pixel
    # every dead pixel where the clean data has signal to miss
    lit = ndimage.median_filter(np.asarray(ex.clean.data).mean((0, 1)), 5) * 680 > 200
    assert bp.mask[ex.dead & lit].all()
    assert bp.mask[:, ex.dead_column][lit[:, ex.dead_column]].all()


def _recipe(s, columns, tmp_path, name):
    """The README recipe for real data, with no workaround."""
    path = tmp_path / f"{name}.hspy"
    s.save(path)
    s = tw.load(path, lazy=True)
    tw.set_bad_pixels(s, tw.find_bad_pixels(s, show_progressbar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the descan warning: corrected next
        disk = tw.bf_disk(s, semiangle_mrad=23.5, show_progressbar=False)
    tw.calibrate_detector(s, disk)
    tw.correct_descan(s, tw.measure_descan(s, disk, show_progressbar=False))
    tw.virtual_image(s, 11, 23.5, show_progressbar=False)
    t, names = tw.point_templates(columns, s.data.shape[:2], species=["Li", "O"],
                                  combined=None)
    tw.pcc_mask(s, t, detector_region=(0, 23.5), show_progressbar=False)
    cv = tw.cross_validated_image(s, t, split="dose", detector_region=(0, 23.5),
                                  show_progressbar=False)
    scores = {n: tw.specificity(cv.image.data[i], columns)[n] for i, n in enumerate(names)}
    return disk, scores


def test_readme_recipe_on_experiment_like_data(experiment, tmp_path):
    ex = experiment
    disk, scores = _recipe(_fresh().signal, ex.columns, tmp_path, "exp")
    assert disk.mrad_per_px == pytest.approx(ex.mrad_per_px, rel=0.02)
    assert np.hypot(*np.subtract(disk.center_px, ex.center_px)) < 1.5
    _, clean = _recipe(_fresh().clean, ex.clean_columns, tmp_path, "clean")
    for species in ("Li", "O"):
        assert scores[species] == pytest.approx(clean[species], rel=0.10), (scores, clean)


def _plane_fraction(img):
    """Fraction of an image's variance that a plane across the scan explains."""
    img = np.asarray(img, float) - np.mean(img)
    a = design(img.shape, 1)
    coef, *_ = np.linalg.lstsq(a, img.ravel(), rcond=None)
    return float(((a @ coef) ** 2).sum() / (img**2).sum())


def test_uncorrected_descan_leaks_a_ramp_into_the_li_image(experiment):
    """Li columns sit on one side of the x ramp (a plane scores -0.8 sd there), so a
    ramp in the Li image biases its score; correction removes it."""
    ex = experiment
    frac = {}
    for name, correct in (("uncorrected", False), ("corrected", True)):
        s = _fresh().signal
        tw.set_bad_pixels(s, tw.find_bad_pixels(s, show_progressbar=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            disk = tw.bf_disk(s, 23.5, show_progressbar=False)
        tw.calibrate_detector(s, disk)
        if correct:
            tw.correct_descan(s, tw.measure_descan(s, disk, show_progressbar=False))
        t, _ = tw.point_templates(ex.columns, (20, 34), species=["Li"], combined=None)
        cv = tw.cross_validated_image(s, t[0], detector_region=(0, 23.5), show_progressbar=False)
        frac[name] = _plane_fraction(cv.image.data)
    assert frac["uncorrected"] > 5 * frac["corrected"], frac
