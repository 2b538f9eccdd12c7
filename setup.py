"""Build hook: ship data_manifest.yaml (the registry of every dataset, kept at the
repository root) inside the wheel as ``tdm_widgets/data/data_manifest.yaml``, so that
``tdm_widgets.data_path`` and ``tdm data verify`` work from an installed package.
Everything else is configured in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MANIFEST = "data_manifest.yaml"


class BuildPyWithManifest(build_py):
    def run(self):
        super().run()
        # an editable install reads the file in place; absent only in a tree without data
        if not self.editable_mode and Path(MANIFEST).exists():
            target = Path(self.build_lib, "tdm_widgets", "data", MANIFEST)
            self.mkpath(str(target.parent))
            self.copy_file(MANIFEST, str(target))

    def get_outputs(self, *args, **kwargs):
        out = super().get_outputs(*args, **kwargs)
        if not self.editable_mode and Path(MANIFEST).exists():
            out.append(str(Path(self.build_lib, "tdm_widgets", "data", MANIFEST)))
        return out


setup(cmdclass={"build_py": BuildPyWithManifest})
