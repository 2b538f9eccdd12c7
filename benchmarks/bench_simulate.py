#!/usr/bin/env python3
"""Cost of the ``paper`` preset (Table 1: 80 x 80 A slab, 0.073 A sampling), measured on a
small piece of it and scaled up: a few probe positions x a few slices x one phonon
configuration of LiFePO4 [001] at the paper's grid, in one process (one core) and on a
``dask.distributed`` LocalCluster of N single-threaded workers; with ``--device gpu`` on
abTEM's CuPy device. Writes ``benchmarks/results/simulate_<label>.json`` (seconds per
slice and probe position, and the full paper thickness series extrapolated from it).

    .venv/bin/python benchmarks/bench_simulate.py --workers 2
    .venv/bin/python benchmarks/bench_simulate.py --device gpu --label gpu   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tdm_widgets.simulate import PRESETS, STRUCTURES
from tdm_widgets.simulate.runner import plan_scan, run_multislice


def timed(preset, thickness_nm, **kw):
    t0 = time.perf_counter()
    res = run_multislice(STRUCTURES["lifepo4"](), preset, thickness_nm, show_progressbar=False,
                         **kw)
    return time.perf_counter() - t0, res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers (0: none)")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--scan-step", type=float, default=1.5,
                    help="probe step [A] of the piece (28 positions per cell at 1.5)")
    ap.add_argument("--thickness", type=float, default=3.75, help="[nm]; 8 slices")
    ap.add_argument("--label", default="cpu")
    args = ap.parse_args()

    piece = replace(PRESETS["paper"], num_configs=1, scan_step_A=args.scan_step)
    plan = plan_scan(STRUCTURES["lifepo4"](), piece, [args.thickness])
    n_pos = plan.scan_px[0] * plan.scan_px[1]
    n_slices = round(plan.thickness_nm[0] * 10 / plan.parameters["slice_thickness_A"])
    units = n_pos * n_slices
    out = {"machine": f"{os.cpu_count()} CPU cores visible", "device": args.device,
           "load_average_1min_at_start": os.getloadavg()[0],
           "grid": plan.parameters["gpts"], "positions": n_pos, "slices": n_slices,
           "configs": 1, "note": "wall times include building the potential of the piece"}
    wall, _ = timed(piece, [args.thickness], device=args.device)  # warm-up (imports, FFT plans)
    wall, ref = timed(piece, [args.thickness], device=args.device)
    out["one_process_s"] = round(wall, 2)
    out["one_process_s_per_slice_position"] = wall / units
    if args.workers and args.device == "cpu":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            timed(piece, [args.thickness], scheduler=client)  # warm-up of the workers
            wall, res = timed(piece, [args.thickness], scheduler=client)
        out["cluster_workers"] = args.workers
        out["cluster_s"] = round(wall, 2)
        out["cluster_s_per_slice_position"] = wall / units
        out["cluster_equals_serial"] = bool(np.allclose(res.data, ref.data, rtol=1e-5,
                                                        atol=1e-9))
    # the full paper thickness series: 20-90 nm exit planes of one run, one cell scanned
    paper = PRESETS["paper"]
    cell = STRUCTURES["lifepo4"]().cell.cell.lengths()
    n90 = round(900 / (cell[2] * paper.slice_cells))
    full_units = int(np.prod(paper.scan_px(cell[:2]))) * n90 * paper.num_configs
    out["paper_lifepo4_series_units"] = int(full_units)
    out["paper_lifepo4_series_one_process_h"] = round(
        full_units * out["one_process_s_per_slice_position"] / 3600, 1)
    if "cluster_s" in out:
        out["paper_lifepo4_series_cluster_h"] = round(
            full_units * out["cluster_s_per_slice_position"] / 3600, 1)
    out["paper_lifepo4_series_estimate_one_core_h"] = round(
        paper.estimate_s(cell[:2], n90) / 3600, 1)
    path = Path(__file__).parent / "results" / f"simulate_{args.label}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
