#!/usr/bin/env python3
"""pyxem 0.21 beside the core install, in a fresh virtual environment.

    .venv/bin/python tools/check_pyxem.py [--keep DIR]

Builds the project's wheel, installs it (no extras) together with pyxem 0.21 into a new
venv (constraints.txt versions, zarr 2 as the core allows: pyxem 0.21 needs zarr < 3),
then, from a folder outside the repository, turns the bundled LiFePO4 simulation into
a pyxem ``ElectronDiffraction2D`` calibrated in A^-1 (with pyxem's own calibration
tools and the beam energy), and pushes it through ``tdm_widgets.pcc_mask`` /
``apply_mask``: the masks come back in mrad, equal to those of the mrad original,
as pyxem signals with the beam energy and convergence angle. Also a .zspy round trip.
Prints what it found; exit code 0 when every check holds. Needs the network (or a pip
cache) for pyxem and its dependencies; about 2-3 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import core_env  # noqa: E402

PYXEM = "pyxem==0.21.0"

CHECK = """
import warnings
import numpy as np
import hyperspy.api as hs
import pyxem as pxm
import tdm_widgets as tw
from tdm_widgets.simulate import columns_of, select

print("pyxem", pxm.__version__, "hyperspy", hs.__version__, "tdm_widgets", tw.__version__)
series = tw.load(tw.data_path("lifepo4_thickness"))
s = select(series, thickness_nm=70)
cols = columns_of(series)
t, names = tw.point_templates(cols, s.data.shape[:2])
ref = tw.pcc_mask(s, t, detector_region=(0, 23.5), show_progressbar=False)

# the same data as a pyxem user holds it: ElectronDiffraction2D, detector in A^-1
ed = pxm.signals.ElectronDiffraction2D(np.asarray(s.data))
for a, b in zip(ed.axes_manager._axes, s.axes_manager._axes):
    a.scale, a.offset, a.units, a.name = b.scale, b.offset, b.units, b.name
ed.calibration.beam_energy = 200            # pyxem: beam energy [kV] and wavelength
ed.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 23.5)
ed.calibration.convert_signal_units("A^-1")  # pyxem's own conversion
kx = ed.axes_manager.signal_axes[0]
print("pyxem detector:", type(ed).__name__, repr(kx.units), f"{kx.scale:.6g} per px")
assert "AA" in kx.units and "-1" in kx.units, kx.units
mrad = s.axes_manager.signal_axes[0].scale
assert abs(kx.scale - mrad * 1e-3 / 0.025079) < 1e-3 * kx.scale

masks = tw.pcc_mask(ed, t, detector_region=(0, 23.5), show_progressbar=False)
print("masks:", type(masks).__name__, masks.metadata.Signal.signal_type,
      [(a.units, round(a.scale, 6)) for a in masks.axes_manager.signal_axes])
assert isinstance(masks, pxm.signals.ElectronDiffraction2D)
assert all(a.units == "mrad" for a in masks.axes_manager.signal_axes)
assert masks.metadata.Acquisition_instrument.TEM.beam_energy == 200
err = float(np.abs(masks.data - ref.data).max())
print(f"masks from A^-1 vs from mrad: max |difference| {err:.2e}")
assert err < 1e-9
images = tw.apply_mask(ed, masks, normalized=True, show_progressbar=False)
z = {n: tw.specificity(im, cols)[n] for n, im in zip(names, images.data) if n in cols}
print("z-score at own columns:", {k: round(v, 2) for k, v in z.items()})
assert z["Li"] > 2 and z["O"] > 2

# no beam energy: a clear error
bad = ed.deepcopy()
del bad.metadata.Acquisition_instrument.TEM.beam_energy
try:
    tw.pcc_mask(bad, t, show_progressbar=False)
except ValueError as e:
    print("without beam energy:", str(e)[:110], "...")
    assert "beam_energy" in str(e)
else:
    raise AssertionError("no error without the beam energy")

# .zspy beside pyxem (zarr < 3)
ed.save("ed.zspy", overwrite=True)
back = hs.load("ed.zspy", lazy=True)
print("zspy:", type(back).__name__)
m2 = tw.pcc_mask(back, t, detector_region=(0, 23.5), show_progressbar=False)
assert float(np.abs(m2.data - ref.data).max()) < 1e-9
print("ALL CHECKS PASSED")
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", default=None, help="build the venv here and keep it")
    args = p.parse_args(argv)
    base = Path(args.keep or tempfile.mkdtemp(prefix="tdm-pyxem-"))
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        wheel, _ = core_env.build_wheel(base)
        constraints = core_env.core_constraints(base / "constraints-core.txt")
        py = core_env.make_venv(base / "venv", [wheel, PYXEM], constraints, cwd=base)
        dists = core_env.installed(py)
        print(f"venv in {time.perf_counter() - t0:.0f} s: pyxem {dists.get('pyxem')}, "
              f"hyperspy {dists.get('hyperspy')}, zarr {dists.get('zarr')}, "
              f"numpy {dists.get('numpy')}, tdm-widgets {dists.get('tdm-widgets')}; "
              f"abtem {'present' if 'abtem' in dists else 'absent'}")
        pip_check = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True,
                                   text=True)
        print("pip check:", pip_check.stdout.strip() or pip_check.stderr.strip())
        work = base / "work"
        work.mkdir(exist_ok=True)
        r = subprocess.run([str(py), "-c", textwrap.dedent(CHECK)], cwd=work, text=True,
                           capture_output=True, timeout=600)
        print(r.stdout, end="")
        if r.returncode:
            print(r.stderr[-4000:], file=sys.stderr)
        print(f"total {time.perf_counter() - t0:.0f} s")
        return r.returncode or pip_check.returncode
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
