"""TemplatePainter: click atom columns of each species on a real-space image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.blocks import computed
from ..columns import point_templates
from ..plotting import SPECIES_COLORS
from ..templates import Lattice, lattice_from_points, load_positions, replicate, \
    save_positions
from ._views import grid_view


class TemplatePainter:
    """Species layers of column positions painted on an image.

    A click on the image adds a column of the current species at the clicked scan
    pixel (snapped to the local extremum within ``snap_px`` if set) or removes the
    column already there. Every click has a Python twin for scripts and tests.

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
    """

    def __init__(self, image, species=("Li", "Fe", "P", "O"), columns=None, snap_px: int = 0,
                 snap_sign: int = 1, title: str = "template painter"):
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
        self.snap_px, self.snap_sign = int(snap_px), int(snap_sign)
        self.region = None
        self.lattice: Lattice | None = None
        self._listeners = []
        self.fig, self.mark, self.scales = grid_view(self.image, title)
        self._points = {}
        for s in self.species:
            sc = bq.Scatter(x=[], y=[], scales={"x": self.scales["x"], "y": self.scales["y"]},
                            colors=[SPECIES_COLORS.get(s, "cyan")], default_size=40,
                            stroke="black", marker="circle")
            self._points[s] = sc
        # a transparent square per scan pixel catches clicks with the pixel's index
        yy, xx = np.indices(self.shape)
        self._hit = bq.Scatter(x=xx.ravel() + 0.5, y=yy.ravel() + 0.5, marker="square",
                               default_size=max(16, int(60000 / self.image.size)),
                               opacities=[0.01], colors=["white"],
                               scales={"x": self.scales["x"], "y": self.scales["y"]})
        self._hit.on_element_click(self._on_hit)
        self.fig.marks = [self.mark, self._hit] + list(self._points.values())
        self.species_picker = ipw.ToggleButtons(options=self.species, value=self.species[0],
                                                description="species")
        self.sigma = ipw.FloatSlider(value=0.0, min=0.0, max=3.0, step=0.1,
                                     description="Gaussian σ [px]", continuous_update=False)
        self.sigma.observe(lambda _: self._notify(), "value")
        self.status = ipw.Label("")
        self.mode = ipw.ToggleButtons(options=[("columns", "columns"),
                                               ("lattice: origin, a, b", "lattice"),
                                               ("region: two corners", "region")],
                                      description="click adds")
        self._picks = []
        replicate_btn = ipw.Button(description="replicate cell")
        replicate_btn.on_click(lambda _: self.replicate())
        clear_btn = ipw.Button(description="clear region")
        clear_btn.on_click(lambda _: self.clear_region())
        self.path = ipw.Text(value="positions.json", description="file")
        save_btn, load_btn = ipw.Button(description="export"), ipw.Button(description="import")
        save_btn.on_click(lambda _: self.save(self.path.value))
        load_btn.on_click(lambda _: self.load(self.path.value))
        self._redraw()
        self.widget = ipw.VBox([self.species_picker, self.mode, self.fig, self.sigma,
                                ipw.HBox([replicate_btn, clear_btn]),
                                ipw.HBox([self.path, save_btn, load_btn]), self.status])

    # -- state -------------------------------------------------------------------
    @property
    def current(self) -> str:
        """The species that clicks edit."""
        return self.species_picker.value

    def templates(self, combined: str | None = "all"):
        """``(k, scan_y, scan_x)`` templates of the non-empty layers and their names."""
        cols = {k: v for k, v in self.columns.items() if len(v)}
        if not cols:
            raise ValueError("no columns painted yet")
        return point_templates(cols, self.shape, sigma_px=self.sigma.value, combined=combined)

    def on_change(self, callback) -> None:
        """Call ``callback(painter)`` after every edit."""
        self._listeners.append(callback)

    def _notify(self):
        for cb in self._listeners:
            cb(self)

    # -- the twins of clicks ---------------------------------------------------------
    def _snap(self, y, x):
        if not self.snap_px:
            return float(y), float(x)
        r = self.snap_px
        best, val = (y, x), -np.inf
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                yy, xx = (y + dy) % self.shape[0], (x + dx) % self.shape[1]
                v = self.snap_sign * self.image[yy, xx]
                if v > val:
                    best, val = (yy, xx), v
        return float(best[0]), float(best[1])

    def click(self, y: int, x: int, species: str | None = None) -> str:
        """Add a column of ``species`` (default the current one) at scan pixel (y, x),
        or remove the column within half a pixel of it. Returns "added" or "removed"."""
        sp = species or self.current
        pts = self.columns.setdefault(sp, np.zeros((0, 2)))
        if len(pts):
            d = np.hypot(pts[:, 0] - y, pts[:, 1] - x)
            if d.min() <= 0.75:
                self.columns[sp] = np.delete(pts, int(np.argmin(d)), axis=0)
                self._redraw()
                self._notify()
                return "removed"
        self.columns[sp] = np.vstack([pts, [self._snap(int(y), int(x))]])
        self._redraw()
        self._notify()
        return "added"

    def _on_hit(self, _, event):
        y, x = np.unravel_index(int(event["data"]["index"]), self.shape)
        self.press(int(y), int(x))

    def press(self, y: int, x: int) -> None:
        """What a click on the image does in the current mode: edit a column, collect
        lattice points (origin, end of a, end of b) or region corners."""
        if self.mode.value == "columns":
            self.click(y, x)
            return
        self._picks.append((y, x))
        if self.mode.value == "lattice" and len(self._picks) == 3:
            self.set_lattice(*self._picks)
            self._picks = []
            self.status.value = f"lattice a={self.lattice.a}, b={self.lattice.b} [px]"
        elif self.mode.value == "region" and len(self._picks) == 2:
            (y0, x0), (y1, x1) = self._picks
            self._picks = []
            self.set_region(min(y0, y1), max(y0, y1) + 1, min(x0, x1), max(x0, x1) + 1)
            self.status.value = f"region: {int(self.region.sum())} scan positions"

    def set_lattice(self, origin, a_end, b_end) -> Lattice:
        """Lattice from three picked points (origin, end of a, end of b) [scan px]."""
        self.lattice = lattice_from_points(np.array([origin, a_end, b_end], float))
        return self.lattice

    def replicate(self) -> None:
        """Tile the columns inside the first lattice cell over the field of view."""
        if self.lattice is None:
            raise ValueError("set_lattice first")
        basis = {}
        for s, pts in self.columns.items():
            if len(pts):
                f = self.lattice.to_frac(pts)
                inside = np.all((f >= -1e-6) & (f < 1 - 1e-6), axis=1)
                if inside.any():
                    basis[s] = f[inside]
        self.columns.update(replicate(self.lattice, basis, self.shape))
        self._redraw()
        self._notify()

    def set_region(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Rectangle reference region (a partial template); ``None`` to clear."""
        from ..templates import rectangle_region

        self.region = rectangle_region(self.shape, y0, y1, x0, x1)
        self._notify()

    def clear_region(self) -> None:
        self.region = None
        self._notify()

    def save(self, path) -> None:
        """Export the positions (and lattice) as JSON."""
        save_positions(path, self.columns, self.lattice, scan_shape=self.shape)

    def load(self, path) -> None:
        """Import positions from a JSON file."""
        cols, lat, _ = load_positions(Path(path))
        self.columns = {s: np.zeros((0, 2)) for s in self.species}
        self.columns.update(cols)
        self.lattice = lat
        self._redraw()
        self._notify()

    def _redraw(self):
        for s, sc in self._points.items():
            pts = self.columns.get(s, np.zeros((0, 2)))
            sc.x, sc.y = pts[:, 1] + 0.5, pts[:, 0] + 0.5
        n = {k: len(v) for k, v in self.columns.items()}
        if hasattr(self, "status"):
            self.status.value = "columns: " + ", ".join(f"{k} {v}" for k, v in n.items())
