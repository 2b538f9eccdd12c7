"""TemplatePainter: click atom columns of each species on a real-space image."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..column_templates import check_positions, point_templates
from ..core.blocks import computed
from ..plotting import SPECIES_COLORS
from ..positions import (
    lattice_from_points,
    load_positions,
    rectangle_region,
    replicate,
    save_positions,
)
from .raster import ImagePanel


@dataclass(frozen=True)
class Edit:
    """What changed in the painter, as a session takes it:

    - ``"add"`` / ``"remove"``: one column of ``species`` at ``position`` (row, col)
      [scan px];
    - ``"columns"``: the positions of the species in ``columns`` replaced (import,
      replication, undo);
    - ``"region"``: the reference region is now ``region`` (None: the whole scan);
    - ``"width"``: the Gaussian width is now ``sigma_px``.
    """

    kind: str
    species: str | None = None
    position: tuple[float, float] | None = None
    columns: dict | None = None
    region: np.ndarray | None = None
    sigma_px: float | None = None


def species_legend_html(species) -> str:
    """Coloured dots naming the species (the marker colours)."""
    items = "".join(
        f"<span style='margin-right:10px'><span style='display:inline-block;width:10px;"
        f"height:10px;border-radius:5px;border:1px solid #000;background:"
        f"{SPECIES_COLORS.get(s, 'cyan')}'></span> {s}</span>" for s in species)
    return f"<div style='font-size:12px'>{items}</div>"


def message_html(text: str, level: str = "info") -> str:
    """A message line for the widget: info (green), error (red)."""
    color = {"info": "#1d6b2f", "error": "#b00020", "busy": "#555"}[level]
    return f"<div class='tdm-message tdm-{level}' style='color:{color}'>{text}</div>"


class TemplatePainter:
    """Species layers of column positions painted on an image.

    In the ``columns`` mode a click on the image adds a column of the current species
    at the clicked scan pixel (snapped to the local extremum within the snap radius if
    set); a click on a marker removes that column. In the ``lattice`` mode three
    clicks (on the image or on markers) set the origin and the ends of a and b; in the
    ``region`` mode a drag draws the reference rectangle. Every click has a Python
    twin for scripts and tests (:meth:`click`, :meth:`press`, :meth:`remove`,
    :meth:`set_region`).

    Parameters
    ----------
    image : array_like or Signal2D
        ``(scan_y, scan_x)`` image to paint on (e.g. a virtual ABF).
    species : sequence of str
        Layer names.
    columns : dict, optional
        Starting positions per species [scan px].
    snap_px : int
        Snap radius [scan px]; 0 for none.
    snap_sign : {1, -1}
        Snap to maxima (1, ADF) or minima (-1, ABF).
    pixel_size : float or tuple of float
        Scan step, or ``(step_y, step_x)``, in ``units``: the scale bar's length, and
        pixels drawn in the scan's aspect.
    units : str
        Scan units (``"Å"``).
    zoom : float, optional
        Screen pixels per scan pixel; about 420 screen pixels across if None.
    """

    def __init__(self, image, species=("Li", "Fe", "P", "O"), columns=None, snap_px: int = 0,
                 snap_sign: int = 1, title: str = "template painter", pixel_size=1.0,
                 units: str = "px", zoom: float | None = None):
        import bqplot as bq
        import ipywidgets as ipw

        img = getattr(image, "data", image)
        self.image = np.asarray(computed(img), float)
        if self.image.ndim != 2:
            raise ValueError(f"image must be 2D; got shape {self.image.shape}")
        self.shape = self.image.shape
        self.species = list(species)
        self.columns = {s: np.zeros((0, 2)) for s in self.species}
        for k, v in (columns or {}).items():
            self.columns[k] = np.asarray(v, float).reshape(-1, 2)
            if k not in self.species:
                self.species.append(k)
        self.snap_sign = int(snap_sign)
        self.region = None
        self.lattice = None  # a tdm_widgets.templates.Lattice once three points are picked
        self._listeners = []
        self._history = []
        self._drawn = {}
        zoom = zoom or max(2.0, 420.0 / max(self.shape))
        self.panel = ImagePanel(self.shape, title, pixel_size, units, zoom)
        self.panel.set_contrast((0.5, 99.5), 1.0)
        self.panel.show(self.image)
        sc = self.panel.scales
        self._points = {}
        for s in self.species:
            mk = bq.Scatter(x=[], y=[], scales=sc, colors=[SPECIES_COLORS.get(s, "cyan")],
                            default_size=max(30, int(zoom * zoom * 0.9)), stroke="black",
                            marker="circle", default_opacities=[0.85])
            mk.on_element_click(lambda m, ev, s=s: self._on_marker(s, ev))
            self._points[s] = mk
        self.panel.mark.on_element_click(lambda m, ev: self._on_image(ev))
        self.region_lines = bq.Lines(x=[], y=[], colors=["#ffd000"], stroke_width=3,
                                     scales=sc)
        # lattice colours apart from every species marker (Li green, Fe cyan, P purple,
        # O red) and the region's yellow: orange cell edges, magenta a, dark blue b
        self.lattice_lines = bq.Lines(x=[], y=[], colors=["#ff8c00"], stroke_width=1,
                                      opacities=[0.7], scales=sc)
        self.lattice_vectors = bq.Lines(x=[], y=[], colors=["#ff00ff", "#0000cd"],
                                        stroke_width=3, scales=sc)
        self.picks_mark = bq.Scatter(x=[], y=[], colors=["#ff00ff"], marker="cross",
                                     default_size=80, scales=sc)
        self.brush = bq.interacts.BrushSelector(x_scale=sc["x"], y_scale=sc["y"],
                                                color="#ffd000")
        self.brush.observe(self._on_brush, "brushing")
        p = self.panel
        p.fig.marks = [p.mark, self.lattice_lines, self.lattice_vectors, self.region_lines,
                       *self._points.values(), self.picks_mark, p.bar, p.bar_label]
        p.fit_domain()  # its markers make bqplot pad the scales more than the bar's label
        self.species_picker = ipw.ToggleButtons(options=self.species, value=self.species[0],
                                                description="species",
                                                style={"button_width": "52px"})
        style = {"description_width": "initial"}
        self.sigma = ipw.FloatSlider(value=0.0, min=0.0, max=3.0, step=0.1, style=style,
                                     description="Gaussian width σ [px] (0: points)",
                                     continuous_update=False, layout={"width": "420px"})
        self.sigma.observe(lambda ch: self._changed(Edit("width", sigma_px=float(ch["new"]))),
                           "value")
        self.snap = ipw.IntSlider(value=int(snap_px), min=0, max=4, style=style,
                                  description="snap to extremum within [px]",
                                  layout={"width": "420px"})
        self.mode = ipw.ToggleButtons(options=[("columns", "columns"),
                                               ("lattice: origin, a, b", "lattice"),
                                               ("region: drag", "region")],
                                      description="click/drag", style={"button_width": "140px"})
        self.mode.observe(self._on_mode, "value")
        self._picks = []
        buttons = []
        for label, fn in (("undo", self.undo), ("replicate cell", self.replicate),
                          ("clear region", self.clear_region)):
            b = ipw.Button(description=label, layout={"width": "auto"})
            b.on_click(lambda _, fn=fn: self._guarded(fn))
            buttons.append(b)
        self.path = ipw.Text(value="positions.json", description="file",
                             layout={"width": "260px"})
        save_btn = ipw.Button(description="export", layout={"width": "auto"})
        load_btn = ipw.Button(description="import", layout={"width": "auto"})
        save_btn.on_click(lambda _: self._guarded(lambda: self.save(self.path.value)))
        load_btn.on_click(lambda _: self._guarded(lambda: self.load(self.path.value)))
        self.status = ipw.HTML("")
        self.message = ipw.HTML("")
        self.legend = ipw.HTML(species_legend_html(self.species))
        self._redraw()
        self.widget = ipw.VBox([self.species_picker, self.mode, self.legend, p.title, p.fig,
                                self.sigma, self.snap, ipw.HBox(buttons),
                                ipw.HBox([self.path, save_btn, load_btn]), self.status,
                                self.message])

    # -- state -------------------------------------------------------------------
    @property
    def current(self) -> str:
        """The species that clicks edit."""
        return self.species_picker.value

    @property
    def snap_px(self) -> int:
        """Snap radius [scan px] (0: the clicked pixel)."""
        return int(self.snap.value)

    @snap_px.setter
    def snap_px(self, value: int) -> None:
        self.snap.value = int(value)

    def templates(self, combined: str | None = "all"):
        """``(k, scan_y, scan_x)`` templates of the non-empty layers and their names."""
        cols = {k: v for k, v in self.columns.items() if len(v)}
        if not cols:
            raise ValueError("no columns painted yet: click columns on the image")
        return point_templates(cols, self.shape, sigma_px=self.sigma.value, combined=combined)

    def on_change(self, callback) -> None:
        """Call ``callback(edit)`` with an :class:`Edit` after every change."""
        self._listeners.append(callback)

    def _changed(self, *edits: Edit):
        self._redraw()
        for edit in edits:
            for cb in self._listeners:
                cb(edit)

    def _snapshot(self, species=None) -> dict:
        return {s: self.columns[s].copy() for s in (species or self.columns)}

    def _remember(self):
        self._history.append((copy.deepcopy(self.columns), self.region, self.lattice))
        del self._history[:-100]

    def say(self, text: str, level: str = "info") -> None:
        """Show a message in the widget."""
        self.message.value = message_html(text, level)

    def _guarded(self, fn):
        """Run a button's or a click's action; any error is shown in the widget, and
        the next action clears it, and any other message (an old one no longer stands
        over later edits)."""
        self.message.value = ""  # an old message, error or not, no longer stands
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every error reaches the user
            self.say(f"{type(e).__name__}: {e}", "error")

    # -- the twins of clicks ---------------------------------------------------------
    def _snap(self, y, x):
        r = self.snap_px
        if not r:
            return float(y), float(x)
        best, val = (y, x), -np.inf
        for yy in range(max(0, y - r), min(self.shape[0], y + r + 1)):
            for xx in range(max(0, x - r), min(self.shape[1], x + r + 1)):
                v = self.snap_sign * self.image[yy, xx]  # a scan's edges do not meet
                if v > val:
                    best, val = (yy, xx), v
        return float(best[0]), float(best[1])

    def click(self, y: int, x: int, species: str | None = None) -> str:
        """Add a column of ``species`` (default the current one) at scan pixel (y, x),
        or remove the column of that species already on that pixel. Returns "added"
        or "removed"; a click that snaps onto a column of that species already there is
        a ``ValueError`` (nothing added)."""
        sp = species or self.current
        # the nearest scan pixel; outside the scan or NaN is an error, never wrapped
        y, x = np.rint(check_positions([[y, x]], self.shape, "click (y, x)")[0])
        pts = self.columns.setdefault(sp, np.zeros((0, 2)))
        if len(pts):
            d = np.hypot(pts[:, 0] - y, pts[:, 1] - x)
            if d.min() <= 0.5:
                self.remove(sp, int(np.argmin(d)))
                return "removed"
        pos = self._snap(int(y), int(x))
        if len(pts) and np.hypot(pts[:, 0] - pos[0], pts[:, 1] - pos[1]).min() <= 0.5:
            raise ValueError(f"the click at ({int(y)}, {int(x)}) snaps to ({pos[0]:g}, "
                             f"{pos[1]:g}), where a {sp} column already is: nothing added "
                             "(click its marker to remove it, or set snap to 0)")
        self._remember()
        self.columns[sp] = np.vstack([pts, [pos]])
        self._changed(Edit("add", sp, pos))
        return "added"

    def remove(self, species: str, index: int) -> None:
        """Remove column ``index`` of ``species`` (what a click on its marker does)."""
        pts = self.columns.get(species)
        if pts is None or not 0 <= index < len(pts):
            raise ValueError(f"no column {index} of species {species!r}")
        self._remember()
        pos = tuple(float(v) for v in pts[index])
        self.columns[species] = np.delete(pts, index, axis=0)
        self._changed(Edit("remove", species, pos))

    def _on_image(self, event):
        d = event.get("data", {})
        y, x = int(np.floor(d["click_y"])), int(np.floor(d["click_x"]))
        if 0 <= y < self.shape[0] and 0 <= x < self.shape[1]:
            self._guarded(lambda: self.press(y, x))

    def _on_marker(self, species, event):
        i = int(event["data"]["index"])
        if self.mode.value == "columns":
            self._guarded(lambda: self.remove(species, i))
        else:  # lattice corners may sit on columns: the marker's position is the pick
            y, x = self.columns[species][i]
            self._guarded(lambda: self.press(y, x))

    def _on_mode(self, change):
        self._picks = []
        self.picks_mark.x, self.picks_mark.y = [], []
        self.panel.fig.interaction = self.brush if change["new"] == "region" else None
        hints = {"columns": "click the image to add a column, a marker to remove it",
                 "lattice": "click the origin, then the ends of a and b",
                 "region": "drag a rectangle over the reference region"}
        self.say(hints[change["new"]])

    def _on_brush(self, change):
        if change["new"] or self.brush.selected_x is None or self.brush.selected_y is None:
            return
        (xa, xb), (ya, yb) = sorted(self.brush.selected_x), sorted(self.brush.selected_y)
        y0, y1 = int(np.clip(np.floor(ya), 0, self.shape[0])), int(
            np.clip(np.ceil(yb), 0, self.shape[0]))
        x0, x1 = int(np.clip(np.floor(xa), 0, self.shape[1])), int(
            np.clip(np.ceil(xb), 0, self.shape[1]))
        self._guarded(lambda: self.set_region(y0, y1, x0, x1))

    def press(self, y: float, x: float) -> None:
        """What a click on the image does in the current mode: edit a column or collect
        lattice points (origin, end of a, end of b)."""
        if self.mode.value != "lattice":
            self.click(y, x)
            return
        y, x = check_positions([[y, x]], self.shape, "lattice point (y, x)")[0]
        self._picks.append((float(y), float(x)))
        self.picks_mark.x = [p[1] + 0.5 for p in self._picks]
        self.picks_mark.y = [p[0] + 0.5 for p in self._picks]
        if len(self._picks) == 3:
            picks, self._picks = self._picks, []
            self.picks_mark.x, self.picks_mark.y = [], []
            self.set_lattice(*picks)

    def set_lattice(self, origin, a_end, b_end):
        """Lattice from three picked points (origin, end of a, end of b) [scan px]."""

        lat = lattice_from_points(np.array([origin, a_end, b_end], float))
        self._remember()
        self.lattice = lat
        self._draw_lattice()
        a, b = (np.round(np.asarray(v, float), 2).tolist() for v in (lat.a, lat.b))
        self.say(f"lattice a = {a}, b = {b} [px (y, x)]; 'replicate cell' tiles the "
                 f"columns inside the first cell")
        return lat

    def replicate(self) -> None:
        """Tile the columns inside the first lattice cell over the field of view."""
        if self.lattice is None:
            raise ValueError("no lattice yet: choose 'lattice' and click the origin and the "
                             "ends of a and b first")
        basis = {}
        for s, pts in self.columns.items():
            if len(pts):
                f = self.lattice.to_frac(pts)
                inside = np.all((f >= -1e-6) & (f < 1 - 1e-6), axis=1)
                if inside.any():
                    basis[s] = f[inside]
        if not basis:
            raise ValueError("no columns inside the first lattice cell to replicate")

        self._remember()
        tiled = replicate(self.lattice, basis, self.shape)
        self.columns.update({k: np.round(v, 6) for k, v in tiled.items()})
        self._changed(Edit("columns", columns=self._snapshot(list(tiled))))
        self.say("replicated: " + ", ".join(f"{k} {len(v)}" for k, v in tiled.items()))

    def set_region(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Rectangle reference region (a partial template): rows ``y0:y1``, columns
        ``x0:x1`` [scan px]."""

        region = rectangle_region(self.shape, y0, y1, x0, x1)
        self._remember()
        self.region = region
        self._changed(Edit("region", region=region))
        self.say(f"reference region rows {y0}:{y1}, columns {x0}:{x1} "
                 f"({int(region.sum())} scan positions)")

    def clear_region(self) -> None:
        """Remove the reference region (statistics from the whole scan)."""
        self._remember()
        self.region = None
        self.brush.selected_x = self.brush.selected_y = None
        self._changed(Edit("region"))
        self.say("reference region cleared: whole scan")

    def undo(self) -> None:
        """Go back one edit (columns, region or lattice)."""
        if not self._history:
            raise ValueError("nothing to undo")
        region = self.region
        before = {k: len(v) for k, v in self.columns.items()}
        self.columns, self.region, self.lattice = self._history.pop()
        self._draw_lattice()
        edits = [Edit("columns", columns=self._snapshot())]
        if self.region is not region:
            edits.append(Edit("region", region=self.region))
        self._changed(*edits)
        # each undo says what it changed and how many are left (a second undo is seen)
        diff = ", ".join(f"{k} {before.get(k, 0)} -> {len(v)}" for k, v in self.columns.items()
                         if len(v) != before.get(k, 0))
        what = diff or ("region" if self.region is not region else "lattice")
        self.say(f"undone ({what}); {len(self._history)} more to undo")

    def save(self, path) -> Path:
        """Export the positions (and lattice) as JSON (rounded to 1e-6 px)."""

        cols = {k: np.round(v, 6) for k, v in self.columns.items()}
        save_positions(path, cols, self.lattice, scan_shape=self.shape)
        self.say(f"exported {sum(len(v) for v in cols.values())} columns to {path}")
        return Path(path)

    def load(self, path) -> None:
        """Import positions from a JSON file made for this scan (a file recorded for
        another scan shape, positions outside this scan, or species this painter does
        not have, is a ``ValueError`` and imports nothing)."""
        cols, lat, _ = load_positions(Path(path), self.shape)
        unknown = sorted(set(cols) - set(self.species))
        if unknown:
            raise ValueError(f"{Path(path).name} holds species {unknown} that this painter "
                             f"does not have ({list(self.species)}): nothing imported. Start "
                             "it with them (species=...) or remove them from the file")
        self._remember()
        self.columns = {s: np.zeros((0, 2)) for s in self.species}
        self.columns.update({k: np.asarray(v, float).reshape(-1, 2) for k, v in cols.items()})
        self.lattice = lat
        self._draw_lattice()
        self._changed(Edit("columns", columns=self._snapshot()))
        self.say(f"imported {sum(len(v) for v in cols.values())} columns from {path}")

    # -- drawing -------------------------------------------------------------------------
    def _draw_lattice(self):
        if self.lattice is None:
            self.lattice_lines.x = self.lattice_lines.y = []
            self.lattice_vectors.x = self.lattice_vectors.y = []
            return
        o = np.asarray(self.lattice.origin, float)
        a, b = np.asarray(self.lattice.a, float), np.asarray(self.lattice.b, float)
        self.lattice_vectors.x = [[o[1] + .5, o[1] + a[1] + .5], [o[1] + .5, o[1] + b[1] + .5]]
        self.lattice_vectors.y = [[o[0] + .5, o[0] + a[0] + .5], [o[0] + .5, o[0] + b[0] + .5]]
        # cell edges replicated over the field of view
        n = int(np.ceil(2 * max(self.shape) / max(1e-9, min(np.hypot(*a), np.hypot(*b))))) + 1
        k = np.arange(-n, n + 1)
        segs = [np.stack([o + i * a - n * b, o + i * a + n * b]) for i in k]
        segs += [np.stack([o + j * b - n * a, o + j * b + n * a]) for j in k]
        segs = np.array(segs)
        self.lattice_lines.x = segs[:, :, 1] + 0.5
        self.lattice_lines.y = segs[:, :, 0] + 0.5

    def _redraw(self):
        # only what changed is sent to the page (one message per changed mark)
        for s, sc in self._points.items():
            pts = self.columns.get(s, np.zeros((0, 2)))
            if np.array_equal(pts, self._drawn.get(s)):
                continue
            with sc.hold_sync():
                sc.x, sc.y = pts[:, 1] + 0.5, pts[:, 0] + 0.5
            self._drawn[s] = pts.copy()
        if self.region is None:
            box = ([], [])
        else:
            ys, xs = np.nonzero(self.region)
            y0, y1, x0, x1 = (int(v) for v in (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1))
            box = ([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])
        if box != self._drawn.get("region box"):
            with self.region_lines.hold_sync():
                self.region_lines.x, self.region_lines.y = box
            self._drawn["region box"] = box
        n = {k: len(v) for k, v in self.columns.items()}
        self.status.value = "columns: " + ", ".join(f"{k} {v}" for k, v in n.items())
