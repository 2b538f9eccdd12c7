"""The package's imports, read with ``ast``: imports point down the layers only, no
private name crosses a module, ``core`` stays free of HyperSpy and widgets, and the
public ``__all__`` holds the user's API."""

import ast
from pathlib import Path

import tdm_widgets as tw

PACKAGE = Path(tw.__file__).resolve().parent

#: Layers, lowest first; a module may import its own layer and those below.
LAYERS = {"version": 0, "core": 1, "simulate": 2, "signal": 3, "faces": 4}

#: Third-party packages ``core`` must not import (it is numerics on arrays).
NOT_IN_CORE = ("hyperspy", "rsciio", "ipywidgets", "bqplot", "matplotlib", "IPython")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """tdm_widgets._version < core < simulate < the signal layer (top-level modules,
    analysis) < the faces (widgets, cli, demo, the package's __init__)."""
    parts = module.split(".")[1:]
    if parts == ["_version"]:
        return LAYERS["version"]
    if not parts or parts[0] in ("widgets", "cli", "demo"):
        return LAYERS["faces"]
    if parts[0] in ("core", "simulate"):
        return LAYERS[parts[0]]
    return LAYERS["signal"]


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def package_imports():
    """``(module, line, imported module, name or None)`` for every import in the
    package (also inside functions), names resolved to modules where they are one."""
    rows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                rows += [(module, node.lineno, a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, path.name == "__init__.py", node)
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(
                        ".py").exists() or (PACKAGE.parent / sub.replace(".", "/")).is_dir()
                    rows.append((module, node.lineno, sub if is_module else target,
                                 None if is_module else a.name))
    return rows


IMPORTS = package_imports()


def test_the_import_reader_sees_the_package():
    own = [r for r in IMPORTS if r[2].startswith("tdm_widgets")]
    assert len(own) > 100
    assert ("tdm_widgets.session", "tdm_widgets.core.engine", "TDMEngine") in {
        (m, t, n) for m, _, t, n in own}
    # the rules below do fire on a bad import
    assert layer("tdm_widgets.simulate.output") < layer("tdm_widgets.io")
    assert layer("tdm_widgets.core.apply") < layer("tdm_widgets.simulate.bundle")


def upward(rows):
    return [f"{m}:{line} imports {t}" for m, line, t, _ in rows
            if t.startswith("tdm_widgets") and layer(t) > layer(m)]


def private(rows):
    """Imports of a private name (or from a private module) of another module; the
    version file ``_version`` (read by setuptools) is the one private module shared."""
    return [f"{m}:{line} imports {t}.{n}" for m, line, t, n in rows
            if t.startswith("tdm_widgets") and t != m and t != "tdm_widgets._version"
            and any(p.startswith("_") and not p.startswith("__")
                    for p in (n or "").split(".") + t.split(".")[1:])]


def test_imports_point_down_the_layers():
    bad = upward(IMPORTS)
    assert not bad, "\n".join(bad)


def test_no_private_name_crosses_a_module():
    bad = private(IMPORTS)
    assert not bad, "\n".join(bad)


def test_the_rules_catch_what_they_are_for():
    """Both rules fire on the imports this issue removed (simulate importing the signal
    layer, cross-validation and the engine importing private helpers)."""
    made_up = [("tdm_widgets.simulate.output", 7, "tdm_widgets.io", "from_array"),
               ("tdm_widgets.cross_validation", 1, "tdm_widgets.imaging", "_detector_region"),
               ("tdm_widgets.core.engine", 1, "tdm_widgets.core.correlate", "_pass")]
    assert upward(made_up) == ["tdm_widgets.simulate.output:7 imports tdm_widgets.io"]
    assert len(private(made_up)) == 2
    # a module's own private names and dunders are fine
    assert not private([("tdm_widgets.io", 1, "tdm_widgets.io", "_load_mib"),
                        ("tdm_widgets.core.records", 1, "tdm_widgets._version",
                         "__version__")])


def test_core_uses_no_hyperspy_and_no_widgets():
    bad = [f"{m}:{line} imports {t}" for m, line, t, _ in IMPORTS
           if layer(m) <= LAYERS["core"] and t.split(".")[0] in NOT_IN_CORE]
    assert not bad, "\n".join(bad)


def test_public_api_is_the_users_not_core_classes():
    import inspect

    for name in tw.__all__:
        obj = getattr(tw, name)
        home = getattr(obj, "__module__", "") or ""
        assert not home.startswith("tdm_widgets.core"), f"{name} comes from {home}"
    for name in ("TDMSession", "pcc_mask", "apply_mask", "column_stats", "load"):
        assert name in tw.__all__
    assert len(tw.__all__) == len(set(tw.__all__))
    public = {n for n, v in vars(tw).items() if not n.startswith("_")
              and (inspect.isfunction(v) or inspect.isclass(v))}
    assert public <= set(tw.__all__), public - set(tw.__all__)
