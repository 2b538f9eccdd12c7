"""Bad input gets a clear error naming the problem; zero-variance pixels are handled."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from conftest import reference_pcc
from tdm_widgets.core.correlate import pcc_masks


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


@pytest.mark.parametrize("pos,match", [
    ([[-1.0, -1.0]], "outside the scan"), ([[3.0, 9.6]], "outside the scan"),
    ([[np.nan, 2.0]], "NaN or inf"), ([[1.0, 2.0, 3.0]], r"\(n, 2\)")])
def test_positions_outside_the_scan_or_nan_are_errors(pos, match):
    """Not wrapped into the scan: point_templates names the species and the scan."""
    with pytest.raises(ValueError, match=r"columns\['O'\].*" if "n, 2" not in match
                       else match):
        tw.point_templates({"Fe": [[1, 1]], "O": pos}, (4, 10))
    with pytest.raises(ValueError, match=match):
        tw.point_templates({"O": pos}, (4, 10), sigma_px=1.0)
    # the edges themselves are inside: [-0.5, size - 0.5)
    t, _ = tw.point_templates({"O": [[-0.5, 9.4], [3.4, 0.0]]}, (4, 10), combined=None)
    assert t[0, 0, 9] == 1 and t[0, 3, 0] == 1 and t.sum() == 2


def test_positions_file_from_another_scan_or_not_json(tmp_path):
    path = tmp_path / "pos.json"
    tw.save_positions(path, {"O": [[1, 2], [5, 7]]}, scan_shape=(8, 9))
    cols, _, _ = tw.load_positions(path, (8, 9))
    np.testing.assert_array_equal(cols["O"], [[1, 2], [5, 7]])
    with pytest.raises(ValueError, match=r"scan of shape \(8, 9\); this scan is \(6, 9\)"):
        tw.load_positions(path, (6, 9))
    tw.save_positions(path, {"O": [[1, 2], [5, 7]]})  # no shape recorded: range checked
    with pytest.raises(ValueError, match="outside the scan"):
        tw.load_positions(path, (5, 9))
    (tmp_path / "bad.json").write_text("O: 1, 2")
    with pytest.raises(ValueError, match="not a JSON positions file"):
        tw.load_positions(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a tdm_widgets positions file"):
        tw.load_positions(tmp_path / "other.json")


def _cli_error(capsys, argv):
    """Run the CLI; return its single stderr line (exit code 2, no traceback)."""
    from tdm_widgets.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if "WARNING" not in e]  # hyperspy's reader warnings
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("tdm: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    from merlin_writer import write_mib

    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.manifest import ROOT

    positions = str(ROOT / "tdm_widgets/data/lifepo4_positions.json")
    out = str(tmp_path / "out")
    assert "must be finite" in _cli_error(capsys, ["demo", "--thickness", "nan"])
    assert "must be positive" in _cli_error(capsys, ["demo", "--dose", "-5"])
    assert "invalid choice" in _cli_error(capsys, ["simulate", "huge", "lifepo4",
                                                   "--out", out])
    assert "needs a dataset NAME" in _cli_error(capsys, ["data", "regenerate"])
    assert "no such file" in _cli_error(capsys, ["apply", str(tmp_path / "x.mib"),
                                                 "--positions", positions, "--out", out])
    counts = np.random.default_rng(0).poisson(3.0, (4, 6, 8, 8))
    mib = write_mib(tmp_path / "scan.mib", counts, 12)
    msg = _cli_error(capsys, ["apply", str(mib), "--positions", positions, "--out", out,
                              "--navigation-shape", "5", "4"])
    assert "navigation_shape=(5, 4)" in msg and "24 frames" in msg
    # positions made for the bundled 20 x 34 scan do not fit this 4 x 6 scan
    msg = _cli_error(capsys, ["apply", str(mib), "--positions", positions, "--out", out,
                              "--navigation-shape", "6", "4", "--scan-step", "0.3"])
    assert "(20, 34); this scan is (4, 6)" in msg
    (tmp_path / "bad.json").write_text("{not json")
    assert "not a JSON positions file" in _cli_error(
        capsys, ["apply", str(BUNDLED), "--positions", str(tmp_path / "bad.json"),
                 "--out", out])
    assert "--scan-step: must be positive" in _cli_error(
        capsys, ["apply", str(mib), "--positions", positions, "--out", out,
                 "--scan-step", "0"])


def test_cli_apply_refuses_to_overwrite_its_input(tmp_path, capsys):
    from tdm_widgets.manifest import ROOT

    positions = ROOT / "tdm_widgets/data/lifepo4_positions.json"
    data = tmp_path / "images.hspy"  # the name apply would write
    data.write_bytes(b"precious")
    msg = _cli_error(capsys, ["apply", str(data), "--positions", str(positions),
                              "--out", str(tmp_path)])
    assert "would overwrite the input" in msg
    msg = _cli_error(capsys, ["apply", str(data), "--positions", str(positions),
                              "--out", str(data)])
    assert "would overwrite the input" in msg
    pos = tmp_path / "parameters.json"
    pos.write_text(positions.read_text())
    msg = _cli_error(capsys, ["apply", str(ROOT / "tdm_widgets/data/lifepo4_positions.json"),
                              "--positions", str(pos), "--out", str(tmp_path)])
    assert "would overwrite the input" in msg
    assert data.read_bytes() == b"precious"


@pytest.mark.parametrize("lazy", [False, True])
def test_template_offset_does_not_change_the_mask(data4d, rng, lazy):
    """Templates are centred before the projections: 1e8 added to a template (exactly
    representable here) leaves the mask unchanged to round-off, eager, lazy, in the
    dose split and after an edit."""
    from tdm_widgets.core.engine import TDMEngine

    t = rng.integers(0, 4, data4d.shape[:2]).astype(float)
    data = da.from_array(data4d, chunks=(4, 9, 12, 10)) if lazy else data4d
    m0, _ = pcc_masks(data, t)
    m1, _ = pcc_masks(data, t + 1e8)
    np.testing.assert_allclose(m1, m0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m0, reference_pcc(data4d, t), rtol=1e-9, atol=1e-12)
    eng = TDMEngine(data, np.stack([t + 1e8]), show_progressbar=False)
    delta = np.zeros_like(t)
    delta[2, 3] = 1.0
    eng.edit(0, delta)
    np.testing.assert_allclose(eng.masks()[0], pcc_masks(data4d, t + delta)[0],
                               rtol=1e-10, atol=1e-12)
    counts = (data4d * 3).astype(np.uint16)
    np.testing.assert_allclose(
        tw.cross_validated_image(counts, t + 1e8).data,
        tw.cross_validated_image(counts, t).data, rtol=1e-9, atol=1e-9)


def test_virtual_image_annulus_off_the_detector_or_nan_calibration(data4d):
    s = tw.from_array(data4d, mrad_per_px=2.0)  # 12 x 10 px: at most ~16 mrad
    with pytest.raises(ValueError, match="selects no detector pixel.*spans"):
        tw.virtual_image(s, 40, 60)
    with pytest.raises(ValueError, match="inner_mrad < outer_mrad"):
        tw.virtual_image(s, 10, 5)
    with pytest.raises(ValueError, match="inner_mrad < outer_mrad"):
        tw.virtual_image(s, 0, np.nan)
    with pytest.raises(ValueError, match="mrad_per_px must be positive and finite"):
        tw.from_array(data4d, mrad_per_px=np.nan)
    s.axes_manager.signal_axes[0].scale = np.nan
    with pytest.raises(ValueError, match="calibration is not finite"):
        tw.virtual_image(s, 0, 10)


def test_live_feed_nan_frame(data4d):
    w = np.ones(data4d.shape[2:])
    live = tw.LiveTDM(w, data4d.shape[:2])
    live.feed(data4d[0])
    frame = data4d[1, 0].copy()
    frame[3, 3] = np.nan
    with pytest.raises(ValueError, match=r"frames 9\.\.9 contain NaN"):
        live.feed(frame)
    assert live.n_done == 9  # nothing stored: the next frame still goes to position 9


def test_clear_messages_for_nan_intensities_empty_npy_and_foreign_stats(tmp_path, data4d):
    data4d[1, 1, 2, 2] = np.nan
    s = tw.from_array(data4d, scan_step_A=0.3)
    with pytest.raises(ValueError, match="NaN or inf.*Poisson"):
        tw.add_poisson_noise(s, 1000)
    with pytest.raises(ValueError, match="NaN or inf.*Poisson"):
        tw.add_poisson_noise(s.as_lazy(), 1000).data.compute()
    with pytest.raises(ValueError, match="dose_e_per_A2 must be positive and finite"):
        tw.add_poisson_noise(s, np.inf)
    with pytest.raises(ValueError, match="exceed the uint32 range"):
        tw.add_poisson_noise(tw.from_array(np.abs(np.nan_to_num(data4d)) + 1,
                                           scan_step_A=0.3), 1e12)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="could not read .*empty.npy.*EOFError"):
        tw.load(tmp_path / "empty.npy")
    other = tw.column_stats(np.random.default_rng(0).random((4, 4, 6, 6)))
    good = np.nan_to_num(data4d)
    with pytest.raises(ValueError, match=r"stats are of a detector of shape \(6, 6\)"):
        tw.apply_mask(good, np.ones(good.shape[2:]), normalized=True, stats=other)
    with pytest.raises(ValueError, match=r"mask must have the detector shape \(6, 6\)"):
        tw.export_weighted_detector(np.ones(good.shape[2:]), other, tmp_path / "det")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("huge", [1e16, 1e20])
def test_one_huge_pixel_does_not_make_the_others_constant(data4d, rng, dtype, huge):
    """Round-off is judged per pixel and against a robust bright level: one hot float
    pixel at 1e16-1e20 leaves every other pixel's mask as the float64 reference."""
    data = data4d.astype(dtype)
    data[:, :, 4, 4] = (huge * (1 + 0.1 * rng.random(data.shape[:2]))).astype(dtype)
    t = rng.random(data.shape[:2])
    m, stats = pcc_masks(data, t)
    assert stats.n_zero_variance == 0
    np.testing.assert_allclose(m, reference_pcc(data.astype(float), t), rtol=1e-7,
                               atol=1e-12)


def test_float16_subnormal_steps_are_constant(data4d, rng):
    """A float16 pixel holding only 0 or one subnormal step (6e-8) is round-off of
    the storage format; a float16 pixel with real variation stays valid."""
    data = (data4d / 100).astype(np.float16)
    step = np.finfo(np.float16).smallest_subnormal
    data[:, :, 0, 1] = rng.integers(0, 2, data.shape[:2]) * step
    data[:, :, 0, 2] = (0.01 + 0.02 * rng.random(data.shape[:2])).astype(np.float16)
    _, stats = pcc_masks(data, rng.random(data.shape[:2]))
    assert not stats.valid[0, 1] and stats.valid[0, 2]
    assert stats.n_zero_variance == 1


def _vacuum_float32_scan(signal_px=None, signal=0.0):
    """A specimen-free scan as a float32 multislice code makes it: the probe
    (aperture x scan phase ramp) to real space and back with single-precision FFTs;
    optionally one dark pixel modulated by a weak real signal."""
    n = 48
    ky, kx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    aperture = (np.hypot(ky, kx) < 0.15).astype(np.complex64)
    out = np.empty((9, 10, n, n), np.float32)
    for y in range(9):
        for x in range(10):
            ramp = np.exp(-2j * np.pi * (ky * y * 0.37 + kx * x * 0.41)).astype(np.complex64)
            psi = np.fft.ifft2(aperture * ramp)
            assert psi.dtype == np.complex64
            out[y, x] = np.fft.fftshift(np.abs(np.fft.fft2(psi)) ** 2) / np.float32(n * n)
    if signal_px is not None:
        bright = np.quantile(out.mean((0, 1)), 1 - 1 / 32)
        mod = 1 + 0.3 * np.sin(np.arange(90).reshape(9, 10))
        out[:, :, signal_px[0], signal_px[1]] = (signal * bright * mod).astype(np.float32)
    return out


def test_specimen_free_float32_simulation_has_no_signal():
    """float32 round-off of a simulation scales with the pattern's brightest pixels,
    not with each pixel's own mean: a vacuum scan is a vacuum (ValueError), while one
    dark pixel with a real signal at 1e-6 of the bright-field level is kept."""
    vac = _vacuum_float32_scan()
    dark = vac.mean((0, 1)) < 1e-3 * vac.max()
    sd = vac.std((0, 1))
    assert (sd[dark] > 8 * np.finfo(np.float32).eps * np.abs(vac.mean((0, 1))[dark])).any()
    t = np.zeros((9, 10))
    t[::3, ::4] = 1
    with pytest.raises(ValueError, match="no variation over the scan beyond round-off"):
        pcc_masks(vac, t)
    weak = _vacuum_float32_scan(signal_px=(2, 2), signal=1e-6)
    _, stats = pcc_masks(weak, t)
    assert stats.valid[2, 2] and stats.n_zero_variance == 48 * 48 - 1


def test_eq7_weight_does_not_collect_on_subnormal_pixels():
    """On the bundled float16 file the whole-detector Eq 7 Li mask puts no weight on
    pixels that hold only 0 or one float16 step (a 4 x 4 ring block at (-48..-45,
    +64..+67) mrad took 90 % of it, |m| 9.9e11, while tw.load assembled the packed
    file as float32 and round-off was judged at float32's smallest step)."""
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import select
    from tdm_widgets.simulate.output import columns_of

    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    t, names = tw.point_templates(columns_of(series), s.data.shape[:2], ["Li"],
                                  combined=None)
    m = tw.pcc_mask(s, t[0], normalization="pcc_over_mean").data
    d = np.asarray(s.data).reshape(-1, m.size)
    two_valued = np.array([np.unique(d[:, j]).size <= 2 for j in range(m.size)])
    assert two_valued.any() and (m.ravel()[two_valued] == 0).all()
    w = np.abs(m) / np.abs(m).sum()
    assert w.max() < 0.2            # was 0.9999 at one 0-or-6e-8 pixel
    assert np.abs(m).max() < 1e5    # was 3.4e7


def test_painter_refuses_clicks_and_files_outside_its_scan(tmp_path):
    """painter.click(-1, -1), a NaN click and a positions file made for another scan
    are errors naming the scan (shown in the widget when they come from the browser);
    snapping near an edge does not wrap to the other side of the scan."""
    from tdm_widgets.widgets.painter import TemplatePainter

    img = np.zeros((12, 16))
    img[0, 15] = 5.0                       # bright, but across the scan from (0, 0)
    img[1, 1] = 1.0
    p = TemplatePainter(img, species=("A",), snap_px=1)
    for y, x in ((-1, -1), (12, 3), (3, 16)):
        with pytest.raises(ValueError, match=r"click \(y, x\).*outside the scan \(12, 16\)"):
            p.click(y, x)
    with pytest.raises(ValueError, match="NaN"):
        p.click(np.nan, 2)
    assert len(p.columns["A"]) == 0
    p.click(0, 0)
    np.testing.assert_array_equal(p.columns["A"], [[1, 1]])  # not (0, 15)
    tw.save_positions(tmp_path / "other.json", {"A": [[20, 30]]}, scan_shape=(40, 40))
    with pytest.raises(ValueError, match=r"scan of shape \(40, 40\); this scan is \(12, 16\)"):
        p.load(tmp_path / "other.json")
    tw.save_positions(tmp_path / "noshape.json", {"A": [[20, 3]]})
    with pytest.raises(ValueError, match="outside the scan"):
        p.load(tmp_path / "noshape.json")
    np.testing.assert_array_equal(p.columns["A"], [[1, 1]])   # nothing imported
    p._on_image({"data": {"click_x": 3.2, "click_y": -0.7}})  # the browser: shown, kept
    assert len(p.columns["A"]) == 1
    p._guarded(lambda: p.load(tmp_path / "other.json"))
    assert "this scan is (12, 16)" in p.message.value and "error" in p.message.value


@pytest.mark.parametrize("background", [False, True])
def test_explorer_shows_a_dose_split_of_signed_counts_as_an_error(background):
    """Cross-validation (dose split) on dark-subtracted, signed counts in the explorer:
    the error is shown in the widget (also from the background update thread, not only
    in its log), the last masks are kept, and a valid choice recovers."""
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    counts = tw.add_poisson_noise(select(series, thickness_nm=70), 1e4, seed=0)
    signed = np.asarray(counts.data).astype(np.int32) - 1
    s = tw.from_array(signed, scan_step_A=0.3, mrad_per_px=2.0)
    ex = tw.explore(s, {"O": columns_of(series)["O"]}, background=background)
    ex.wait()
    before = np.array(ex.masks, copy=True)
    ex.cross_validate.value = "dose"
    ex.wait()  # the update thread: its error reaches the widget, no "computing" left
    assert "negative counts" in ex.notice.value
    assert "'cross-validated: cells split'" in ex.notice.value
    assert ex.status.value.startswith("error") and ex.busy.value == ""
    np.testing.assert_array_equal(ex.masks, before)
    ex.cross_validate.value = "cells"
    ex.wait()
    assert ex.notice.value == "" and ex.status.value.startswith("update")


@pytest.mark.parametrize("lazy", [False, True])
def test_session_save_and_export_refuse_to_overwrite_the_loaded_file(tmp_path, data4d, lazy):
    """The file a signal was loaded from is never written, even when its stored metadata
    names another file (HyperSpy keeps ``original_filename`` from the file saved) and
    after a series member is picked; the refusal comes before anything is written."""
    import hashlib

    from tdm_widgets.simulate import select

    src = tw.from_array(data4d, scan_step_A=0.3, mrad_per_px=2.0)
    src.metadata.General.original_filename = "elsewhere.hspy"
    path = tmp_path / "images.hspy"   # the name TDMSession.save writes
    src.save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    s = select(tw.load(path, lazy=lazy))
    assert tw.signals.source_file(s) == path.resolve()
    session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
    with pytest.raises(ValueError, match="would overwrite the input file"):
        session.save(tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["images.hspy"]
    npy = tmp_path / "det.npy"
    np.save(npy, data4d)
    d = tw.load(npy)
    stats = tw.column_stats(d, show_progressbar=False)
    for mask in (np.ones(data4d.shape[2:]),       # the statistics name the input
                 tw.pcc_mask(d, np.eye(*data4d.shape[:2]), show_progressbar=False)):
        with pytest.raises(ValueError, match="det.npy would overwrite the input file"):
            tw.export_weighted_detector(mask, stats, tmp_path / "det")
    np.testing.assert_array_equal(np.load(npy), data4d)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert session.save(tmp_path / "out").is_dir()   # another folder is fine


def test_select_validates_the_member_and_takes_a_saved_one(tmp_path, capsys):
    """A member saved from a series loads and is selected again (it crashed with
    StopIteration); a thickness that is not finite, outside the series, not the saved
    member, or given for a file that is no series is an error naming the argument."""
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.manifest import ROOT
    from tdm_widgets.simulate import select

    series = tw.load(BUNDLED)
    vals = np.asarray(series.metadata.Simulation.thickness_nm, float)
    member = select(series, thickness_nm=70)
    path = tmp_path / "s70.hspy"
    member.save(path)
    back = tw.load(path)
    for again in (select(back), select(back, thickness_nm=70)):
        np.testing.assert_array_equal(again.data, member.data)
    for src, want, match in ((series, np.nan, "finite"), (series, -3.0, "> 0"),
                             (series, vals.max() + 0.6 * np.diff(vals)[-1], "outside"),
                             (back, 20.0, "only the 69.881 nm member")):
        with pytest.raises(ValueError, match=f"thickness_nm.*{match}"):
            select(src, thickness_nm=want)
    assert select(series, thickness_nm=vals.max() + 0.4 * np.diff(vals)[-1]
                  ).metadata.Simulation.selected_thickness_nm == vals.max()
    with pytest.raises(ValueError, match="defocus_nm=3: the data holds only 0 nm"):
        select(series, defocus_nm=3.0)
    plain = tw.from_array(np.ones((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="thickness_nm=20 given, but the data is not"):
        select(plain, thickness_nm=20.0)
    # the CLI names the member it used, and refuses a thickness outside the series
    from tdm_widgets.cli import main

    positions = str(ROOT / "tdm_widgets/data/lifepo4_positions.json")
    assert main(["apply", str(path), "--positions", positions, "--out",
                 str(tmp_path / "o")]) == 0
    assert "thickness 69.881 nm member" in capsys.readouterr().out.splitlines()[-1]
    assert "outside the series" in _cli_error(
        capsys, ["apply", str(BUNDLED), "--positions", positions, "--out",
                 str(tmp_path / "o2"), "--thickness", "1000"])


def test_cli_any_failure_is_one_line(monkeypatch, capsys):
    """An exception the CLI does not expect (a generator's subprocess failing) is still
    one line with its type, exit 1, no traceback; dataset names may follow options."""
    import subprocess

    from tdm_widgets import manifest
    from tdm_widgets.cli import main

    def fail(name, *a, **k):
        raise subprocess.CalledProcessError(1, ["tdm", "simulate", name])
    monkeypatch.setattr(manifest, "regenerate", fail)
    assert main(["data", "regenerate", "lifepo4_thickness"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tdm: error: CalledProcessError: "), err
    assert main(["data", "fetch", "--cache-dir", "/nonexistent-cache",
                 "lifepo4_positions"]) == 0   # in the package: no download
    assert "lifepo4_positions.json" in capsys.readouterr().out


def test_more_cli_errors_name_the_argument(tmp_path, capsys):
    """Each is one line naming what is wrong (they were a bare errno, a quoted key,
    numpy's message or an argparse complaint about a dataset name after an option)."""
    import json

    from merlin_writer import write_hdr, write_mib

    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.manifest import ROOT

    positions = ROOT / "tdm_widgets/data/lifepo4_positions.json"
    out = str(tmp_path / "out")
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert "--seed: must be a non-negative integer" in _cli_error(
        capsys, ["demo", "--seed", "-1"])
    assert f"--out {afile} is a file; give a folder" in _cli_error(
        capsys, ["demo", "--out", str(afile)])
    msg = _cli_error(capsys, ["apply", str(BUNDLED), "--positions", str(tmp_path),
                              "--out", out])
    assert f"positions file {tmp_path} is a folder" in msg
    doc = json.loads(positions.read_text())
    for change, expect in ((dict(lattice={"a": [1, 0]}), "lattice must hold 'origin'"),
                           (dict(columns={"Li": [], "O": []}), "no species holds a position")):
        bad = tmp_path / "bad_positions.json"
        bad.write_text(json.dumps(dict(doc, **change)))
        assert expect in _cli_error(capsys, ["apply", str(BUNDLED), "--positions", str(bad),
                                             "--out", out])
    assert "raw_dir nosuchdir is not a folder (it does not exist)" in _cli_error(
        capsys, ["pack", "nosuchdir", "--out", str(tmp_path / "x.hspy")])
    assert "not in the manifest: nosuch" in _cli_error(capsys, ["data", "verify", "nosuch"])
    assert "--descan" in _cli_error(capsys, ["apply", str(BUNDLED), "--positions",
                                             str(positions), "--out", out, "--descan"])
    mib = write_mib(tmp_path / "scan.mib", np.ones((2, 3, 8, 8), np.uint16), 12)
    hdr = write_hdr(tmp_path / "scan.hdr", 6, 12)
    assert "load scan.mib, its data" in _cli_error(
        capsys, ["apply", str(hdr), "--positions", str(positions), "--out", out])
    assert "navigation_shape is for files that store a flat list" in _cli_error(
        capsys, ["apply", str(BUNDLED), "--positions", str(positions), "--out", out,
                 "--navigation-shape", "34", "20"])
    assert mib.exists()


def test_api_values_are_checked_where_they_are_given(tmp_path, data4d, caplog):
    """Widths, centres, seeds, counts, zero masks and images, empty species, line scans
    and a partial last .mib frame: an error naming the argument (or a warning for the
    frame) where the value is given, never a zero image or NaN later."""
    import logging

    from merlin_writer import write_mib

    cols = {"A": [[1, 1], [4, 3]]}
    for kw, name in ((dict(sigma_px=-1), "sigma_px"), (dict(sigma_px=np.nan), "sigma_px"),
                     (dict(disc_px=np.inf), "disc_px")):
        with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
            tw.point_templates(cols, (6, 5), **kw)
    with pytest.raises(ValueError, match="columns is empty"):
        tw.point_templates({}, (6, 5))
    with pytest.raises(ValueError, match="center_px must be two finite numbers"):
        tw.from_array(data4d, mrad_per_px=1.0, center_px=(np.nan, 3))
    s = tw.from_array(data4d, scan_step_A=0.3)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tw.add_poisson_noise(s, 100, seed=-1)
    counts = tw.from_array(np.ones(data4d.shape, np.uint16), scan_step_A=0.3)
    with pytest.raises(ValueError, match="integer data .*counts already"):
        tw.add_poisson_noise(counts, 100)
    with pytest.raises(ValueError, match="mask is zero at every detector pixel"):
        tw.apply_mask(s, np.zeros(data4d.shape[2:]))
    two = np.stack([np.ones(data4d.shape[2:]), np.zeros(data4d.shape[2:])])
    with pytest.raises(ValueError, match="mask 1 of the stack is zero"):
        tw.apply_mask(s, two)
    with pytest.raises(ValueError, match=r"columns\['B'\] has no positions"):
        tw.specificity(np.random.default_rng(0).random((6, 5)), {"A": [[1, 1]],
                                                                "B": np.zeros((0, 2))})
    dark = np.array(data4d)
    dark[..., :, -3:] = 0                                 # a camera edge with no signal
    d = tw.from_array(dark, mrad_per_px=1.0, center_px=(0, 0))
    r = np.hypot(*np.indices(dark.shape[2:]))
    inner = float(np.ceil(r[:, :-3].max()))               # beyond every lit pixel
    with pytest.raises(ValueError, match="zero at every scan position"):
        tw.virtual_image(d, inner, 1e3)
    session = tw.TDMSession.from_columns(s, cols, show_progressbar=False)
    for bad, what in ((np.full(data4d.shape[:2], np.nan), "NaN or inf"),
                      (np.zeros(data4d.shape[:2]), "is constant")):
        with pytest.raises(ValueError, match=f"template 'x' .*{what}"):
            session.set_template("x", bad)
    assert session.names == ["A", "all"]                 # nothing was added
    # a line scan keeps its size-1 axis; a partial last frame is reported
    frames = np.arange(8 * 16 * 16, dtype=np.uint16).reshape(8, 1, 16, 16) % 4095
    mib = write_mib(tmp_path / "line.mib", frames, 12)
    for nav, shape in (((8, 1), (1, 8)), ((1, 8), (8, 1))):
        line = tw.load(mib, navigation_shape=nav)
        assert line.data.shape == shape + (16, 16)
        np.testing.assert_array_equal(np.asarray(line.data).reshape(8, 16, 16),
                                      frames[:, 0])
    with open(mib, "ab") as f:
        f.write(b"\0" * 100)
    with caplog.at_level(logging.WARNING, logger="tdm_widgets.io"):
        assert tw.load(mib, navigation_shape=(8, 1)).data.shape == (1, 8, 16, 16)
    assert "100 bytes of a partial frame" in caplog.text


def test_outputs_never_replace_inputs_or_the_users_positions(tmp_path, data4d):
    """``tdm demo`` refuses an output folder holding its input under a name it writes;
    ``TDMSession.save`` does not replace a positions file it did not write (the user's,
    with a lattice), but does replace its own; ``export_weighted_detector`` keeps a dot
    in its prefix and makes its folder."""
    import json

    from tdm_widgets.demo import BUNDLED, run_demo
    from tdm_widgets.simulate import select

    member = tmp_path / "tdm_images.hspy"
    select(tw.load(BUNDLED), thickness_nm=70).save(member)
    size = member.stat().st_size
    with pytest.raises(ValueError, match="would overwrite the input file"):
        run_demo(tmp_path, member)
    assert member.stat().st_size == size
    s = tw.from_array(data4d, scan_step_A=0.3, mrad_per_px=2.0)
    mine = tmp_path / "o" / "positions.json"
    mine.parent.mkdir()
    tw.save_positions(mine, {"A": [[1, 1]]}, tw.Lattice((0, 0), (4, 0), (0, 4)),
                      scan_shape=data4d.shape[:2], note="mine")
    session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
    with pytest.raises(ValueError, match="was not written by a session save"):
        session.save(mine.parent)
    assert json.loads(mine.read_text())["note"] == "mine"
    again = tmp_path / "again"
    session.save(again)
    session.save(again)                       # its own file is replaced
    stats = tw.column_stats(s, show_progressbar=False)
    det = tmp_path / "new" / "O_0-23.5mrad"
    tw.export_weighted_detector(np.ones(data4d.shape[2:]), stats, det)
    assert sorted(f.name for f in det.parent.iterdir()) == [
        "O_0-23.5mrad.json", "O_0-23.5mrad.npy", "O_0-23.5mrad.tif"]


def test_names_and_regions_that_cannot_work_are_named(data4d):
    """Template names empty or colliding with the combined one, an image asked for
    twice, one name as a string, a detector region over constant pixels only, negative
    intensities, a non-positive semi-angle, and small API arguments."""
    from tdm_widgets.cross_validation import thinned_folds
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import select

    s = tw.from_array(data4d, scan_step_A=0.3, mrad_per_px=2.0)
    cols = {"A": [[1, 1], [4, 3]]}
    session = tw.TDMSession.from_columns(s, cols, show_progressbar=False)
    with pytest.raises(ValueError, match="non-empty string; got ''"):
        session.set_template("", np.eye(*data4d.shape[:2]))
    with pytest.raises(ValueError, match="'all' is the name of the combined template"):
        tw.TDMSession.from_columns(s, {"all": [[1, 1]], "B": [[2, 2]]})
    with pytest.raises(ValueError, match="a species is named 'all', the name of the combined"):
        tw.point_templates({"all": [[1, 1]], "B": [[2, 2]]}, data4d.shape[:2])
    assert tw.point_templates({"all": [[1, 1]]}, data4d.shape[:2], combined=None)[1] == ["all"]
    with pytest.raises(ValueError, match=r"species \['Zn'\] not in columns"):
        tw.TDMSession.from_columns(s, cols, species=["Zn"])
    with pytest.raises(ValueError, match=r"image names must differ: \['A'\]"):
        session.images(virtual={"A": (0, 4)})
    np.testing.assert_array_equal(session.mask_array("A"), session.mask_array(["A"]))
    empty = np.zeros(data4d.shape[:2], bool)
    empty[-2:, -2:] = True                      # no column of A in it
    with pytest.raises(ValueError, match=r"template\(s\) \['A', 'all'\] are constant "
                                         "within the region"):
        session.set_region(empty)
    flat = np.array(data4d)
    flat[:, :, :3, :] = 5.0                    # rows of the detector constant over the scan
    region = np.zeros(data4d.shape[2:], bool)
    region[:3] = True
    dull = tw.TDMSession.from_columns(tw.from_array(flat), cols, show_progressbar=False)
    dull.set_detector_region(region)
    with pytest.raises(ValueError, match="detector_region holds no detector pixel that "
                                         "varies"):
        dull.masks()
    with pytest.raises(ValueError, match="intensities below zero"):
        tw.add_poisson_noise(tw.from_array(-np.abs(data4d) - 1, scan_step_A=0.4), 100)
    for bad in (-1.0, np.nan, 0.0):
        with pytest.raises(ValueError, match="semiangle_mrad must be a positive number"):
            tw.bf_disk(s, semiangle_mrad=bad)
    with pytest.raises(ValueError, match="scan_shape must be two positive integers"):
        tw.point_templates(cols, (8.5, 6))
    counts = np.ones((4, 4, 3, 3), np.uint16)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        thinned_folds(counts, seed=-1)
    for n in (-1, 10**6):
        with pytest.raises(ValueError, match="n must be an integer from 1 to the 30"):
            tw.random_positions_template(cols, (6, 5), n=n)
    series = tw.load(BUNDLED)
    assert select(series, thickness_nm="70").metadata.Simulation.selected_thickness_nm \
        == select(series, thickness_nm=70).metadata.Simulation.selected_thickness_nm
    with pytest.raises(ValueError, match="thickness_nm must be a number"):
        select(series, thickness_nm="thick")
