"""Reading real and plain formats; calibrations; provenance survives a round trip."""

import hashlib

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from conftest import SHARED

MERLIN = SHARED / "data" / "merlin"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name,det", [("001_4x2_6bit", (256, 256)),
                                      ("002_4x2_6bit_roi128", (128, 256))])
@pytest.mark.parametrize("lazy", [False, True])
def test_merlin_real_format(name, det, lazy):
    mib = MERLIN / f"{name}.mib"
    if not mib.exists():
        pytest.skip("shared Merlin data not present")
    before = _sha(mib)
    s = tw.load(mib, lazy=lazy, navigation_shape=(4, 2))
    assert s.data.shape == (2, 4) + det
    assert s.data.dtype == np.uint8
    # the public path runs on it: virtual sum and a mask of a real file
    img = tw.apply_mask(s, np.ones(det))
    data = np.asarray(s.data.compute() if lazy else s.data)
    np.testing.assert_allclose(np.asarray(img.data.compute() if lazy else img.data),
                               data.sum(axis=(2, 3), dtype=float))
    assert _sha(mib) == before  # the user's file is never modified


def test_npy_round_trip(tmp_path, rng):
    data = rng.random((4, 3, 6, 5)).astype(np.float32)
    np.save(tmp_path / "d.npy", data)
    s = tw.load(tmp_path / "d.npy")
    np.testing.assert_array_equal(s.data, data)
    sl = tw.load(tmp_path / "d.npy", lazy=True)
    assert hasattr(sl.data, "dask")
    np.testing.assert_array_equal(sl.data.compute(), data)


def test_corrupt_and_wrong_files(tmp_path, rng):
    bad = tmp_path / "broken.hspy"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ValueError, match="could not read"):
        tw.load(bad)
    np.save(tmp_path / "three.npy", rng.random((3, 4, 5)))
    with pytest.raises(ValueError, match="4D"):
        tw.load(tmp_path / "three.npy")
    with pytest.raises(FileNotFoundError):
        tw.load(tmp_path / "missing.mib")


def test_axes_orientation_and_units_on_non_square_shapes(rng):
    data = rng.random((5, 3, 8, 6))
    s = tw.from_array(data, scan_step_A=(0.2, 0.4), mrad_per_px=(1.0, 3.0))
    x, y = s.axes_manager.navigation_axes
    kx, ky = s.axes_manager.signal_axes
    assert (y.size, x.size, ky.size, kx.size) == (5, 3, 8, 6)
    assert (y.scale, x.scale, ky.scale, kx.scale) == (0.2, 0.4, 1.0, 3.0)
    assert ky.offset == -4.0 and kx.offset == -9.0
    m = tw.pcc_mask(s, rng.random((5, 3)))
    mkx, mky = m.axes_manager.signal_axes
    assert (mky.size, mkx.size, mky.scale, mkx.scale, mky.units) == (8, 6, 1.0, 3.0, "mrad")
    img = tw.apply_mask(s, m)
    ix, iy = img.axes_manager.signal_axes
    assert (iy.size, ix.size, iy.scale, ix.scale, iy.units) == (5, 3, 0.2, 0.4, "Å")


def test_nm_and_rad_are_converted(rng):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(rng.random((4, 4, 6, 6)))
    for ax in s.axes_manager.navigation_axes:
        ax.scale, ax.units = 0.03, "nm"
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.offset, ax.units = 0.002, -0.006, "rad"
    img = tw.virtual_image(s, 0, 3.0)
    assert img.axes_manager.signal_axes[0].units == "Å"
    assert img.axes_manager.signal_axes[0].scale == pytest.approx(0.3)
    r = np.hypot(*np.meshgrid((np.arange(6) - 3) * 2.0, (np.arange(6) - 3) * 2.0))
    np.testing.assert_allclose(img.data, s.data[..., r < 3.0].sum(-1))


def test_results_saved_with_provenance(tmp_path, rng):
    import hyperspy.api as hs

    data = rng.random((6, 5, 8, 8)).astype(np.float32)
    s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=2.0, title="sample")
    t = rng.random((6, 5))
    mask = tw.pcc_mask(s, t, normalization="pcc_over_mean", detector_region=(0, 6))
    img = tw.apply_mask(s, mask)
    mask.save(tmp_path / "mask.hspy")
    img.save(tmp_path / "img.hspy")
    m2 = hs.load(tmp_path / "mask.hspy")
    i2 = hs.load(tmp_path / "img.hspy")
    np.testing.assert_array_equal(m2.data, mask.data)
    p = m2.metadata.TDM.parameters
    assert p.normalization == "pcc_over_mean"
    # provenance keeps the template's shape and checksum, not the array
    import hashlib
    rec = p.templates["template 0"]
    assert list(rec["shape"]) == [6, 5]
    assert rec["sha256"] == hashlib.sha256(np.ascontiguousarray(t, float).tobytes()).hexdigest()
    assert list(p.detector_region) == [0.0, 6.0]
    assert m2.metadata.TDM.source.title == "sample"
    assert i2.metadata.TDM.parameters.mask_provenance["operation"] == "pcc_mask"


def test_lazy_signal_results_equal_eager(rng):
    data = rng.random((8, 6, 10, 10)).astype(np.float32)
    s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=2.0)
    sl = tw.from_array(da.from_array(data, chunks=(3, 6, 10, 10)), scan_step_A=0.3,
                       mrad_per_px=2.0)
    t = rng.random((8, 6))
    np.testing.assert_allclose(tw.pcc_mask(sl, t).data, tw.pcc_mask(s, t).data, rtol=1e-10)
    img = tw.virtual_image(sl, 0, 6)
    assert img._lazy
    img.compute()
    np.testing.assert_allclose(img.data, tw.virtual_image(s, 0, 6).data, rtol=1e-6)


def test_poisson_noise_matches_dose(rng):
    data = np.full((40, 40, 4, 4), 1 / 16, np.float32)
    s = tw.from_array(data, scan_step_A=0.5)
    noisy = tw.add_poisson_noise(s, dose_e_per_A2=400.0, seed=3)
    lam = 400.0 * 0.25 / 16
    assert noisy.data.mean() == pytest.approx(lam, rel=0.02)
    assert noisy.data.var() == pytest.approx(lam, rel=0.05)
    again = tw.add_poisson_noise(s, 400.0, seed=3)
    np.testing.assert_array_equal(noisy.data, again.data)
    assert s.data.dtype == np.float32 and (s.data == 1 / 16).all()  # input untouched

    def lazy_noise(seed):  # a new graph each time: the seed alone fixes the counts
        return tw.add_poisson_noise(tw.from_array(da.from_array(data, chunks=(10, 40, 4, 4)),
                                                  scan_step_A=0.5), 400.0, seed=seed)

    lazy = lazy_noise(3)
    assert isinstance(lazy.data, da.Array)
    counts = lazy.data.compute()
    assert counts.dtype == np.uint32
    assert counts.mean() == pytest.approx(lam, rel=0.02)
    assert counts.var() == pytest.approx(lam, rel=0.05)
    np.testing.assert_array_equal(lazy_noise(3).data.compute(), counts)
    assert not np.array_equal(lazy_noise(4).data.compute(), counts)
    # one stream per chunk: the four chunks of this constant intensity differ
    chunks = counts.reshape(4, 10, 40, 4, 4)
    assert all(not np.array_equal(chunks[0], c) for c in chunks[1:])


def test_set_scan_step_keeps_a_cropped_scan_where_it_was():
    """A scan cropped at row 4, column 2 of an uncalibrated (px) scan starts 4 and 2
    steps in after the step is set, as the crop's pixels were."""
    import hyperspy.api as hs

    from tdm_widgets.io import set_scan_step

    s = hs.signals.Signal2D(np.zeros((10, 12, 3, 3))).inav[2:, 4:]
    set_scan_step(s, (0.5, 0.25))
    y, x = s.axes_manager.navigation_axes[1], s.axes_manager.navigation_axes[0]
    assert (y.offset, y.scale, x.offset, x.scale) == pytest.approx((2.0, 0.5, 0.5, 0.25))
    assert y.units == x.units == "Å"
