#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine that has only python3.

    python3 dev.py demo   # create .venv from the pinned constraints, run the main job
    python3 dev.py test   # same set-up, then every test (unit, notebooks, browser,
                          # the core-install venv, the wheel)

.venv holds the editable package with the ``test`` extra (which includes ``simulate``:
abTEM, ase), every version pinned by constraints.txt. Users install with
``pip install tdm-widgets`` instead (README, "Install").

The environment is rebuilt only when pyproject.toml or constraints.txt change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tdm-setup-stamp"


def _run(*cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, **kw)


def setup() -> None:
    """Create the virtual environment and install the pinned dependencies."""
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in
                                     ("pyproject.toml", "setup.py", "constraints.txt"))
                            ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        _run(sys.executable, "-m", "venv", VENV)
    pip = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run(*pip, "--upgrade", "pip")
    _run(*pip, "-c", ROOT / "constraints.txt", "-e", f"{ROOT}[test]")
    STAMP.write_text(digest)


def browser() -> None:
    """Debian's chromium for the browser test (test tools cannot download browsers
    here); installed with apt-get when running as root, else that test skips."""
    if shutil.which("chromium") or not shutil.which("apt-get"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.call(["apt-get", "install", "-y", "-q", "chromium"], env=env):
            _run("apt-get", "update", "-q", env=env)
            _run("apt-get", "install", "-y", "-q", "chromium", env=env)
    else:
        print("chromium is not installed and this is not root: the browser test will skip")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    setup()
    if argv[0] == "demo":
        return subprocess.call([BIN / "tdm", "demo", *argv[1:]], cwd=ROOT)
    if argv[0] == "test":
        browser()
        return subprocess.call([BIN / "python", "-m", "pytest", *argv[1:]], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
