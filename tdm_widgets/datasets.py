"""Every dataset of ``data_manifest.yaml`` from wherever this package runs.

:func:`data_path` looks, in this order, in

1. the repository checkout the package was imported from (the files in place);
2. the installed package (what ships in the wheel, ``tdm_widgets/data/``, read with
   :mod:`importlib.resources`);
3. a download cache, filled on first use with :mod:`pooch` from a base URL and checked
   against the manifest's sha256.

The base URL is the ``base_url`` argument, else the environment variable
:data:`BASE_URL_ENV`; there is no built-in default (no public copy of the data is
published yet), so a download without one is a ``ValueError`` naming both. It
names the root of a copy of the repository: ``https://host/tdm-widgets/`` serves
``data/bundled/lifepo4_defects.hspy`` at ``https://host/tdm-widgets/data/bundled/
lifepo4_defects.hspy``; ``file:///path/to/a/clone/`` works too. The cache folder is
``cache_dir``, else :data:`CACHE_ENV`, else the user cache (``pooch.os_cache``).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from . import manifest

#: Environment variable that sets the base URL of the files not in the wheel.
BASE_URL_ENV = "TDM_WIDGETS_DATA_URL"
#: Environment variable that sets the download cache folder.
CACHE_ENV = "TDM_WIDGETS_DATA_DIR"
#: Manifest paths below this prefix ship inside the wheel.
PACKAGE_PREFIX = "tdm_widgets/"


def resolve_base_url(url: str | None = None) -> str:
    """The base URL in force (argument, then :data:`BASE_URL_ENV`), ending in ``/``.

    Raises
    ------
    ValueError
        When neither is set.
    """
    url = url or os.environ.get(BASE_URL_ENV)
    if not url:
        raise ValueError(
            f"no base URL for the data that is not in the installed package: give "
            f"base_url= (tdm data fetch --base-url) or set ${BASE_URL_ENV} to the root of a "
            "copy of the tdm-widgets repository (https://... or file:///path/to/clone/)")
    return url if url.endswith("/") else url + "/"


def resolve_cache_dir(path=None) -> Path:
    """The download cache folder (argument, then :data:`CACHE_ENV`, then the user
    cache)."""
    if path is not None:
        return Path(path)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import pooch

    return Path(pooch.os_cache("tdm-widgets"))


def _entry(name: str, man: dict) -> dict:
    for d in man.get("datasets", []) + man.get("files", []):
        if d["name"] == name:
            return d
    for d in man.get("experimental", []):
        if d["name"] == name:
            return dict(d, tier="experimental", file=None)
    names = [d["name"] for key in ("datasets", "files", "experimental")
             for d in man.get(key, [])]
    raise KeyError(f"no dataset {name!r} in the manifest; known: {', '.join(names)}")


def _in_package(file: str) -> Path | None:
    if not file.startswith(PACKAGE_PREFIX):
        return None
    res = resources.files("tdm_widgets").joinpath(file[len(PACKAGE_PREFIX):])
    return Path(str(res)) if res.is_file() else None


def local_path(entry: dict, cache=None) -> tuple[Path | None, str]:
    """Where a manifest entry's file is on this machine without downloading:
    ``(path, "checkout" | "package" | "cache")``, or ``(None, "")``."""
    file = entry.get("file")
    if not file:
        return None, ""
    p = manifest.ROOT / file
    if p.is_file():
        return p, "checkout"
    p = _in_package(file)
    if p is not None:
        return p, "package"
    p = resolve_cache_dir(cache) / file
    if p.is_file() and manifest.sha256(p) == entry.get("sha256"):
        return p, "cache"
    return None, ""


def _copy_file_url(url: str, output_file, pooch_obj=None, check_only: bool = False):
    """A pooch downloader for ``file://`` URLs (a local or mounted copy of the files)."""
    src = Path(unquote(urlparse(url).path))
    if check_only:
        return src.is_file()
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src} (from {url})")
    if hasattr(output_file, "write"):
        with open(src, "rb") as f:
            shutil.copyfileobj(f, output_file)
    else:
        shutil.copyfile(src, output_file)
    return None


def _fetch(entry: dict, url: str, cache: Path, show_progressbar: bool) -> Path:
    import pooch

    file = entry["file"]
    registry = pooch.create(path=cache, base_url=url,
                            registry={file: f"sha256:{entry['sha256']}"})
    downloader = (_copy_file_url if url.startswith("file:")
                  else pooch.HTTPDownloader(progressbar=show_progressbar))
    try:
        return Path(registry.fetch(file, downloader=downloader))
    except Exception as err:
        what = f"could not fetch dataset {entry['name']!r} ({file}, " \
               f"{entry.get('size_bytes', 0) / 1e6:.0f} MB) from {url}"
        if "hash" in str(err).lower() or "sha256" in str(err).lower():
            raise OSError(f"{what}: the file there does not match the manifest's sha256 "
                          "(another version of the data, or a damaged copy); nothing was "
                          "kept") from err
        raise OSError(
            f"{what}: {type(err).__name__}: {err}. Set the base URL with {BASE_URL_ENV}=URL "
            "or base_url= (tdm data fetch --base-url) to a server or a file:// folder that "
            "holds a copy of the repository's data") from err


def data_path(name: str, base_url: str | None = None, cache_dir=None,
              download: bool = True, show_progressbar: bool | None = None) -> Path:
    """Path of a dataset of ``data_manifest.yaml``, fetched into the cache if needed.

    Parameters
    ----------
    name : str
        A dataset name (``tdm data verify`` lists them), e.g. ``"lifepo4_thickness"``,
        ``"lifepo4_defects"``, ``"lifepo4_positions"``, or an experimental slot the
        user registered (``~/.config/tdm_widgets/data.yaml``).
    base_url : str, optional
        Root of a copy of the repository's files (``https://...``, ``http://...`` or
        ``file:///...``); default: :data:`BASE_URL_ENV`; there is no default beyond it.
    cache_dir : str or Path, optional
        Download cache; default: :data:`CACHE_ENV`, else the user cache folder.
    download : bool
        Fetch a file that is not on this machine (else ``FileNotFoundError``).
    show_progressbar : bool, optional
        Download progress bar; default ``hs.preferences.General.show_progressbar``.

    Returns
    -------
    pathlib.Path
        The file, checked against the manifest's sha256 when it was downloaded.

    Raises
    ------
    KeyError
        For a name that is not in the manifest.
    FileNotFoundError
        For a generated-on-demand dataset, an unregistered experimental slot, or a
        file not on this machine with ``download=False``.
    OSError
        When the download fails (the message names the URL and how to set another).

    Examples
    --------
    >>> import tdm_widgets as tw
    >>> tw.data_path("lifepo4_thickness").name
    'lifepo4_thickness.hspy'
    >>> s = tw.load(tw.data_path("lifepo4_defects"))   # doctest: +SKIP
    """
    return entry_path(_entry(name, manifest.read_manifest()), base_url, cache_dir, download,
                      show_progressbar)


def entry_path(entry: dict, base_url: str | None = None, cache_dir=None,
               download: bool = True, show_progressbar: bool | None = None) -> Path:
    """:func:`data_path` of one manifest entry (a dict of ``data_manifest.yaml``)."""
    name = entry["name"]
    if entry.get("tier") == "experimental":
        p = manifest.user_paths().get(name)
        if p and Path(p).exists():
            return Path(p)
        raise FileNotFoundError(f"experimental dataset {name!r} is not registered on this "
                                f"machine: {entry.get('register', '')}")
    if not entry.get("file"):
        raise FileNotFoundError(f"dataset {name!r} ({entry['tier']} tier) is generated on "
                                f"demand: {entry.get('generator', '')}")
    path, _ = local_path(entry, cache_dir)
    if path is not None:
        return path
    if not download:
        raise FileNotFoundError(f"dataset {name!r} ({entry['file']}) is not on this machine "
                                "(data_path(..., download=True) or tdm data fetch fetches it)")
    from .core.progress import progressbar_enabled

    return _fetch(entry, resolve_base_url(base_url), resolve_cache_dir(cache_dir),
                  progressbar_enabled(show_progressbar))


#: The notebook for a user's own data (``tdm notebook``).
YOUR_DATA_NOTEBOOK = "09_your_own_data.ipynb"


def your_data_notebook() -> Path:
    """Notebook 09 (the whole pipeline on your own file): the checkout's, or the copy
    the wheel carries (outputs cleared).

    Returns
    -------
    pathlib.Path
        The notebook file (read it, or copy it with ``tdm notebook``).

    Raises
    ------
    FileNotFoundError
        In a tree that has neither.

    Examples
    --------
    >>> your_data_notebook().name
    '09_your_own_data.ipynb'
    """
    p = manifest.ROOT / "notebooks" / YOUR_DATA_NOTEBOOK
    if p.is_file():
        return p
    p = _in_package(f"tdm_widgets/data/notebooks/{YOUR_DATA_NOTEBOOK}")
    if p is None:
        raise FileNotFoundError(f"{YOUR_DATA_NOTEBOOK} is neither in a checkout nor in the "
                                "installed package")
    return p
