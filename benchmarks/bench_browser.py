#!/usr/bin/env python3
"""The explorer as a user sees it: JupyterLab on 127.0.0.1, headless Chromium (Debian's
package, driven by Playwright). Prints, on the bundled simulation and on a 128 x 128 scan
x 128 x 128 detector synthetic float32 set (1 GiB), the median time from a click on the
painter to the last redrawn mask and image as seen in the page (time stamps of the
``<image>`` changes taken in the page, not kernel time), and the time from Run All to a
usable explorer (the painter's image drawn in the page: columns can be clicked) and to
the first masks and images drawn.

Where a click's time goes is printed beside it: the kernel's update (its status line),
the first kernel message seen by the page, the number and size of the kernel messages
before the last redraw.

    .venv/bin/python benchmarks/bench_browser.py [--clicks 9] [--baseline GIT_REF]

``--baseline REF`` measures the code of commit REF too, in the same run (each dataset:
this tree, then REF, one JupyterLab server each), so both see the same machine load.
Before measuring, each tree's compiled kernels are cached by a small warm-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lab_browser import (
    chromium_page,
    click_breakdown,
    jupyter_lab,
    open_notebook,
    pixel_point,
    run_all,
    wait_update,
)

SYNTHETIC = """import numpy as np
import tdm_widgets as tw

data = np.random.default_rng(0).random((128, 128, 128, 128), dtype=np.float32)
s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=1.0)
grid = np.stack(np.meshgrid(np.arange(4, 128, 16), np.arange(4, 128, 16), indexing="ij"),
                -1).reshape(-1, 2).astype(float)
ex = tw.explore(s, {"Li": grid, "Fe": grid + 8, "O": grid + [0, 8]})
ex.widget"""

#: The floor: one bitmap redrawn by a click, no computation (a round trip of one
#: message to the kernel and two back, and one redraw in the page).
FLOOR = """import ipywidgets as ipw
import numpy as np
from tdm_widgets.widgets.raster import ImagePanel

rng = np.random.default_rng(0)
panel = ImagePanel((20, 34), "floor: a click redraws this bitmap", zoom=12)
n = [1]
status = ipw.HTML(f"update {n[0]}: 0 ms")


def redraw(mark, event):
    n[0] += 1
    panel.show(rng.random((20, 34)))
    status.value = f"update {n[0]}: 0 ms"


panel.mark.on_element_click(redraw)
panel.show(rng.random((20, 34)))
ipw.VBox([panel.widget, status])"""

#: Compiles (and caches) the numba kernels each tree's explorer calls, as the notebooks
#: call them (the bundled float16 data, float32 data chunked like the synthetic set).
WARM_UP = """import numpy as np
import tdm_widgets as tw
from tdm_widgets.demo import BUNDLED
from tdm_widgets.simulate import columns_of, select

series = tw.load(BUNDLED)
s = select(series, thickness_nm=70)
cols = columns_of(series)
data = np.random.default_rng(0).random((48, 48, 64, 64), dtype=np.float32)
for s, start in ((s, {"Li": cols["Li"], "O": cols["O"]}),
                 (tw.from_array(data, scan_step_A=0.3, mrad_per_px=1.0),
                  {"Li": [[4, 4], [20, 20]], "O": [[12, 12], [30, 30]]})):
    ex = tw.explore(s, start, background=False)
    ex.painter.click(3, 3, "O")
    ex.normalized.value = True
    ex.radial_scatter("O")
"""


def _notebook(path: Path, source: str) -> None:
    nb = {"cells": [{"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": source.splitlines(True)}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def _kernel_times(trace: Path | None, c: dict) -> dict:
    """The click's time split by the explorer's time line (when it writes one): page
    to kernel (the edit received), the kernel's work (edit to the end of the update)
    and kernel to page (the end of the update to the last redraw)."""
    if trace is None or not trace.exists():
        return {}
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    edit = [e["t_ms"] for e in events if e["event"] == "edit" and e["t_ms"] > c["press_epoch_ms"]]
    end = [e["t_ms"] for e in events if e["event"] == "update end"
           and edit and e["t_ms"] > edit[0]]
    if not edit or not end:
        return {}
    return {"to_kernel_ms": edit[0] - c["press_epoch_ms"], "in_kernel_ms": end[0] - edit[0],
            "to_page_ms": c["end_epoch_ms"] - end[0]}


def measure(pw, url, token, name, shape, pixels, trace=None, images=3):
    """Run All -> usable and -> first update drawn [s], then where each click's time
    went (see :func:`lab_browser.click_breakdown`) and the kernel's update [ms]."""
    with chromium_page(pw, height=2300) as (page, errors):
        open_notebook(page, url, token, name)
        t0 = run_all(page)
        print(f"    {name}: Run All", flush=True)
        page.locator(".bqplot image").first.wait_for(timeout=300_000)
        usable = (page.evaluate("window.__tdm.firstImage") - t0) / 1e3  # the painter
        wait_update(page, 1, 300_000)
        page.locator(".bqplot image").nth(images - 1).wait_for()
        complete = (page.evaluate("performance.now()") - t0) / 1e3
        page.wait_for_timeout(1500)
        if trace is not None and trace.exists():  # the kernel's part of Run All
            t0_epoch = page.evaluate("performance.timeOrigin") + t0
            ev = {}
            for line in trace.read_text().splitlines():
                e = json.loads(line)
                ev.setdefault(e["event"], e["t_ms"])
            steps = [("explorer start", "imports and data"), ("painter image made",
                     "virtual ABF"), ("explorer built", "widgets built"),
                     ("update end", "first update (background)")]
            print("    Run All, kernel side: " + ", ".join(
                f"{label} at {(ev[k] - t0_epoch) / 1e3:.1f} s" for k, label in steps
                if k in ev), flush=True)
        print(f"    painter shown {usable:.1f} s, first masks and images {complete:.1f} s",
              flush=True)
        clicks = []
        for i, (y, x) in enumerate(pixels):
            page.mouse.click(*pixel_point(page, shape, y, x))
            status = wait_update(page, i + 2, 120_000)
            c = click_breakdown(page, settle_s=0.4)
            c["kernel_ms"] = float(re.search(r"update \d+: (\d+) ms", status).group(1))
            c.update(_kernel_times(trace, c))
            clicks.append(c)
            print(f"    click {i + 1}: {c['latency_ms']:.0f} ms in the page (kernel update "
                  f"{c['kernel_ms']:.0f} ms, click sent {c['first_send_ms']:.0f} ms, first message "
                  f"{c['first_message_ms']:.0f} ms, "
                  f"{c['messages']} messages, {c['bytes'] / 1e3:.0f} kB, "
                  f"{c['redraws']} redraws, page busy in long tasks {c['busy_page_ms']:.0f} ms)"
                  + (f"; page -> kernel {c['to_kernel_ms']:.0f} ms, kernel (edit -> update "
                     f"end) {c['in_kernel_ms']:.0f} ms, kernel -> last redraw "
                     f"{c['to_page_ms']:.0f} ms" if "to_kernel_ms" in c else ""), flush=True)
        bad = [e for e in errors if "Failed to load resource" not in e and "net::ERR" not in e]
    return usable, complete, clicks, bad


def _tree_at(ref: str, dest: Path) -> Path:
    """The package source of git commit ``ref``, unpacked into ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "tdm_widgets"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _warm_up(tree: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, "-c", WARM_UP], env=env, check=True,
                   capture_output=True, timeout=900)


def main():
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=9)
    ap.add_argument("--only", choices=["bundled", "synthetic", "floor"], help="one case")
    ap.add_argument("--sync", action="store_true",
                    help="compute in the kernel's message handler (background=False)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment variable for the kernels (repeatable)")
    ap.add_argument("--baseline", metavar="GIT_REF",
                    help="also measure the code of this commit, in the same run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdm-bench-browser-"))
    trees = [("this tree", ROOT)]
    if args.baseline:
        trees.append((f"baseline {args.baseline}", _tree_at(args.baseline, work / "baseline")))
    for _, tree in trees:
        _warm_up(tree)
    nb01 = Path(os.environ.get("TDM_BENCH_NB01", ROOT / "notebooks" / "01_explorer.ipynb")).read_text()
    synthetic = SYNTHETIC
    if args.sync:
        nb01 = nb01.replace('cols[\\"O\\"]})', 'cols[\\"O\\"]}, background=False)')
        synthetic = synthetic.replace('[0, 8]})', '[0, 8]}, background=False)')
        assert "background=False" in nb01 and "background=False" in synthetic
    rng = np.random.default_rng(1)
    cases = [("bundled LiFePO4 (20 x 34 scan, 144 x 144 det)", "01_explorer.ipynb", nb01,
              (20, 34), [(2, 8), (2, 8)] * 8),
             ("synthetic 128 x 128 scan x 128 x 128 det (1 GiB float32)", "synthetic.ipynb",
              None, (128, 128), [(int(y), int(x)) for y, x in rng.integers(0, 128, (16, 2))
                                 if (y % 16, x % 16) not in ((4, 4), (12, 12), (4, 12))]),
             ("floor: a click redraws one bitmap, no computation", "floor.ipynb", "floor",
              (20, 34), [(5, 5)] * 16)]
    print(f"explorer in the browser (JupyterLab + headless Chromium, 127.0.0.1), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores",
          flush=True)
    results = []
    try:
        for label, nb, text, shape, pixels in cases:
            if args.only and not label.startswith(args.only):
                continue
            for code, tree in (trees[:1] if text == "floor" else trees):
                # one server and folder per run: a lab remembers its open notebooks
                root = work / f"{label.split()[0]}-{len(results)}"
                root.mkdir()
                if text is None:
                    _notebook(root / nb, synthetic)
                elif text == "floor":
                    _notebook(root / nb, FLOOR)
                else:
                    (root / nb).write_text(text)
                load0 = os.getloadavg()[0]
                print(f"{label}, {code}: load average {load0:.1f}", flush=True)
                trace = root / "trace.jsonl"  # the explorer's time line (if it writes one)
                env = {"PYTHONPATH": str(tree), "TDM_WIDGETS_TRACE": str(trace),
                       **dict(e.split("=", 1) for e in args.env)}
                with jupyter_lab(root, env=env) as (url, token), sync_playwright() as pw:
                    usable, complete, clicks, bad = measure(
                        pw, url, token, nb, shape,
                        pixels if text == "floor" else pixels[:args.clicks], trace,
                        images=1 if text == "floor" else 3)
                results.append((label, code, load0, os.getloadavg()[0], usable, complete,
                                clicks, bad))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nsummary (medians over the clicks)")
    for label, code, l0, l1, usable, complete, clicks, bad in results:
        col = {k: np.array([c[k] for c in clicks]) for k in clicks[0]}
        lat = col["latency_ms"]
        print(f"{label}, {code} (load average {l0:.1f} -> {l1:.1f})\n"
              f"    Run All -> usable (painter drawn) {usable:5.1f} s, -> first masks and images"
              f" {complete:5.1f} s\n"
              f"    click -> last redraw in the page: median {np.median(lat):5.0f} ms (min "
              f"{lat.min():.0f}, max {lat.max():.0f}, {len(lat)} clicks); kernel update "
              f"{np.median(col['kernel_ms']):.0f} ms; click sent "
              f"{np.median(col['first_send_ms']):.0f} ms; first kernel message "
              f"{np.median(col['first_message_ms']):.0f} ms; {np.median(col['messages']):.0f} "
              f"messages, {np.median(col['bytes']) / 1e3:.0f} kB, "
              f"{np.median(col['redraws']):.0f} redraws; page busy in long tasks "
              f"{np.median(col['busy_page_ms']):.0f} ms"
              + (f"; page -> kernel {np.median(col['to_kernel_ms']):.0f} ms, kernel "
                 f"{np.median(col['in_kernel_ms']):.0f} ms, kernel -> last redraw "
                 f"{np.median(col['to_page_ms']):.0f} ms" if "to_kernel_ms" in col else "")
              + (f"; page errors: {bad}" if bad else ""))


if __name__ == "__main__":
    main()
