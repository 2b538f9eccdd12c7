"""The documentation builds with no warning and no network, and covers the API.

The build command is the README's (``python -m sphinx -W -b html docs OUT``), run in a
subprocess whose sockets refuse every address but the loopback, into a temporary
folder. The notebooks are rendered from their stored outputs (never executed).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tdm_widgets as tw

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("numpydoc")

# runs sphinx with connections refused except to 127.0.0.0/8 and ::1
OFFLINE_SPHINX = r"""
import ipaddress, socket, sys

def _local(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

_connect = socket.socket.connect
def connect(self, address):
    if isinstance(address, tuple) and not _local(address[0]):
        raise OSError(f"docs build tried to reach {address[0]} (network refused)")
    return _connect(self, address)
socket.socket.connect = connect
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _local(host):
        raise OSError(f"docs build tried to resolve {host} (network refused)")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo

from sphinx.cmd.build import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    html = out / "html"
    proc = subprocess.run(
        [sys.executable, "-W", "error::UserWarning:numpydoc.docscrape", "-c", OFFLINE_SPHINX,
         "-W", "--keep-going", "-q", "-b", "html", "-d", str(out / "doctrees"), str(DOCS),
         str(html)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc, html


def test_docs_build_with_no_warning(built):
    proc, html = built
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert not re.search(r"warning|error", log, re.IGNORECASE), log[-6000:]
    for page in ("index", "api", "cli", "libertem", "development", "gallery/index"):
        assert (html / f"{page}.html").is_file(), page


def test_every_public_name_has_a_page(built):
    _, html = built
    names = [n for n in tw.__all__ if n != "__version__"]
    missing = [n for n in names if not (html / "generated" / f"tdm_widgets.{n}.html").is_file()]
    assert not missing, f"add these to docs/api.rst: {missing}"
    page = (html / "generated" / "tdm_widgets.apply_mask.html").read_text()
    assert "Parameters" in page and "Returns" in page and "Examples" in page


def test_gallery_renders_every_notebook_with_its_outputs(built):
    _, html = built
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 10
    index = (html / "gallery" / "index.html").read_text()
    for nb in notebooks:
        page = html / "gallery" / f"{nb.stem}.html"
        assert page.is_file(), nb.name
        assert f"{nb.stem}.html" in index, f"no card for {nb.name}"
    # stored figures come through as images, not re-executed
    quick = (html / "gallery" / "00_quickstart.html").read_text()
    assert quick.count("<img") >= 1 and "_images/" in quick
