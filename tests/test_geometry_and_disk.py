"""Detector geometry, bright-field disc and virtual images against independent answers."""

import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.core.disk import BFDisk, find_bf_disk
from tdm_widgets.core.geometry import annulus


def test_annulus_matches_pixel_loop():
    shape, c, scale, off = (13, 17), (0.3, -0.7), (2.0, 1.5), (-12.0, -12.0)
    got = annulus(shape, 3.0, 9.0, scale, off, c)
    for i in range(shape[0]):
        for j in range(shape[1]):
            r = np.hypot(off[0] + scale[0] * i - c[0], off[1] + scale[1] * j - c[1])
            assert got[i, j] == (3.0 <= r < 9.0)


def _disc(shape, center, radius, sub=16, lo=1.0, hi=50.0):
    """Anti-aliased disc by supersampling: pixel value = lo + (hi - lo) * covered area."""
    yy, xx = np.indices((shape[0] * sub, shape[1] * sub))
    yy = (yy + 0.5) / sub - 0.5
    xx = (xx + 0.5) / sub - 0.5
    inside = np.hypot(yy - center[0], xx - center[1]) < radius
    cover = inside.reshape(shape[0], sub, shape[1], sub).mean(axis=(1, 3))
    return lo + (hi - lo) * cover


@pytest.mark.parametrize("center,radius", [((31.3, 30.7), 12.4), ((20.0, 40.25), 7.8)])
def test_bf_disk_subpixel(center, radius):
    p = _disc((64, 70), center, radius)
    d = find_bf_disk(p, semiangle_mrad=23.5)
    assert d.center_px == pytest.approx(center, abs=0.02)
    assert d.radius_px == pytest.approx(radius, abs=0.02)
    assert d.mrad_per_px == pytest.approx(23.5 / d.radius_px)


def test_bf_disk_on_4d_signal_and_calibration(rng):
    p = _disc((48, 48), (24.2, 23.6), 10.0)
    data = (p[None, None] * rng.uniform(0.9, 1.1, (6, 5, 1, 1))).astype(np.float32)
    s = tw.from_array(data, scan_step_A=0.3)
    d = tw.bf_disk(s, semiangle_mrad=20.0)
    assert d.radius_px == pytest.approx(10.0, abs=0.05)
    tw.calibrate_detector(s, d)
    kx, ky = s.axes_manager.signal_axes
    assert ky.units == "mrad" and ky.scale == pytest.approx(2.0, rel=0.01)
    # 0 mrad is at the disc centre
    assert -ky.offset / ky.scale == pytest.approx(24.2, abs=0.05)


def test_virtual_image_equals_explicit_sum(rng):
    data = rng.random((5, 4, 20, 16)).astype(np.float32)
    s = tw.from_array(data, scan_step_A=0.5, mrad_per_px=2.0)
    img = tw.virtual_image(s, 4.0, 12.0)
    ky = (np.arange(20) - 10) * 2.0
    kx = (np.arange(16) - 8) * 2.0
    r = np.hypot(ky[:, None], kx[None, :])
    ring = (r >= 4) & (r < 12)
    np.testing.assert_allclose(img.data, data[..., ring].sum(-1, dtype=float), rtol=1e-6)
    assert img.axes_manager.signal_axes[0].units == "Å"
    assert img.metadata.TDM.parameters.n_pixels == ring.sum()


def test_virtual_image_center_from_bf_disk(rng):
    data = rng.random((3, 3, 20, 20))
    s = tw.from_array(data, mrad_per_px=1.0)
    disk = BFDisk((6.0, 7.0), 3.0)
    img = tw.virtual_image(s, 0, 2.5, center=disk)
    yy, xx = np.indices((20, 20))
    ring = np.hypot(yy - 6, xx - 7) < 2.5
    np.testing.assert_allclose(img.data, data[..., ring].sum(-1))


def test_virtual_images_agree_with_libertem(rng):
    """LiberTEM's ApplyMasksUDF, an independent implementation, on the same data."""
    from libertem.api import Context
    from libertem.udf.masks import ApplyMasksUDF

    data = rng.gamma(2.0, 10.0, (7, 6, 24, 20)).astype(np.float32)
    s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=2.0)
    bf = tw.detector_annulus(s, data.shape[2:], 0, 10)
    adf = tw.detector_annulus(s, data.shape[2:], 12, 30)
    ctx = Context.make_with("inline")
    ds = ctx.load("memory", data=data, sig_dims=2)
    res = ctx.run_udf(ds, ApplyMasksUDF(mask_factories=[lambda: bf.astype(np.float32),
                                                        lambda: adf.astype(np.float32)]))
    lt = res["intensity"].data
    np.testing.assert_allclose(tw.virtual_image(s, 0, 10).data, lt[..., 0], rtol=1e-5)
    np.testing.assert_allclose(tw.virtual_image(s, 12, 30).data, lt[..., 1], rtol=1e-5)


def test_annulus_pixels_on_a_boundary_do_not_depend_on_the_units():
    """A pixel centre exactly on a radius is in or out the same way in mrad, rad or any
    scale (round-off put mirror-image pixels on different sides)."""
    from tdm_widgets.core.geometry import annulus

    ref = annulus((145, 145), 11, 23.5, offset=(-72, -72))
    for f in (0.1, 1e-3, 0.0251):
        got = annulus((145, 145), 11 * f, 23.5 * f, scale=(f, f), offset=(-72 * f, -72 * f))
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(ref, ref[::-1])
    np.testing.assert_array_equal(ref, ref.T)
