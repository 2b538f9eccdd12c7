#!/usr/bin/env python3
"""The explorer as a user sees it: JupyterLab on 127.0.0.1, headless Chromium (Debian's
package, driven by Playwright). Prints, on the bundled simulation and on a 128 x 128 scan
x 128 x 128 detector synthetic float32 set (1 GiB), the median time from a click on the
painter to the last redrawn mask and image as seen in the page (time stamps of the
``<image>`` changes taken in the page, not kernel time), and the time from Run All to a
usable explorer (first masks and images shown).

    .venv/bin/python benchmarks/bench_browser.py [--clicks 9]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lab_browser import (
    chromium_page,
    draw_latency,
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


def _notebook(path: Path, source: str) -> None:
    nb = {"cells": [{"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": source.splitlines(True)}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def measure(pw, url, token, name, shape, pixels):
    """Run All -> usable [s], then the page-side latency [ms] of each click."""
    with chromium_page(pw, height=2300) as (page, errors):
        open_notebook(page, url, token, name)
        t0 = run_all(page)
        print(f"    {name}: Run All", flush=True)
        wait_update(page, 1, 300_000)
        print("    first update shown", flush=True)
        page.locator(".bqplot image").nth(2).wait_for()
        usable = (page.evaluate("performance.now()") - t0) / 1e3
        page.wait_for_timeout(1000)
        lat, kernel = [], []
        for i, (y, x) in enumerate(pixels):
            page.mouse.click(*pixel_point(page, shape, y, x))
            status = wait_update(page, i + 2, 120_000)
            kernel.append(float(re.search(r"update \d+: (\d+) ms", status).group(1)))
            lat.append(draw_latency(page, settle_s=0.4))
            print(f"    click {i + 1}: {lat[-1]:.0f} ms in the page, kernel {kernel[-1]:.0f} ms",
                  flush=True)
        bad = [e for e in errors if "Failed to load resource" not in e and "net::ERR" not in e]
    return usable, np.array(lat), np.array(kernel), bad


def main():
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=9)
    ap.add_argument("--only", choices=["bundled", "synthetic"], help="one dataset")
    ap.add_argument("--sync", action="store_true",
                    help="compute in the kernel's message handler (background=False)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tdm-bench-browser-"))
    nb01 = (ROOT / "notebooks" / "01_explorer.ipynb").read_text()
    synthetic = SYNTHETIC
    if args.sync:
        nb01 = nb01.replace('cols[\\"O\\"]})', 'cols[\\"O\\"]}, background=False)')
        synthetic = synthetic.replace('[0, 8]})', '[0, 8]}, background=False)')
        assert "background=False" in nb01 and "background=False" in synthetic
    for sub in ("bundled", "synthetic"):
        (work / sub).mkdir()
    (work / "bundled" / "01_explorer.ipynb").write_text(nb01)
    _notebook(work / "synthetic" / "synthetic.ipynb", synthetic)
    rng = np.random.default_rng(1)
    cases = [("bundled LiFePO4 (20 x 34 scan, 64 x 64 det)", "01_explorer.ipynb", (20, 34),
              [(2, 8), (2, 8)] * 8),
             ("synthetic 128 x 128 scan x 128 x 128 det (1 GiB float32)", "synthetic.ipynb",
              (128, 128), [(int(y), int(x)) for y, x in rng.integers(0, 128, (16, 2))
                           if (y % 16, x % 16) not in ((4, 4), (12, 12), (4, 12))])]
    print(f"explorer in the browser (JupyterLab + headless Chromium, 127.0.0.1), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        for label, nb, shape, pixels in cases:
            if args.only and not label.startswith(args.only):
                continue
            # one server and folder per dataset: a lab remembers its open notebooks
            root = work / label.split()[0]
            with jupyter_lab(root) as (url, token), sync_playwright() as pw:
                usable, lat, kernel, bad = measure(pw, url, token, nb, shape,
                                                   pixels[:args.clicks])
            print(f"{label}\n    Run All -> usable {usable:5.1f} s; click -> last redraw "
                  f"in the page: median {np.median(lat):5.0f} ms (min {lat.min():.0f}, "
                  f"max {lat.max():.0f}, {len(lat)} clicks); of which the kernel's "
                  f"update: median {np.median(kernel):.0f} ms"
                  + (f"; page errors: {bad}" if bad else ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
