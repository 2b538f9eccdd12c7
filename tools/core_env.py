"""Fresh virtual environments holding the project as a user installs it.

Used by ``tests/test_install.py`` (the core install, used from another folder) and
``tools/check_pyxem.py`` (the core install beside pyxem). The project is built into a
wheel (``python -m build --wheel``, the same as a release) and installed with pip from
a folder outside the repository, with the versions of ``constraints.txt`` except
:data:`CORE_OVERRIDES`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Where the core install departs from constraints.txt (the CI environment, which also
#: holds the simulate extra): abTEM >= 1.0.10 needs zarr >= 3.1, while HyperSpy's
#: .zspy (RosettaSciIO 0.15) and pyxem 0.21 need zarr < 3, which the core allows; zarr
#: 2.18 in turn needs numcodecs < 0.16.
CORE_OVERRIDES = {"zarr": "zarr==2.18.7", "numcodecs": "numcodecs==0.15.2"}


def _key(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~ ;@\[]", line.strip())[0]).lower()


def core_constraints(dest: Path) -> Path:
    """constraints.txt with :data:`CORE_OVERRIDES` applied, written to ``dest``."""
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines()
             if ln.strip() and _key(ln) not in CORE_OVERRIDES]
    dest = Path(dest)
    dest.write_text("\n".join(lines + list(CORE_OVERRIDES.values())) + "\n")
    return dest


def run(cmd, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run a command, output captured; raise with the output on failure."""
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode:
        err = "\n".join(ln for ln in p.stderr.splitlines()  # not pip's index notices
                        if not ln.startswith("WARNING: Location"))
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                           f"{p.stdout[-4000:]}\n{err[-4000:]}")
    return p


def build_wheel(outdir: Path) -> tuple[Path, str]:
    """The project's wheel, built as a release is (isolated build), and the build log."""
    outdir = Path(outdir)
    p = run([sys.executable, "-m", "build", "--wheel", "--outdir", outdir, ROOT],
            cwd=outdir, timeout=900)
    wheels = sorted(outdir.glob("tdm_widgets-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {outdir}, found {wheels}")
    return wheels[0], p.stdout + p.stderr


def make_venv(path: Path, requirements, constraints: Path, cwd: Path) -> Path:
    """A virtual environment at ``path`` with ``requirements`` installed by pip (run
    from ``cwd``, outside the repository); returns its python."""
    path = Path(path)
    run([sys.executable, "-m", "venv", path], cwd=cwd)
    py = path / ("Scripts" if os.name == "nt" else "bin") / "python"
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-q",
         "-c", constraints, *requirements], cwd=cwd, timeout=1200)
    return py


def installed(py: Path) -> dict[str, str]:
    """``{name: version}`` of every distribution in the environment of ``py``."""
    out = run([py, "-c", "import importlib.metadata as m; print('\\n'.join(f\"{d.name}=="
               "{d.version}\" for d in m.distributions()))"]).stdout
    return {_key(ln): ln.split("==")[1] for ln in out.splitlines() if "==" in ln}
