#!/usr/bin/env python3
"""Latency of the explorer: from a template edit (a click) to the redrawn masks and
images of every species, on the bundled simulation and on a 128 x 128 scan x
128 x 128 detector synthetic dataset (1 GiB float32). Prints the median and max of
several edits, and the one-off set-up (statistics pass).

    .venv/bin/python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import time

import numpy as np

import tdm_widgets as tw


def run(name, s, columns, clicks):
    t0 = time.perf_counter()
    ex = tw.explore(s, columns, background=False)
    setup = time.perf_counter() - t0
    lat = []
    for y, x in clicks:
        t0 = time.perf_counter()
        ex.painter.click(y, x, "O")  # one edit: mask + image of every species redrawn
        lat.append(time.perf_counter() - t0)
    lat = np.array(lat) * 1e3
    print(f"{name:<44} set-up {setup:6.2f} s   edit -> redraw: median {np.median(lat):7.0f} ms,"
          f" max {lat.max():7.0f} ms ({len(lat)} edits, {len(ex.names)} species images)")


def main():
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    cols = columns_of(series)
    run("bundled LiFePO4 (20 x 34 scan, 144 x 144 det)", s,
        {"Li": cols["Li"], "Fe": cols["Fe"], "P": cols["P"], "O": cols["O"]},
        [(3, 5), (12, 20), (7, 30), (15, 9), (3, 5)])
    rng = np.random.default_rng(0)
    data = rng.random((128, 128, 128, 128), dtype=np.float32)
    syn = tw.from_array(data, scan_step_A=0.3, mrad_per_px=1.0)
    grid = np.stack(np.meshgrid(np.arange(4, 128, 16), np.arange(4, 128, 16),
                                indexing="ij"), -1).reshape(-1, 2).astype(float)
    run("synthetic 128 x 128 scan x 128 x 128 det", syn,
        {"Li": grid, "Fe": grid + 8, "O": grid + [0, 8]},
        [(20, 30), (50, 60), (90, 10), (100, 100), (20, 30)])


if __name__ == "__main__":
    main()
