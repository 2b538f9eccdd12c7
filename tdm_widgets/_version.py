"""The installed version, from the package metadata (set from the git tag by
setuptools-scm when the package is built or installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tdm-widgets")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
