"""Explorer: painter, masks and images for every species, linked through a session."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..column_templates import specificity
from ..core.blocks import computed
from ..session import TDMSession
from .mask_viewer import MaskViewer, crop_box
from .painter import Edit, TemplatePainter, message_html

#: Cross-validation choices of the explorer: label, ``split`` of
#: :func:`tdm_widgets.cross_validated_image` ("none": masks fitted to the data they image).
CV_OPTIONS = [("same data", "none"), ("cross-validated: dose split", "dose"),
              ("cross-validated: cells split", "cells")]


#: Environment variable naming a file where the explorer appends a time line of its
#: work (JSON lines of epoch milliseconds: edit received, update start and end), to
#: set beside a page's own time stamps (``benchmarks/bench_browser.py`` does).
TRACE_ENV = "TDM_WIDGETS_TRACE"


def _trace(event: str, **info) -> None:
    path = os.environ.get(TRACE_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"t_ms": time.time() * 1e3, "event": event, **info}) + "\n")


def in_jupyter_kernel() -> bool:
    """True when running in a Jupyter kernel (where a widget can show at once)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


class BusyLine:
    """A busy line in an HTML widget: after ``after_s`` it shows the current stage
    and the elapsed time, refreshed every half second, and it is cleared at the end.

    Use as a context manager; :meth:`stage` names what is being computed."""

    def __init__(self, html, after_s: float = 0.2):
        self.html, self.after_s = html, float(after_s)
        self.text = "computing"
        self._done = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = None

    def _line(self) -> str:
        return message_html(f"⏳ computing {self.text}… "
                            f"{time.perf_counter() - self._t0:.1f} s", "busy")

    def _run(self):
        if self._done.wait(self.after_s):
            return
        while True:
            self.html.value = self._line()
            if self._done.wait(0.5):
                return

    def stage(self, text: str) -> None:
        """Name the stage now running."""
        self.text = text

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.html.value = ""
        return False


class Explorer:
    """One dataset explored: the painter drives masks and images for every species,
    shown side by side with their specificity table.

    The explorer holds a :class:`tdm_widgets.session.TDMSession`: the statistics are
    computed once (one pass), and every painter edit goes straight to it as an edit
    (a column added or removed, positions replaced, a region, a width), which reads
    only the patterns the edited templates changed at. An update then makes the masks
    (no pass) and one image pass for the templates that changed, and sends the page
    only the panels whose picture changed. Updates run in a background thread;
    errors are shown in the widget. All data access goes through :meth:`compute`.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D data (numpy-backed or lazy), detector calibrated in mrad.
    columns : dict, optional
        Starting column positions per species [scan px].
    species : sequence of str
        Painter layers.
    image : array_like, optional
        Image to paint on; the virtual ABF (11-23.5 mrad) if None.
    bf_mrad : float
        BF-disc semi-angle [mrad] for the "BF disc" detector choice.
    debounce_s : float
        Quiet time after the last click before recomputing [s]; with 0 an edit starts
        at once when nothing is computing, and edits made during an update merge into
        the next.
    background : bool
        Compute in a background thread (the widget); False computes in the calling
        thread (scripts and tests).
    defer_first : bool, optional
        Return before the first update (statistics pass, masks and images), which then
        runs in the background while the painter is already usable and a busy line
        shows its progress. None: defer in a Jupyter kernel, compute at once
        elsewhere (scripts and tests get results when the constructor returns).
    """

    def __init__(self, s, columns=None, species=("Li", "Fe", "P", "O"), image=None,
                 bf_mrad: float = 23.5, debounce_s: float = 0.0, background: bool = True,
                 defer_first: bool | None = None):
        _trace("explorer start")
        import ipywidgets as ipw

        self.s = s
        self.bf_mrad = float(bf_mrad)
        columns = {k: np.asarray(v, float).reshape(-1, 2) for k, v in (columns or {}).items()}
        order = list(species) + [k for k in columns if k not in species]
        start = {n: columns.get(n, np.zeros((0, 2))) for n in order}
        self.session = TDMSession.from_columns(s, start, species=order, combined="all",
                                               show_progressbar=False)
        self.cal = self.session.calibration
        self.data_shape = self.session.scan_shape + self.session.det_shape
        self.session.set_detector_region(self.detector_region("bf"))
        if image is None:
            from ..imaging import virtual_image

            image = computed(virtual_image(s, 11.0, bf_mrad, show_progressbar=False).data)
            _trace("painter image made")
        self.painter = TemplatePainter(image, order, columns, snap_sign=-1,  # dark columns
                                       title="virtual ABF (11-23.5 mrad): click columns",
                                       pixel_size=tuple(self.cal.scan_scale),
                                       units=self.cal.scan_units)
        self.debounce_s = float(debounce_s)
        self.background = bool(background)
        style = {"description_width": "initial"}
        self.normalization = ipw.ToggleButtons(options=[("Eq 5 (PCC)", "pcc"),
                                                        ("Eq 7 (PCC / mean)", "pcc_over_mean")],
                                               style={"button_width": "150px"})
        self.normalized = ipw.ToggleButtons(options=[("raw data (Eq 2)", False),
                                                     ("normalised (Eq 6)", True)],
                                            style={"button_width": "150px"})
        self.detector = ipw.ToggleButtons(options=[("BF disc", "bf"), ("whole detector", "all")],
                                          style={"button_width": "150px"})
        self.cross_validate = ipw.Dropdown(options=CV_OPTIONS, value="none",
                                           description="images", style=style)
        for w in (self.normalization, self.normalized, self.detector, self.cross_validate):
            w.observe(lambda _: self.request_update(), "value")
        self.zoom = ipw.FloatSlider(value=1.0, min=0.5, max=3.0, step=0.25, style=style,
                                    description="zoom", continuous_update=False)
        self.zoom.observe(lambda _: self._apply_zoom(), "value")
        self.contrast_target = self.painter.panel
        self.contrast_label = ipw.HTML("contrast of: <b>painter image</b> (click an image "
                                       "to choose)")
        # the painter image chosen again without a click on it (which edits columns)
        self.contrast_painter = ipw.Button(description="painter image", icon="adjust",
                                           tooltip="adjust the painter image's contrast",
                                           layout={"width": "130px"})
        self.contrast_painter.on_click(
            lambda _: self._set_contrast_target(self.painter.panel, "painter image"))
        self._syncing_contrast = False
        self.clip = ipw.FloatRangeSlider(value=(0.5, 99.5), min=0.0, max=100.0, step=0.5,
                                         description="clip [percentile]", style=style,
                                         continuous_update=False, layout={"width": "380px"})
        self.gamma = ipw.FloatSlider(value=1.0, min=0.2, max=3.0, step=0.05,
                                     description="gamma", style=style, continuous_update=False,
                                     layout={"width": "380px"})
        self.clip.observe(lambda _: self._apply_contrast(), "value")
        self.gamma.observe(lambda _: self._apply_contrast(), "value")
        self.painter.panel.fig.title = ""
        self.busy = ipw.HTML("")
        self.notice = ipw.HTML("")
        self.table = ipw.HTML("")
        self.status = ipw.HTML("")
        self.viewers: dict[str, MaskViewer] = {}
        self._viewer_key = None
        self.viewer_box = ipw.HBox([], layout={"flex_flow": "row wrap"})
        self.scatter = None
        self.save_path = ipw.Text(value="tdm_results", description="folder",
                                  layout={"width": "260px"})
        self.save_button = ipw.Button(description="save results", icon="save")
        self.save_button.on_click(lambda _: self._guarded_save())
        self.n_updates = 0
        self.last_latency_s = None
        self.masks = self.images = None
        self.names: list[str] = []
        self.specificity = {}
        self.saved: dict | None = None
        #: What is on display: settings, and per name its template, mask and image.
        self._shown: dict = {"key": None}
        self._edits: list[Edit] = []
        self._stats_key = False  # the region of the statistics (False: none yet)
        self._up_to_date = False  # the last update succeeded
        self._last_error = "no update yet"  # what the last failed update said
        self._worker = None
        self._pending = False
        self._running = False
        self._last_request = 0.0
        self._state_lock = threading.Condition()
        self._lock = threading.RLock()  # a control changed during an update re-enters
        self.painter.on_change(self._on_edit)
        controls = ipw.VBox([self.normalization, self.normalized, self.detector,
                             self.cross_validate, self.zoom,
                             ipw.HBox([self.contrast_label, self.contrast_painter]), self.clip,
                             self.gamma, ipw.HBox([self.save_path, self.save_button]),
                             self.busy, self.status, self.notice],
                            layout={"margin": "0px 0px 0px 16px", "flex": "0 0 auto"})
        # neither column shrinks (a zoomed painter scrolled inside itself and cut the
        # controls' buttons): the controls wrap below the painter when the row is full
        self.painter.widget.layout.flex = "0 0 auto"
        self.widget = ipw.VBox([ipw.HBox([self.painter.widget, controls],
                                         layout={"flex_flow": "row wrap"}),
                                self.viewer_box, self.table])
        self.painter.panel.mark.on_element_click(
            lambda m, ev: self._set_contrast_target(self.painter.panel, "painter image"))
        _trace("explorer built")
        if any(len(v) for v in self.painter.columns.values()):
            if defer_first is None:
                defer_first = in_jupyter_kernel()
            if defer_first and self.background:
                # the widget shows now; the statistics pass runs in the background
                self.busy.value = message_html("⏳ computing statistics (one pass over the "
                                               "data) and images…", "busy")
                self.request_update()
            else:
                self.update()

    # -- view ----------------------------------------------------------------------------
    def show(self):
        """Display the explorer in a fresh output (e.g. after a browser reload, when
        the old output's widget models are gone)."""
        from IPython.display import display

        display(self.widget)

    def _set_contrast_target(self, panel, label):
        self.contrast_target = panel
        self.contrast_label.value = f"contrast of: <b>{label}</b>"
        self._syncing_contrast = True  # the sliders show its settings: nothing to redraw
        try:
            self.clip.value, self.gamma.value = panel.clip_percent, panel.gamma
        finally:
            self._syncing_contrast = False

    def _apply_contrast(self):
        if self._syncing_contrast:
            return
        try:
            self.contrast_target.set_contrast(self.clip.value, self.gamma.value)
        except ValueError as e:
            self.notice.value = message_html(str(e), "error")

    def _apply_zoom(self):
        z = self.zoom.value
        self.painter.panel.set_zoom(self.painter_base_zoom * z)
        for v in self.viewers.values():
            v.mask_panel.set_zoom(v.base_zoom[0] * z)
            v.image_panel.set_zoom(v.base_zoom[1] * z)

    @property
    def painter_base_zoom(self) -> float:
        return max(2.0, 420.0 / max(self.painter.shape))

    # -- requests ------------------------------------------------------------------------
    def _on_edit(self, edit: Edit):
        _trace("edit", kind=edit.kind)
        with self._state_lock:
            self._edits.append(edit)
        self.request_update()

    #: Seconds an idle background worker waits for the next request before it ends
    #: (a burst of clicks reuses one thread, and with it one pool of compiled-loop
    #: threads).
    WORKER_IDLE_S = 30.0

    def request_update(self) -> None:
        """Recompute in the background: at once when idle; clicks that arrive during an
        update merge into the next one (after ``debounce_s`` of quiet)."""
        if not self.background:
            self._pending = True
            self.update()
            return
        with self._state_lock:
            self._pending = True
            self._last_request = time.perf_counter()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True)
                self._worker.start()
            self._state_lock.notify_all()

    def _work(self):
        while True:
            with self._state_lock:
                if not self._pending:
                    self._state_lock.wait(self.WORKER_IDLE_S)
                    if not self._pending:
                        self._worker = None
                        self._state_lock.notify_all()
                        return
                quiet = time.perf_counter() - self._last_request
                if quiet < self.debounce_s:
                    self._state_lock.wait(self.debounce_s - quiet)
                    continue
                self._running = True
            try:
                self.update()
            finally:
                with self._state_lock:
                    self._running = False
                    self._state_lock.notify_all()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until pending background updates have finished."""
        deadline = time.perf_counter() + timeout
        with self._state_lock:
            while self._worker is not None and (self._pending or self._running):
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._state_lock.wait(left)
        with self._lock:
            pass

    def flush(self) -> None:
        """Run a pending update now (so what is shown matches the templates)."""
        with self._state_lock:
            self._last_request = -np.inf  # no more waiting for quiet
            self._state_lock.notify_all()
        self.wait()
        if self._pending:
            self.update()

    # -- the session ---------------------------------------------------------------------
    def detector_region(self, choice: str | None = None):
        """Detector pixels the masks use for the detector choice (the control's if
        None): the BF disc, or None (whole detector, or an uncalibrated detector)."""
        from ..detector import detector_annulus

        choice = self.detector.value if choice is None else choice
        if choice == "all" or not self.cal.det_mrad:
            return None
        return detector_annulus(self.cal, self.data_shape[2:], 0.0, self.bf_mrad)

    def _apply_edits(self) -> None:
        """Pass the painter's edits to the session, in order; if one fails, the
        session takes the painter's columns and region whole (and the error is
        raised)."""
        with self._state_lock:
            edits, self._edits = self._edits, []
        se = self.session
        try:
            for e in edits:
                if e.kind == "add":
                    se.add_column(e.species, *e.position)
                elif e.kind == "remove":
                    se.remove_column(e.species, *e.position)
                elif e.kind == "columns":
                    changed = {k: v for k, v in e.columns.items()
                               if k not in se.columns or not np.array_equal(v, se.columns[k])}
                    if changed:
                        se.set_columns(changed)
                elif e.kind == "region":
                    se.set_region(e.region)
                elif e.kind == "width":
                    se.set_width(e.sigma_px)
                else:
                    raise ValueError(f"unknown edit {e.kind!r}")
        except Exception:
            se.set_columns({k: v for k, v in self.painter.columns.items()})
            se.set_region(self.painter.region)
            raise

    def _sync(self) -> None:
        """The session brought up to date with the painter and the controls."""
        self._apply_edits()
        self.session.normalization = self.normalization.value
        det = self.detector_region()
        old = self.session.detector_region
        if (det is None) != (old is None) or (det is not None and not np.array_equal(det, old)):
            self.session.set_detector_region(det)

    def _settings_key(self):
        region = self.session.region
        return (self.normalization.value, bool(self.normalized.value), self.detector.value,
                self.cross_validate.value, None if region is None else region.tobytes())

    def compute(self, names, whole_detector: bool = False):
        """The explorer's one access to the data: bring the session up to date and
        return ``(masks, images)`` for ``names``. Images are made again (one pass for
        them all) only when a template or a setting changed since the last update;
        cross-validated images only for the templates that changed. ``images`` is None
        when ``whole_detector`` (masks over the whole detector, no pass)."""
        self._sync()
        se = self.session
        if whole_detector:
            return se.mask_array(names, whole_detector=True), None
        key = self._settings_key()
        templates = se.templates
        shown = self._shown if self._shown["key"] == key else {"key": key}
        todo = [n for n in names if n not in shown
                or not np.array_equal(shown[n][0], templates[n])]
        masks = se.mask_array(names)
        if todo:
            split = self.cross_validate.value
            if split == "none":
                # one pass makes every image at about the cost of a few (the compiled
                # kernel reads each pattern once for four masks); unchanged ones come
                # out the same and are not sent to the page again
                todo = list(names)
                made = se.image_array(todo, normalized=bool(self.normalized.value))
            else:
                cv = se.cross_validated(split, names=todo,
                                        normalized=bool(self.normalized.value))
                made = np.asarray(cv.data)
            fresh = dict(zip(todo, made))
        else:
            fresh = {}
        images = np.stack([fresh[n] if n in fresh else shown[n][2] for n in names])
        self._computed = {"key": key, **{n: (templates[n], masks[i], images[i])
                                         for i, n in enumerate(names)}}
        return masks, images

    def update(self) -> None:
        """Recompute masks, images and the specificity table for every species; an
        error is shown in the widget and leaves the last results in place."""
        with self._lock:
            with self._state_lock:
                self._pending = False
            _trace("update start")
            t0 = time.perf_counter()
            region = self.painter.region
            stats_key = None if region is None else region.tobytes()
            first = self._stats_key is False or stats_key != self._stats_key
            self._up_to_date = False
            try:
                with BusyLine(self.busy) as busy:
                    busy.stage("statistics (one pass over the data) and images" if first
                               else "images (one pass over the data)")
                    self._sync()
                    names = self.session.names
                    if not names:
                        raise ValueError("no columns painted yet: click columns on the image")
                    masks, images = self.compute(names)
                    self._show(names, masks, images)
                    self._stats_key = stats_key
            except Exception as e:  # noqa: BLE001 - the thread must report, not die
                # the library's argument named as the menu choice a user makes here
                said = str(e)
                for split in ("cells", "dose"):
                    said = said.replace(f"split='{split}'", "the images menu's "
                                        f"'cross-validated: {split} split'")
                self._last_error = f"{type(e).__name__}: {said}"
                self.notice.value = message_html(self._last_error, "error")
                self.status.value = "error: last results kept"
                return
            self._up_to_date = True
            self.notice.value = ""
            self.last_latency_s = time.perf_counter() - t0
            self.n_updates += 1
            self.status.value = (f"update {self.n_updates}: {self.last_latency_s * 1e3:.0f} ms;"
                                 f" mask sum {float(np.abs(masks).sum()):.6g}")
            _trace("update end", n=self.n_updates)

    def _make_viewers(self, names):
        det = self.detector_region()
        crop = crop_box(det, self.data_shape[2:])
        z_det = 200.0 / max(crop[1] - crop[0], crop[3] - crop[2])
        z_scan = 210.0 / max(self.data_shape[:2])
        viewers = {}
        for n in names:
            v = MaskViewer(self.data_shape[:2], self.data_shape[2:], self.cal,
                           (self.bf_mrad,), n, det_region=det,
                           zoom_det=z_det * self.zoom.value, zoom_scan=z_scan * self.zoom.value)
            v.base_zoom = (z_det, z_scan)
            v.image_panel.mark.on_element_click(
                lambda m, ev, p=v.image_panel, n=n: self._set_contrast_target(p, f"image {n}"))
            viewers[n] = v
        return viewers

    def _show(self, names, masks, images):
        """Draw what changed: a panel whose array is the one it shows sends nothing."""
        key = (tuple(names), self.detector.value)
        if key != self._viewer_key:
            self.viewers = self._make_viewers(names)
            self._viewer_key = key
            self.viewer_box.children = [v.widget for v in self.viewers.values()]
            if self.scatter is not None:  # brushing highlights in the panel now shown
                self.scatter.attach(self.viewers.get(self.scatter.species))
        for i, n in enumerate(names):
            self.viewers[n].show(masks[i], images[i])
        if self.scatter is not None and self.scatter.species in names:
            # Fig 2d follows the template and the equation (whole detector: no pass)
            whole, _ = self.compute([self.scatter.species], whole_detector=True)
            self.scatter.show(whole[0])
        self._shown = getattr(self, "_computed", {"key": None})
        self.masks, self.images, self.names = masks, images, list(names)
        cols = {k: v for k, v in self.session.columns.items() if len(v)}
        rows = {n: specificity(images[i], cols) for i, n in enumerate(names)}
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(f"<tr><td>TDM {n}</td>" + "".join(f"<td>{r[c]:+.2f}</td>" for c in cols)
                       + "</tr>" for n, r in rows.items())
        kind = {"none": "same data"}.get(self.cross_validate.value,
                                       f"cross-validated ({self.cross_validate.value} split)")
        self.table.value = (f"<b>mean z-score at each column type ({kind})</b>"
                            f"<table><tr><th></th>{head}</tr>{body}</table>")
        self.specificity = rows

    def radial_scatter(self, species: str | None = None):
        """Fig 2d for one species: whole-detector PCC and mean intensity against angle,
        brushing highlights pixels in that species' mask viewer."""
        from .scatter import RadialPCCScatter

        self.flush()
        with self._lock:
            if not self.names:
                raise ValueError("no masks yet: paint some columns first")
            name = species or self.names[0]
            if name not in self.names:
                raise ValueError(f"species must be one of {self.names}; got {name!r}")
            whole, _ = self.compute([name], whole_detector=True)
            self.scatter = RadialPCCScatter(self.session.stats.mean, self.cal,
                                            self.viewers[name], species=name)
            self.scatter.show(whole[0])
        return self.scatter

    # -- saving --------------------------------------------------------------------------
    def _guarded_save(self):
        try:
            out = self.save(self.save_path.value)
        except Exception as e:  # noqa: BLE001 - every error reaches the user
            self.notice.value = message_html(f"save failed: {type(e).__name__}: {e}", "error")
        else:
            self.notice.value = message_html(
                f"saved masks.hspy, images.hspy, positions.json, session.json, "
                f"parameters.json to {out} (the state of update {self.saved['update']})")

    def save(self, folder) -> Path:
        """Write the session's calibrated, named masks and images (``metadata.TDM``
        records the templates, species names, settings and source), its positions and
        provenance (``session.json``), plus the templates, the explorer's parameters
        and the specificity table, to ``folder``. A pending update is run first, so
        the files hold exactly what the explorer shows; ``self.saved`` records which
        update was saved."""
        if not str(folder).strip():
            raise ValueError("the folder is empty: type the folder to save into")
        self.flush()
        with self._lock:
            if self.masks is None:
                raise ValueError("nothing to save yet: paint some columns first")
            if not self._up_to_date:
                raise ValueError("the last update failed, so the explorer shows older "
                                 f"results: fix its error ({self._last_error}), then save")
            se = self.session
            names = se.names
            templates = np.stack([se.templates[n] for n in names])
            split = self.cross_validate.value
            params = {"species": names, "normalization": se.normalization,
                      "normalized": bool(self.normalized.value),
                      "detector": self.detector.value, "bf_mrad": self.bf_mrad,
                      "cross_validation": split, "sigma_px": float(se.sigma_px),
                      "region": None if se.region is None else
                      np.argwhere(se.region).tolist()}
            record = {"template": templates, "detector": self.detector.value,
                      "bf_mrad": self.bf_mrad, "cross_validation": split,
                      "sigma_px": float(se.sigma_px), "explorer_update": self.n_updates}
            out = se.save(folder, normalized=bool(self.normalized.value),
                          split=None if split == "none" else split, record=record)
            if self.painter.lattice is not None:  # the positions file keeps the lattice
                from ..positions import save_positions

                save_positions(out / "positions.json",
                               {n: np.round(p, 6) for n, p in se.columns.items()},
                               self.painter.lattice, scan_shape=se.scan_shape)
            np.save(out / "templates.npy", templates)
            (out / "parameters.json").write_text(json.dumps(params, indent=1))
            (out / "specificity.json").write_text(json.dumps(self.specificity, indent=1))
            self.saved = {"folder": str(out), "update": self.n_updates, "names": names}
        return out


def explore(s, columns=None, **kwargs) -> Explorer:
    """Open the explorer on a dataset; display ``explore(s).widget`` in JupyterLab.

    Example
    -------
    >>> ex = explore(s, {"Li": li_positions})          # doctest: +SKIP
    >>> ex.painter.click(5, 7, "O"); ex.save("results")  # doctest: +SKIP
    """
    return Explorer(s, columns, **kwargs)
