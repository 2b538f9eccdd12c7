"""ruff (configured in pyproject.toml) finds nothing in the library and the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return [shutil.which("ruff")]
    pytest.importorskip("ruff")
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing():
    proc = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise",
                           "tdm_widgets", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        "ruff findings (fix them, or `ruff check --fix tdm_widgets tests` for the "
        f"automatic ones):\n{proc.stdout}{proc.stderr}")


def test_library_does_not_print():
    """Only the command line prints (ruff's T20 rule, kept on for tdm_widgets/)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")

    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "T20" in lint["select"]
    ignored = {k: v for k, v in lint.get("per-file-ignores", {}).items()
               if k.startswith("tdm_widgets") and {"T20", "T201"} & set(v)}
    assert set(ignored) <= {"tdm_widgets/cli.py"}, ignored
