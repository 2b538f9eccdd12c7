"""Merlin 12-bit and 24-bit files (big-endian counts) through the whole public chain,
lazily, against a plain numpy read and a native-endian copy."""

import hashlib

import numpy as np
import pytest
from merlin_writer import frame_dtype, read_mib_plain, write_hdr, write_mib

import tdm_widgets as tw
from conftest import SHARED

MERLIN = SHARED / "data" / "merlin"
SCAN, DET = (8, 9), (24, 20)


def _counts(depth, seed=0):
    """Counts with a bright-field disc (centre (11.3, 9.6), radius 6 px) whose
    intensity follows two column types over the scan; 24-bit counts exceed 2**16."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(DET)
    disc = np.hypot(yy - 11.3, xx - 9.6) < 6.0
    sy, sx = np.indices(SCAN)
    a = ((sy % 4 == 1) & (sx % 3 == 1)).astype(float)
    b = ((sy % 4 == 3) & (sx % 3 == 2)).astype(float)
    ring = (np.hypot(yy - 11.3, xx - 9.6) > 7) & (np.hypot(yy - 11.3, xx - 9.6) < 9)
    lam = (200 * disc * (1 - 0.2 * a[..., None, None])
           + 30 * ring * (1 + b[..., None, None]) + 4.0)
    scale = {12: 1, 24: 3000}[depth]
    counts = rng.poisson(lam * scale)
    assert counts.max() < 2 ** depth
    return counts, np.stack([a, b])


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writer_follows_the_real_6bit_file_layout(tmp_path):
    """Frame headers of the writer have the real acquisition's fields in the same
    places (only the time stamp differs), and RosettaSciIO reads both the same way."""
    real = MERLIN / "001_4x2_6bit.mib"
    if not real.exists():
        pytest.skip("shared Merlin data not present")
    plain = read_mib_plain(real, (256, 256), 6)
    assert plain.shape == (8, 256, 256)
    data = plain[:, ::-1].reshape(2, 4, 256, 256)
    mine = write_mib(tmp_path / "copy.mib", data, 6, exposure_s=0.1)
    h_real = real.read_bytes()[:384].split(b",")
    h_mine = mine.read_bytes()[:384].split(b",")
    assert len(h_real) == len(h_mine)
    differ = [i for i, (a, b) in enumerate(zip(h_real, h_mine)) if a != b]
    assert set(differ) <= {9, len(h_real) - 4}  # the two time stamps
    s_real = tw.load(real, navigation_shape=(4, 2))
    s_mine = tw.load(mine)  # shape inferred from the .hdr and the fly-back
    np.testing.assert_array_equal(s_real.data, s_mine.data)


@pytest.mark.parametrize("depth,stored", [(12, ">u2"), (24, ">u4")])
@pytest.mark.parametrize("lazy", [False, True])
def test_12_and_24_bit_read_as_big_endian_equal_a_plain_read(tmp_path, depth, stored, lazy):
    counts, _ = _counts(depth)
    path = write_mib(tmp_path / f"scan{depth}.mib", counts, depth)
    assert path.stat().st_size == counts[..., 0, 0].size * frame_dtype(DET, depth).itemsize
    s = tw.load(path, lazy=lazy)
    assert s.data.dtype == np.dtype(stored)
    plain = read_mib_plain(path, DET, depth)
    assert plain.dtype == np.dtype(stored)
    # the Merlin stores rows bottom-up; RosettaSciIO flips them
    expected = plain[:, ::-1].reshape(SCAN + DET)
    np.testing.assert_array_equal(np.asarray(s.data), expected)
    np.testing.assert_array_equal(expected, counts)


@pytest.mark.parametrize("depth", [12, 24])
def test_whole_chain_lazily_equals_a_native_endian_copy(tmp_path, depth):
    """load -> bf_disk -> calibrate -> virtual images -> masks -> images ->
    cross-validated images, lazily from the big-endian file, equal the same chain on a
    native-endian in-memory copy; the file is never modified."""
    counts, templates = _counts(depth, seed=depth)
    path = write_mib(tmp_path / "scan.mib", counts, depth)
    before = _sha(path)
    outputs = []
    for s in (tw.load(path, lazy=True, scan_step_A=0.25),
              tw.from_array(counts.astype(counts.dtype.newbyteorder("=")).astype(
                  "<u4" if depth == 24 else "<u2"), scan_step_A=0.25)):
        disk = tw.bf_disk(s, semiangle_mrad=20.0)
        tw.calibrate_detector(s, disk)
        vbf = tw.virtual_image(s, 0, 15)
        vadf = tw.virtual_image(s, 22, 40)
        masks = tw.pcc_mask(s, templates, detector_region=(0, 40))
        images = tw.apply_mask(s, masks)
        norm = tw.apply_mask(s, masks, normalized=True)
        cv = tw.cross_validated_image(s, templates, split="dose", seed=3)
        cells = tw.cross_validated_image(s, templates, split="cells")
        outputs.append([disk.center_px + (disk.radius_px, disk.mrad_per_px)]
                       + [np.asarray(x.data.compute() if x._lazy else x.data)
                          for x in (vbf, vadf, masks, images, norm, cv, cells)])
    assert outputs[0][0] == pytest.approx(outputs[1][0], rel=1e-12)
    assert abs(outputs[0][0][0] - 11.3) < 0.3 and abs(outputs[0][0][2] - 6.0) < 0.3
    for lazy_out, native_out in zip(outputs[0][1:], outputs[1][1:]):
        np.testing.assert_allclose(lazy_out, native_out, rtol=1e-10, atol=1e-10)
    assert np.abs(outputs[0][1]).min() > 0  # the BF image has counts: the disc was found
    assert _sha(path) == before


def test_load_checks_the_navigation_shape_against_the_frames(tmp_path):
    counts, _ = _counts(12)
    path = write_mib(tmp_path / "scan.mib", counts, 12)
    # (scan_x, scan_y): frames per row first; the data comes back (scan_y, scan_x)
    assert tw.load(path, navigation_shape=(9, 8)).data.shape == SCAN + DET
    for wrong in [(9, 7), (10, 8), (256, 256)]:  # fewer or more frames than the file
        with pytest.raises(ValueError, match=r"navigation_shape=.*72 frames"):
            tw.load(path, navigation_shape=wrong, lazy=True)
    with pytest.raises(ValueError, match="navigation_shape must be two positive"):
        tw.load(path, navigation_shape=(9, 8.5))
    # no .hdr and no fly-back in the time stamps: the shape cannot be inferred
    flat = write_mib(tmp_path / "flat.mib", counts, 12, flyback_s=0.0, hdr=False)
    with pytest.raises(ValueError, match=r"cannot be inferred.*navigation_shape"):
        tw.load(flat)
    assert tw.load(flat, navigation_shape=(9, 8)).data.shape == SCAN + DET


def test_a_shape_guessed_without_hdr_is_warned(tmp_path, caplog):
    """The first scan row (4 frames) of the real 4 x 2 acquisition, no .hdr: the reader
    guesses a 2 x 2 scan; the load says the shape is a guess (it was silent)."""
    import logging

    from tdm_widgets.io import mib_frames

    real = MERLIN / "001_4x2_6bit.mib"
    if not real.exists():
        pytest.skip("shared Merlin data not present")
    n = mib_frames(real)[0]
    raw = real.read_bytes()
    row = tmp_path / "row.mib"
    row.write_bytes(raw[:4 * (len(raw) // n)])
    with caplog.at_level(logging.WARNING, logger="tdm_widgets.io"):
        assert tw.load(row).data.shape[:2] == (2, 2)
    assert "no .hdr beside it: the scan shape (2, 2)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tdm_widgets.io"):
        assert tw.load(row, navigation_shape=(4, 1)).data.shape[:2] == (1, 4)
    assert "no .hdr" not in caplog.text


def test_lazy_mib_has_whole_pattern_row_chunks_and_a_scan_step(tmp_path, monkeypatch):
    from tdm_widgets import io

    counts, _ = _counts(12)
    path = write_mib(tmp_path / "scan.mib", counts, 12)
    frame = DET[0] * DET[1] * 2
    monkeypatch.setattr(io, "MIB_CHUNK_BYTES", 3 * SCAN[1] * frame)  # three rows
    s = tw.load(path, lazy=True, scan_step_A=(0.2, 0.3))
    assert s.data.chunks[2:] == ((DET[0],), (DET[1],))
    assert s.data.chunks[:2] == ((3, 3, 2), (SCAN[1],))
    monkeypatch.setattr(io, "MIB_CHUNK_BYTES", 4 * frame)  # part of a row
    s2 = tw.load(path, lazy=True)
    assert s2.data.chunks[:2] == ((1,) * SCAN[0], (4, 4, 1))
    np.testing.assert_array_equal(s2.data.compute(), counts)
    ax = s.axes_manager.navigation_axes
    assert [(a.scale, a.units) for a in ax] == [(0.3, "Å"), (0.2, "Å")]
    with pytest.raises(ValueError, match="scan_step_A must be positive"):
        tw.load(path, scan_step_A=float("nan"))


def test_not_a_mib_file(tmp_path):
    bad = tmp_path / "bad.mib"
    bad.write_bytes(b"XYZ," * 200)
    with pytest.raises(ValueError, match="could not read .*Merlin"):
        tw.load(bad)
    write_hdr(tmp_path / "x.hdr", 1, 12)  # the .hdr alone is text
    assert "Counter Depth (number):\t12" in (tmp_path / "x.hdr").read_text()


def test_bad_pixels_of_the_real_6bit_file_saturated_not_stuck():
    """The real 6-bit acquisition: its bright-field disc sits at the counter's full well
    (63) at all 8 positions. Those pixels are reported as saturated, not stuck, and
    faint pixels that happen to read the same count at all 8 positions are not stuck
    either (Poisson counts do that by chance); nothing is called dead or hot."""
    real = MERLIN / "001_4x2_6bit.mib"
    if not real.exists():
        pytest.skip("shared Merlin data not present")
    s = tw.load(real, navigation_shape=(4, 2), lazy=True)
    frames = read_mib_plain(real, (256, 256), 6)
    constant = (frames == frames[0]).all(axis=0)[::-1]  # as loaded: rows flipped
    full = constant & (frames[0][::-1] == 63)
    assert full.sum() > 1000 and (constant & (frames[0][::-1] > 0) & ~full).any()
    bp = tw.find_bad_pixels(s, progress=False)
    np.testing.assert_array_equal(np.asarray(bp.report["pixels"]["saturated"]),
                                  np.argwhere(full))
    assert bp.report["counts"]["total"] == 0 and not bp.mask.any()


@pytest.mark.parametrize("depth", [12, 24])
@pytest.mark.parametrize("sample,det,centre", [("001_4x2_6bit", (256, 256), (111.7, 23.6)),
                                               ("002_4x2_6bit_roi128", (128, 256), (41.3, 24.9))])
def test_real_frames_written_at_12_and_24_bit_through_the_chain_lazily(
        tmp_path, depth, sample, det, centre):
    """The real 6-bit acquisitions (square and 256 x 128 detector) rewritten at 12 and
    24 bit (each count scaled full well to full well, so the high bytes are used):
    the file equals a plain numpy read, loads lazily as big-endian whole-pattern chunks
    with its shape from the .hdr, and bad pixels -> virtual images -> masks -> images ->
    cross-validated images equal the same chain on a native-endian copy. Its disc is cut
    by the detector's left edge: bf_disk refuses it on both (the calibration is then
    set from a known scale), see test_whole_chain_lazily_equals_a_native_endian_copy
    for bf_disk -> calibrate_detector on a 12/24-bit file."""
    real = MERLIN / f"{sample}.mib"
    if not real.exists():
        pytest.skip("shared Merlin data not present")
    six = read_mib_plain(real, det, 6)                    # (8, det) rows bottom-up
    scale = (2**depth - 1) // 63                          # 65 or 266305
    native = {12: "<u2", 24: "<u4"}[depth]
    counts = (six[:, ::-1].astype(np.uint64) * scale).reshape((2, 4) + det).astype(native)
    path = write_mib(tmp_path / f"real{depth}.mib", counts, depth, exposure_s=0.1)
    before = _sha(path)
    plain = read_mib_plain(path, det, depth)
    assert plain.dtype == np.dtype({12: ">u2", 24: ">u4"}[depth])
    assert plain.max() == 2**depth - 1
    np.testing.assert_array_equal(plain // scale, six)   # the real frames, as stored
    s = tw.load(path, lazy=True, scan_step_A=0.5)         # shape from the .hdr
    assert s.data.dtype == plain.dtype and s.data.shape == (2, 4) + det
    assert s.data.chunks[2:] == ((det[0],), (det[1],))
    np.testing.assert_array_equal(s.data.compute(), plain[:, ::-1].reshape(counts.shape))
    t = np.array([[[1, 0, 0, 1], [0, 1, 0, 0]], [[0, 0, 1, 0], [1, 0, 0, 1.0]]])
    outputs = []
    for sig in (s, tw.from_array(counts, scan_step_A=0.5)):
        with pytest.raises(ValueError, match="touches the edge"):
            tw.bf_disk(sig, semiangle_mrad=20.0, progress=False)
        for ax, c in zip(sig.axes_manager.signal_axes[::-1], centre):
            ax.scale, ax.offset, ax.units = 0.9, -c * 0.9, "mrad"  # a known calibration
        bp = tw.find_bad_pixels(sig, progress=False)
        tw.set_bad_pixels(sig, bp)
        vbf = tw.virtual_image(sig, 0, 20, progress=False)
        vadf = tw.virtual_image(sig, 30, 120, progress=False)
        masks = tw.pcc_mask(sig, t, detector_region=(0, 120), progress=False)
        images = tw.apply_mask(sig, masks, progress=False)
        norm = tw.apply_mask(sig, masks, normalized=True, progress=False)
        cv = tw.cross_validated_image(sig, t, split="dose", seed=1, progress=False)
        cells = tw.cross_validated_image(sig, t, split="cells", progress=False)
        outputs.append([bp.mask, bp.report["pixels"]["saturated"]]
                       + [np.asarray(x.data.compute() if x._lazy else x.data)
                          for x in (vbf, vadf, masks, images, norm, cv, cells)])
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    assert outputs[0][1] == outputs[1][1] and len(outputs[0][1]) > 100  # the saturated disc
    for lazy_out, native_out in zip(outputs[0][2:], outputs[1][2:]):
        np.testing.assert_allclose(lazy_out, native_out, rtol=1e-10, atol=1e-10)
    assert np.abs(outputs[0][2]).min() > 0 and np.abs(outputs[0][4]).max() > 0
    assert _sha(path) == before


def test_cli_apply_opens_a_12bit_mib(tmp_path, capsys):
    """`tdm apply` on a 12-bit .mib with --navigation-shape and --scan-step: masks,
    images (scan in angstrom) and the cross-validated table; the file is unchanged; an
    annulus in mrad on the uncalibrated detector is a one-line error, exit code 2."""
    import hyperspy.api as hs

    from tdm_widgets.cli import main

    counts, _ = _counts(12, seed=4)
    path = write_mib(tmp_path / "scan.mib", counts, 12, flyback_s=0.0, hdr=False)
    before = _sha(path)
    pos = tmp_path / "positions.json"
    tw.save_positions(pos, {"A": [[1, 1], [5, 4], [1, 7]], "B": [[3, 2], [7, 5]]},
                      scan_shape=SCAN)
    out = tmp_path / "out"
    argv = ["apply", str(path), "--positions", str(pos), "--out", str(out),
            "--navigation-shape", str(SCAN[1]), str(SCAN[0]), "--scan-step", "0.25",
            "--split", "dose", "--lazy"]
    assert main(argv) == 0
    images = hs.load(out / "images.hspy")
    assert images.data.shape == (3,) + SCAN  # A, B, all
    assert [(a.scale, a.units) for a in images.axes_manager.signal_axes] == [(0.25, "Å")] * 2
    table = (out / "specificity.txt").read_text()
    assert "A cross-validated" in table
    # one null per number of columns (A 3, B 2), as rows and as columns of the table
    assert all(row in table for row in ("null 2 cross-validated", "null 3 same-data"))
    assert table.splitlines()[0].split()[-4:] == ["null", "2", "null", "3"]
    assert _sha(path) == before
    capsys.readouterr()
    try:
        code = main(argv[:-3] + ["--detector-region", "0", "20"])
    except SystemExit as exit_:
        code = exit_.code
    err = [e for e in capsys.readouterr().err.strip().splitlines() if "WARNING" not in e]
    assert code == 2 and len(err) == 1 and err[0].startswith("tdm: error: "), err
    assert "detector is in px: add --semiangle MRAD" in err[0]


def test_an_interrupted_acquisition_reads_its_whole_rows_with_last_frame(tmp_path):
    """A scan stopped part-way (the .hdr announces every frame, the file holds 5 rows
    and 4 frames, plus a partial frame): the load names the whole rows and reads them
    with last_frame (it refused every shape, and suggested one whose product is the
    frame count, which scrambles the rows)."""
    counts, _ = _counts(12)
    path = write_mib(tmp_path / "cut.mib", counts, 12)
    frame = frame_dtype(DET, 12).itemsize
    raw = path.read_bytes()
    path.write_bytes(raw[:(5 * SCAN[1] + 4) * frame + 100])
    before = _sha(path)
    with pytest.raises(ValueError, match=r"5 whole rows of 9 .*navigation_shape=\(9, 5\), "
                                         r"last_frame=45"):
        tw.load(path)
    with pytest.raises(ValueError, match=r"navigation_shape=\(9, 5\), last_frame=45"):
        tw.load(path, navigation_shape=(9, 8))
    for lazy in (False, True):
        s = tw.load(path, navigation_shape=(9, 5), last_frame=45, lazy=lazy)
        np.testing.assert_array_equal(np.asarray(s.data), counts[:5])
    s = tw.load(path, navigation_shape=(9, 2), first_frame=18, last_frame=36)
    np.testing.assert_array_equal(s.data, counts[2:4])
    with pytest.raises(ValueError,
                       match=r"holds 9 frames but cut.mib holds 49 .*18 of them in first_frame=18"):
        tw.load(path, navigation_shape=(9, 1), first_frame=18, last_frame=36)
    assert _sha(path) == before


def test_gaussian_templates_of_a_camera_file_do_not_wrap_across_the_scan(tmp_path):
    """``tdm apply --sigma`` on a Merlin file: a column on the top row puts no template
    weight on the bottom row (the templates wrapped periodically, as for a simulated
    unit cell, so masks correlated with positions at the opposite edges); the masks
    are the Pearson correlation with the unwrapped Gaussians, computed here by numpy."""
    import json

    import hyperspy.api as hs

    from tdm_widgets.cli import main

    counts, _ = _counts(12)
    path = write_mib(tmp_path / "scan.mib", counts, 12)
    cols = {"A": [[0.0, 1.0], [4.0, 5.0]]}
    top = {"A": cols["A"][:1]}
    g, _ = tw.point_templates(top, SCAN, sigma_px=1.5, combined=None, periodic=False)
    assert g[0, -1].max() < 1e-3  # nothing on the far row
    wrapped, _ = tw.point_templates(top, SCAN, sigma_px=1.5, combined=None)
    assert wrapped[0, -1].max() > 0.6  # the periodic default, for a simulated cell
    g, _ = tw.point_templates(cols, SCAN, sigma_px=1.5, combined=None, periodic=False)
    tw.save_positions(tmp_path / "pos.json", cols, scan_shape=SCAN)
    out = tmp_path / "out"
    assert main(["apply", str(path), "--positions", str(tmp_path / "pos.json"), "--out",
                 str(out), "--sigma", "1.5"]) == 0
    assert json.loads((out / "parameters.json").read_text())["periodic_templates"] is False
    d = counts.reshape(-1, DET[0] * DET[1]).astype(float)
    t = g[0].ravel() - g[0].mean()
    dc = d - d.mean(0)
    ref = (t @ dc) / np.sqrt((t ** 2).sum() * (dc ** 2).sum(0))
    np.testing.assert_allclose(hs.load(out / "masks.hspy").data[0].ravel(), ref, atol=1e-12)


def test_cli_reads_the_whole_rows_of_an_interrupted_scan_without_its_flyback(tmp_path):
    """``tdm apply --last-frame 45 --flyback 1`` on a scan stopped after 5 of 8 rows
    (plus a partial frame) whose first column is the flyback: the masks are the Pearson
    correlation over the 5 x 8 scan that is left, computed here by numpy, with the
    positions given on that scan; the file is unchanged and a --last-frame on another
    format is one line naming it."""
    import hyperspy.api as hs

    from tdm_widgets.cli import main

    counts, _ = _counts(12)
    path = write_mib(tmp_path / "cut.mib", counts, 12)
    frame = frame_dtype(DET, 12).itemsize
    path.write_bytes(path.read_bytes()[:(5 * SCAN[1] + 4) * frame + 100])
    before = _sha(path)
    cols = {"A": [[1.0, 2.0], [3.0, 5.0]]}  # on the scan without its flyback column
    tw.save_positions(tmp_path / "pos.json", cols, scan_shape=(5, 8))
    out = tmp_path / "out"
    assert main(["apply", str(path), "--positions", str(tmp_path / "pos.json"), "--out",
                 str(out), "--navigation-shape", "9", "5", "--last-frame", "45",
                 "--flyback", "1"]) == 0
    kept = counts[:5, 1:].reshape(-1, DET[0] * DET[1]).astype(float)
    t = np.zeros((5, 8))
    t[1, 2] = t[3, 5] = 1
    tc, dc = t.ravel() - t.mean(), kept - kept.mean(0)
    ref = (tc @ dc) / np.sqrt((tc ** 2).sum() * (dc ** 2).sum(0))
    masks = hs.load(out / "masks.hspy")
    np.testing.assert_allclose(masks.data[0].ravel(), ref, atol=1e-12)
    assert _sha(path) == before
    np.save(tmp_path / "a.npy", counts)
    assert main(["apply", str(tmp_path / "a.npy"), "--positions", str(tmp_path / "pos.json"),
                 "--out", str(tmp_path / "o2"), "--last-frame", "45"]) == 2
