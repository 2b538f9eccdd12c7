"""Sphinx configuration of the tdm-widgets documentation.

Build (no network access needed; the notebooks are rendered with their stored
outputs, never executed)::

    .venv/bin/python -m sphinx -W -b html docs docs/_build/html

At start-up this file copies ``notebooks/*.ipynb`` into ``docs/gallery/`` with a
thumbnail (the notebook's first PNG output) and an index page of cards, and writes the
``tdm`` command-line help into ``docs/_generated/``; both folders are build products
(ignored by git).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not an installed copy

import tdm_widgets  # noqa: E402

project = "tdm-widgets"
author = "tdm-widgets authors"
copyright = "the tdm-widgets authors"
release = tdm_widgets.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_design",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# API reference: autosummary writes one page per object from the numpydoc docstrings
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # the numpydoc sections carry the types
numpydoc_show_class_members = False  # methods come from the autosummary class template
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()  # tests/test_docstrings.py checks the sections

# notebooks: rendered from their stored outputs, never executed (no kernel, no data)
nb_execution_mode = "off"
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"tdm-widgets {release}"
html_static_path: list[str] = []

# nothing is fetched at build time: no intersphinx, no remote images
intersphinx_mapping: dict = {}


# --- notebook gallery --------------------------------------------------------------

GALLERY = DOCS / "gallery"


def _title(nb: dict, fallback: str) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _first_png(nb: dict) -> bytes | None:
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return base64.b64decode("".join(png) if isinstance(png, list) else png)
    return None


def build_gallery() -> None:
    """Copy the notebooks into ``docs/gallery`` and write its card index."""
    if GALLERY.exists():
        shutil.rmtree(GALLERY)
    (GALLERY / "thumbs").mkdir(parents=True)
    cards, names = [], []
    for src in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(src.read_text(encoding="utf-8"))
        # nbformat 4.5 wants an id on every cell; cells without one get it in the copy
        nb["nbformat_minor"] = max(nb.get("nbformat_minor", 0), 5)
        for i, cell in enumerate(nb["cells"]):
            cell.setdefault("id", f"{src.stem[:2]}-cell-{i}")
        (GALLERY / src.name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
        names.append(src.stem)
        png = _first_png(nb)
        thumb = f"thumbs/{src.stem}.png" if png else None
        if png:
            (GALLERY / thumb).write_bytes(png)
        title = _title(nb, src.stem)
        img = f":img-top: {thumb}\n" if thumb else ""
        cards.append(f":::{{grid-item-card}} {title}\n:link: {src.stem}\n:link-type: doc\n"
                     f"{img}\n`notebooks/{src.name}`\n:::\n")
    index = ["# Notebook gallery\n",
             "The notebooks in `notebooks/` of the repository, shown with the outputs "
             "stored in them (the documentation build does not run them; `python3 dev.py "
             "test` does, through nbval). Open them in JupyterLab to run them on the "
             "bundled data.\n",
             "::::{grid} 1 2 2 3\n:gutter: 2\n", *cards, "::::\n",
             "```{toctree}\n:hidden:\n", *[f"{n}\n" for n in names], "```\n"]
    (GALLERY / "index.md").write_text("\n".join(index), encoding="utf-8")


# --- command-line help ---------------------------------------------------------------

GENERATED = DOCS / "_generated"


def _help(argv: list[str]) -> str:
    from tdm_widgets import cli

    buf = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal: fix it for the page
    try:
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            cli.main([*argv, "--help"])
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return buf.getvalue()


def build_cli_help() -> None:
    """``tdm --help`` and ``tdm CMD --help`` of each subcommand as text files."""
    GENERATED.mkdir(exist_ok=True)
    for cmd in ("", "demo", "apply", "simulate", "pack", "data", "notebook"):
        (GENERATED / f"cli_{cmd or 'main'}.txt").write_text(
            _help([cmd] if cmd else []), encoding="utf-8")


build_gallery()
build_cli_help()
