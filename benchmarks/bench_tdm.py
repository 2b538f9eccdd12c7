#!/usr/bin/env python3
"""Speed and memory of the TDM engine against a streaming read of the same array.

Prints one table per dataset: each operation's time (best of five, after one
unmeasured run), its ratio to the baseline read
(numpy column sum of D, measured in the same run on the same array) and the extra
resident memory while it ran. A parallel read on all cores is printed too: it is this
machine's floor for one pass (the kernels run on all cores, so they can beat the
single-threaded baseline). Datasets: the bundled simulation, a synthetic
128 x 128 x 128 x 128 float32 array (1 GiB) and the same as uint16 counts.

    .venv/bin/python benchmarks/bench_tdm.py [--small]
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

import numpy as np
import psutil

try:
    import numba
except ImportError:
    numba = None

import tdm_widgets as tw
from tdm_widgets.column_templates import point_templates
from tdm_widgets.core.apply import apply_masks
from tdm_widgets.core.correlate import pcc_masks
from tdm_widgets.core.engine import TDMEngine

PROC = psutil.Process()


def measure(fn, repeat=5, warm=True):
    """Best wall time [s] of ``repeat`` runs and their peak extra RSS [bytes], after one
    unmeasured run if ``warm`` (compilation, thread pools and allocator arenas are
    one-off costs)."""
    if warm:
        out = fn()
        if hasattr(out, "compute"):
            out.compute()
    best, peak_extra = np.inf, 0
    for _ in range(repeat):
        base = PROC.memory_info().rss
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], PROC.memory_info().rss)
                time.sleep(0.002)

        th = threading.Thread(target=sample)
        th.start()
        t0 = time.perf_counter()
        out = fn()
        if hasattr(out, "compute"):
            out = out.compute()
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
        best = min(best, dt)
        peak_extra = max(peak_extra, peak[0] - base)
    return best, peak_extra


def templates_for(shape, k=5, seed=0, sigma_px=0.0):
    """k point templates on a square lattice with a random basis (like species): single
    pixels (sparse, as painted) or, with ``sigma_px``, periodic Gaussians (dense)."""
    rng = np.random.default_rng(seed)
    period = 8
    cols = {}
    for i in range(k - 1):
        off = rng.uniform(0, period, 2)
        yy, xx = np.meshgrid(np.arange(off[0], shape[0], period),
                             np.arange(off[1], shape[1], period), indexing="ij")
        cols[f"s{i}"] = np.stack([yy.ravel(), xx.ravel()], 1)
    t, _ = point_templates(cols, shape, combined="all", sigma_px=sigma_px)
    return t


def naive(data, t, masks):
    """Reference that materialises the normalised matrix D_hat (float64)."""
    sy, sx, dy, dx = data.shape
    D = data.reshape(sy * sx, dy * dx).astype(np.float64)
    D -= D.mean(0)
    sd = D.std(0)
    D /= np.where(sd > 0, sd, 1)
    T = t.reshape(len(t), -1)
    T = (T - T.mean(1, keepdims=True)) / T.std(1, keepdims=True)
    m = T @ D / D.shape[0]
    return m, D @ masks.reshape(len(masks), -1).T


def libertem_apply(data, masks):
    from libertem.api import Context
    from libertem.udf.masks import ApplyMasksUDF

    ctx = Context.make_with("inline")
    ds = ctx.load("memory", data=data, sig_dims=2)
    factories = [(lambda m=m: m) for m in masks.astype(np.float32)]
    udf = ApplyMasksUDF(mask_factories=factories)
    return lambda: ctx.run_udf(ds, udf)["intensity"].data


if numba is not None:
    @numba.njit(parallel=True, fastmath=True)
    def _parallel_row_sums(x, out):
        for i in numba.prange(x.shape[0]):
            acc = 0.0
            for j in range(x.shape[1]):
                acc += x[i, j]
            out[i] = acc


def parallel_read(D):
    """Sum every row on all cores (numba): how fast this machine can stream D."""
    out = np.empty(D.shape[0])
    return lambda: _parallel_row_sums(D, out)


def run(name, data, with_naive=True):
    nbytes = data.nbytes
    D = data.reshape(data.shape[0] * data.shape[1], -1)
    t = templates_for(data.shape[:2])
    rows = []
    base, base_mem = measure(lambda: D.sum(axis=0))
    rows.append(("baseline read (numpy column sum)", base, base_mem))
    if numba is not None and data.dtype != np.float16:
        read = parallel_read(D)
        rows.append((f"parallel read (numba, {numba.get_num_threads()} threads)",
                     *measure(read)))
    rows.append(("masks, 1 template", *measure(lambda: pcc_masks(data, t[:1], progress=False))))
    rows.append(("masks, 5 templates", *measure(lambda: pcc_masks(data, t, progress=False))))
    dense = templates_for(data.shape[:2], sigma_px=2.0)
    rows.append(("masks, 5 Gaussian templates (dense)", *measure(
        lambda: pcc_masks(data, dense, progress=False))))
    masks, _ = pcc_masks(data, t, progress=False)
    rows.append(("5 images (Eq 2)", *measure(lambda: apply_masks(data, masks, progress=False))))
    for label, tt in (("masks + images, 5 templates", t),
                      ("masks + images, 5 Gaussian templates", dense)):
        rows.append((label, *measure(
            lambda: apply_masks(data, pcc_masks(data, tt, progress=False)[0],
                                progress=False))))
    eng = TDMEngine(data, t, show_progressbar=False)
    delta = np.zeros(data.shape[:2])

    def edit():
        delta[:] = 0
        delta[np.random.randint(data.shape[0]), np.random.randint(data.shape[1])] = 1
        eng.edit(0, delta)
        return eng.images(eng.masks()[:1], show_progressbar=False)

    rows.append(("template edit: one column -> new mask and image", *measure(edit)))
    rows.append(("LiberTEM ApplyMasksUDF, 5 masks (inline)", *measure(libertem_apply(data, masks))))
    if with_naive:
        rows.append(("naive: materialised D_hat, masks + images", *measure(
            lambda: naive(data, t, masks), repeat=1, warm=False)))
    print(f"\n{name}: shape {data.shape} {data.dtype}, {nbytes / 2**20:.0f} MiB")
    print(f"{'operation':<50}{'time [s]':>10}{'x read':>8}{'extra mem':>12}{'% data':>8}")
    for label, dt, mem in rows:
        print(f"{label:<50}{dt:>10.3f}{dt / base:>8.2f}{mem / 2**20:>9.0f} MiB"
              f"{100 * mem / nbytes:>7.0f}%")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="64^4 synthetic instead of 128^4")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB; numpy {np.__version__}; "
          f"tdm_widgets {tw.__version__}")
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import select

    sim = np.ascontiguousarray(select(tw.load(BUNDLED), thickness_nm=70).data)
    run("bundled LiFePO4 simulation (float16 as stored)", sim)
    n = 64 if args.small else 128
    rng = np.random.default_rng(1)
    syn = rng.random((n, n, n, n), dtype=np.float32)
    run("synthetic float32", syn)
    counts = rng.poisson(3.0, size=(n, n, n, n)).astype(np.uint16)
    del syn
    run("synthetic uint16 counts", counts)


if __name__ == "__main__":
    main()
