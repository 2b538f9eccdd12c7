"""Headless widget tests: drive each panel's API and check that what is shown equals
what the public functions return for the same input."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.widgets import MaskViewer, MatrixView, TemplatePainter


@pytest.fixture(scope="module")
def sim():
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    return select(series, thickness_nm=70), columns_of(series)


def test_painter_clicks_snap_replicate_and_file(tmp_path):
    img = np.zeros((12, 16))
    img[4, 5] = 9.0
    p = TemplatePainter(img, species=("A", "B"), snap_px=1)
    assert p.click(5, 6) == "added"              # snapped to the maximum at (4, 5)
    np.testing.assert_array_equal(p.columns["A"], [[4, 5]])
    assert p.click(4, 5) == "removed"
    p.snap_px = 0
    p._on_hit(p._hit, {"data": {"index": 2 * 16 + 3}})  # the browser's click message
    np.testing.assert_array_equal(p.columns["A"], [[2, 3]])
    p.species_picker.value = "B"
    p.click(3, 7)
    t, names = p.templates(combined=None)
    ref, _ = tw.point_templates({"A": [[2, 3]], "B": [[3, 7]]}, (12, 16), combined=None)
    np.testing.assert_array_equal(t, ref)
    assert list(p._points["A"].x) == [3.5] and list(p._points["A"].y) == [2.5]
    p.set_lattice((0, 0), (0, 8), (6, 0))
    p.replicate()
    assert len(p.columns["A"]) == 4 and len(p.columns["B"]) == 4
    p.save(tmp_path / "pos.json")
    q = TemplatePainter(img, species=("A", "B"))
    q.load(tmp_path / "pos.json")
    np.testing.assert_array_equal(q.columns["B"], p.columns["B"])
    p.set_region(0, 6, 0, 8)
    assert p.region.sum() == 48
    # the same through clicks in the lattice and region modes
    p.mode.value = "lattice"
    for yx in ((0, 0), (0, 8), (6, 0)):
        p.press(*yx)
    np.testing.assert_array_equal(p.lattice.b, [6, 0])
    p.mode.value = "region"
    p.press(2, 3)
    p.press(4, 6)
    assert p.region.sum() == 3 * 4 and p.region[2:5, 3:7].all()


def test_mask_viewer_shows_what_it_is_given_and_draws_the_bf_circle(sim):
    s, _ = sim
    from tdm_widgets.signals import unwrap

    _, cal, _ = unwrap(s)
    v = MaskViewer(s.data.shape[2:], s.data.shape[:2], cal, (23.5,))
    m = np.random.default_rng(0).standard_normal(s.data.shape[2:])
    img = np.random.default_rng(1).random(s.data.shape[:2])
    v.show(m, img)
    np.testing.assert_array_equal(v.mask_mark.color, m)
    np.testing.assert_array_equal(v.image_mark.color, img)
    assert v._ms["color"].mid == 0 and v._ms["color"].min == -np.abs(m).max()
    # the outline goes back to 23.5 mrad through the calibration
    line = v.outlines[0]
    ky = cal.det_offset[0] + (np.asarray(line.y) - 0.5) * cal.det_scale[0]
    kx = cal.det_offset[1] + (np.asarray(line.x) - 0.5) * cal.det_scale[1]
    np.testing.assert_allclose(np.hypot(ky, kx), 23.5)


def test_explorer_matches_public_functions(sim, tmp_path):
    s, cols = sim
    start = {k: cols[k] for k in ("Li", "O")}
    ex = tw.explore(s, start, debounce_s=0)
    ex.painter.click(5, 5, "Fe")
    t, names = ex.painter.templates()
    masks = tw.pcc_mask(s, t, detector_region=(0, 23.5)).data
    np.testing.assert_allclose(ex.masks, masks, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.images, tw.apply_mask(s, masks).data, rtol=1e-9)
    np.testing.assert_allclose(ex.viewers["Li"].mask_mark.color, masks[names.index("Li")])
    ex.normalization.value = "pcc_over_mean"
    ex.application.value = True
    ex.detector.value = "all"
    m7 = tw.pcc_mask(s, t, normalization="pcc_over_mean").data
    np.testing.assert_allclose(ex.masks, m7, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.images, tw.apply_mask(s, m7, normalized=True).data,
                               rtol=1e-8, atol=1e-8)
    assert ex.specificity["Li"]["Li"] == pytest.approx(tw.specificity(ex.images[0], {
        k: v for k, v in ex.painter.columns.items() if len(v)})["Li"])
    # counts are needed to cross-validate: the switch refuses noise-free data
    ex.cross_validate.value = True
    assert not ex.cross_validate.value and "counts" in ex.notice.value
    out = ex.save(tmp_path / "res")
    for f in ("masks.hspy", "images.hspy", "templates.npy", "positions.json",
              "parameters.json", "specificity.json"):
        assert (out / f).exists()


def test_rapid_clicks_are_debounced_into_one_background_update(sim):
    s, cols = sim
    ex = tw.explore(s, {"Li": cols["Li"]}, debounce_s=0.3)
    n0 = ex.n_updates
    for x in (3, 9, 15):
        ex.painter.click(12, x, "O")
    ex.wait()
    assert ex.n_updates == n0 + 1
    assert len(ex.painter.columns["O"]) == 3


def test_explorer_on_lazy_data_equals_eager(sim):
    s, cols = sim
    lazy = tw.from_array(da.from_array(np.asarray(s.data), chunks=(5, 34, 64, 64)),
                         scan_step_A=0.3, mrad_per_px=2.0)
    eager = tw.from_array(np.asarray(s.data), scan_step_A=0.3, mrad_per_px=2.0)
    a = tw.explore(lazy, {"Li": cols["Li"], "O": cols["O"]}, debounce_s=0)
    b = tw.explore(eager, {"Li": cols["Li"], "O": cols["O"]}, debounce_s=0)
    np.testing.assert_allclose(a.images, b.images, rtol=1e-9)
    a.painter.click(7, 7, "O")
    b.painter.click(7, 7, "O")
    np.testing.assert_allclose(a.masks, b.masks, rtol=1e-9, atol=1e-12)


def test_radial_scatter_selection_becomes_a_mask(sim):
    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, debounce_s=0)
    sc = ex.radial_scatter("O")
    np.testing.assert_allclose(sc.correlation.y, ex.masks[0].ravel())
    pix = sc.select(5.0, 12.0)
    r = sc.radius.reshape(s.data.shape[2:])[pix[:, 0], pix[:, 1]]
    assert np.all((r >= 5) & (r < 12)) and len(pix) > 0
    m = sc.to_mask()
    assert np.count_nonzero(m[(sc.radius.reshape(m.shape) < 5)]) == 0
    assert len(ex.viewers["O"].highlight.x) == len(pix)


def test_matrix_view_readout(sim):
    s, _ = sim
    dm = tw.data_matrix(s)
    mv = MatrixView(dm, s.data.shape[:2], s.data.shape[2:], max_cells=2000)
    by, bx = mv.bin
    info = mv.readout(3, 10)
    sy, sx = info["scan_yx"]
    dy, dx = info["detector_yx"]
    block = dm.matrix[3 * by:4 * by, 10 * bx:11 * bx]
    assert info["value"] == pytest.approx(float(block.mean()), rel=1e-5)
    assert dm.row_order[3 * by] == sy * s.data.shape[1] + sx
    assert dm.col_order[10 * bx] == dy * s.data.shape[3] + dx
    # the scan pixel and detector pixel read out hold that value of the data
    raw = np.asarray(s.data, float)[sy, sx, dy, dx]
    assert (raw - tw.column_stats(s).mean[dy, dx]) / tw.column_stats(s).std[dy, dx] == \
        pytest.approx(float(dm.matrix[3 * by, 10 * bx]), rel=1e-3, abs=1e-3)
