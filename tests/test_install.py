"""The package as a user gets it.

The wheel is built as a release is (no deprecation warning, ``twine check``); a fresh
virtual environment gets the core install only (``pip install`` of the wheel, no
extras, from a folder outside the repository, versions from constraints.txt with the
core's zarr 2, tools/core_env.py); from yet another folder it runs the README's first
Python example, ``tdm demo``, ``tdm data verify`` / ``fetch``,
``export_weighted_detector`` and a ``.zspy`` round trip, and imports every module.
About two minutes: builds and installs are slow, so the checks share one venv.
"""

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import core_env  # noqa: E402

pytestmark = pytest.mark.slow

#: Modules that need the simulate extra (ase at import); every other module imports in
#: the core install.
NEEDS_SIMULATE = {"tdm_widgets.simulate.structures"}
#: Distributions that only the simulate and test extras bring.
NOT_IN_CORE = {"abtem", "ase", "pyfftw", "ipympl", "libertem", "pytest", "jupyterlab"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return core_env.build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def core(wheel, tmp_path_factory):
    """(python, work folder) of a fresh venv holding the core install."""
    base = tmp_path_factory.mktemp("core")
    constraints = core_env.core_constraints(base / "constraints-core.txt")
    py = core_env.make_venv(base / "venv", [wheel[0]], constraints, cwd=base)
    work = base / "work"  # outside the repository, where the user runs things
    work.mkdir()
    return py, work


def _run(py, work, code, env=None, timeout=300):
    p = subprocess.run([str(py), "-c", textwrap.dedent(code)], cwd=work, capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return p.stdout


def test_wheel_builds_cleanly_and_passes_twine(wheel):
    path, log = wheel
    assert not re.search(r"deprecat", log, re.I), [ln for ln in log.splitlines()
                                                   if re.search("deprecat", ln, re.I)]
    p = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(path)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "PASSED" in p.stdout, p.stdout + p.stderr
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        packaged = yaml.safe_load(z.read("tdm_widgets/data/data_manifest.yaml"))
        notebook = json.loads(z.read("tdm_widgets/data/notebooks/09_your_own_data.ipynb"))
    # notebook 09 for `tdm notebook`, its code as in the repository, its outputs cleared
    source = json.loads((ROOT / "notebooks" / "09_your_own_data.ipynb").read_text())
    assert [c["source"] for c in notebook["cells"]] == [c["source"] for c in source["cells"]]
    assert all(not c.get("outputs") for c in notebook["cells"])
    assert "tdm_widgets/data/lifepo4_thickness.hspy" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("data/", "tests/", "notebooks/")) for n in names)
    assert "License-Expression: MIT" in meta
    assert "Provides-Extra: simulate" in meta and "Provides-Extra: test" in meta
    version = re.search(r"^Version: (.+)$", meta, re.M).group(1)
    assert version != "0+unknown" and version[0].isdigit()
    assert packaged == yaml.safe_load((ROOT / "data_manifest.yaml").read_text())
    core_deps = [ln for ln in meta.splitlines()
                 if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert not any(re.search(r"\b(abtem|ase)\b", ln, re.I) for ln in core_deps), core_deps


def test_citation_cff_validates_against_the_cff_1_2_schema(tmp_path):
    """The schema shipped in cffconvert 2.0.0's wheel (cffconvert itself pins
    jsonschema < 4, so it is read from the wheel rather than installed)."""
    import datetime

    import jsonschema

    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                    "cffconvert==2.0.0", "-d", str(tmp_path)], check=True)
    (whl,) = tmp_path.glob("cffconvert-*.whl")
    with zipfile.ZipFile(whl) as z:
        schema = json.loads(z.read("cffconvert/schemas/1.2.0/schema.json"))
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    cff = json.loads(json.dumps(cff, default=lambda o: o.isoformat()
                                if isinstance(o, datetime.date) else str(o)))
    jsonschema.validate(cff, schema)
    assert cff["preferred-citation"]["doi"] == "10.1038/s43246-026-01134-9"
    assert cff["license"] == "MIT"


def test_every_import_is_declared():
    """Every module the package imports (also inside functions) belongs to a
    distribution that pyproject.toml declares: the core, the simulate extra for
    tdm_widgets/simulate, the libertem extra for tdm_widgets/libertem_udf.py. cupy is
    optional (the GPU path, imported only when given)."""
    import ast
    import importlib.metadata as md

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", r)[0]).lower() for r in reqs}

    core = names(project["dependencies"])
    simulate = core | names(project["optional-dependencies"]["simulate"])
    libertem = core | names(project["optional-dependencies"]["libertem"])
    dist_of = {k: {re.sub(r"[-_.]+", "-", d).lower() for d in v}
               for k, v in md.packages_distributions().items()}
    stdlib = set(sys.stdlib_module_names)
    missing = {}
    for path in (ROOT / "tdm_widgets").rglob("*.py"):
        allowed = (simulate if "simulate" in path.parts else
                   libertem if path.name == "libertem_udf.py" else core)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top in stdlib or top in ("tdm_widgets", "cupy"):
                    continue
                if not dist_of.get(top, set()) & allowed:
                    missing.setdefault(top, []).append(str(path.relative_to(ROOT)))
    assert not missing, missing


def test_core_install_holds_no_extra(core):
    py, _ = core
    dists = core_env.installed(py)
    assert "tdm-widgets" in dists
    assert not NOT_IN_CORE & set(dists), NOT_IN_CORE & set(dists)
    assert dists["zarr"].startswith("2."), dists["zarr"]  # .zspy works (RosettaSciIO 0.15)
    for name in ("numba", "tifffile", "pooch", "hyperspy", "rosettasciio", "distributed"):
        assert name in dists, name


def test_every_module_imports_in_the_core_install(core):
    py, work = core
    out = _run(py, work, """
        import importlib, json, pkgutil
        import tdm_widgets
        failed = {}
        for m in pkgutil.walk_packages(tdm_widgets.__path__, "tdm_widgets."):
            try:
                importlib.import_module(m.name)
            except ImportError as err:
                failed[m.name] = str(err)
        print(json.dumps(failed))
    """)
    failed = json.loads(out.splitlines()[-1])
    assert set(failed) == NEEDS_SIMULATE, failed
    assert all("ase" in msg for msg in failed.values()), failed


def test_readme_example_demo_export_zspy_and_data_from_an_install(core, tmp_path):
    py, work = core
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert "tdm_widgets/data" not in example and "data_path" in example
    out = _run(py, work, example)
    scores = eval(out.strip().splitlines()[-1], {"np": __import__("numpy")})  # {species: {type: z}}
    assert scores["Li"]["Li"] > 2 and scores["O"]["O"] > 2, scores
    # the main job
    p = subprocess.run([str(py.parent / "tdm"), "demo", "--out", "demo"], cwd=work,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "TDM Li" in p.stdout, p.stdout + p.stderr
    assert (work / "demo" / "tdm_demo.png").stat().st_size > 10_000
    # the notebook for your own data, from the wheel
    p = subprocess.run([str(py.parent / "tdm"), "notebook", "--out", "nb"], cwd=work,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and (work / "nb" / "09_your_own_data.ipynb").is_file(), p.stderr
    # export, .zspy, the data function with a file:// URL (a copy of the repository)
    cache = tmp_path / "cache"
    out = _run(py, work, f"""
        import json, numpy as np, tifffile, hyperspy.api as hs
        import tdm_widgets as tw
        from tdm_widgets.simulate import columns_of, select
        series = tw.load(tw.data_path("lifepo4_thickness"))
        s = select(series, thickness_nm=70)
        s.metadata.Signal.signal_type = "electron_diffraction"
        t, names = tw.point_templates(columns_of(series), s.data.shape[:2])
        masks = tw.pcc_mask(s, t, detector_region=(0, 23.5), show_progressbar=False)
        det = tw.export_weighted_detector(masks, tw.column_stats(s), "det")
        w = tifffile.imread("det.tif")
        assert w.dtype == np.float32 and w.shape == masks.data.shape
        np.testing.assert_allclose(w, np.load("det.npy"), rtol=1e-6)
        img = np.tensordot(s.data.astype(np.float64), det["weights"], ((2, 3), (1, 2)))
        img = np.moveaxis(img, -1, 0) + np.asarray(det["offset"])[:, None, None]
        eq6 = tw.apply_mask(s, masks, normalized=True, show_progressbar=False).data
        np.testing.assert_allclose(img, eq6, atol=1e-6 * np.abs(eq6).max())
        s.save("scan.zspy")
        masks.save("masks.zspy")
        back = tw.load("scan.zspy", lazy=True)
        again = tw.pcc_mask(back, t, detector_region=(0, 23.5), show_progressbar=False)
        np.testing.assert_allclose(again.data, masks.data)
        m2 = hs.load("masks.zspy")
        assert m2.metadata.Acquisition_instrument.TEM.beam_energy == 200
        assert m2.metadata.Signal.signal_type == "electron_diffraction"
        p = tw.data_path("pbtio3_thickness", base_url={(ROOT.as_uri() + "/")!r},
                         cache_dir={str(cache)!r}, show_progressbar=False)
        pto = tw.load(p)
        cols, lat, _ = tw.load_positions(tw.data_path("lifepo4_positions"))  # in the package
        assert set(cols) == set(columns_of(series)) and lat is not None
        bias = tw.load_displacement_bias()   # shipped in the package, no download
        assert bias.runs == 84 and abs(bias.correct(0.1, 30.0)[0] - 0.1) < 0.1
        print("ok", p, pto.data.shape)
    """)
    assert out.splitlines()[-1].startswith("ok " + str(cache)), out
    p = subprocess.run([str(py.parent / "tdm"), "data", "verify"], cwd=work,
                       capture_output=True, text=True, timeout=120,
                       env={"PATH": str(py.parent), "HOME": str(tmp_path),
                            "TDM_WIDGETS_DATA_DIR": str(cache)})
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert re.search(r"lifepo4_thickness\s+ok\n", p.stdout)
    assert re.search(r"pbtio3_displacement_bias\s+ok\n", p.stdout)
    assert re.search(r"lifepo4_positions\s+ok\n", p.stdout)
    assert re.search(r"pbtio3_thickness\s+ok \(downloaded\)", p.stdout)
    assert re.search(r"lifepo4_defects\s+absent \(not downloaded", p.stdout)
    assert "tdm_widgets/data/data_manifest.yaml" in p.stdout  # the packaged manifest
