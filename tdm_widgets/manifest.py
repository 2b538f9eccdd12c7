"""``data_manifest.yaml``: every dataset of every tier, checked against the files.

In a repository checkout the manifest is the file at the repository root; an installed
package carries a copy as ``tdm_widgets/data/data_manifest.yaml`` (put there when the
wheel is built). :func:`tdm_widgets.data_path` finds each file (checkout, package or
download cache, see :mod:`tdm_widgets.datasets`).

Experimental slots are filled by the user in ``~/.config/tdm_widgets/data.yaml``
(or the file named by ``$TDM_DATA_CONFIG``) as ``name: /path/to/file``; the project's
manifest itself is never edited by a user.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

#: The repository root in a checkout (the folder holding ``tdm_widgets/``).
ROOT = Path(__file__).resolve().parents[1]
#: The manifest of a checkout (written by tools/build_manifest.py).
MANIFEST = ROOT / "data_manifest.yaml"
#: The copy an installed package carries.
PACKAGED_MANIFEST = Path(__file__).resolve().parent / "data" / "data_manifest.yaml"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(2**20), b""):
            h.update(piece)
    return h.hexdigest()


def manifest_file() -> Path:
    """The manifest in force: the checkout's, else the installed package's copy."""
    if MANIFEST.is_file():
        return MANIFEST
    if PACKAGED_MANIFEST.is_file():
        return PACKAGED_MANIFEST
    raise FileNotFoundError(f"no data manifest: neither {MANIFEST} (a checkout) nor "
                            f"{PACKAGED_MANIFEST} (an installed package) exists")


def read_manifest(path: Path | None = None) -> dict:
    """The parsed manifest (:func:`manifest_file` if ``path`` is None)."""
    with open(path or manifest_file()) as f:
        return yaml.safe_load(f)


def user_paths() -> dict:
    """Experimental-data paths registered by the user (empty if none)."""
    cfg = Path(os.environ.get("TDM_DATA_CONFIG",
                              Path.home() / ".config" / "tdm_widgets" / "data.yaml"))
    if not cfg.exists():
        return {}
    return yaml.safe_load(cfg.read_text()) or {}


def dataset_path(name: str, manifest: dict | None = None) -> Path | None:
    """Where a dataset is on this machine (checkout, installed package, download cache
    or the user's registration), or None if it is absent; nothing is downloaded."""
    from .datasets import local_path

    man = manifest or read_manifest()
    for d in man.get("datasets", []) + man.get("files", []):
        if d["name"] == name and d.get("file"):
            return local_path(d)[0]
    for d in man.get("experimental", []):
        if d["name"] == name:
            p = user_paths().get(name)
            return Path(p) if p and Path(p).exists() else None
    raise KeyError(f"no dataset {name!r} in the manifest")


def verify(manifest: dict | None = None, names=None, cache_dir=None
           ) -> list[tuple[str, str]]:
    """Check every present file against its size and checksum.

    Parameters
    ----------
    manifest : dict, optional
        The manifest (default: the one found by :func:`read_manifest`).
    names : list of str, optional
        Only these datasets (``KeyError`` for a name not in the manifest).
    cache_dir : str or Path, optional
        Download cache to look in (default as for :func:`tdm_widgets.data_path`).

    Returns
    -------
    list of (name, status)
        ``"ok"`` (``"ok (downloaded)"`` for a file in the download cache), ``"absent
        ..."`` for a file neither here nor downloaded yet, or a description of the
        mismatch (a downloaded copy changed since is one).
    """
    from .datasets import local_path, resolve_cache_dir

    man = manifest or read_manifest()
    out = []
    entries = man.get("datasets", []) + man.get("files", [])
    if names:
        known = {d["name"] for d in entries + man.get("experimental", [])}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise KeyError(f"not in the manifest: {', '.join(unknown)} (tdm data verify "
                           "lists every dataset)")
        entries = [d for d in entries if d["name"] in names]
    for d in entries:
        if not d.get("file"):
            out.append((d["name"], f"generated on demand ({d['tier']} tier)"))
            continue
        p, where = local_path(d, cache_dir)  # checkout or package copy; a download if intact
        cached = resolve_cache_dir(cache_dir) / d["file"]
        if p is None and cached.is_file():
            out.append((d["name"], f"sha256 mismatch: the downloaded copy {cached} changed "
                                   f"since (delete it, then tdm data fetch {d['name']})"))
        elif p is None:
            out.append((d["name"], f"absent (not downloaded: tdm data fetch {d['name']}, "
                                   "or tdm_widgets.data_path)"))
        elif where == "cache":
            out.append((d["name"], "ok (downloaded)"))
        elif p.stat().st_size != d["size_bytes"]:
            out.append((d["name"], f"size {p.stat().st_size} != {d['size_bytes']}"))
        elif sha256(p) != d["sha256"]:
            out.append((d["name"], "sha256 mismatch"))
        else:
            out.append((d["name"], "ok"))
    for d in man.get("experimental", []):
        if names and d["name"] not in names:
            continue
        p = user_paths().get(d["name"])
        out.append((d["name"], f"registered: {p}" if p else "absent (not registered)"))
    return out


def _run_generator(cmd: list[str]) -> None:
    """Run one generator command, its output passed through; a failure is a ValueError
    carrying the command's own ``tdm: error:`` line (so the CLI still prints one)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    said = ""
    for line in proc.stderr:
        if line.startswith("tdm: error:"):
            said = line[len("tdm: error:"):].strip()
        else:
            sys.stderr.write(line)
    if proc.wait():
        raise ValueError(f"{shlex.join(cmd)} failed (exit {proc.returncode})"
                         + (f": {said}" if said else ""))


def regenerate(name: str, rtol: float = 1e-3, manifest: dict | None = None) -> float:
    """Re-run a dataset's generator into a temporary folder and compare with the
    committed file.

    The generator is one ``tdm`` command or several joined by ``&&`` (a raw run
    ``tdm simulate ... --raw DIR`` and ``tdm pack DIR --out FILE``); every ``--out``
    and the raw folder are redirected to the temporary folder.

    Returns
    -------
    float
        Largest difference relative to the largest intensity, over the detector as
        :func:`tdm_widgets.load` returns it; raises if above ``rtol`` (float16
        storage keeps ~5e-4 relative precision).
    """
    from .io import load

    man = manifest or read_manifest()
    entry = next((d for d in man["datasets"] if d["name"] == name), None)
    if entry is None or not entry.get("generator"):
        raise KeyError(f"no generated dataset {name!r} in the manifest")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "regen.hspy"
        cmds = [shlex.split(c) for c in entry["generator"].split("&&")]
        raw = {c[c.index("--raw") + 1]: str(Path(tmp) / f"raw{i}")
               for i, c in enumerate(cmds) if "--raw" in c}
        for cmd in cmds:
            cmd[:] = [raw.get(a, a) for a in cmd]
            if "--out" in cmd:
                cmd[cmd.index("--out") + 1] = str(out)
            _run_generator(cmd)
        new = np.asarray(load(out).data, np.float64)
    from .datasets import entry_path

    old = np.asarray(load(entry_path(entry)).data, np.float64)
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
    entry = {
        "name": name, "tier": tier, "file": str(Path(file).resolve().relative_to(ROOT)),
        "generator": sim.generator_command, "parameters": _plain(params),
        "shape": list(s.data.shape), "dtype": str(s.data.dtype),
        "size_bytes": Path(file).stat().st_size, "sha256": sha256(Path(file)),
        "notebooks": notebooks, "reductions": reductions,
    }
    layout = sim.get_item("detector_layout")
    if layout is not None:  # packed: fine centre stored, tdm_widgets.load assembles
        lay = {k: _plain(v) for k, v in layout.as_dictionary().items() if k != "ring_index"}
        entry["detector"] = dict(lay, loaded_shape=list(s.data.shape[:-2])
                                 + [lay["n_full"], lay["n_full"]],
                                 ring_shape=list(sim.ring.shape))
        entry["pacbed_thickness_nm"] = _plain(np.asarray(sim.pacbed_thickness_nm))
    return entry


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
