"""Bad input gets a clear error naming the problem; zero-variance pixels are handled."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.core.correlate import pcc_masks

from conftest import reference_pcc


@pytest.fixture
def s(data4d):
    return tw.from_array(data4d, scan_step_A=0.3, mrad_per_px=2.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_data(data4d, rng, bad):
    data4d[3, 2, 5, 5] = bad
    t = rng.random(data4d.shape[:2])
    with pytest.raises(ValueError, match="NaN or inf"):
        tw.pcc_mask(data4d, t)
    with pytest.raises(ValueError, match="NaN or inf"):
        tw.apply_mask(data4d, np.ones(data4d.shape[2:]))
    with pytest.raises(ValueError, match="NaN or inf"):
        tw.apply_mask(da.from_array(data4d, chunks=(4, 4, 12, 10)),
                      np.ones(data4d.shape[2:])).compute()


def test_zero_variance_pixels_get_weight_zero_and_are_counted(data4d, rng):
    data4d[:, :, 0, 0] = 7.0           # dead/constant pixel
    data4d[:, :, 1, 1] = 0.0           # outside the camera
    t = rng.random(data4d.shape[:2])
    m, stats = pcc_masks(data4d, t)
    assert stats.n_zero_variance == 2
    assert m[0, 0] == 0 and m[1, 1] == 0
    ok = stats.valid
    np.testing.assert_allclose(m[ok], reference_pcc(data4d, t)[ok], rtol=1e-10)
    mask = tw.pcc_mask(tw.from_array(data4d), t)
    assert mask.metadata.TDM.parameters.n_zero_variance == 2
    assert np.isfinite(tw.apply_mask(data4d, m, normalized=True).data).all()


def test_roundoff_is_not_signal(data4d, rng):
    """A float32 pixel varying only in its last bit is constant, not signal."""
    col = np.float32(20.0) + rng.integers(0, 2, data4d.shape[:2]) * np.spacing(np.float32(20))
    data4d[:, :, 2, 3] = col
    _, stats = pcc_masks(data4d, rng.random(data4d.shape[:2]))
    assert not stats.valid[2, 3]
    assert stats.n_zero_variance == 1


def test_vacuum_scan_is_an_error(rng):
    flat = np.broadcast_to(rng.random((1, 1, 6, 6)) * 100, (5, 5, 6, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="no variation over the scan"):
        pcc_masks(np.ascontiguousarray(flat), rng.random((5, 5)))


@pytest.mark.parametrize("template,msg", [
    (np.zeros((11, 9)), "constant"),
    (np.full((11, 9), 3.0), "constant"),
    (np.ones((9, 11)), "scan shape"),
    (np.ones((2, 2, 11, 9)), "template must be 2D or 3D"),
    (np.ones((0, 11, 9)), "empty"),
])
def test_bad_templates(s, template, msg):
    with pytest.raises(ValueError, match=msg):
        tw.pcc_mask(s, template)


def test_nan_template(s):
    t = np.ones((11, 9))
    t[0, 0] = np.nan
    with pytest.raises(ValueError, match="template contains NaN"):
        tw.pcc_mask(s, t)


def test_template_constant_inside_region(s):
    t = np.zeros((11, 9))
    t[8, 8] = 1
    region = np.zeros((11, 9), bool)
    region[:4, :4] = True
    with pytest.raises(ValueError, match="constant within the region"):
        tw.pcc_mask(s, t, region=region)


@pytest.mark.parametrize("shape", [(11, 9, 12), (2, 11, 9, 12, 10)])
def test_wrong_data_dimensions(rng, shape):
    with pytest.raises(ValueError, match="data must be 4D"):
        tw.pcc_mask(rng.random(shape), rng.random((11, 9)))


def test_wrong_signal_dimensions(rng):
    import hyperspy.api as hs

    s3 = hs.signals.Signal2D(rng.random((3, 11, 9, 12, 10)))
    with pytest.raises(ValueError, match="navigation dimension 3"):
        tw.pcc_mask(s3, rng.random((11, 9)))


@pytest.mark.parametrize("region,msg", [
    (np.eye(11, 9, dtype=bool)[:, :1] & False, "scan shape"),
    (np.zeros((11, 9), bool), "at least two"),
    (np.ones((11, 9), int), "boolean"),
])
def test_bad_regions(s, region, msg):
    r = region
    if msg == "at least two":
        r = r.copy()
        r[0, 0] = True
    with pytest.raises((ValueError, TypeError), match=msg):
        tw.pcc_mask(s, np.random.default_rng(0).random((11, 9)), region=r)


def test_bad_mask_shape(s):
    with pytest.raises(ValueError, match="detector shape"):
        tw.apply_mask(s, np.ones((10, 12)))


def test_unknown_normalization(s):
    with pytest.raises(ValueError, match="normalization must be one of"):
        tw.pcc_mask(s, np.random.default_rng(0).random((11, 9)), normalization="eq9")


def test_pcc_over_mean_refuses_nonpositive_means(rng):
    d = rng.standard_normal((6, 6, 4, 4))
    d[:, :, 0, 0] -= 10
    with pytest.raises(ValueError, match="mean <= 0"):
        pcc_masks(d, rng.random((6, 6)), "pcc_over_mean")


def test_uncalibrated_detector_needs_mrad(data4d):
    with pytest.raises(ValueError, match="calibrated in mrad"):
        tw.virtual_image(tw.from_array(data4d), 0, 10)


@pytest.mark.parametrize("lazy", [False, True])
def test_negative_counts_in_the_dose_split(rng, lazy):
    """Dark-subtracted (signed) counts cannot be split by dose: a clear error naming
    the data and the alternative, not numpy's 'n < 0'."""
    counts = rng.poisson(4.0, size=(6, 6, 5, 5)).astype(np.int16)
    counts[2, 3, 1, 1] = -2
    data = da.from_array(counts, chunks=(3, 3, 5, 5)) if lazy else counts
    with pytest.raises(ValueError, match=r"data has negative counts \(minimum -2.*"
                                         r"split='cells'"):
        tw.cross_validated_image(data, rng.random((6, 6)), split="dose")
