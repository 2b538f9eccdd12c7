"""Real browser: JupyterLab on 127.0.0.1, the explorer notebook run in headless
Chromium (Debian's package, driven by Playwright). A click on a marker removes it, a
click beside it adds a column, a drag draws the reference rectangle, an error shows in
the page, a save writes calibrated files, a reload brings the widgets back, and the
page logs no JavaScript error. Screenshots are kept in ``test-artifacts/``."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from lab_browser import (
    CHROMIUM,
    chromium_page,
    click_breakdown,
    dismiss_news,
    draw_latency,
    jupyter_lab,
    open_notebook,
    painter_image,
    pixel_point,
    real_errors,
    run_all,
    wait_update,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(python3 dev.py test installs it when run as root)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "01_explorer.ipynb", work)
    with jupyter_lab(work) as (url, token):
        yield url, token, work


def _columns():
    import tdm_widgets as tw
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    return s, columns_of(series)


def _shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _count(page, species):
    text = page.get_by_text(re.compile(r"^columns: ")).first.inner_text()
    return int(re.search(rf"{species} (\d+)", text).group(1))


def test_explorer_in_the_browser(lab):
    import hyperspy.api as hs
    from playwright.sync_api import sync_playwright

    url, token, work = lab
    s, cols = _columns()
    shape = s.data.shape[:2]
    with sync_playwright() as pw, chromium_page(pw, height=2300) as (page, errors):
        try:
            open_notebook(page, url, token, "01_explorer.ipynb")
            dismiss_news(page)
            run_all(page)
            wait_update(page, 1)
            scatter = page.get_by_text(re.compile(r"PCC vs angle \(Fig 2d\)")).first
            scatter.wait_for(timeout=60_000)
            scatter.scroll_into_view_if_needed()
            _shot(page, "explorer-scatter")
            # brushing an angle range highlights those pixels in the O mask, fast
            fig = page.locator(".bqplot").filter(has_text="PCC vs angle").first
            fig.scroll_into_view_if_needed()
            box = fig.bounding_box()
            y = box["y"] + box["height"] / 2
            n_draws = page.evaluate("window.__tdm.draws.length")
            page.mouse.move(box["x"] + 0.30 * box["width"], y)
            page.mouse.down()
            for f in np.linspace(0.31, 0.45, 10):     # a 10-step drag
                page.mouse.move(box["x"] + f * box["width"], y)
            page.mouse.up()
            brush = click_breakdown(page)
            assert page.evaluate("window.__tdm.draws.length") > n_draws, "no highlight drawn"
            print(f"brush (10 steps) -> last highlight redrawn: {brush['latency_ms']:.0f} ms")
            assert brush["latency_ms"] < 5000
            _shot(page, "explorer-brush")
            painter_image(page).scroll_into_view_if_needed()
            _shot(page, "explorer")
            n_li = _count(page, "Li")
            # a click on a marker removes that column
            y, x = cols["Li"][0]
            page.mouse.click(*pixel_point(page, shape, y, x))
            wait_update(page, 2)
            assert _count(page, "Li") == n_li - 1
            assert draw_latency(page) < 5000       # masks and images were redrawn
            # a click on an empty pixel adds one (species Li is selected)
            page.mouse.click(*pixel_point(page, shape, 2, 8))
            wait_update(page, 3)
            assert _count(page, "Li") == n_li
            # the pixel under the scale bar and the top-right one (where bqplot's hover
            # toolbar sat) are the image's: a click there reaches it
            # (ImagePanel draws the bar at 7 % of the height from the bottom, from 6 %
            # of the width, over 2 A = 6.7 px here)
            on_bar = pixel_point(page, shape, 0.93 * shape[0] - 0.5, 0.06 * shape[1] + 1)
            hit = [page.evaluate("([x, y]) => document.elementFromPoint(x, y).tagName", pt)
                   for pt in (on_bar, pixel_point(page, shape, 0, shape[1] - 1))]
            assert hit == ["image", "image"], hit
            # pixels on the screen in the scan's physical aspect, width / height = step_x /
            # step_y (1.2 % from square here; the figure's own padding once took 7 px a
            # side from the plot area: 2.5 % taller than wide at this zoom)
            want = s.axes_manager.navigation_axes[0].scale / s.axes_manager.navigation_axes[1].scale
            box = painter_image(page).bounding_box()
            aspect = (box["width"] / shape[1]) / (box["height"] / shape[0])
            print(f"painter pixel aspect on screen: {aspect:.4f} (scan steps: {want:.4f})")
            assert abs(aspect / want - 1) < 0.005, box
            # and the image panels of the species (the scale bar's label pads them)
            boxes = page.evaluate("""() => [...document.querySelectorAll('.bqplot image')]
                .map(i => i.getBoundingClientRect()).map(r => [r.width, r.height])""")
            scan = [w / h / (shape[1] / shape[0]) / want for w, h in boxes
                    if abs(w / h / (shape[1] / shape[0]) / want - 1) < 0.03]
            assert len(scan) >= 3 and max(abs(a - 1) for a in scan) < 0.005, scan
            # a drag in the region mode draws the reference rectangle
            page.get_by_role("button", name="region: drag").click()
            # the kernel answers the mode with a hint and installs the brush; a drag
            # before the brush is on the painter's figure would not be seen
            page.get_by_text("drag a rectangle over the reference region").wait_for(
                timeout=30_000)
            page.wait_for_function("""() => {
                const img = document.querySelector('.bqplot image');
                const fig = img && img.closest('.bqplot');
                return !!(fig && fig.querySelector('.brushintsel rect.overlay'));
            }""", timeout=30_000)
            x0, y0 = pixel_point(page, shape, 1, 2)
            x1, y1 = pixel_point(page, shape, 9, 14)
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
            page.mouse.move(x1, y1, steps=5)
            page.mouse.up()
            page.get_by_text(re.compile(r"reference region rows 1:10, columns 2:15")) \
                .wait_for(timeout=30_000)
            wait_update(page, 4)
            drawn = page.evaluate("""() => [...document.querySelectorAll('.bqplot path')]
                .filter(p => getComputedStyle(p).stroke === 'rgb(255, 208, 0)'
                        && (p.getAttribute('d') || '').length > 10).length""")
            assert drawn >= 1, "the reference rectangle is not drawn"
            _shot(page, "explorer-region")
            page.get_by_role("button", name="clear region").click()
            page.get_by_text("reference region cleared").wait_for(timeout=30_000)
            # an error is shown in the page
            page.get_by_role("button", name="replicate cell").click()
            err = page.get_by_text(re.compile(r"no lattice yet"))
            err.wait_for(timeout=30_000)
            assert err.is_visible()
            _shot(page, "explorer-error")
            # save, then read the files back
            page.get_by_role("button", name="save results").click()
            page.get_by_text(re.compile(r"saved masks.hspy")).wait_for(timeout=60_000)
            masks = hs.load(work / "tdm_results" / "masks.hspy")
            images = hs.load(work / "tdm_results" / "images.hspy")
            assert masks.axes_manager.signal_axes[0].units == "mrad"
            assert masks.axes_manager.signal_axes[0].scale == \
                s.axes_manager.signal_axes[0].scale
            assert images.axes_manager.signal_axes[0].units == "Å"
            assert list(masks.metadata.TDM.parameters.names) == ["Li", "O", "all"]
            assert np.abs(masks.data).max() > 0
            # a reload (kernel still running) brings the widgets back
            page.keyboard.press("Control+s")
            page.wait_for_timeout(1500)
            page.reload()
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            painter_image(page).wait_for(timeout=60_000)
            page.wait_for_timeout(2000)
            assert page.get_by_text(re.compile(r"model not found", re.IGNORECASE)).count() == 0
            status = page.get_by_text(re.compile(r"update \d+: \d+ ms")).first.inner_text()
            n = int(re.search(r"update (\d+)", status).group(1))
            page.get_by_role("button", name="columns", exact=True).click()
            page.mouse.click(*pixel_point(page, shape, 12, 30))
            wait_update(page, n + 1, 60_000)
            assert _count(page, "Li") == n_li + 1
            _shot(page, "explorer-after-reload")
        except Exception:
            _shot(page, "explorer-failure")
            raise
    assert not real_errors(errors), real_errors(errors)
