"""Cross-validation: a template reproduced from noise alone vanishes when the mask is
fitted to independent data; a real signal survives."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.column_templates import specificity
from tdm_widgets.cross_validation import cross_validated_image, thinned_folds, thinned_halves


def _points(shape, n, seed):
    rng = np.random.default_rng(seed)
    idx = rng.choice(shape[0] * shape[1], n, replace=False)
    return np.stack(np.unravel_index(idx, shape), 1).astype(float)


def test_noise_alone_reproduces_template_only_on_same_data():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(12, 12, 24, 24)).astype(np.uint16)  # p=144 < q=576
    cols = {"X": _points((12, 12), 10, 1)}
    t, _ = tw.point_templates(cols, (12, 12), combined=None)
    same = tw.apply_mask(counts, tw.pcc_mask(counts, t[0]), normalized=True)
    z_same = specificity(same, cols)["X"]
    cv = cross_validated_image(counts, t[0], split="dose", normalized=True)
    z_cv = specificity(cv, cols)["X"]
    assert z_same > 2.5          # the template comes back from pure noise
    assert abs(z_cv) < 1.0       # and vanishes when derived on independent counts


def test_real_signal_survives_cross_validation():
    rng = np.random.default_rng(2)
    shape = (12, 12)
    cols = {"X": _points(shape, 10, 3)}
    t, _ = tw.point_templates(cols, shape, combined=None)
    lam = np.full((12, 12, 16, 16), 4.0)
    lam[:, :, 2:8, 2:8] *= (1 + 1.0 * t[0])[:, :, None, None]  # 36 pixels see the columns
    counts = rng.poisson(lam).astype(np.uint16)
    cv = cross_validated_image(counts, t[0], split="dose", normalized=True)
    f = 10 / 144
    z_perfect = np.sqrt((1 - f) / f)  # z at the columns of the binary template itself
    assert specificity(cv, cols)["X"] > 0.7 * z_perfect


def test_thinning_gives_independent_poisson_halves():
    rng = np.random.default_rng(4)
    counts = rng.poisson(20.0, size=(30, 30, 4, 4)).astype(np.uint32)
    a, b = thinned_halves(counts, seed=1)
    np.testing.assert_array_equal(a + b, counts)
    assert a.mean() == pytest.approx(10.0, rel=0.02) and a.var() == pytest.approx(10.0, rel=0.06)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.03
    # independent of chunking: the lazy draw equals the eager one
    la, _ = thinned_halves(da.from_array(counts, chunks=(7, 11, 4, 4)), seed=1)
    np.testing.assert_array_equal(la.compute(), a)


def test_thinning_into_four_folds_gives_independent_poisson_parts():
    """Multinomial thinning: each part Poisson at a quarter of the dose (mean = var),
    parts uncorrelated and adding up to the counts; lazy equals eager."""
    rng = np.random.default_rng(7)
    counts = rng.poisson(40.0, size=(30, 30, 4, 4)).astype(">u2")
    parts = thinned_folds(counts, seed=3, folds=4)
    np.testing.assert_array_equal(sum(p.astype(np.int64) for p in parts), counts)
    for p in parts:
        assert p.mean() == pytest.approx(10.0, rel=0.02)
        assert p.var() == pytest.approx(10.0, rel=0.06)
    assert abs(np.corrcoef(parts[0].ravel(), parts[3].ravel())[0, 1]) < 0.03
    lazy = thinned_folds(da.from_array(counts, chunks=(7, 11, 2, 4)), seed=3, folds=4)
    for lp, p in zip(lazy, parts):
        np.testing.assert_array_equal(lp.compute(), p)
    with pytest.raises(ValueError, match="folds"):
        thinned_folds(counts, folds=1)


def test_dose_split_refuses_noise_free_data(rng):
    data = rng.random((6, 6, 5, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="split='cells'"):
        cross_validated_image(data, rng.random((6, 6)), split="dose")


def test_cells_split_holds_out_positions(rng):
    data = rng.random((8, 10, 5, 5))
    t = rng.random((8, 10))
    fit = np.zeros((8, 10), bool)
    fit[:, :5] = True
    cv = cross_validated_image(data, t, split="cells", fit_region=fit)
    np.testing.assert_array_equal(cv.metadata.TDM.held_out, ~fit)
    # the mask came from the fit half only: equal to pcc_mask with that region
    m = tw.pcc_mask(data, t, region=fit)
    np.testing.assert_allclose(cv.data, tw.apply_mask(data, m).data)
    with pytest.raises(ValueError, match="split must be"):
        cross_validated_image(data, t, split="halves")


def test_self_fit_on_noisy_simulated_lifepo4():
    """On noisy data a same-data point template scores higher at its own columns than
    the cross-validated one; at high dose the two agree, at the noise-free score.

    The self-fit gain falls as 1 / dose (noise fitted by ~1,700 BF-disc pixels of the
    1 mrad detector from 680 patterns); at 1e6 e/A^2 (about 90,000 electrons per
    pattern) it is a small fraction of the score."""
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    cols = columns_of(series)
    clean = select(series, thickness_nm=70)
    kw = dict(detector_region=(0, 23.5), show_progressbar=False)
    low = tw.specificity_report(tw.add_poisson_noise(clean, 1e3, seed=1), cols,
                                species=["Li", "O"], **kw)
    assert low["Li same-data"]["Li"] > low["Li cross-validated"]["Li"] + 2.0
    assert low["O same-data"]["O"] > low["O cross-validated"]["O"] + 1.0
    # a null control of each species' size (Li 4, O 12 columns) at its own random
    # positions: shown by the same-data image from noise alone; cross-validated, the
    # noise self-fit is gone and only the positional part stays (measured +1.10 of +11.09
    # and +1.05 of +6.31; README, "What the dose split does not remove")
    for null in ("null 4", "null 12"):
        assert low[f"{null} same-data"][null] > 3.0
        assert low[f"{null} cross-validated"][null] < 0.3 * low[f"{null} same-data"][null]
    high = tw.specificity_report(tw.add_poisson_noise(clean, 1e6, seed=1), cols,
                                 species=["Li"], **kw)
    assert abs(high["Li same-data"]["Li"] - high["Li cross-validated"]["Li"]) < 0.6
    t, _ = tw.point_templates(cols, clean.data.shape[:2], ["Li"], combined=None)
    masks = tw.pcc_mask(clean, t, **kw)
    noise_free = specificity(tw.apply_mask(clean, masks, show_progressbar=False).data[0], cols)
    cv = high["Li cross-validated"]
    assert cv["Li"] == pytest.approx(noise_free["Li"], abs=0.5)
    # the cross-validated Li image is still Li-specific: Li above every other species
    assert cv["Li"] > 2 and all(cv["Li"] > cv[k] + 2 for k in ("Fe", "P", "O"))


def test_cli_apply_writes_everything(tmp_path):
    import json

    from tdm_widgets.cli import main
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.manifest import ROOT

    assert main(["apply", str(BUNDLED), "--positions",
                 str(ROOT / "tdm_widgets/data/lifepo4_positions.json"), "--out", str(tmp_path),
                 "--thickness", "40", "--detector-region", "0", "23.5"]) == 0
    params = json.loads((tmp_path / "parameters.json").read_text())
    assert params["species"] == ["Fe", "Li", "O", "P", "all"]
    assert params["arguments"]["detector_region"] == [0.0, 23.5]
    import hyperspy.api as hs

    imgs = hs.load(tmp_path / "images.hspy")
    assert imgs.data.shape == (5, 20, 34)
    assert "TDM Li" in (tmp_path / "specificity.txt").read_text()


def _cv_reference(counts, t, normalized, seed):
    """The dose split spelled out: store both halves, fit each, image the other."""
    from tdm_widgets.core.apply import apply_masks
    from tdm_widgets.core.correlate import pcc_masks

    a, b = thinned_halves(counts, seed=seed)
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ma, sa = pcc_masks(a, t)
    mb, sb = pcc_masks(b, t)
    return 0.5 * (apply_masks(b, ma, normalized=normalized, stats=sb)
                  + apply_masks(a, mb, normalized=normalized, stats=sa))


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("dtype", ["<u2", ">u2", "uint64", "int32"])
def test_dose_split_eager_equals_lazy_with_detector_split_chunks(normalized, dtype,
                                                                 monkeypatch):
    """Both halves from one pass each, equal to storing the halves; the lazy result with
    chunks that split the detector equals the eager one (the draw is per position on
    whole patterns); uint64 counts (HyperSpy's rebin) and big-endian counts work."""
    from tdm_widgets.core import split

    rng = np.random.default_rng(5)
    counts = rng.poisson(6.0, size=(9, 10, 8, 6)).astype(dtype)
    t = np.stack([rng.random((9, 10)), (rng.random((9, 10)) > 0.7).astype(float)])
    ref = _cv_reference(counts, t, normalized, seed=2)
    eager = cross_validated_image(counts, t, split="dose", normalized=normalized, seed=2)
    np.testing.assert_allclose(eager.data, ref, rtol=1e-9, atol=1e-9)
    thinned = []
    real_folds = split.fold_counts
    monkeypatch.setattr(split, "fold_counts", lambda b, i, s, f=2: thinned.append(i.size)
                        or real_folds(b, i, s, f))
    lazy = cross_validated_image(da.from_array(counts, chunks=(4, 3, 3, 4)), t,
                                 split="dose", normalized=normalized, seed=2)
    np.testing.assert_allclose(lazy.data, eager.data, rtol=1e-12, atol=1e-12)
    assert sum(thinned) == 2 * counts[..., 0, 0].size  # each half made once per pass


def test_rebinned_counts_split_by_dose():
    """HyperSpy's rebin gives uint64 counts: the dose split takes them."""
    rng = np.random.default_rng(6)
    s = tw.from_array(rng.poisson(3.0, size=(8, 8, 8, 8)).astype(np.uint16))
    r = s.rebin(scale=(1, 1, 2, 2))
    assert r.data.dtype == np.uint64
    t = rng.random((8, 8))
    cv = cross_validated_image(r, t, split="dose")
    np.testing.assert_allclose(cv.data, _cv_reference(r.data, t, False, 0),
                               rtol=1e-9, atol=1e-9)


def test_cells_split_removes_the_positional_self_fit_that_the_dose_split_keeps():
    """Every scan position has its own pattern, so a mask fitted to any set of positions
    brings them back (blurred), noise or not: the dose split removes only the shot-noise
    part of that self-fit. On the 2 x 2-cell defect supercell at 2e4 e/probe the null
    control (random positions over the whole scan, so not periodic) keeps most of its
    same-data score at its own positions under the dose split and loses it under the
    cells split, while the Li image, whose columns repeat from cell to cell, keeps its
    score under both."""
    from tdm_widgets.simulate import columns_of

    s = tw.load(tw.data_path("lifepo4_defects"))
    cols = {k: columns_of(s)[k] for k in ("Li", "Fe", "P", "O")}
    noisy = tw.add_poisson_noise(s, 2e4 / (s.axes_manager[0].scale * s.axes_manager[1].scale),
                                 seed=0)
    # the null has as many positions as the Li template (16): its score at its own
    # positions falls with their number, so it is compared with the image of its size
    kw = dict(species=["Li"], detector_region=(0, 23.5), show_progressbar=False, virtual=None)
    dose = tw.specificity_report(noisy, cols, split="dose", **kw)
    cells = tw.specificity_report(noisy, cols, split="cells", **kw)
    same = dose["null same-data"]["null"]
    assert same > 2.0
    assert dose["null cross-validated"]["null"] > 0.8 * same      # measured +2.18 of +2.53
    assert cells["null cross-validated"]["null"] < 0.4 * same     # measured +0.52
    for rep in (dose, cells):  # measured +4.98 (dose) and +4.80 (cells)
        assert rep["Li cross-validated"]["Li"] > 4.0
        assert rep["Li cross-validated"]["Li"] > rep["null cross-validated"]["null"] + 2.5


def test_one_null_per_species_size_away_from_the_columns():
    """A null for each number of columns (named by it when they differ), each with that
    many pixels, none within 1.5 px of a column, each its own draw."""
    from tdm_widgets.cross_validation import null_templates, with_null_positions

    cols = {"A": [[2, 2], [2, 8], [8, 2], [8, 8]], "B": [[5, 5]], "C": [[0, 5]]}
    nulls = null_templates(cols, (12, 12), seed=3)
    assert list(nulls) == ["null 1", "null 4"]
    assert [int(t.sum()) for t in nulls.values()] == [1, 4]
    judged = with_null_positions(cols, nulls)
    every = np.concatenate([np.asarray(v, float) for v in cols.values()])
    for name in nulls:
        d = np.hypot(*(judged[name][:, None, :] - every[None]).transpose(2, 0, 1))
        assert d.min() > 1.5
    # only the species asked for count; one size gives the plain name
    assert list(null_templates(cols, (12, 12), species=["B", "C"])) == ["null"]
    with pytest.raises(ValueError, match="'null', the name of a null control"):
        with_null_positions({"null": [[0, 0]]}, {"null": np.eye(3)})
