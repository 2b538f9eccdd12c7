"""tw.data_path finds every dataset: in the checkout, in the package, or downloaded with
pooch from a base URL (a local HTTP server on 127.0.0.1 and a file:// URL here) and
checked against the manifest's sha256."""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

import tdm_widgets as tw
from tdm_widgets import datasets, manifest
from tdm_widgets.cli import main

REAL_ROOT = manifest.ROOT
SMALL = "lifepo4_positions"   # 2 kB, in the package; hidden there by ``installed``
MEDIUM = "pbtio3_thickness"   # 7 MB


def _entry(name):
    man = manifest.read_manifest()
    return next(d for d in man["datasets"] + man["files"] if d["name"] == name)


@pytest.fixture
def served(tmp_path):
    """A copy of two files laid out as in the repository, served on 127.0.0.1."""
    site = tmp_path / "site"
    for name in (SMALL, MEDIUM):
        f = _entry(name)["file"]
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL_ROOT / f, site / f)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """As from an installed package: no checkout files next to the package, an empty
    cache, no base URL in the environment; the package's copy of SMALL hidden, so that
    a small file exercises the downloads."""
    monkeypatch.setattr(manifest, "ROOT", tmp_path / "no-checkout")
    in_package = datasets._in_package
    small = _entry(SMALL)["file"]
    monkeypatch.setattr(datasets, "_in_package", lambda f: None if f == small else in_package(f))
    monkeypatch.delenv(datasets.BASE_URL_ENV, raising=False)
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_checkout_and_package_files_are_used_in_place():
    assert tw.data_path("lifepo4_defects") == REAL_ROOT / "data/bundled/lifepo4_defects.hspy"
    p = tw.data_path("lifepo4_thickness")
    assert p == Path(tw.__file__).parent / "data" / "lifepo4_thickness.hspy"
    assert manifest.sha256(p) == _entry("lifepo4_thickness")["sha256"]


def test_package_file_found_without_the_checkout(installed):
    p = tw.data_path("lifepo4_thickness", download=False)
    assert p.parent.parent == Path(tw.__file__).parent  # tdm_widgets/data/, not a download
    assert not installed.exists()


def test_download_from_local_http_server(installed, served):
    site, url = served
    with pytest.raises(FileNotFoundError, match="not on this machine"):
        tw.data_path(MEDIUM, download=False)
    p = tw.data_path(MEDIUM, base_url=url, show_progressbar=False)
    e = _entry(MEDIUM)
    assert p == installed / e["file"]
    assert manifest.sha256(p) == e["sha256"] and p.stat().st_size == e["size_bytes"]
    s = tw.load(p)  # the downloaded file is the dataset: a packed fine centre and ring
    n = e["detector"]["n_full"]
    assert list(s.data.shape) == e["shape"][:-2] + [n, n]
    # cached: found again with the server's copy gone and no URL
    shutil.rmtree(site)
    assert tw.data_path(MEDIUM, download=False) == p
    assert dict(manifest.verify())[MEDIUM] == "ok (downloaded)"
    assert manifest.verify(names=[MEDIUM]) == [(MEDIUM, "ok (downloaded)")]
    with open(p, "ab") as f:              # the cached copy changed since: a mismatch
        f.write(b"\0")
    assert dict(manifest.verify())[MEDIUM].startswith("sha256 mismatch: the downloaded copy")


def test_base_url_from_the_environment_and_a_file_url(installed, served, monkeypatch,
                                                      tmp_path):
    site, url = served
    monkeypatch.setenv(datasets.BASE_URL_ENV, url.rstrip("/"))  # with or without "/"
    p = tw.data_path(SMALL)
    assert p.read_bytes() == (REAL_ROOT / _entry(SMALL)["file"]).read_bytes()
    cache2 = tmp_path / "cache2"
    q = tw.data_path(SMALL, base_url=site.as_uri(), cache_dir=cache2)  # file:///...
    assert q == cache2 / _entry(SMALL)["file"] and q.read_bytes() == p.read_bytes()
    cols, lattice, meta = tw.load_positions(q)
    assert set(cols) >= {"Li", "Fe", "O"}


def test_a_corrupt_download_is_refused(installed, served):
    site, url = served
    f = site / _entry(SMALL)["file"]
    f.write_bytes(f.read_bytes().replace(b"Li", b"Xx", 1))
    with pytest.raises(OSError, match="does not match the manifest's sha256") as err:
        tw.data_path(SMALL, base_url=url)
    assert datasets.BASE_URL_ENV not in str(err.value)   # the URL was fine, the file not
    assert not (installed / _entry(SMALL)["file"]).exists()


def test_unreachable_url_names_the_setting(installed):
    with pytest.raises(OSError, match=datasets.BASE_URL_ENV):
        tw.data_path(SMALL, base_url="http://127.0.0.1:9/")  # discard port: refused


def test_no_base_url_is_an_error_naming_the_settings(installed, monkeypatch):
    monkeypatch.delenv(datasets.BASE_URL_ENV, raising=False)
    with pytest.raises(ValueError, match=f"base_url=.*{datasets.BASE_URL_ENV}"):
        tw.data_path(SMALL)


def test_names_that_are_not_files():
    with pytest.raises(KeyError, match="lifepo4_thickness"):
        tw.data_path("no_such_dataset")
    with pytest.raises(FileNotFoundError, match="generated on demand"):
        tw.data_path("paper_lifepo4_thickness")
    with pytest.raises(FileNotFoundError, match="not registered"):
        tw.data_path("experimental_lifepo4")


def test_cli_fetch_and_verify_from_an_install(installed, served, capsys):
    site, url = served
    assert main(["data", "verify"]) == 0
    out = capsys.readouterr().out
    assert "lifepo4_thickness            ok" in out
    assert f"{MEDIUM:<28} absent (not downloaded" in out
    assert main(["data", "fetch", SMALL, MEDIUM, "--base-url", url]) == 0
    out = capsys.readouterr().out
    assert str(installed / _entry(MEDIUM)["file"]) in out
    assert main(["data", "verify"]) == 0
    assert f"{MEDIUM:<28} ok (downloaded)" in capsys.readouterr().out
    assert main(["data", "fetch", "lifepo4_defects", "--base-url", url]) == 2  # not served
    assert "could not fetch dataset 'lifepo4_defects'" in capsys.readouterr().err


def test_manifest_covers_every_bundled_file():
    """Every file under data/bundled and tdm_widgets/data is in the manifest (so an
    install can reach it), with its checksum."""
    man = manifest.read_manifest()
    listed = {d["file"] for d in man["datasets"] + man["files"] if d.get("file")}
    on_disk = {str(p.relative_to(REAL_ROOT)) for folder in ("data/bundled", "tdm_widgets/data")
               for p in (REAL_ROOT / folder).rglob("*") if p.is_file()
               and p.name != "data_manifest.yaml"}
    assert on_disk <= listed, on_disk - listed


def test_cli_verify_looks_in_the_cache_fetch_used(installed, served, tmp_path, capsys):
    """``--cache-dir`` is where ``fetch`` puts a file and where ``verify`` finds it."""
    site, url = served
    other = tmp_path / "other-cache"
    assert main(["data", "fetch", "--cache-dir", str(other), "--base-url", url, MEDIUM]) == 0
    capsys.readouterr()
    assert main(["data", "verify", MEDIUM, "--cache-dir", str(other)]) == 0
    assert f"{MEDIUM:<28} ok (downloaded)" in capsys.readouterr().out
    assert main(["data", "verify", MEDIUM]) == 0          # the default cache has none
    assert f"{MEDIUM:<28} absent" in capsys.readouterr().out


def test_cli_output_into_a_closed_pipe_is_not_an_error(monkeypatch, capsys):
    """``tdm ... | head``: the reader closed the pipe; exit 0, no error line."""
    import sys

    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass
    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["data", "verify"]) == 0
    assert capsys.readouterr().err == ""
