"""``data_manifest.yaml``: every dataset of every tier, checked against the files.

Experimental slots are filled by the user in ``~/.config/tdm_widgets/data.yaml``
(or the file named by ``$TDM_DATA_CONFIG``) as ``name: /path/to/file``; the project's
manifest itself is never edited by a user.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "data_manifest.yaml"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(2**20), b""):
            h.update(piece)
    return h.hexdigest()


def read_manifest(path: Path = MANIFEST) -> dict:
    """The parsed manifest."""
    with open(path) as f:
        return yaml.safe_load(f)


def user_paths() -> dict:
    """Experimental-data paths registered by the user (empty if none)."""
    cfg = Path(os.environ.get("TDM_DATA_CONFIG",
                              Path.home() / ".config" / "tdm_widgets" / "data.yaml"))
    if not cfg.exists():
        return {}
    return yaml.safe_load(cfg.read_text()) or {}


def dataset_path(name: str, manifest: dict | None = None) -> Path | None:
    """Where a dataset is on this machine, or None if it is absent."""
    man = manifest or read_manifest()
    for d in man.get("datasets", []):
        if d["name"] == name and d.get("file"):
            p = ROOT / d["file"]
            return p if p.exists() else None
    for d in man.get("experimental", []):
        if d["name"] == name:
            p = user_paths().get(name)
            return Path(p) if p and Path(p).exists() else None
    raise KeyError(f"no dataset {name!r} in the manifest")


def verify(manifest: dict | None = None) -> list[tuple[str, str]]:
    """Check every present file against its size and checksum.

    Returns
    -------
    list of (name, status)
        ``"ok"``, ``"absent"`` or a description of the mismatch.
    """
    man = manifest or read_manifest()
    out = []
    for d in man.get("datasets", []):
        if not d.get("file"):
            out.append((d["name"], f"generated on demand ({d['tier']} tier)"))
            continue
        p = ROOT / d["file"]
        if not p.exists():
            out.append((d["name"], "absent"))
        elif p.stat().st_size != d["size_bytes"]:
            out.append((d["name"], f"size {p.stat().st_size} != {d['size_bytes']}"))
        elif sha256(p) != d["sha256"]:
            out.append((d["name"], "sha256 mismatch"))
        else:
            out.append((d["name"], "ok"))
    for d in man.get("experimental", []):
        p = user_paths().get(d["name"])
        out.append((d["name"], f"registered: {p}" if p else "absent (not registered)"))
    return out


def regenerate(name: str, rtol: float = 1e-3, manifest: dict | None = None) -> float:
    """Re-run a dataset's generator into a temporary file and compare with the
    committed file.

    Returns
    -------
    float
        Largest difference relative to the largest intensity; raises if above
        ``rtol`` (float16 storage keeps ~5e-4 relative precision).
    """
    import hyperspy.api as hs

    man = manifest or read_manifest()
    entry = next((d for d in man["datasets"] if d["name"] == name), None)
    if entry is None or not entry.get("generator"):
        raise KeyError(f"no generated dataset {name!r} in the manifest")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "regen.hspy"
        cmd = shlex.split(entry["generator"])
        cmd[cmd.index("--out") + 1] = str(out)
        subprocess.run(cmd, check=True, cwd=ROOT)
        new = hs.load(out).data.astype(np.float64)
    old = hs.load(ROOT / entry["file"]).data.astype(np.float64)
    if new.shape != old.shape:
        raise ValueError(f"regenerated shape {new.shape} != committed {old.shape}")
    diff = float(np.max(np.abs(new - old)) / np.max(np.abs(old)))
    if diff > rtol:
        raise ValueError(f"regenerated {name} differs by {diff:.2e} (> {rtol:g})")
    return diff


def entry_for(name: str, file: Path, tier: str, notebooks: list[str], reductions: list[str]
              ) -> dict:
    """A manifest entry read off a generated file (shape, dtype, size, checksum and
    the simulation parameters stored in it)."""
    import hyperspy.api as hs

    s = hs.load(file, lazy=True)
    sim = s.metadata.Simulation
    params = sim.parameters.as_dictionary()
    return {
        "name": name, "tier": tier, "file": str(Path(file).resolve().relative_to(ROOT)),
        "generator": sim.generator_command, "parameters": _plain(params),
        "shape": list(s.data.shape), "dtype": str(s.data.dtype),
        "size_bytes": Path(file).stat().st_size, "sha256": sha256(Path(file)),
        "notebooks": notebooks, "reductions": reductions,
    }


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x
