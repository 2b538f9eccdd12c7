"""Benchmark (not a test): a large lazy 12-bit Merlin ``.mib`` through tdm-widgets and
through LiberTEM's own MIB reader + ApplyMasksUDF, with time and peak memory as ratios
to a plain sequential read of the same file, measured in the same run.

    .venv/bin/python benchmarks/bench_mib.py --gb 8 --path /work/scratch/bench.mib

Writes the file with the test writer (``tests/merlin_writer.py``) unless it exists
(``--keep`` leaves it; otherwise it is deleted at the end). Every operation runs in a
fresh process so its peak resident memory (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DET = (256, 256)


class Rows:
    """Scan rows of 12-bit counts made on the fly (a BF disc whose intensity and a
    ring whose intensity follow two column types), so the file can exceed memory."""

    def __init__(self, scan):
        self.shape = tuple(scan) + DET
        yy, xx = np.indices(DET)
        r = np.hypot(yy - 127.3, xx - 128.6)
        self.disc = (r < 40).astype(np.uint16) * 200
        self.ring = ((r > 50) & (r < 90)).astype(np.uint16) * 3
        self.noise = np.random.default_rng(0).integers(0, 4, (7,) + DET, dtype=np.uint16)

    def __iter__(self):
        sy, sx = self.shape[:2]
        x = np.arange(sx)
        for y in range(sy):
            a = ((y % 4 == 1) & (x % 3 == 1)).astype(np.uint16)
            b = ((y % 4 == 3) & (x % 3 == 2)).astype(np.uint16)
            yield (self.disc[None] - 40 * a[:, None, None] * (self.disc[None] > 0)
                   + self.ring[None] * (1 + b[:, None, None])
                   + self.noise[(x + y) % 7])


def templates(scan):
    sy, sx = scan
    y, x = np.indices(scan)
    t = np.zeros((5, sy, sx))
    t[0] = (y % 4 == 1) & (x % 3 == 1)
    t[1] = (y % 4 == 3) & (x % 3 == 2)
    t[2] = (y % 4 == 0) & (x % 3 == 0)
    t[3] = (y % 4 == 2) & (x % 3 == 1)
    t[4] = t[:4].max(axis=0)
    return t


def _child(op: str, path: str, scan) -> dict:
    t0 = time.perf_counter()
    if op == "read":
        buf = bytearray(64 * 2**20)
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    elif op in ("tdm", "tdm_images"):
        import dask

        import tdm_widgets as tw

        dask.config.set(scheduler="threads")
        t0 = time.perf_counter()  # after the imports, as for LiberTEM below
        s = tw.load(path, lazy=True, navigation_shape=scan[::-1])
        t = templates(scan)
        if op == "tdm":
            masks = tw.pcc_mask(s, t, show_progressbar=False)
        else:
            masks = np.random.default_rng(1).standard_normal((5,) + DET)
            t0 = time.perf_counter()  # the image pass alone (like ApplyMasksUDF)
        tw.apply_mask(s, masks, show_progressbar=False).data.compute()
    elif op == "libertem":
        from libertem.api import Context
        from libertem.udf.masks import ApplyMasksUDF

        ctx = Context.make_with("threads", cpus=os.cpu_count())
        ds = ctx.load("mib", path=path, nav_shape=scan)
        masks = np.random.default_rng(1).standard_normal((5,) + DET).astype(np.float32)
        udf = ApplyMasksUDF(mask_factories=[(lambda m=m: m) for m in masks])
        t0 = time.perf_counter()
        ctx.run_udf(dataset=ds, udf=udf)
        ctx.close()
    return {"op": op, "time_s": time.perf_counter() - t0,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--gb", type=float, default=8.0, help="file size [GB]")
    p.add_argument("--path", default="/work/scratch/bench_mib.mib")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--child", default=None)
    p.add_argument("--scan", type=int, nargs=2, default=None)
    a = p.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.path, tuple(a.scan))))
        return
    frame = 384 + DET[0] * DET[1] * 2
    sx = 256
    sy = max(1, int(np.ceil(a.gb * 1e9 / frame / sx)))
    path = Path(a.path)
    sys.path.insert(0, str(ROOT / "tests"))
    from merlin_writer import write_mib

    if not path.exists():
        t0 = time.perf_counter()
        write_mib(path, Rows((sy, sx)), 12)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB, scan {sy} x {sx}, "
              f"detector {DET}, 12-bit) in {time.perf_counter() - t0:.0f} s")
    size = path.stat().st_size
    rows = []
    for op in ("read", "tdm", "tdm_images", "libertem", "read"):
        out = subprocess.run([sys.executable, __file__, "--child", op, "--path", str(path),
                              "--scan", str(sy), str(sx)], capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            print(f"{op}: failed\n{out.stderr[-2000:]}")
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = min(r["time_s"] for r in rows if r["op"] == "read")
    base_mem = min(r["peak_rss_mib"] for r in rows if r["op"] == "read")
    print(f"file {size / 1e9:.2f} GB; {os.cpu_count()} cores")
    print(f"{'operation':<42}{'time [s]':>10}{'x read':>8}{'peak RSS [MiB]':>16}")
    names = {"read": "plain sequential read (64 MiB buffers)",
             "tdm": "tdm-widgets: 5 masks + 5 images (2 passes)",
             "tdm_images": "tdm-widgets: 5 images (1 pass)",
             "libertem": "LiberTEM MIB reader + ApplyMasksUDF, 5"}
    for r in rows:
        print(f"{names[r['op']]:<42}{r['time_s']:>10.1f}{r['time_s'] / base:>8.2f}"
              f"{r['peak_rss_mib']:>16.0f}")
    print(f"(read's own peak RSS {base_mem:.0f} MiB)")
    if not a.keep:
        path.unlink()
        path.with_suffix(".hdr").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
