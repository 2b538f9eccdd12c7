#!/usr/bin/env python3
"""Rewrite data_manifest.yaml from the dataset descriptions below and the files
themselves (shape, dtype, size, sha256 and parameters are read off each file).

Run after adding or regenerating data:  .venv/bin/python tools/build_manifest.py
"""


import re

import numpy as np
import validate_displacement
import validate_pacbed
import yaml

from tdm_widgets.manifest import MANIFEST, ROOT, entry_for, read_manifest, sha256

#: Issue 14 re-simulations: raw runs (tdm simulate --raw, native ~0.8 mrad detector to the
#: antialiasing limit, every exit plane) packed by `tdm pack`; `tdm_widgets.load` assembles
#: one detector. They replaced the 2 mrad, 4-configuration thickness series under the same
#: names and paths (the generator stored in each file names the folder it was packed into;
#: the manifest gives the command with the file's own path, see `_out_at`).
#: slab of the thickness, defocus and defect runs
SLAB_30 = ("lateral slab about 30 A (paper 80 x 80 A): the probe wraps around sooner at "
           "large thickness")
FINE_REDUCTIONS = [
    "potential sampling about 0.105 A (paper 0.073 A); antialiasing limit about 78-80 mrad",
    "simulated at the native sampling (0.76-0.83 mrad on a 30 A slab, 0.61-0.64 mrad on "
    "the domain wall's 39 x 41 A box); stored integrated onto 1 mrad pixels "
    "within +-32 mrad (BF disc 23.5 mrad) and 4 x 4 mrad pixel sums out to +-72 mrad "
    "(tdm_widgets.load spreads each ring sum evenly over its 16 pixels); corners beyond the "
    "antialiasing limit are zero",
    "PACBED of every exit plane kept at the native sampling (float32)",
    "stored as float16 scaled to intensity per 1e4 incident electrons "
    "(about 5e-4 relative precision)",
]
#: a thickness series scans one cell
ONE_CELL = ("one unit cell scanned, exactly periodic: a larger field of view is a tiling of "
            "whole cells (add independent noise after tiling)")

FINE = [
    dict(name="lifepo4_thickness", file="tdm_widgets/data/lifepo4_thickness.hspy",
         notebooks=["tdm demo", "notebooks/00_quickstart.ipynb", "notebooks/01_explorer.ipynb",
                    "notebooks/02_fig1_fig2_matrix_and_adf.ipynb",
                    "notebooks/03_fig3_species_images.ipynb",
                    "notebooks/06_fig6_compare_methods.ipynb",
                    "notebooks/07_si_robustness.ipynb", "notebooks/09_your_own_data.ipynb"],
         reductions=[SLAB_30] + FINE_REDUCTIONS + [ONE_CELL,
             "exit planes every 5 nm from 20 to 90 nm (PACBED); 4D data kept at 20, 40, 70, 90 nm",
             "wall time: this 2-core machine shared with other work, abTEM 1.0.11 CPU"]),
    dict(name="pbtio3_thickness", file="data/bundled/pbtio3_thickness.hspy",
         notebooks=["notebooks/06_fig6_compare_methods.ipynb", "notebooks/08_simulation.ipynb",
                    "tests/test_analysis.py (Ti-O displacement)"],
         reductions=[SLAB_30] + FINE_REDUCTIONS + [ONE_CELL,
             "exit planes every 5 nm from 20 to 60 nm (PACBED); 4D data kept at 20, 30, 45, 60 nm",
             "wall time: this 2-core machine shared with other work, abTEM 1.0.11 CPU"]),
    dict(name="lifepo4_defocus", file="data/bundled/lifepo4_defocus.hspy",
         notebooks=["notebooks/07_si_robustness.ipynb"],
         reductions=[SLAB_30] + FINE_REDUCTIONS + [ONE_CELL,
             "defocus -6, -3, +3, +6 nm at 70 nm; the in-focus member is the 70 nm plane of "
             "lifepo4_thickness (same preset, slab and detector layout)",
             "wall time: two runs of 4 configurations side by side on this 2-core machine, "
             "shared with other work, abTEM 1.0.11 CPU"]),
    dict(name="lifepo4_defects", file="data/bundled/lifepo4_defects.hspy",
         notebooks=["notebooks/04_fig4_defects.ipynb", "tools/validate_defects.py",
                    "tests/test_simulate.py (defects vs ground truth)"],
         reductions=[SLAB_30] + FINE_REDUCTIONS + [
             "2 x 2 cells scanned as one supercell (not a tiling), one defect per cell",
             "one exit plane, 70 nm",
             "wall time: two runs of 4 configurations side by side on this 2-core machine, "
             "shared with other work, abTEM 1.0.11 CPU"]),
    dict(name="pbtio3_domain_wall", file="data/bundled/pbtio3_domain_wall.hspy",
         notebooks=["notebooks/05_fig5_domain_wall.ipynb",
                    "tests/test_simulate.py (ADF vs ground truth)"],
         reductions=["lateral box 10 x 10 cells, 39 x 41 A (paper 80 x 80 A)"]
         + FINE_REDUCTIONS + [
             "6 x 6 cells scanned as one supercell across the wall (not a tiling), "
             "two cells of margin to the box edges", "scan step 0.4 A (paper ~0.3 A)",
             "one exit plane, 45 nm",
             "lattice of each domain kept tetragonal; the rotated domain is not periodic in "
             "the box, whose edges (two cells from the scan) carry a seam",
             "wall time: two runs of 4 configurations side by side on this 2-core machine, "
             "shared with other work, abTEM 1.0.11 CPU"]),
]

#: Bundled files that are not simulations (the manifest's ``files``): listed with their
#: checksum so that an install can fetch them (tdm_widgets.data_path).
FILES = [
    dict(name="lifepo4_positions", file="tdm_widgets/data/lifepo4_positions.json",
         format="tdm_widgets.positions (JSON)",
         description="LiFePO4 [001] column positions of the bundled simulation "
                     "(lifepo4_thickness, 20 x 34 scan) and one unit cell as the lattice "
                     "(tdm_widgets.load_positions)",
         notebooks=["tdm apply (README)", "notebooks/09_your_own_data.ipynb"]),
    dict(name="pbtio3_displacement_bias", file="tdm_widgets/data/pbtio3_displacement_bias.json",
         format="tdm_widgets.displacement_bias (JSON)",
         description="bias calibration of fit_displacements on PbTiO3 [100]: 84 runs of "
                     "the validation sets dev and heldout-heldout8 (true and measured Ti "
                     "displacement, thickness), written by "
                     "python tools/validate_displacement.py calibrate "
                     "(tdm_widgets.load_displacement_bias)",
         notebooks=["notebooks/05_fig5_domain_wall.ipynb", "tools/validate_displacement.py"]),
]

GENERATED = [
    dict(name="ci_lifepo4", tier="ci", file=None,
         generator="tdm simulate ci lifepo4 --thickness 1 2 --out TMP",
         parameters={"preset": "ci", "seconds": "about 5 on this machine"},
         notebooks=[], note="generated inside tests/test_simulate.py"),
    dict(name="paper_lifepo4_thickness", tier="paper", file=None,
         generator="tdm simulate paper lifepo4 --thickness 20 30 40 50 60 70 80 90 "
                   "--out data/paper/lifepo4_thickness.hspy",
         parameters={"preset": "paper (Table 1)", "cost": "needs a GPU (abTEM cupy) or days "
                     "of CPU: tdm simulate prints the estimate before it starts"},
         notebooks=["notebooks/08_simulation.ipynb"]),
    dict(name="paper_pbtio3_domain_wall", tier="paper", file=None,
         generator="tdm simulate paper pbtio3_domain_wall --thickness 45 "
                   "--out data/paper/pbtio3_domain_wall.hspy",
         parameters={"preset": "paper (Table 1)"}, notebooks=["notebooks/08_simulation.ipynb"]),
]

EXPERIMENTAL = [
    dict(name="experimental_lifepo4", description="LiFePO4 [001], about 72.5 nm, Merlin, "
         "200 kV, 23.5 mrad (Xie et al. 2026; from the authors on request)",
         register="add 'experimental_lifepo4: /path/to/file.mib' to "
                  "~/.config/tdm_widgets/data.yaml",
         notebooks=["notebooks/09_your_own_data.ipynb"]),
    dict(name="experimental_pbtio3", description="PbTiO3 [100] domain wall, about 49 nm, "
         "Merlin, 200 kV, 23.5 mrad (Xie et al. 2026; from the authors on request)",
         register="add 'experimental_pbtio3: /path/to/file.mib' to "
                  "~/.config/tdm_widgets/data.yaml",
         notebooks=["notebooks/09_your_own_data.ipynb"]),
]


def array_sha256(path, key: str) -> str:
    """sha256 of one array of a cached ``.npz`` (its bytes, C order): the zip around it
    carries write times, the array does not."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(np.load(path)[key]).tobytes()).hexdigest()


def _member(path, key: str, old: dict, **fields) -> dict:
    """One cached simulation: shape and checksum read off the file, or kept from the
    previous manifest where this machine has no cache."""
    rel = str(path.relative_to(ROOT))
    if path.exists():
        arr = np.load(path)[key]
        return dict(fields, cache=rel, array=key, shape=list(arr.shape), dtype=str(arr.dtype),
                    sha256=array_sha256(path, key))
    return old.get(rel, dict(fields, cache=rel, array=key))


#: The thinner defect supercell of the defect validation (README, "Thinner specimens"):
#: another thickness and phonon count than the bundled lifepo4_defects.
THIN_DEFECTS = ROOT / ".sim" / "lifepo4_defects_thin.hspy"


def _file_member(path, old: dict, **fields) -> dict:
    """One simulated file: its data's shape and dtype (as ``tdm_widgets.load`` gives
    them) and the file's sha256, or the previous manifest's entry without the file."""
    rel = str(path.relative_to(ROOT))
    if path.exists():
        from tdm_widgets import load

        s = load(path, lazy=True)
        return dict(fields, cache=rel, shape=list(s.data.shape), dtype=str(s.data.dtype),
                    sha256=sha256(path))
    return old.get(rel, dict(fields, cache=rel))


def validation_sets() -> list[dict]:
    """The simulations the validation tools make and cache in ``.sim/`` (README,
    validation table): settings from the tools themselves."""
    old = {m["cache"]: m for v in read_manifest().get("validation", [])
           for m in v["members"]}
    out = []
    for name, cfg in validate_displacement.SETS.items():
        out.append(dict(
            name=f"pbtio3_displacement_{name}", tier="validation",
            generator=f"python tools/validate_displacement.py simulate {name}",
            parameters=dict(structure="pbtio3(ti_displacement_A)", seed=cfg["seed"],
                            thickness_nm=list(cfg["thickness_nm"]),
                            preset=dict(base="bundled", **cfg["preset"])),
            members=[_member(validate_displacement.cache_path(name, d), "data", old,
                             ti_displacement_A=d) for d in cfg["shifts_A"]]))
    out.append(dict(
        name="pbtio3_displacement_second_draws", tier="validation",
        generator="python tools/validate_displacement.py simulate-second-draw SET",
        parameters=dict(structure="pbtio3(ti_displacement_A)",
                        note="one run per set at the set's settings, phonon seed + 100"),
        members=[_member(validate_displacement.second_draw_path(name, d), "data", old,
                         set=name, seed=validate_displacement.SETS[name]["seed"] + 100,
                         ti_displacement_A=d)
                 for name, shifts in validate_displacement.SECOND_DRAW.items()
                 for d in shifts]))
    out.append(dict(
        name="lifepo4_pacbed_heldout", tier="validation",
        generator="python tools/validate_pacbed.py simulate",
        parameters=dict(structure="lifepo4", seed=validate_pacbed.SEED,
                        thickness_nm=list(validate_pacbed.THICKNESS_NM),
                        preset=dict(base="bundled", **validate_pacbed.PRESET)),
        members=[_member(validate_pacbed.CACHE, "pacbed", old)]))
    out.append(dict(
        name="lifepo4_defects_thin", tier="validation",
        generator="tdm simulate bundled lifepo4_defects --thickness 30 40 --configs 4 --seed 0 "
                  "--raw .sim/lifepo4_defects_thin_raw && tdm pack .sim/lifepo4_defects_thin_raw "
                  "--out .sim/lifepo4_defects_thin.hspy --fine-mrad 32 --max-mrad 72 "
                  "--ring-factor 4",
        parameters=dict(structure="lifepo4_defects", seed=0, thickness_nm=[30, 40],
                        preset=dict(base="bundled", num_configs=4),
                        used_by="python tools/validate_defects.py --data "
                                ".sim/lifepo4_defects_thin.hspy --thickness 30|40",
                        wall="45 min for the simulation on this 2-core machine (shared); "
                             "the raw run is 1 GB"),
        members=[_file_member(THIN_DEFECTS, old)]))
    return out


def _out_at(generator: str, file: str) -> str:
    """``generator`` with the file it writes (``--out PATH``) at ``file``."""
    return re.sub(r"--out \S+", f"--out {file}", generator)


def main():
    datasets = []
    for d in FINE:
        path = ROOT / d["file"]
        if path.exists():
            e = entry_for(d["name"], path, "bundled", d["notebooks"], d["reductions"])
            e["generator"] = _out_at(e["generator"], d["file"])
            p = e["parameters"]
            seeds = f" (seeds {p['seeds']})" if "seeds" in p else ""
            e["reductions"].append(f"{p['preset']['num_configs']} frozen-phonon "
                                   f"configurations{seeds} (paper 20)")
            datasets.append(e)
    files = [dict(d, tier="bundled", size_bytes=(ROOT / d["file"]).stat().st_size,
                  sha256=sha256(ROOT / d["file"])) for d in FILES if (ROOT / d["file"]).exists()]
    datasets += GENERATED
    MANIFEST.write_text(
        "# Every dataset the project ships or generates. Written by tools/build_manifest.py;\n"
        "# check with `tdm data verify`, re-run a generator with `tdm data regenerate NAME`.\n"
        + yaml.safe_dump({"version": 1, "datasets": datasets, "files": files,
                          "experimental": EXPERIMENTAL, "validation": validation_sets()},
                         sort_keys=False, width=100))
    print(f"wrote {MANIFEST} ({len(datasets)} datasets, {len(files)} other files)")


if __name__ == "__main__":
    main()
