"""Figure-level checks of the paper-figure notebooks, and of the helpers they draw with.

Every figure in these notebooks is followed by the summary line of
:func:`tdm_widgets.plotting.check_figure`, which raises while the notebook runs if a panel
lacks a title or an image lacks a scale bar. nbval (``pytest notebooks``) re-runs each
notebook and compares that text with the stored output strictly, so the stored summaries
are what the notebooks draw now; this test reads them (cheap: no notebook is executed
here) and asserts that no panel has disappeared.
"""

import json
import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import tdm_widgets as tw
from conftest import ROOT
from tdm_widgets import noise
from tdm_widgets.plotting import (
    PCC_LABEL,
    SCALE_BAR_GID,
    add_colorbar,
    check_figure,
    figure_report,
    nice_length,
    scale_bar,
    shared_range,
    show_image,
    show_mask,
    symmetric_limit,
)
from tdm_widgets.simulate import columns_of, tile_cells

#: notebook -> {figure name in its check_figure line: panels it must have}
EXPECTED = {
    "02_fig1_fig2_matrix_and_adf.ipynb": {"Fig 1": 4, "Fig 2": 6},
    "03_fig3_species_images.ipynb": {"Fig 3": 12, "Fig 3, every configuration, 40 nm": 40,
                                     "Fig 3, every configuration, 70 nm": 40},
    "04_fig4_defects.ipynb": {"Fig 4": 12},
    "06_fig6_compare_methods.ipynb": {"Fig 6": 8},
    "07_si_robustness.ipynb": {"SI robustness": 4},
}
#: the panel of the paper's figure each notebook's gallery cell must hold
GALLERY = {"02_fig1_fig2_matrix_and_adf.ipynb": "Fig 2", "03_fig3_species_images.ipynb": "Fig 3",
           "04_fig4_defects.ipynb": "Fig 4", "06_fig6_compare_methods.ipynb": "Fig 6",
           "07_si_robustness.ipynb": "SI robustness"}
SUMMARY = re.compile(
    r"^(?P<name>.+?): (?P<panels>\d+) panels \((?P<images>\d+) images\), titled "
    r"(?P<titled>\d+)/(?P<n>\d+), images with a scale bar (?P<bars>\d+)"
    r"(?: and with labelled axes (?P<labelled>\d+))? of (?P<k>\d+)$", re.MULTILINE)
FIGURE_REPR = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")


def _cells(name):
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _text(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append("".join(o["text"]))
    return "".join(out)


def _figures(cell):
    """Stored figure outputs of a cell: PNGs whose text is matplotlib's figure repr."""
    return [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})
            and FIGURE_REPR.search("".join(o["data"].get("text/plain", "")))]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_figure_keeps_its_panels_titles_and_scale_bars(name):
    found = {}
    n_figures = 0
    for cell in _cells(name):
        n_figures += len(_figures(cell))
        for m in SUMMARY.finditer(_text(cell)):
            found[m["name"]] = m
    assert set(found) == set(EXPECTED[name]), f"{name}: figure checks {sorted(found)}"
    assert n_figures == len(EXPECTED[name]), f"{name}: {n_figures} figures stored"
    for fig_name, panels in EXPECTED[name].items():
        m = found[fig_name]
        assert int(m["panels"]) == panels, f"{name} {fig_name}: {m['panels']} panels"
        assert int(m["titled"]) == int(m["n"]) == panels, f"{name} {fig_name}: untitled panel"
        barred = int(m["bars"]) + int(m["labelled"] or 0)
        assert barred == int(m["images"]) == int(m["k"]), f"{name} {fig_name}: image without bar"


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_the_gallery_cell_holds_the_main_figure(name):
    tagged = [c for c in _cells(name) if "gallery" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'gallery'"
    assert len(_figures(tagged[0])) == 1
    assert SUMMARY.search(_text(tagged[0]))["name"] == GALLERY[name]


# ------------------------------------------------------------------ the check itself
def _image(shape=(8, 10), step=0.3):
    s = tw.from_array(np.zeros(shape + (2, 2), np.float32), scan_step_A=step)
    return tw.apply_mask(s, np.ones((2, 2)), progress=False)


def test_check_figure_finds_missing_titles_and_scale_bars_and_wrong_counts():
    img = _image()
    fig, ax = plt.subplots(1, 3)
    show_image(ax[0], img, "with bar", bar="auto")
    show_image(ax[1], img, "no bar")
    ax[2].plot([0, 1], [0, 1])
    with pytest.raises(AssertionError, match="no bar"):
        check_figure(fig, "f")
    scale_bar(ax[1], 1.0, "Å")
    with pytest.raises(AssertionError, match=r"panels \[2\] have no title"):
        check_figure(fig, "f")
    ax[2].set_title("a plot")
    with pytest.raises(AssertionError, match="3 panels, expected 4"):
        check_figure(fig, "f", panels=4)
    line = check_figure(fig, "f", panels=3)
    assert SUMMARY.fullmatch(line)["bars"] == "2"
    plt.close(fig)


def test_twins_and_colour_bars_are_not_panels_and_labelled_matrices_need_no_bar():
    fig, ax = plt.subplots(1, 2)
    im = ax[0].imshow(np.eye(4), aspect="auto")
    ax[0].set(xlabel="detector pixel", ylabel="scan position", title="D")
    fig.colorbar(im, ax=ax[0])
    ax[1].plot([1, 2])
    ax[1].twinx().plot([2, 1])
    ax[1].set_title("two y axes")
    rep = figure_report(fig)
    assert [r["colorbar"] for r in rep].count(True) == 1
    assert [r["twin"] for r in rep].count(True) == 1
    m = SUMMARY.fullmatch(check_figure(fig, "g", panels=2))
    assert (m["images"], m["bars"], m["labelled"]) == ("1", "0", "1")
    plt.close(fig)


def test_scale_bars_are_found_by_gid_and_sized_to_the_view():
    fig, ax = plt.subplots(1, 2)
    img = _image((20, 34))                      # 34 px x 0.3 A = 10.2 A wide
    show_image(ax[0], img, "image", bar="auto")
    mask = tw.from_array(np.ones((1, 1, 48, 48)), mrad_per_px=1.0).inav[0, 0]
    show_mask(ax[1], mask, "mask", limit_mrad=24, bar="auto")
    for a, want, unit in ((ax[0], 2.0, "Å"), (ax[1], 10.0, "mrad")):
        (line,) = [x for x in a.lines if x.get_gid() == SCALE_BAR_GID]
        assert np.ptp(line.get_xdata()) == pytest.approx(want)
        labels = [t.get_text() for t in a.texts if t.get_gid() == SCALE_BAR_GID]
        assert labels == [f"{want:g} {unit}"]
        assert a.get_legend_handles_labels()[1] == []  # no legend entry
    assert nice_length(10.2) == 2.0 and nice_length(48) == 10.0 and nice_length(0.9) == 0.2
    plt.close(fig)


# ------------------------------------------------------------------ data the figures use
def test_tile_cells_repeats_data_and_columns_and_noise_after_tiling_is_independent():
    rng = np.random.default_rng(0)
    cell = tw.from_array(rng.random((4, 6, 5, 5)).astype(np.float32) * 1e-2,
                         scan_step_A=(0.3, 0.25), mrad_per_px=2.0)
    cols = {"A": np.array([[1.0, 2.5]]), "B": np.array([[0.0, 0.0], [3.0, 5.0]])}
    cell.metadata.set_item("Simulation.columns", cols)
    big = tile_cells(cell, (2, 3))
    assert big.data.shape == (8, 18, 5, 5)
    assert np.array_equal(big.data, np.tile(cell.data, (2, 3, 1, 1)))
    for ax_new, ax_old in zip(big.axes_manager._axes, cell.axes_manager._axes):
        assert (ax_new.scale, ax_new.offset, ax_new.units) == (ax_old.scale, ax_old.offset,
                                                               ax_old.units)
    got = columns_of(big)
    assert got["A"].shape == (6, 2) and got["B"].shape == (12, 2)
    expect_a = {(1.0 + 4 * i, 2.5 + 6 * j) for i in range(2) for j in range(3)}
    assert {tuple(p) for p in got["A"]} == expect_a
    assert list(big.metadata.Simulation.tiled_cells) == [2, 3]
    noisy = tw.add_poisson_noise(big, 1e6, seed=1)
    cells = np.asarray(noisy.data, float).reshape(2, 4, 3, 6, 5, 5)
    assert not np.array_equal(cells[0, :, 0], cells[1, :, 2])  # every cell its own counts
    with pytest.raises(ValueError, match="reps"):
        tile_cells(cell, (0, 2))


def test_poisson_noise_drawn_in_blocks_equals_one_draw(monkeypatch):
    rng = np.random.default_rng(3)
    s = tw.from_array(rng.random((5, 3, 4, 4)).astype(np.float32) * 0.05, scan_step_A=0.5)
    electrons = 2e3 * 0.25
    expect = np.random.default_rng(7).poisson(np.asarray(s.data, np.float64) * electrons)
    monkeypatch.setattr(noise, "POISSON_BLOCK_VALUES", 2 * 3 * 16)  # blocks of 2 scan rows
    got = tw.add_poisson_noise(s, 2e3, seed=7).data
    assert got.dtype == np.uint32
    assert np.array_equal(got, expect)


def test_a_row_of_masks_shares_one_symmetric_scale_and_one_colour_bar():
    masks = [tw.from_array(np.full((1, 1, 8, 8), v), mrad_per_px=1.0).inav[0, 0]
             for v in (0.1, -0.4, 0.2)]
    fig, ax = plt.subplots(1, 3, layout="constrained")
    vmax = symmetric_limit(masks)
    assert vmax == pytest.approx(0.4)
    ims = [show_mask(a, m, f"mask {i}", bar="auto", vmax=vmax) for i, (a, m) in
           enumerate(zip(ax, masks))]
    assert all(im.get_clim() == pytest.approx((-0.4, 0.4)) for im in ims)
    cb = add_colorbar(ax, PCC_LABEL)
    assert cb.ax.get_ylabel() == "PCC [dimensionless]"
    assert SUMMARY.fullmatch(check_figure(fig, "row", panels=3))["bars"] == "3"
    plt.close(fig)


def test_z_scored_images_share_a_range_and_boxed_scale_bars_sit_above_the_columns():
    rng = np.random.default_rng(0)
    imgs = [_image() for _ in range(2)]
    for im in imgs:
        im.data = rng.random(im.data.shape)
    lo, hi = shared_range(imgs)
    fig, ax = plt.subplots(1, 2)
    for a, im in zip(ax, imgs):
        shown = show_image(a, im, "z", columns={"O": np.array([[1.0, 1.0]])}, bar="auto",
                           zscore=True, vmin=lo, vmax=hi)
        assert np.nanmean(shown.get_array()) == pytest.approx(0.0, abs=1e-12)
        assert shown.get_clim() == pytest.approx((lo, hi))
        (label,) = [t for t in a.texts if t.get_gid() == SCALE_BAR_GID]
        assert label.get_bbox_patch() is not None and label.get_zorder() > 1
    assert ax[0].get_legend() is None
    plt.close(fig)
