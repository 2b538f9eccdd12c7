"""Every equation against a plain numpy reference that materialises D-hat."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from conftest import reference_normalised, reference_pcc
from tdm_widgets.core.apply import apply_masks
from tdm_widgets.core.correlate import pcc_masks


@pytest.mark.parametrize("over_mean", [False, True])
def test_pcc_matches_materialised_reference(data4d, rng, over_mean):
    t = rng.random(data4d.shape[:2])
    m, _ = pcc_masks(data4d, t, "pcc_over_mean" if over_mean else "pcc")
    np.testing.assert_allclose(m, reference_pcc(data4d, t, over_mean=over_mean),
                               rtol=1e-10, atol=1e-12)


def test_pcc_is_a_correlation_coefficient(data4d, rng):
    m, _ = pcc_masks(data4d, rng.random(data4d.shape[:2]))
    assert np.all(np.abs(m) <= 1 + 1e-12)


def test_region_statistics_come_from_region_only(data4d, rng):
    t = rng.random(data4d.shape[:2])
    region = np.zeros(data4d.shape[:2], bool)
    region[2:6, 1:5] = True
    m, stats = pcc_masks(data4d, t, region=region)
    assert stats.n == region.sum()
    np.testing.assert_allclose(m, reference_pcc(data4d, t, region), rtol=1e-10, atol=1e-12)
    # changing data outside the region changes nothing
    other = data4d.copy()
    other[~region] = rng.random(other[~region].shape) * 1e3
    np.testing.assert_allclose(pcc_masks(other, t, region=region)[0], m, rtol=1e-10)


def test_k_templates_in_one_pass_equal_k_single_calls(data4d, rng):
    ts = rng.random((4,) + data4d.shape[:2])
    stack, _ = pcc_masks(data4d, ts, "pcc_over_mean")
    for i in range(4):
        single, _ = pcc_masks(data4d, ts[i], "pcc_over_mean")
        np.testing.assert_allclose(stack[i], single, rtol=1e-10, atol=1e-14)


def test_eq2_is_the_raw_weighted_sum(data4d, rng):
    m = rng.standard_normal(data4d.shape[2:])
    img = apply_masks(data4d, m)
    np.testing.assert_allclose(img, np.einsum("abij,ij->ab", data4d.astype(float), m),
                               rtol=1e-12)


def test_eq6_via_mask_over_sigma_equals_materialised(data4d, rng):
    masks = rng.standard_normal((3,) + data4d.shape[2:])
    sy, sx, dy, dx = data4d.shape
    Dh = reference_normalised(data4d.reshape(sy * sx, dy * dx))
    expected = (Dh @ masks.reshape(3, -1).T).T.reshape(3, sy, sx)
    np.testing.assert_allclose(apply_masks(data4d, masks, normalized=True), expected,
                               rtol=1e-9, atol=1e-9)


def test_eq6_image_of_own_mask_is_correlation_matrix_times_template(data4d, rng):
    """Eq 6: s_out = D_hat D_hat^T s_hat_in."""
    t = rng.random(data4d.shape[:2])
    m, _ = pcc_masks(data4d, t)
    sy, sx, dy, dx = data4d.shape
    Dh = reference_normalised(data4d.reshape(sy * sx, dy * dx))
    th = (t.ravel() - t.mean()) / t.std()
    expected = (Dh @ Dh.T @ th / (sy * sx)).reshape(sy, sx)
    np.testing.assert_allclose(apply_masks(data4d, m, normalized=True), expected,
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("chunks", [(4, 3, 12, 10), (5, 9, 6, 5), (11, 2, 12, 10)])
def test_lazy_equals_eager(data4d, rng, chunks):
    t = rng.random((2,) + data4d.shape[:2])
    lazy = da.from_array(data4d, chunks=chunks)
    region = np.ones(data4d.shape[:2], bool)
    region[0] = False
    for norm in ("pcc", "pcc_over_mean"):
        np.testing.assert_allclose(pcc_masks(lazy, t, norm, region=region)[0],
                                   pcc_masks(data4d, t, norm, region=region)[0], rtol=1e-10)
    m = rng.standard_normal((2,) + data4d.shape[2:])
    out = apply_masks(lazy, m, normalized=True)
    assert hasattr(out, "dask")  # stays lazy until computed
    np.testing.assert_allclose(out.compute(), apply_masks(data4d, m, normalized=True),
                               rtol=1e-10)


def test_block_size_does_not_change_result(data4d, rng, monkeypatch):
    import tdm_widgets.core.blocks as blocks

    t = rng.random(data4d.shape[:2])
    whole, _ = pcc_masks(data4d, t)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1)  # one scan row per block
    np.testing.assert_allclose(pcc_masks(data4d, t)[0], whole, rtol=1e-12)


def test_uint16_counts_match_float_reference(rng):
    counts = rng.poisson(50, size=(8, 7, 6, 5)).astype(np.uint16)
    t = rng.random((8, 7))
    np.testing.assert_allclose(pcc_masks(counts, t)[0], reference_pcc(counts, t),
                               rtol=1e-10)


def test_large_offset_keeps_precision(rng):
    """Variance about a large mean: a raw sum of squares would lose it."""
    small = rng.standard_normal((10, 10, 3, 3))
    data = 1e7 + small
    t = rng.random((10, 10))
    np.testing.assert_allclose(pcc_masks(data, t)[0], reference_pcc(small, t), rtol=1e-6)


def test_signal_api_matches_core(data4d, rng):
    s = tw.from_array(data4d, scan_step_A=0.3, mrad_per_px=2.0)
    t = rng.random(data4d.shape[:2])
    mask = tw.pcc_mask(s, t)
    np.testing.assert_allclose(mask.data, reference_pcc(data4d, t), rtol=1e-10)
    img = tw.apply_mask(s, mask, normalized=True)
    np.testing.assert_allclose(img.data, apply_masks(data4d, mask.data, normalized=True))
    assert mask.metadata.TDM.operation == "pcc_mask"
    assert img.metadata.TDM.parameters.equation == "Eq 6"


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint16, np.float64])
def test_compiled_kernels_equal_array_expressions(rng, monkeypatch, dtype):
    """The numba kernels and the generic array-module path (used for cupy) agree."""
    import tdm_widgets.core.kernels as kernels

    data = (rng.random((9, 7, 11, 13)) * 1000).astype(dtype)
    t = np.zeros((3, 9, 7))
    t[0, 2, 3] = 1
    t[1] = rng.random((9, 7))
    t[2, ::2, ::3] = 2.0
    region = rng.random((9, 7)) > 0.3
    masks = rng.standard_normal((2, 11, 13))
    got_m, _ = pcc_masks(data, t, region=region)
    got_i = apply_masks(data, masks, normalized=True)
    monkeypatch.setattr(kernels, "use_numba", lambda x: False)
    exp_m, _ = pcc_masks(data, t, region=region)
    exp_i = apply_masks(data, masks, normalized=True)
    np.testing.assert_allclose(got_m, exp_m, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got_i, exp_i, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_m[1], reference_pcc(data.astype(float), t[1], region),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint16])
@pytest.mark.parametrize("k", [1, 4, 6, 9])
@pytest.mark.parametrize("slabs", [1, 3])
def test_kernel_row_groups_mask_groups_and_tiles_match_numpy(rng, monkeypatch, dtype, k,
                                                               slabs):
    """Row counts that are not multiples of four, mask counts around the groups of
    four, a detector wider than one cache tile, rows split into slabs (as on machines
    with more threads than tiles) and float16 copies of one row at a time all give the
    float64 numpy sums."""
    import tdm_widgets.core.kernels as kernels

    monkeypatch.setattr(kernels, "COPY_CHUNK_BYTES", 1)
    monkeypatch.setattr(kernels, "_slabs", lambda q, nrows: slabs)
    n, q = 15, kernels.TILE + 202
    x = (rng.random((n, q)) * 900).astype(dtype)
    w = rng.standard_normal((k, q))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(kernels.weighted_sums(x, w), x64 @ w.T, rtol=1e-12)
    rows = np.array([0, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14])  # 11 rows: two groups + 3
    t = rng.standard_normal((k, n)) * (rng.random((k, n)) < 0.5)
    shift = x64[1]
    s1, s2, proj = kernels.shifted_sums(x, shift, rows, t)
    d = x64[rows] - shift
    np.testing.assert_allclose(s1, d.sum(axis=0), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s2, (d * d).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(proj, t[:, rows] @ d, rtol=1e-12, atol=1e-9)
