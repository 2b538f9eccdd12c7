"""Build hook: ship data_manifest.yaml (the registry of every dataset, kept at the
repository root) inside the wheel as ``tdm_widgets/data/data_manifest.yaml``, so that
``tdm_widgets.data_path`` and ``tdm data verify`` work from an installed package, and
notebook 09 (your own data) with its outputs cleared, for ``tdm notebook``.
Everything else is configured in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MANIFEST = "data_manifest.yaml"
#: the notebook for a user's own data, shipped with its outputs cleared (`tdm notebook`)
NOTEBOOK = Path("notebooks", "09_your_own_data.ipynb")


def _write_notebook(target: Path) -> None:
    import json

    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


class BuildPyWithManifest(build_py):
    def run(self):
        super().run()
        # an editable install reads the file in place; absent only in a tree without data
        if not self.editable_mode and Path(MANIFEST).exists():
            target = Path(self.build_lib, "tdm_widgets", "data", MANIFEST)
            self.mkpath(str(target.parent))
            self.copy_file(MANIFEST, str(target))
        if not self.editable_mode and NOTEBOOK.exists():
            _write_notebook(Path(self.build_lib, "tdm_widgets", "data", "notebooks",
                                 NOTEBOOK.name))

    def get_outputs(self, *args, **kwargs):
        out = super().get_outputs(*args, **kwargs)
        if not self.editable_mode and Path(MANIFEST).exists():
            out.append(str(Path(self.build_lib, "tdm_widgets", "data", MANIFEST)))
        if not self.editable_mode and NOTEBOOK.exists():
            out.append(str(Path(self.build_lib, "tdm_widgets", "data", "notebooks",
                                NOTEBOOK.name)))
        return out


setup(cmdclass={"build_py": BuildPyWithManifest})
