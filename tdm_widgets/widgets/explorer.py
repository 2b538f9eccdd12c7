"""Explorer: painter, masks and images for every species, linked."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from ..columns import specificity
from ..core.blocks import computed
from ..core.engine import TDMEngine
from ..signals import unwrap
from .mask_viewer import MaskViewer
from .painter import TemplatePainter
from .scatter import RadialPCCScatter


class Explorer:
    """One dataset explored: the painter drives masks and images for every species,
    shown in a row with their specificity table.

    Statistics are computed once (one pass, with a progress bar for lazy data); a
    template edit reads only the patterns it touched and then makes one image pass,
    debounced and in a background thread so the kernel stays responsive.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D data (numpy-backed or lazy), detector calibrated in mrad.
    columns : dict, optional
        Starting column positions per species [scan px].
    image : array_like, optional
        Image to paint on; the virtual ABF (11-23.5 mrad) if None.
    debounce_s : float
        Quiet time after the last click before recomputing; 0 computes at once in
        the calling thread (scripts and tests).
    """

    def __init__(self, s, columns=None, species=("Li", "Fe", "P", "O"), image=None,
                 bf_mrad: float = 23.5, debounce_s: float = 0.15):
        import ipywidgets as ipw

        from ..imaging import virtual_image

        self.s = s
        self.data, self.cal, _ = unwrap(s)
        self.bf_mrad = bf_mrad
        if image is None:
            image = virtual_image(s, 11.0, bf_mrad, progress=True).data
            image = computed(image)
        self.painter = TemplatePainter(image, species, columns, title="virtual ABF: click columns")
        self.debounce_s = float(debounce_s)
        self.engine = None
        self.normalization = ipw.ToggleButtons(options=[("Eq 5 (PCC)", "pcc"),
                                                        ("Eq 7 (PCC / mean)", "pcc_over_mean")])
        self.application = ipw.ToggleButtons(options=[("raw data (Eq 2)", False),
                                                      ("normalised (Eq 6)", True)])
        self.detector = ipw.ToggleButtons(options=[("BF disc", "bf"), ("whole detector", "all")])
        self.cross_validate = ipw.Checkbox(value=False, description="cross-validated (dose split)")
        for w in (self.normalization, self.application, self.detector, self.cross_validate):
            w.observe(lambda _: self.request_update(), "value")
        self.progress = ipw.HTML("")
        self.notice = ipw.HTML("")
        self.table = ipw.HTML("")
        self.viewers: dict[str, MaskViewer] = {}
        self.viewer_box = ipw.HBox([])
        self.scatter = None
        self.save_button = ipw.Button(description="save results", icon="save")
        self.save_path = ipw.Text(value="tdm_results", description="folder")
        self.save_button.on_click(lambda _: self.save(self.save_path.value))
        self.n_updates = 0
        self.status = ipw.Label("")
        self.last_latency_s = None
        self._timer = None
        self._lock = threading.RLock()  # a control changed during an update re-enters
        self.painter.on_change(lambda _: self.request_update())
        controls = ipw.VBox([self.normalization, self.application, self.detector,
                             self.cross_validate, ipw.HBox([self.save_path, self.save_button]),
                             self.progress, self.status, self.notice])
        self.widget = ipw.VBox([ipw.HBox([self.painter.widget, controls]), self.viewer_box,
                                self.table])
        if any(len(v) for v in self.painter.columns.values()):
            self.update()

    # -- computing ---------------------------------------------------------------
    def request_update(self) -> None:
        """Recompute after ``debounce_s`` of quiet (rapid clicks merge into one)."""
        if self.debounce_s <= 0:
            self.update()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce_s, self.update)
        self._timer.daemon = True
        self._timer.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until a pending background update has finished."""
        t = self._timer
        if t is not None:
            t.join(timeout)
        with self._lock:
            pass

    def _region(self):
        from ..imaging import detector_annulus

        if self.detector.value == "all" or not self.cal.det_mrad:
            return None
        return detector_annulus(self.cal, self.data.shape[2:], 0.0, self.bf_mrad)

    def update(self) -> None:
        """Recompute masks, images and the specificity table for every species."""
        with self._lock:
            t0 = time.perf_counter()
            try:
                templates, names = self.painter.templates()
            except ValueError:
                self.status.value = "paint some columns"
                return
            self.progress.value = "<i>computing…</i>"
            det = self._region()
            if self.cross_validate.value:
                masks, images = self._cross_validated(templates, det)
            else:
                masks, images = self._same_data(templates, det)
            self._show(names, masks, images)
            self.last_latency_s = time.perf_counter() - t0
            self.n_updates += 1
            self.progress.value = ""
            self.status.value = (f"update {self.n_updates}: {self.last_latency_s * 1e3:.0f} ms; "
                                 f"mask sum {float(np.abs(masks).sum()):.4g}")

    def _same_data(self, templates, det):
        region = self.painter.region
        rebuild = (self.engine is None or self.engine.templates.shape != templates.shape
                   or (region is None) != (not self.engine.region_given)
                   or (region is not None and not np.array_equal(region, self.engine.region)))
        if rebuild:
            self.engine = TDMEngine(self.data, templates, region=region, progress=True)
        else:
            for k in range(len(templates)):
                delta = templates[k] - self.engine.templates[k]
                if np.any(delta):
                    self.engine.edit(k, delta)
        masks = self.engine.masks(self.normalization.value, det)
        images = self.engine.images(masks, normalized=self.application.value, progress=False)
        images = computed(images)
        return masks, images

    def _cross_validated(self, templates, det):
        from ..validation import cross_validated_image
        from ..core.correlate import pcc_masks

        if np.dtype(self.data.dtype).kind not in "ui":
            self.notice.value = ("cross-validation needs counts: add noise "
                                 "(tw.add_poisson_noise) or use split='cells'")
            self.cross_validate.value = False
            return self._same_data(templates, det)
        cv = cross_validated_image(self.data, templates, split="dose",
                                   normalization=self.normalization.value,
                                   detector_region=det, normalized=self.application.value,
                                   progress=False)
        masks, _ = pcc_masks(self.data, templates, self.normalization.value,
                             detector_region=det, progress=False)
        return masks, np.asarray(cv.image.data)

    def _show(self, names, masks, images):
        import ipywidgets as ipw

        if list(self.viewers) != names:
            self.viewers = {n: MaskViewer(self.data.shape[2:], self.data.shape[:2], self.cal,
                                          (self.bf_mrad,), n) for n in names}
            self.viewer_box.children = [ipw.VBox([v.mask_fig, v.image_fig])
                                        for v in self.viewers.values()]
        for i, n in enumerate(names):
            self.viewers[n].show(masks[i], images[i])
        self.masks, self.images, self.names = masks, images, names
        cols = {k: v for k, v in self.painter.columns.items() if len(v)}
        rows = {n: specificity(images[i], cols) for i, n in enumerate(names)}
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(f"<tr><td>TDM {n}</td>" + "".join(f"<td>{r[c]:+.2f}</td>" for c in cols)
                       + "</tr>" for n, r in rows.items())
        self.table.value = (f"<b>mean z-score at each column type</b>"
                            f"<table><tr><th></th>{head}</tr>{body}</table>")
        self.specificity = rows

    def radial_scatter(self, species: str | None = None) -> RadialPCCScatter:
        """A RadialPCCScatter linked to one species' MaskViewer."""
        from ..imaging import column_stats

        name = species or self.names[0]
        mean = self.engine.stats.mean if self.engine is not None else column_stats(self.s).mean
        self.scatter = RadialPCCScatter(mean, self.cal, self.viewers[name])
        self.scatter.show(self.masks[self.names.index(name)])
        return self.scatter

    def save(self, folder) -> Path:
        """Write masks, images, templates and parameters to ``folder``."""
        import hyperspy.api as hs

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        templates, names = self.painter.templates()
        params = {"species": names, "normalization": self.normalization.value,
                  "normalized": bool(self.application.value), "detector": self.detector.value,
                  "cross_validated": bool(self.cross_validate.value),
                  "sigma_px": self.painter.sigma.value,
                  "region": None if self.painter.region is None else
                  np.argwhere(self.painter.region).tolist()}
        hs.signals.Signal2D(self.masks).save(out / "masks.hspy", overwrite=True)
        hs.signals.Signal2D(self.images).save(out / "images.hspy", overwrite=True)
        np.save(out / "templates.npy", templates)
        self.painter.save(out / "positions.json")
        (out / "parameters.json").write_text(json.dumps(params, indent=1))
        (out / "specificity.json").write_text(json.dumps(self.specificity, indent=1))
        return out


def explore(s, columns=None, **kwargs) -> Explorer:
    """Open the explorer on a dataset; display ``explore(s).widget`` in JupyterLab."""
    return Explorer(s, columns, **kwargs)
