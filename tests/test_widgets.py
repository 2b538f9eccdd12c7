"""Headless widget tests: drive each panel's API and check that what is shown equals
what the public functions return for the same input."""

import hashlib

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
    p.click(5, 6)
    # a click beside a column that snaps onto it adds nothing (it stacked a second one)
    with pytest.raises(ValueError, match=r"snaps to \(4, 5\), where a A column already is"):
        p.click(5, 5)
    np.testing.assert_array_equal(p.columns["A"], [[4, 5]])
    p.remove("A", 0)
    p.snap_px = 0
    assert p.snap.value == 0                     # the snap radius is a visible control
    # the browser's messages: a click on the image reports data coordinates (pixel
    # edges), a click on a marker its index
    p._on_image({"data": {"click_x": 3.7, "click_y": 2.2}})
    np.testing.assert_array_equal(p.columns["A"], [[2, 3]])
    p._on_image({"data": {"click_x": 9.1, "click_y": 7.9}})
    assert list(p._points["A"].x) == [3.5, 9.5] and list(p._points["A"].y) == [2.5, 7.5]
    p._on_marker("A", {"data": {"index": 0}})  # the marker's click removes it
    np.testing.assert_array_equal(p.columns["A"], [[7, 9]])
    p.undo()
    np.testing.assert_array_equal(p.columns["A"], [[2, 3], [7, 9]])
    assert "undone (A 1 -> 2); 6 more to undo" in p.message.value
    p.undo()                                     # a second undo says something new
    assert "undone (A 2 -> 1); 5 more to undo" in p.message.value
    p.click(7, 9)
    p.remove("A", 1)
    p.species_picker.value = "B"
    p.click(3, 7)
    t, _ = p.templates(combined=None)
    ref, _ = tw.point_templates({"A": [[2, 3]], "B": [[3, 7]]}, (12, 16), combined=None)
    np.testing.assert_array_equal(t, ref)
    # replicate before a lattice: the error is shown in the widget
    p._guarded(p.replicate)
    assert "no lattice yet" in p.message.value and "error" in p.message.value
    p.set_lattice((0, 0), (0, 8), (6, 0))
    vx, vy = np.asarray(p.lattice_vectors.x), np.asarray(p.lattice_vectors.y)
    np.testing.assert_array_equal(vx[:, 1] - vx[:, 0], [8, 0])   # a along x, b along y
    np.testing.assert_array_equal(vy[:, 1] - vy[:, 0], [0, 6])
    assert len(p.lattice_lines.x) > 4                               # replicated cells
    p.replicate()
    assert len(p.columns["A"]) == 4 and len(p.columns["B"]) == 4
    p.save(tmp_path / "pos.json")
    assert "exported 8 columns" in p.message.value
    q = TemplatePainter(img, species=("A", "B"))
    q.load(tmp_path / "pos.json")
    np.testing.assert_array_equal(q.columns["B"], p.columns["B"])
    assert "imported 8 columns" in q.message.value
    # a species layer with no columns exported and imported back (it was refused)
    r = TemplatePainter(img, species=("A", "B", "C"))
    r.click(2, 3, "A")
    r.save(tmp_path / "one.json")
    r.load(tmp_path / "one.json")
    assert "imported 1 columns" in r.message.value and len(r.columns["C"]) == 0
    # species the painter does not have: refused, nothing imported (they could not be
    # seen or removed, and undo left them in the results)
    with pytest.raises(ValueError, match=r"species \['C'\] that this painter does not have"):
        q.load(tmp_path / "one.json")
    np.testing.assert_array_equal(q.columns["B"], p.columns["B"])
    # an error stays until the next action, which clears it
    r._guarded(lambda: r.load(tmp_path / "missing.json"))
    assert "tdm-error" in r.message.value
    r._on_image({"data": {"click_x": 5.5, "click_y": 6.5}})
    assert "tdm-error" not in r.message.value and len(r.columns["A"]) == 2
    p.set_region(0, 6, 0, 8)
    assert p.region.sum() == 48
    # lattice corners through clicks, also on a marker (the marker's position counts)
    p.mode.value = "lattice"
    origin = p.columns["A"][0].copy()
    p._on_marker("A", {"data": {"index": 0}})
    for yx in ((0, 8), (6, 0)):
        p.press(*yx)
    np.testing.assert_array_equal(p.lattice.origin, origin)
    np.testing.assert_array_equal(p.lattice.b, np.array([6, 0]) - origin)
    assert len(p.columns["A"]) == 4            # a lattice click edits no column
    # region: a drag (brush) draws the rectangle, "clear region" removes it
    p.mode.value = "region"
    assert p.panel.fig.interaction is p.brush
    p.brush.selected_x, p.brush.selected_y = [3.2, 6.8], [2.1, 4.9]
    p.brush.brushing = True
    p.brush.brushing = False
    assert p.region.sum() == 3 * 4 and p.region[2:5, 3:7].all()
    assert list(p.region_lines.x) == [3, 7, 7, 3, 3] and list(p.region_lines.y) == [2, 2, 5, 5, 2]
    p.clear_region()
    assert p.region is None and len(p.region_lines.x) == 0


def test_colorize_and_png_against_numpy():
    from io import BytesIO

    from PIL import Image

    from tdm_widgets.widgets.raster import colorize, nice_length, png_bytes

    a = np.array([[-2.0, 0.0, 1.0], [2.0, np.nan, -1.0]])
    rgba, lo, hi = colorize(a, diverging=True)
    assert (lo, hi) == (-2.0, 2.0)
    np.testing.assert_array_equal(rgba[0, 0, :3], [0x2b, 0x6c, 0xb0])   # most negative: blue
    np.testing.assert_array_equal(rgba[1, 0, :3], [0xed, 0x89, 0x36])   # most positive: orange
    np.testing.assert_array_equal(rgba[0, 1, :3], [255, 255, 255])      # zero: white
    assert rgba[1, 1, 3] == 0                                           # NaN: transparent
    g = np.arange(100.0).reshape(10, 10)
    grey, lo, hi = colorize(g, clip_percent=(10, 90), gamma=0.5)
    ref = np.clip((g - np.percentile(g, 10)) / (np.percentile(g, 90) - np.percentile(g, 10)),
                  0, 1) ** 0.5
    np.testing.assert_array_equal(grey[..., 0], np.round(ref * 255))
    back = np.asarray(Image.open(BytesIO(png_bytes(grey))))
    np.testing.assert_array_equal(back, grey)
    with pytest.raises(ValueError, match="gamma"):
        colorize(g, gamma=0)
    with pytest.raises(ValueError, match="clip_percent"):
        colorize(g, clip_percent=(50, 10))
    assert [nice_length(x) for x in (34.0, 0.9, 100.0)] == [5.0, 0.2, 20.0]


def test_mask_viewer_shows_what_it_is_given_and_draws_the_bf_circle(sim):
    from io import BytesIO

    from PIL import Image

    from tdm_widgets.signals import unwrap
    from tdm_widgets.widgets.raster import colorize

    s, _ = sim
    _, cal, _ = unwrap(s)
    from tdm_widgets.imaging import detector_annulus

    det = detector_annulus(cal, s.data.shape[2:], 0, 23.5)
    v = MaskViewer(s.data.shape[:2], s.data.shape[2:], cal, (23.5,), det_region=det)
    m = np.random.default_rng(0).standard_normal(s.data.shape[2:])
    img = np.random.default_rng(1).random(s.data.shape[:2])
    v.show(m, img)
    # cropped to the BF disc (plus a 2-pixel margin) and drawn as one PNG
    ys, xs = np.nonzero(det)
    y0, y1, x0, x1 = v.mask_panel.crop
    assert (y0, x0) == (ys.min() - 2, xs.min() - 2) and (y1, x1) == (ys.max() + 3, xs.max() + 3)
    shown = np.asarray(Image.open(BytesIO(v.mask_panel.png.value)))
    np.testing.assert_array_equal(shown, colorize(m[y0:y1, x0:x1], diverging=True)[0])
    v0 = np.abs(m[y0:y1, x0:x1]).max()
    assert v.mask_panel.vrange == (-v0, v0) and "+0" in v.mask_panel.colorbar.value
    np.testing.assert_array_equal(v.image, img)
    # bqplot redraws an Image mark when its image widget is replaced (not when the
    # widget's bytes change): every new picture must swap the widget
    before = v.mask_panel.mark.image
    v.show(-m, img)
    assert v.mask_panel.mark.image is not before
    shown = np.asarray(Image.open(BytesIO(v.mask_panel.mark.image.value)))
    np.testing.assert_array_equal(shown, colorize(-m[y0:y1, x0:x1], diverging=True)[0])
    # square pixels: figure size follows the crop
    w = int(v.mask_panel.fig.layout.width[:-2]) - 4
    h = int(v.mask_panel.fig.layout.height[:-2]) - 4
    assert abs(w / (x1 - x0) - h / (y1 - y0)) < 1.0
    # scale bars in mrad and angstrom
    assert v.mask_panel.bar_label.text[0].endswith("mrad")
    assert v.image_panel.bar_label.text[0].endswith("Å")
    # the outline goes back to 23.5 mrad through the calibration
    line = v.outlines[0]
    ky = cal.det_offset[0] + (np.asarray(line.y) - 0.5) * cal.det_scale[0]
    kx = cal.det_offset[1] + (np.asarray(line.x) - 0.5) * cal.det_scale[1]
    np.testing.assert_allclose(np.hypot(ky, kx), 23.5)


def test_explorer_matches_public_functions(sim, tmp_path):
    s, cols = sim
    start = {k: cols[k] for k in ("Li", "O")}
    ex = tw.explore(s, start, background=False)
    ex.painter.click(5, 5, "Fe")
    t, names = ex.painter.templates()
    masks = tw.pcc_mask(s, t, detector_region=(0, 23.5)).data
    np.testing.assert_allclose(ex.masks, masks, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.images, tw.apply_mask(s, masks).data, rtol=1e-9)
    np.testing.assert_allclose(ex.viewers["Li"].mask, masks[names.index("Li")])
    ex.normalization.value = "pcc_over_mean"
    ex.normalized.value = True
    ex.detector.value = "all"
    m7 = tw.pcc_mask(s, t, normalization="pcc_over_mean").data
    np.testing.assert_allclose(ex.masks, m7, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.images, tw.apply_mask(s, m7, normalized=True).data,
                               rtol=1e-8, atol=1e-8)
    assert ex.specificity["Li"]["Li"] == pytest.approx(tw.specificity(ex.images[0], {
        k: v for k, v in ex.painter.columns.items() if len(v)})["Li"])
    # counts are needed for a dose split: the error is shown, the choice stays
    ex.cross_validate.value = "dose"
    assert ex.cross_validate.value == "dose" and "integer counts" in ex.notice.value
    assert ex.status.value.startswith("error") and ex.busy.value == ""
    ex.cross_validate.value = "cells"
    cv = tw.cross_validated_image(s, t, split="cells", normalization="pcc_over_mean",
                                  normalized=True)
    np.testing.assert_allclose(ex.images, cv.data, rtol=1e-8, atol=1e-8)
    assert ex.notice.value == "" and "cells split" in ex.table.value


def test_explorer_shows_errors_and_keeps_working(sim):
    s, cols = sim
    # dark-subtracted data: Eq 7 divides by non-positive means
    a = np.asarray(s.data, float)
    dark = tw.from_array(a - a.mean(axis=(0, 1)), scan_step_A=0.3, mrad_per_px=2.0)
    ex = tw.explore(dark, {"O": cols["O"]}, background=False)
    ex.normalization.value = "pcc_over_mean"
    assert "ValueError" in ex.notice.value and ex.status.value.startswith("error")
    assert ex.busy.value == ""
    ex.normalization.value = "pcc"                 # back to a valid setting: it recovers
    assert ex.notice.value == "" and ex.status.value.startswith("update")


def test_busy_line_shows_for_a_slow_update_and_goes(sim):
    import time

    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, background=False)
    seen = []
    ex.busy.observe(lambda ch: seen.append(ch["new"]), "value")
    fast = ex.compute

    def slow(names, whole_detector=False):
        time.sleep(0.5)
        return fast(names, whole_detector)

    ex.compute = slow
    ex.painter.click(3, 3, "O")
    assert any("computing" in v for v in seen) and ex.busy.value == ""


def test_save_right_after_a_click_is_calibrated_named_and_consistent(sim, tmp_path):
    import hyperspy.api as hs

    s, cols = sim
    ex = tw.explore(s, {"Li": cols["Li"], "O": cols["O"]}, debounce_s=5.0)
    ex.painter.click(7, 7, "O")                     # pending for 5 s
    out = ex.save(tmp_path / "res")
    t, names = ex.painter.templates()
    m = hs.load(out / "masks.hspy")
    im = hs.load(out / "images.hspy")
    np.testing.assert_allclose(m.data, tw.pcc_mask(s, t, detector_region=(0, 23.5)).data,
                               rtol=1e-9, atol=1e-12)
    rec = m.metadata.TDM.parameters.template  # provenance: shape and checksum
    assert list(rec["shape"]) == list(t.shape)
    assert rec["sha256"] == hashlib.sha256(np.ascontiguousarray(t, float).tobytes()).hexdigest()
    assert list(m.metadata.TDM.parameters.names) == names == ["Li", "O", "all"]
    ky = m.axes_manager.signal_axes[1]
    assert ky.units == "mrad" and ky.scale == s.axes_manager.signal_axes[1].scale
    assert im.axes_manager.signal_axes[0].units == s.axes_manager.navigation_axes[0].units
    assert im.axes_manager.signal_axes[0].scale == s.axes_manager.navigation_axes[0].scale
    assert m.axes_manager.navigation_axes[0].name == "species"
    text = (out / "positions.json").read_text()
    assert "9999" not in text and "0000000" not in text
    for f in ("templates.npy", "parameters.json", "specificity.json"):
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
    # no debounce: the first click starts at once, the clicks made meanwhile merge
    ex.debounce_s = 0.0
    n0 = ex.n_updates
    for x in range(20, 30):
        ex.painter.click(3, x, "O")
    ex.wait()
    assert n0 + 1 <= ex.n_updates <= n0 + 10
    t, _ = ex.painter.templates()
    np.testing.assert_allclose(ex.masks, tw.pcc_mask(s, t, detector_region=(0, 23.5)).data,
                               rtol=1e-9, atol=1e-12)


def test_explorer_on_lazy_data_equals_eager(sim):
    s, cols = sim
    cal = dict(scan_step_A=0.3, mrad_per_px=s.axes_manager.signal_axes[0].scale)
    lazy = tw.from_array(da.from_array(np.asarray(s.data), chunks=(5, 34, 72, 72)), **cal)
    eager = tw.from_array(np.asarray(s.data), **cal)
    a = tw.explore(lazy, {"Li": cols["Li"], "O": cols["O"]}, background=False)
    b = tw.explore(eager, {"Li": cols["Li"], "O": cols["O"]}, background=False)
    np.testing.assert_allclose(a.images, b.images, rtol=1e-9)
    a.painter.click(7, 7, "O")
    b.painter.click(7, 7, "O")
    np.testing.assert_allclose(a.masks, b.masks, rtol=1e-9, atol=1e-12)


def test_radial_scatter_is_whole_detector_and_selection_becomes_a_mask(sim):
    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, background=False)
    sc = ex.radial_scatter("O")
    t, _ = ex.painter.templates()
    whole = tw.pcc_mask(s, t).data[0]              # no detector region, as Fig 2d
    np.testing.assert_allclose(sc.correlation.y, whole.ravel(), rtol=1e-9, atol=1e-12)
    assert np.count_nonzero(whole[sc.radius.reshape(whole.shape) > 30]) > 0
    assert sc.fig.title.startswith("O:") and "PCC with the O template" in sc.legend.value
    assert sc.intensity.scales["y"].min >= 0.5 * sc.mean[sc.mean > 0].min()   # no 1e-10 floor
    # the points are bitmaps (no SVG element per point): the PCC picture is the
    # rasterised scatter of (angle, PCC) within the axes' limits
    from io import BytesIO

    import bqplot as bq
    from PIL import Image

    from tdm_widgets.widgets.scatter import scatter_rgba

    assert all(isinstance(m, bq.Image) for m in sc.fig.marks)
    shown = np.asarray(Image.open(BytesIO(sc.correlation.mark.image.value)))
    ys = sc.correlation.scales["y"]
    ref = scatter_rgba(sc.radius, whole.ravel(), (0.0, sc.correlation.scales["x"].max),
                       (ys.min, ys.max), sc.correlation.shape, "#d62728")
    np.testing.assert_array_equal(shown, ref)
    assert ys.max == pytest.approx(min(1.0, 1.1 * np.abs(whole).max()))
    pix = sc.select(5.0, 12.0)
    r = sc.radius.reshape(s.data.shape[2:])[pix[:, 0], pix[:, 1]]
    assert np.all((r >= 5) & (r < 12)) and len(pix) > 0
    m = sc.to_mask()
    assert np.count_nonzero(m[(sc.radius.reshape(m.shape) < 5)]) == 0
    np.testing.assert_array_equal(ex.viewers["O"].highlighted, pix)
    # the mask panels are rebuilt (a new species, another detector): brushing still
    # highlights, in the O panel now shown (it went to the replaced one)
    old = ex.viewers["O"]
    ex.painter.click(*np.rint(cols["Li"][0]).astype(int), "Li")
    ex.detector.value = "all"
    ex.flush()
    assert ex.viewers["O"] is not old and sc.viewer is ex.viewers["O"]
    np.testing.assert_array_equal(ex.viewers["O"].highlighted, pix)  # the band, kept
    pix = sc.select(20.0, 30.0)
    np.testing.assert_array_equal(ex.viewers["O"].highlighted, pix)
    # the scatter follows the O template and the equation (it kept the first ones)
    ex.painter.remove("O", 0)
    ex.normalization.value = "pcc_over_mean"
    ex.flush()
    t, names = ex.painter.templates()
    now = tw.pcc_mask(s, t[names.index("O")], normalization="pcc_over_mean").data
    np.testing.assert_allclose(sc.correlation.y, now.ravel(), rtol=1e-9, atol=1e-12)
    # no O columns left: no O panel, and the scatter says brushing highlights nothing
    while len(ex.painter.columns["O"]):
        ex.painter.remove("O", 0)
    ex.flush()
    assert "O" not in ex.viewers and sc.viewer is None and "no O mask" in sc.note.value


def test_explorer_snaps_to_the_dark_columns_of_its_abf_and_lets_clicks_through(sim):
    """The painter shows a virtual ABF (columns dark): a click snaps to the darkest pixel
    within the radius, as the README says; no figure carries bqplot's hover toolbar,
    and the image figures let clicks through their lines and labels (scale bar,
    lattice), with the style that says so in the widget."""
    from tdm_widgets.widgets.raster import CLICK_THROUGH

    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, background=False)
    img = ex.painter.image
    ex.painter.snap_px = 2
    ex.painter.click(4, 9, "Fe")
    win = img[2:7, 7:12]
    dark = np.unravel_index(np.argmin(win), win.shape)
    np.testing.assert_array_equal(ex.painter.columns["Fe"][-1], (2 + dark[0], 7 + dark[1]))
    figs = [ex.painter.panel.fig] + [v.image_panel.fig for v in ex.viewers.values()]
    figs += [ex.radial_scatter("O").fig,
             MatrixView(tw.data_matrix(s), s.data.shape[:2], s.data.shape[2:]).fig]
    assert not any(f.display_toolbar for f in figs)
    assert all(CLICK_THROUGH in f._dom_classes for f in figs[:-2] + figs[-1:])
    html = [w.value for w in ex.painter.panel.widget.children if hasattr(w, "value")]
    assert any(f".{CLICK_THROUGH} path.line" in h and "pointer-events: none" in h
               for h in html)


def test_contrast_target_goes_back_to_the_painter_without_editing_columns(sim):
    """Choosing the painter image again is a button (a click on the image adds a
    column); choosing a target sets the sliders to its settings without redrawing it."""
    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, background=False)
    panel = ex.viewers["O"].image_panel
    panel.set_contrast((2.0, 98.0), 0.5)
    redraws = []
    panel.redraw = lambda redraw=panel.redraw: (redraws.append(1), redraw())
    panel.mark._handle_custom_msg({"event": "element_click", "data": {}}, [])  # as the page
    assert "image O" in ex.contrast_label.value
    assert ex.clip.value == (2.0, 98.0) and ex.gamma.value == 0.5
    assert redraws == []                                    # choosing it redraws nothing
    n = {k: len(v) for k, v in ex.painter.columns.items()}
    ex.contrast_painter.click()
    assert "painter image" in ex.contrast_label.value
    assert {k: len(v) for k, v in ex.painter.columns.items()} == n
    ex.gamma.value = 2.0
    assert ex.painter.panel.gamma == 2.0 and panel.gamma == 0.5


def test_matrix_view_readout(sim):
    s, _ = sim
    dm = tw.data_matrix(s)
    mv = MatrixView(dm, s.data.shape[:2], s.data.shape[2:], max_cells=2000)
    # robust contrast: the colour range is the 99th percentile of |D|, not the outlier
    assert mv.vmax == pytest.approx(np.percentile(np.abs(mv.display), 99))
    assert mv.vmax < np.abs(mv.display).max()
    by, bx = mv.bin
    mv._on_click(None, {"data": {"click_x": 10 * bx + 0.5, "click_y": 3 * by + 0.5}})
    assert "mrad" in mv.label.value
    info = mv.readout(3, 10)
    sy, sx = info["scan_yx"]
    dy, dx = info["detector_yx"]
    block = dm.data[3 * by:4 * by, 10 * bx:11 * bx]
    assert info["value"] == pytest.approx(float(block.mean()), rel=1e-5)
    assert dm.metadata.DataMatrix.row_order[3 * by] == sy * s.data.shape[1] + sx
    assert dm.metadata.DataMatrix.col_order[10 * bx] == dy * s.data.shape[3] + dx
    # the scan pixel and detector pixel read out hold that value of the data
    raw = np.asarray(s.data, float)[sy, sx, dy, dx]
    mean, std = tw.column_stats(s).data[:, dy, dx]
    assert (raw - mean) / std == pytest.approx(float(dm.data[3 * by, 10 * bx]), rel=1e-3,
                                                abs=1e-3)


def test_explorer_passes_click_edits_to_its_session(sim):
    import inspect
    import re

    from tdm_widgets.widgets import explorer as explorer_module

    s, cols = sim
    ex = tw.explore(s, {"Li": cols["Li"], "O": cols["O"]}, background=False)
    calls = []
    for name in ("add_column", "remove_column", "set_columns", "set_region", "set_width"):
        method = getattr(ex.session, name)
        setattr(ex.session, name, lambda *a, _m=method, _n=name, **k: (calls.append((_n, a)),
                                                                        _m(*a, **k))[1])
    li_mask = ex.viewers["Li"].mask_panel.mark.image
    li_image = ex.viewers["Li"].image_panel.mark.image
    o_mask = ex.viewers["O"].mask_panel.mark.image
    read0 = ex.session.engine.patterns_read
    ex.painter.click(7, 7, "O")
    assert calls == [("add_column", ("O", 7.0, 7.0))]
    assert ex.session.engine.patterns_read - read0 == 1   # one position, read once for O and "all"
    # only the panels of the edited species and of "all" are drawn again
    assert ex.viewers["Li"].mask_panel.mark.image is li_mask
    assert ex.viewers["Li"].image_panel.mark.image is li_image
    assert ex.viewers["O"].mask_panel.mark.image is not o_mask
    i = len(ex.painter.columns["O"]) - 1
    ex.painter.remove("O", i)
    assert calls[-1] == ("remove_column", ("O", 7.0, 7.0))
    ex.painter.click(3, 30, "Li")
    ex.painter.undo()                               # only Li changed: only Li is replaced
    assert calls[-1][0] == "set_columns" and list(calls[-1][1][0]) == ["Li"]
    ex.painter.set_region(0, 10, 0, 20)
    assert calls[-1][0] == "set_region" and calls[-1][1][0].sum() == 200
    ex.painter.sigma.value = 0.5
    assert calls[-1] == ("set_width", (0.5,))
    t, _ = ex.painter.templates()
    ref = tw.pcc_mask(s, t, region=ex.painter.region, detector_region=(0, 23.5)).data
    np.testing.assert_allclose(ex.masks, ref, rtol=1e-9, atol=1e-12)
    # the explorer reads no private attribute of the session or its engine
    src = inspect.getsource(explorer_module)
    assert "engine" not in src and not re.search(r"(session|se)\._", src)


def test_first_update_runs_in_the_background_with_a_busy_line(sim):
    s, cols = sim
    ex = tw.explore(s, {"O": cols["O"]}, defer_first=True)
    assert ex.n_updates == 0 or ex.masks is not None       # returned before (or as) it ran
    assert "statistics" in ex.busy.value or ex.n_updates == 1
    ex.wait()
    assert ex.n_updates == 1 and ex.busy.value == "" and ex.notice.value == ""
    t, _ = ex.painter.templates()
    np.testing.assert_allclose(ex.masks, tw.pcc_mask(s, t, detector_region=(0, 23.5)).data,
                               rtol=1e-9, atol=1e-12)
    sc = ex.radial_scatter("O")                    # waits for pending work first
    assert sc.correlation.y.size == np.prod(s.data.shape[2:])


def test_save_writes_through_the_session_what_is_shown(sim, tmp_path):
    import json

    import hyperspy.api as hs

    s, cols = sim
    ex = tw.explore(s, {"Li": cols["Li"], "O": cols["O"]}, background=False)
    ex.painter.click(7, 7, "O")
    ex.normalized.value = True                     # Eq 6
    out = ex.save(tmp_path / "a")
    assert ex.saved["update"] == ex.n_updates and ex.saved["names"] == ex.names
    m, im = hs.load(out / "masks.hspy"), hs.load(out / "images.hspy")
    np.testing.assert_array_equal(m.data, ex.masks)
    np.testing.assert_allclose(im.data, ex.images, rtol=1e-12, atol=1e-12)
    assert m.metadata.TDM.parameters.explorer_update == ex.n_updates
    assert im.metadata.TDM.parameters.equation == "Eq 6"
    record = json.loads((out / "session.json").read_text())
    assert record["parameters"]["names"] == ["Li", "O", "all"]
    assert record["parameters"]["detector"] == "bf"
    assert record["parameters"]["template"]["shape"] == [3, 20, 34]
    # cross-validated images are saved as cross-validated
    ex.cross_validate.value = "cells"
    out = ex.save(tmp_path / "b")
    im = hs.load(out / "images.hspy")
    np.testing.assert_allclose(im.data, ex.images, rtol=1e-12, atol=1e-12)
    assert im.metadata.TDM.parameters.split == "cells"
    # after a failed update the explorer shows older results: it refuses to save them
    ex.cross_validate.value = "dose"               # noise-free data: no dose split
    assert "integer counts" in ex.notice.value
    assert "cross-validated: cells split" in ex.notice.value  # the menu's words, not the API's
    assert "split='cells'" not in ex.notice.value
    with pytest.raises(ValueError, match="last update failed"):
        ex.save(tmp_path / "c")
    ex._guarded_save()
    # the save's refusal keeps the error it asks to fix on screen
    assert "save failed" in ex.notice.value and "integer counts" in ex.notice.value
    with pytest.raises(ValueError, match="the folder is empty"):
        ex.save("  ")


def test_session_keeps_the_species_order_and_replaces_positions(sim):
    from tdm_widgets.session import TDMSession

    s, cols = sim
    se = TDMSession.from_columns(s, {"Li": cols["Li"], "Fe": np.zeros((0, 2)),
                                     "O": cols["O"]}, show_progressbar=False)
    assert se.names == ["Li", "O", "all"]
    se.add_column("Fe", 5, 5)
    assert se.names == ["Li", "Fe", "O", "all"]
    for y, x in se.columns["Li"].copy():
        se.remove_column("Li", y, x)
    se.add_column("Li", 3, 3)                        # emptied and filled again: still first
    assert se.names == ["Li", "Fe", "O", "all"]
    read0 = se.engine.patterns_read
    se.set_columns({"Fe": [[5, 5], [9, 9]]})         # one new position, read once (Fe, "all")
    assert se.engine.patterns_read - read0 == 1
    t, names = tw.point_templates({n: p for n, p in se.columns.items() if len(p)},
                                  s.data.shape[:2])
    assert names == se.names
    np.testing.assert_allclose(se.mask_array(), tw.pcc_mask(s, t).data, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(se.image_array(["Fe"]),
                               tw.apply_mask(s, tw.pcc_mask(s, t).data[1:2]).data,
                               rtol=1e-9)
    with pytest.raises(ValueError, match="outside the scan"):
        se.set_columns({"O": [[99, 0]]})


@pytest.mark.parametrize("zoom", [3.0, 12.35])
def test_image_fills_the_plot_area_when_markers_pad_the_scales(zoom):
    """bqplot maps a scale's domain onto ``[p, A - p]`` of a plot area ``A`` wide when a
    Scatter or Label on it asks for padding ``p = sqrt(default_size) / 2 + 1`` (the
    scale bar's label alone made every mask and image panel 1.5 % off): with the domain
    the panel sets, the image's edges still land on the plot area's (square pixels),
    at any zoom (the painter's 12.35 made pixels 2.4 % taller than wide)."""
    import bqplot as bq

    from tdm_widgets.widgets.raster import ImagePanel

    panel = ImagePanel((20, 34), zoom=zoom)
    assert panel.mark_padding_px() == pytest.approx(np.sqrt(11) / 2 + 1)  # the bar's label
    dots = bq.Scatter(x=[], y=[], scales=panel.scales, default_size=137)
    panel.fig.marks = [*panel.fig.marks, dots]
    panel.fit_domain()
    p = np.sqrt(137) / 2 + 1
    assert panel.mark_padding_px() == pytest.approx(p)
    panel.set_zoom(zoom)                      # the zoom slider keeps it
    for scale, lo, hi, size in ((panel.x, 0, 34, panel.fig.layout.width),
                                (panel.y, 0, 20, panel.fig.layout.height)):
        area = float(size[:-2]) - 2 * panel.MARGIN
        slope = (area - 2 * p) / (scale.max - scale.min)
        left, right = (p + (v - scale.min) * slope for v in (lo, hi))
        assert left == pytest.approx(0, abs=1e-9) and right == pytest.approx(area, abs=1e-9)
        assert slope == pytest.approx(round(34 * zoom) / 34, rel=0.01)


def test_pixels_are_drawn_in_the_scan_aspect(sim):
    """Unequal scan steps (0.3 A along y, 0.2 A along x): a pixel is drawn 1.5 times as
    tall as wide, and a click still lands on the pixel under it (the scales run in
    pixel edges, whatever the figure's size); the scale bar keeps the x step."""
    from tdm_widgets.widgets.raster import ImagePanel

    p = ImagePanel((10, 20), pixel_size=(0.3, 0.2), units="Å", zoom=4.0)
    m = 2 * ImagePanel.MARGIN
    assert (p.fig.layout.width, p.fig.layout.height) == (f"{20 * 4 + m}px", f"{10 * 6 + m}px")
    assert p.pixel_size == 0.2
    square = ImagePanel((10, 20), pixel_size=0.25, units="Å", zoom=4.0)
    assert square.fig.layout.height == f"{10 * 4 + m}px"
    # the explorer passes the signal's own steps, to its painter and its image panels
    s, cols = sim
    s = s.deepcopy()
    ny, nx = s.axes_manager.navigation_axes[1], s.axes_manager.navigation_axes[0]
    ny.scale *= 1.1  # y step 10 % longer
    aspect = ny.scale / nx.scale
    ex = tw.explore(s, {"O": cols["O"]}, background=False)
    assert ex.painter.panel.aspect == pytest.approx(aspect)
    assert all(v.image_panel.aspect == pytest.approx(aspect) for v in ex.viewers.values())
