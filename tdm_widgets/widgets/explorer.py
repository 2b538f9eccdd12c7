"""Explorer: painter, masks and images for every species, linked."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from ..column_templates import point_templates, specificity
from ..core.blocks import computed
from ..core.engine import TDMEngine
from ..signals import provenance, unwrap, wrap_detector_images, wrap_scan_images
from .mask_viewer import MaskViewer, crop_box
from .painter import TemplatePainter, message_html
from .scatter import RadialPCCScatter

#: Cross-validation choices of the explorer: label, ``split`` of
#: :func:`tdm_widgets.cross_validated_image` ("none": masks fitted to the data they image).
CV_OPTIONS = [("same data", "none"), ("cross-validated: dose split", "dose"),
              ("cross-validated: cells split", "cells")]


class Explorer:
    """One dataset explored: the painter drives masks and images for every species,
    shown side by side with their specificity table.

    Statistics are computed once (one pass); a click on the painter edits the
    templates of its species and of "all" only, which reads only the patterns those
    templates changed at, and then one image pass redraws every mask and image.
    Edits are computed in a background thread; errors there are shown in the
    widget. All data access goes through :meth:`compute`.

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
    """

    def __init__(self, s, columns=None, species=("Li", "Fe", "P", "O"), image=None,
                 bf_mrad: float = 23.5, debounce_s: float = 0.0, background: bool = True):
        import ipywidgets as ipw

        from ..imaging import virtual_image

        self.s = s
        self.data, self.cal, self.source = unwrap(s)
        self.bf_mrad = float(bf_mrad)
        if image is None:
            image = computed(virtual_image(s, 11.0, bf_mrad).data)
        self.painter = TemplatePainter(image, species, columns,
                                       title="virtual ABF (11-23.5 mrad): click columns",
                                       pixel_size=self.cal.scan_scale[1],
                                       units=self.cal.scan_units)
        self.debounce_s = float(debounce_s)
        self.background = bool(background)
        self.engine = None
        self._engine_key = None
        self._dirty: set[str] = set()
        self._layout_changed = True
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
        self._worker = None
        self._pending = False
        self._last_request = 0.0
        self._state_lock = threading.Lock()
        self._lock = threading.RLock()  # a control changed during an update re-enters
        self.painter.on_change(self._on_edit)
        controls = ipw.VBox([self.normalization, self.normalized, self.detector,
                             self.cross_validate, self.zoom, self.contrast_label, self.clip,
                             self.gamma, ipw.HBox([self.save_path, self.save_button]),
                             self.busy, self.status, self.notice],
                            layout={"margin": "0px 0px 0px 16px"})
        self.widget = ipw.VBox([ipw.HBox([self.painter.widget, controls]), self.viewer_box,
                                self.table])
        self.painter.panel.mark.on_element_click(
            lambda m, ev: self._set_contrast_target(self.painter.panel, "painter image"))
        if any(len(v) for v in self.painter.columns.values()):
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
        self.clip.value, self.gamma.value = panel.clip_percent, panel.gamma

    def _apply_contrast(self):
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

    # -- computing -----------------------------------------------------------------------
    def _on_edit(self, edit):
        if edit.kind == "column":
            self._dirty.add(edit.species)
        else:
            self._layout_changed = True
        self.request_update()

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

    def _work(self):
        while True:
            with self._state_lock:
                quiet = time.perf_counter() - self._last_request
                if not self._pending:
                    self._worker = None
                    return
            if quiet < self.debounce_s:
                time.sleep(self.debounce_s - quiet)
                continue
            self.update()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until pending background updates have finished."""
        t = self._worker
        if t is not None:
            t.join(timeout)
        with self._lock:
            pass

    def flush(self) -> None:
        """Run a pending update now (so what is shown matches the templates)."""
        with self._state_lock:
            self._last_request = -np.inf  # no more waiting for quiet
        self.wait()
        if self._pending:
            self.update()

    def detector_region(self):
        """Detector pixels the masks use (BF disc) or None (whole detector)."""
        from ..imaging import detector_annulus

        if self.detector.value == "all" or not self.cal.det_mrad:
            return None
        return detector_annulus(self.cal, self.data.shape[2:], 0.0, self.bf_mrad)

    def compute(self, names, whole_detector: bool = False):
        """The explorer's one access to the data: bring the engine up to date with
        the painter's templates (edited species by sparse edits, anything else by a
        rebuild) and return ``(masks, images)`` for ``names``; ``images`` is None when
        ``whole_detector`` (masks over the whole detector, no pass)."""
        cols = {k: v for k, v in self.painter.columns.items() if len(v)}
        sigma = float(self.painter.sigma.value)
        region = self.painter.region
        key = (tuple(names), sigma, None if region is None else region.tobytes())
        if self.engine is None or key != self._engine_key or self._layout_changed:
            templates, _ = point_templates(cols, self.painter.shape, sigma_px=sigma)
            self.engine = TDMEngine(self.data, templates, region=region)
            self._engine_key, self._layout_changed = key, False
        else:
            for sp in sorted(self._dirty & set(names)):
                k = names.index(sp)
                new, _ = point_templates({sp: cols[sp]}, self.painter.shape, sigma_px=sigma,
                                         combined=None)
                self.engine.edit(k, new[0] - self.engine.templates[k])
            if self._dirty and "all" in names:
                per = self.engine.templates[:-1]
                all_t = per.sum(axis=0) if sigma > 0 else per.max(axis=0)
                self.engine.edit(len(names) - 1, all_t - self.engine.templates[-1])
        self._dirty = set()
        norm = self.normalization.value
        if whole_detector:
            return self.engine.masks(norm, None), None
        det = self.detector_region()
        masks = self.engine.masks(norm, det)
        split = self.cross_validate.value
        if split == "none":
            images = computed(self.engine.images(masks, normalized=self.normalized.value,
                                                 show_progressbar=False))
        else:
            from ..cross_validation import cross_validated_image

            cv = cross_validated_image(self.data, self.engine.templates, split=split,
                                       normalization=norm, detector_region=det,
                                       normalized=self.normalized.value,
                                       show_progressbar=False)
            images = np.asarray(cv.data)
        return masks, images

    def update(self) -> None:
        """Recompute masks, images and the specificity table for every species; an
        error is shown in the widget and leaves the last results in place."""
        with self._lock:
            self._pending = False
            t0 = time.perf_counter()
            busy = threading.Timer(0.2, lambda: setattr(
                self.busy, "value", message_html("⏳ computing…", "busy")))
            busy.daemon = True
            busy.start()
            try:
                cols = {k: v for k, v in self.painter.columns.items() if len(v)}
                if not cols:
                    raise ValueError("no columns painted yet: click columns on the image")
                names = list(cols) + ["all"]
                masks, images = self.compute(names)
                self._show(names, masks, images)
            except Exception as e:  # noqa: BLE001 - the thread must report, not die
                self.notice.value = message_html(f"{type(e).__name__}: {e}", "error")
                self.status.value = "error: last results kept"
                return
            finally:
                busy.cancel()
                self.busy.value = ""
            self.notice.value = ""
            self.last_latency_s = time.perf_counter() - t0
            self.n_updates += 1
            self.status.value = (f"update {self.n_updates}: {self.last_latency_s * 1e3:.0f} ms;"
                                 f" mask sum {float(np.abs(masks).sum()):.6g}")

    def _make_viewers(self, names):
        det = self.detector_region()
        crop = crop_box(det, self.data.shape[2:])
        z_det = 200.0 / max(crop[1] - crop[0], crop[3] - crop[2])
        z_scan = 210.0 / max(self.data.shape[:2])
        viewers = {}
        for n in names:
            v = MaskViewer(self.data.shape[:2], self.data.shape[2:], self.cal,
                           (self.bf_mrad,), n, det_region=det,
                           zoom_det=z_det * self.zoom.value, zoom_scan=z_scan * self.zoom.value)
            v.base_zoom = (z_det, z_scan)
            v.image_panel.mark.on_element_click(
                lambda m, ev, p=v.image_panel, n=n: self._set_contrast_target(p, f"image {n}"))
            viewers[n] = v
        return viewers

    def _show(self, names, masks, images):
        key = (tuple(names), self.detector.value)
        if key != self._viewer_key:
            self.viewers = self._make_viewers(names)
            self._viewer_key = key
            self.viewer_box.children = [v.widget for v in self.viewers.values()]
        for i, n in enumerate(names):
            self.viewers[n].show(masks[i], images[i])
        self.masks, self.images, self.names = masks, images, names
        cols = {k: v for k, v in self.painter.columns.items() if len(v)}
        rows = {n: specificity(images[i], cols) for i, n in enumerate(names)}
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(f"<tr><td>TDM {n}</td>" + "".join(f"<td>{r[c]:+.2f}</td>" for c in cols)
                       + "</tr>" for n, r in rows.items())
        kind = {"none": "same data"}.get(self.cross_validate.value,
                                       f"cross-validated ({self.cross_validate.value} split)")
        self.table.value = (f"<b>mean z-score at each column type ({kind})</b>"
                            f"<table><tr><th></th>{head}</tr>{body}</table>")
        self.specificity = rows

    def radial_scatter(self, species: str | None = None) -> RadialPCCScatter:
        """Fig 2d for one species: whole-detector PCC and mean intensity against angle,
        brushing highlights pixels in that species' mask viewer."""
        self.flush()
        name = species or self.names[0]
        if name not in self.names:
            raise ValueError(f"species must be one of {self.names}; got {name!r}")
        whole, _ = self.compute(self.names, whole_detector=True)
        self.scatter = RadialPCCScatter(self.engine.stats.mean, self.cal, self.viewers[name],
                                        species=name)
        self.scatter.show(whole[self.names.index(name)])
        return self.scatter

    # -- saving --------------------------------------------------------------------------
    def _guarded_save(self):
        try:
            out = self.save(self.save_path.value)
        except Exception as e:  # noqa: BLE001 - every error reaches the user
            self.notice.value = message_html(f"save failed: {type(e).__name__}: {e}", "error")
        else:
            self.notice.value = message_html(
                f"saved masks.hspy, images.hspy, positions.json, parameters.json to {out}")

    def save(self, folder) -> Path:
        """Write calibrated, named masks and images (``metadata.TDM`` records the
        templates, species names and settings), the positions, the templates and the
        parameters to ``folder``; a pending update is run first."""
        self.flush()
        if self.masks is None:
            raise ValueError("nothing to save yet: paint some columns first")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        templates = np.asarray(self.engine.templates)
        params = {"species": list(self.names), "normalization": self.normalization.value,
                  "normalized": bool(self.normalized.value), "detector": self.detector.value,
                  "bf_mrad": self.bf_mrad, "cross_validation": self.cross_validate.value,
                  "sigma_px": float(self.painter.sigma.value),
                  "region": None if self.painter.region is None else
                  np.argwhere(self.painter.region).tolist()}
        meta = provenance("explorer", self.source, names=list(self.names), template=templates,
                          **{k: v for k, v in params.items() if k not in ("species", "region")},
                          region=self.painter.region)
        det = self.detector_region()
        if det is not None:
            meta["parameters"]["detector_region"] = det
        masks = wrap_detector_images(self.masks, self.cal, "TDM masks: " + ", ".join(self.names),
                                     meta, stack_name="species")
        images = wrap_scan_images(np.asarray(self.images), self.cal,
                                  "TDM images: " + ", ".join(self.names), meta,
                                  stack_name="species")
        masks.save(out / "masks.hspy", overwrite=True)
        images.save(out / "images.hspy", overwrite=True)
        np.save(out / "templates.npy", templates)
        self.painter.save(out / "positions.json")
        (out / "parameters.json").write_text(json.dumps(params, indent=1))
        (out / "specificity.json").write_text(json.dumps(self.specificity, indent=1))
        return out


def explore(s, columns=None, **kwargs) -> Explorer:
    """Open the explorer on a dataset; display ``explore(s).widget`` in JupyterLab.

    Example
    -------
    >>> ex = explore(s, {"Li": li_positions})          # doctest: +SKIP
    >>> ex.painter.click(5, 7, "O"); ex.save("results")  # doctest: +SKIP
    """
    return Explorer(s, columns, **kwargs)
