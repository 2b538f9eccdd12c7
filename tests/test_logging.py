"""The library reports through logging (and warnings), never print; it configures no
handler of its own, so an application decides what is shown."""

import importlib
import logging
import pkgutil

import numpy as np

import tdm_widgets as tw

SKIP = {"tdm_widgets.simulate", "tdm_widgets.widgets"}  # abTEM / ipywidgets imports


def _modules():
    for info in pkgutil.walk_packages(tw.__path__, "tdm_widgets."):
        if not any(info.name == s or info.name.startswith(s + ".") for s in SKIP):
            yield importlib.import_module(info.name)


def test_module_loggers_are_named_after_their_module():
    with_logger = []
    for mod in _modules():
        log = getattr(mod, "logger", None)
        if log is not None:
            assert isinstance(log, logging.Logger) and log.name == mod.__name__, mod
            with_logger.append(mod.__name__)
    assert {"tdm_widgets.io", "tdm_widgets.live", "tdm_widgets.imaging",
            "tdm_widgets.badpixels", "tdm_widgets.descan", "tdm_widgets.core.blocks",
            "tdm_widgets.libertem_udf"} <= set(with_logger)
    # the library adds no handler: logging.basicConfig (or the application) decides
    for name in with_logger:
        assert not logging.getLogger(name).handlers, name


def test_load_and_export_log_what_they_did(tmp_path, caplog, capsys):
    data = np.random.default_rng(0).poisson(9.0, (6, 5, 12, 12)).astype(np.uint16)
    np.save(tmp_path / "scan.npy", data)
    with caplog.at_level(logging.DEBUG, logger="tdm_widgets"):
        s = tw.load(tmp_path / "scan.npy")
        t = np.zeros((6, 5))
        t[::3, ::2] = 1
        mask = tw.pcc_mask(s, t, progress=False)
        tw.export_weighted_detector(mask, tw.column_stats(s, progress=False), tmp_path / "w")
        tw.find_bad_pixels(s, progress=False)
    messages = {r.name: r.getMessage() for r in caplog.records}
    assert "scan.npy: (6, 5, 12, 12) uint16" in messages["tdm_widgets.io"]
    assert "1 weight image(s)" in messages["tdm_widgets.live"]
    assert "'total': 0" in messages["tdm_widgets.badpixels"]
    assert "one pass over (6, 5, 12, 12)" in messages["tdm_widgets.core.blocks"]
    out = capsys.readouterr()
    assert out.out == ""  # nothing printed
