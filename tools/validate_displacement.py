#!/usr/bin/env python3
"""Ti-O displacement on PbTiO3 [100] simulations made with other settings than the
bundled ones (issue 15): known Ti shifts from the O cage at several thicknesses.

    python tools/validate_displacement.py simulate   # abTEM runs, cached in .sim/pto_disp
    python tools/validate_displacement.py measure    # the bias table quoted in the README

Settings (none of them the bundled preset's): 22 angstrom slab, 0.1 angstrom potential
grid, 0.33 angstrom scan step, 4 frozen-phonon configurations with seed 5, 2 mrad
detector pixels to 64 mrad; Ti displaced -0.317, 0 and +0.200 angstrom from the centre
of its four O neighbours; exit planes at 20, 32 and 45 nm.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".sim" / "pto_disp"
SHIFTS_A = (-0.317, 0.0, 0.2)
THICKNESS_NM = (20.0, 32.0, 45.0)


def cache_path(shift_A: float) -> Path:
    """Cached simulation of one Ti shift."""
    return CACHE / f"pto_ti{shift_A:+.3f}.npz"


def simulate() -> None:
    from tdm_widgets.simulate import PRESETS, pbtio3, run_multislice

    preset = replace(PRESETS["bundled"], name="validation", lateral_A=22.0, sampling_A=0.1,
                     num_configs=4, scan_step_A=0.33, max_angle_mrad=64.0, mrad_per_px=2.0)
    CACHE.mkdir(parents=True, exist_ok=True)
    for d in SHIFTS_A:
        out = cache_path(d)
        if out.exists():
            continue
        t0 = time.time()
        res = run_multislice(pbtio3(d), preset, THICKNESS_NM, seed=5, progress=False)
        np.savez_compressed(out, data=res.data[0], thickness_nm=res.thickness_nm,
                            scan_step_A=np.asarray(res.scan_step_A),
                            mrad_per_px=res.mrad_per_px, shift_A=d,
                            **{f"col_{k}": v for k, v in res.columns.items()})
        print(f"Ti shift {d:+.3f} A: {time.time() - t0:.0f} s -> {out}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["simulate"]:
        simulate()
    else:
        print(__doc__)
