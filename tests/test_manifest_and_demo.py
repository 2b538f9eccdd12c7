"""The data manifest matches the files; the main job runs on the bundled data."""

import shlex

import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets import manifest
from tdm_widgets.cli import main
from tdm_widgets.column_templates import specificity
from tdm_widgets.demo import BUNDLED, run_demo


def test_every_present_file_matches_the_manifest():
    man = manifest.read_manifest()
    rows = dict(manifest.verify(man))
    for d in man["datasets"]:
        if d.get("file"):  # committed files must be present and unchanged
            assert rows[d["name"]] == "ok", (d["name"], rows[d["name"]])
    names = [d["name"] for d in man["datasets"]]
    assert len(names) == len(set(names))
    for d in man["experimental"]:
        assert d["register"] and d["description"]


def _without_out(command):
    """A generator's words with every ``--out`` target blanked, and the targets."""
    words = shlex.split(command)
    outs = [i + 1 for i, w in enumerate(words) if w == "--out"]
    return [("OUT" if i in outs else w) for i, w in enumerate(words)], [words[i] for i in outs]


def test_manifest_shapes_dtypes_and_generators():
    import hyperspy.api as hs

    from tdm_widgets.cli import main as cli

    for d in manifest.read_manifest()["datasets"]:
        if d.get("file"):
            s = hs.load(manifest.ROOT / d["file"], lazy=True)
            assert list(s.data.shape) == d["shape"] and str(s.data.dtype) == d["dtype"]
            # the command stored in the file, writing where it did or to the file itself
            stored, stored_out = _without_out(s.metadata.Simulation.generator_command)
            listed, listed_out = _without_out(d["generator"])
            assert stored == listed
            assert all(o in (so, d["file"]) for o, so in zip(listed_out, stored_out, strict=True))
            assert d["reductions"]
            if "detector" in d:  # packed: tw.load assembles the full detector
                loaded = tw.load(manifest.ROOT / d["file"], lazy=True)
                assert list(loaded.data.shape) == d["detector"]["loaded_shape"]
        steps = [shlex.split(c) for c in d["generator"].split("&&")]
        # raw runs, then the pack that reads them (or one simulate writing the file)
        assert all(a[:2] == ["tdm", "simulate"] for a in steps[:-1])
        assert steps[-1][:2] in (["tdm", "simulate"], ["tdm", "pack"])
        assert len(steps) == 1 or steps[-1][1] == "pack"
        for args in steps:
            with pytest.raises(SystemExit) as e:  # every step parses with the real CLI
                cli(args[1:] + ["--help"])
            assert e.value.code == 0


def test_tampered_file_is_reported(tmp_path, monkeypatch):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    man = {"datasets": [{"name": "x", "tier": "bundled", "file": str(f), "size_bytes": 3,
                         "sha256": manifest.sha256(f)}], "experimental": []}
    monkeypatch.setattr(manifest, "ROOT", tmp_path.parent.parent)
    assert manifest.verify(man) == [("x", "ok")]
    f.write_bytes(b"abd")
    assert manifest.verify(man) == [("x", "sha256 mismatch")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, BUNDLED, thickness_nm=70, show_progressbar=False)


def test_demo_writes_figure_results_and_table(demo):
    out, table = demo
    for name in ("tdm_demo.png", "virtual_ABF.hspy", "virtual_ADF.hspy", "tdm_masks.hspy",
                 "tdm_images.hspy", "contrast_table.txt"):
        assert (out / name).stat().st_size > 0
    # one null control per number of columns: Li, Fe and P have 4 in the cell, O 12
    assert set(table) == {"virtual ABF", "virtual ADF", "TDM Li", "TDM Fe", "TDM P", "TDM O",
                          "TDM all", "TDM null 4", "TDM null 12"}
    assert all(set(r) == {"Li", "Fe", "P", "O", "null 4", "null 12"} for r in table.values())
    # each null's own random positions are a column: on the same data a template with no
    # atomic meaning shows itself there (frozen-phonon differences fitted), the more
    # strongly the fewer its positions
    assert table["TDM null 4"]["null 4"] > table["TDM null 12"]["null 12"] + 1.0
    assert table["TDM null 12"]["null 12"] > 1.0
    assert all(table[f"TDM {n}"][null] < 0.5 for n in ("Li", "Fe", "P", "O")
               for null in ("null 4", "null 12"))
    vals = tw.load(BUNDLED).metadata.Simulation.thickness_nm
    member = min(vals, key=lambda t: abs(t - 70))   # the table names the member it used
    head = (out / "contrast_table.txt").read_text().splitlines()[0]
    assert head.startswith(f"# {BUNDLED.name}, thickness {member:g} nm, noise-free"), head


def test_demo_results_reload_and_agree_with_the_api(demo):
    import hyperspy.api as hs

    from tdm_widgets.simulate import columns_of, select

    out, table = demo
    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    abf = hs.load(out / "virtual_ABF.hspy")
    np.testing.assert_allclose(abf.data, tw.virtual_image(s, 11, 23.5, show_progressbar=False).data)
    images = hs.load(out / "tdm_images.hspy")
    names = list(images.metadata.TDM.names)
    cols = columns_of(series)
    for i, n in enumerate(names):
        row = {k: v for k, v in table[f"TDM {n}"].items() if not k.startswith("null")}
        assert specificity(images.data[i], cols) == pytest.approx(row)
    masks = hs.load(out / "tdm_masks.hspy")
    assert masks.metadata.TDM.parameters.detector_region == [0.0, 23.5]
    # masks are zero outside the BF disc they were restricted to
    kx, ky = masks.axes_manager.signal_axes
    r = np.hypot(ky.axis[:, None], kx.axis[None, :])
    assert np.all(masks.data[:, r >= 23.5] == 0) and np.any(masks.data[:, r < 23.5] != 0)


def test_cli_demo(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--thickness", "40"]) == 0
    text = capsys.readouterr().out
    assert "TDM Li" in text and (tmp_path / "tdm_demo.png").exists()


def test_regenerate_compares_with_the_committed_file(tmp_path, monkeypatch):
    """A ci-tier generator re-run reproduces its file exactly (determinism)."""
    out = tmp_path / "ci.hspy"
    cmd = f"tdm simulate ci lifepo4 --thickness 1 --out {out}"
    assert main(shlex.split(cmd)[1:]) == 0
    man = {"datasets": [{"name": "ci", "tier": "ci", "file": str(out), "generator": cmd}]}
    monkeypatch.setattr(manifest, "ROOT", tmp_path)
    monkeypatch.setattr(manifest, "_run_generator",
                        lambda c: main(c[1:]))  # the same CLI, in-process
    assert manifest.regenerate("ci", manifest=man) == 0.0


def test_bundled_simulations_have_the_fidelity_of_issue_14():
    """Every bundled simulation, read from the file's own metadata: the loaded
    detector has at most 1 mrad per pixel and keeps that sampling beyond the BF disc,
    at least 8 frozen-phonon configurations went into it, and it scans at least
    2 x 2 cells or one whole periodic cell whose tiling the manifest documents."""
    checked = []
    for d in manifest.read_manifest()["datasets"]:
        if d["tier"] != "bundled" or not d.get("file") or "detector" not in d:
            continue
        s = tw.load(manifest.ROOT / d["file"], lazy=True)
        sim = s.metadata.Simulation
        p = sim.parameters.as_dictionary()
        for ax in s.axes_manager.signal_axes:
            assert ax.units == "mrad" and ax.scale <= 1.0, (d["name"], ax.scale)
        assert sim.detector_layout.fine_mrad >= p["semiangle_mrad"], d["name"]
        assert p["preset"]["num_configs"] >= 8, d["name"]
        cells = p["scan_cells"]
        assert min(cells) >= 2 or any("tiling of whole cells" in r for r in d["reductions"]), \
            (d["name"], cells)
        checked.append(d["name"])
    assert {"lifepo4_thickness", "pbtio3_thickness", "lifepo4_defocus", "lifepo4_defects",
            "pbtio3_domain_wall"} <= set(checked)


def test_validation_simulations_are_in_the_manifest():
    """Every simulation the validation tools cache in .sim/ has a manifest entry with the
    tool's own settings; a cache present on this machine matches its shape and checksum
    (of the array: the .npz zip carries write times)."""
    import hashlib
    import sys

    sys.path.insert(0, str(manifest.ROOT / "tools"))
    import validate_displacement as vd
    import validate_pacbed as vp

    entries = {v["name"]: v for v in manifest.read_manifest()["validation"]}
    expected = {f"pbtio3_displacement_{k}": (c["seed"], list(c["thickness_nm"]), c["preset"],
                                             [vd.cache_path(k, d) for d in c["shifts_A"]])
                for k, c in vd.SETS.items()}
    expected["lifepo4_pacbed_heldout"] = (vp.SEED, list(vp.THICKNESS_NM), vp.PRESET,
                                          [vp.CACHE])
    pairs = [(k, d) for k, shifts in vd.SECOND_DRAW.items() for d in shifts]
    second = [vd.second_draw_path(k, d) for k, d in pairs]
    assert set(entries) == set(expected) | {"pbtio3_displacement_second_draws",
                                            "lifepo4_defects_thin"}
    thin = entries["lifepo4_defects_thin"]  # a whole simulated file, checked as a file
    (member,) = thin["members"]
    assert member["cache"] == ".sim/lifepo4_defects_thin.hspy"
    assert thin["parameters"]["thickness_nm"] == [30, 40]
    path = manifest.ROOT / member["cache"]
    if path.exists():
        assert manifest.sha256(path) == member["sha256"]
        assert list(tw.load(path, lazy=True).data.shape) == member["shape"]
    draws = entries["pbtio3_displacement_second_draws"]["members"]
    assert [(m["set"], m["seed"], m["ti_displacement_A"]) for m in draws] == [
        (k, vd.SETS[k]["seed"] + 100, d) for k, d in pairs]
    checks = [(draws, second)]
    for name, (seed, planes, preset, caches) in expected.items():
        e = entries[name]
        assert (e["parameters"]["seed"], e["parameters"]["thickness_nm"]) == (seed, planes)
        assert {k: v for k, v in e["parameters"]["preset"].items() if k != "base"} == preset
        checks.append((e["members"], caches))
    for members, caches in checks:
        assert [m["cache"] for m in members] == [
            str(c.relative_to(manifest.ROOT)) for c in caches]
        for m, path in zip(members, caches):
            if path.exists():
                arr = np.ascontiguousarray(np.load(path)[m["array"]])
                assert list(arr.shape) == m["shape"] and str(arr.dtype) == m["dtype"]
                assert hashlib.sha256(arr.tobytes()).hexdigest() == m["sha256"]


def test_a_failing_generator_is_one_error_carrying_its_own_message(capfd):
    """``regenerate`` (``tdm data regenerate``) on an install without abTEM: the
    generator's ``tdm: error:`` line becomes the one ValueError (no traceback line, no
    second error line); the rest of its output passes through."""
    import sys

    script = ("import sys; print('progress 50%', file=sys.stderr); "
              "print('tdm: error: tdm simulate needs ase and abTEM', file=sys.stderr); "
              "sys.exit(2)")
    man = {"datasets": [{"name": "x", "tier": "ci", "file": "x.hspy",
                         "generator": f"{sys.executable} -c \"{script}\""}]}
    with pytest.raises(ValueError, match=r"failed \(exit 2\): tdm simulate needs ase "
                                         r"and abTEM$"):
        manifest.regenerate("x", manifest=man)
    err = capfd.readouterr().err
    assert "progress 50%" in err and "tdm: error" not in err


def test_tdm_notebook_writes_the_your_own_data_notebook_and_never_overwrites(tmp_path, capsys):
    """``tdm notebook --out DIR``: notebook 09 (the checkout's here; the wheel carries a
    copy with its outputs cleared, tests/test_install.py), and a second call is a one-line
    error that leaves the user's copy alone."""
    from tdm_widgets.cli import main

    assert main(["notebook", "--out", str(tmp_path)]) == 0
    got = tmp_path / "09_your_own_data.ipynb"
    assert got.read_bytes() == (manifest.ROOT / "notebooks" / got.name).read_bytes()
    got.write_text("mine")
    assert main(["notebook", "--out", str(tmp_path)]) == 2
    assert got.read_text() == "mine"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not overwritten" in err[0], err
