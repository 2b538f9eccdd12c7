"""Images drawn as images: arrays coloured in numpy, sent as one PNG to a bqplot
``Image`` mark (square pixels scaled by the browser, no per-pixel SVG), with a scale
bar, a title above the plot area and an HTML colour bar."""

from __future__ import annotations

import io

import numpy as np

#: CSS class of a figure whose lines and labels (scale bar, lattice, outlines) let
#: clicks through to the image under them; :func:`click_through_style` styles it.
CLICK_THROUGH = "tdm-click-through"


def click_through_style():
    """An (invisible) HTML widget holding the style of :data:`CLICK_THROUGH`: the lines
    and labels drawn over an image take no pointer events, so a click on a pixel under
    the scale bar or a lattice line reaches the image (markers stay clickable)."""
    import ipywidgets as ipw

    return ipw.HTML(f"<style>.{CLICK_THROUGH} path.line, .{CLICK_THROUGH} text.label, "
                    f".{CLICK_THROUGH} path.curve {{pointer-events: none;}}</style>",
                    layout={"height": "0px", "margin": "0px"})


#: Blue (negative) - white - orange (positive), as the paper draws correlation maps.
MASK_COLORS = ["#2b6cb0", "#ffffff", "#ed8936"]


def _hex_rgb(h: str) -> np.ndarray:
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], float)


def _diverging_lut(n: int = 255) -> np.ndarray:
    """``n`` (odd: zero has its own entry, white) colours from blue to orange."""
    lo, mid, hi = (_hex_rgb(c) for c in MASK_COLORS)
    t = np.linspace(-1.0, 1.0, n)[:, None]
    rgb = np.where(t < 0, mid + (mid - lo) * t, mid + (hi - mid) * t)
    return np.round(rgb).astype(np.uint8)


_LUT = _diverging_lut()


def colorize(array, diverging: bool = False, clip_percent=(0.0, 100.0), gamma: float = 1.0):
    """RGBA uint8 image of a 2D array.

    Parameters
    ----------
    array : array_like
        ``(h, w)`` values; NaN is drawn transparent.
    diverging : bool
        Blue - white - orange, centred on zero, symmetric about the largest
        ``|value|`` (masks); else grey from the clip percentiles.
    clip_percent : tuple of float
        Lower and upper percentile [%] mapped to black and white (grey images).
    gamma : float
        Exponent applied after clipping (grey images); < 1 brightens faint columns.

    Returns
    -------
    rgba : ndarray
        ``(h, w, 4)`` uint8.
    vmin, vmax : float
        The values mapped to the ends of the colour scale.

    Examples
    --------
    >>> rgba, lo, hi = colorize(np.array([[-1.0, 0.0, 2.0]]), diverging=True)
    >>> rgba[0, 1, :3].tolist(), (lo, hi)
    ([255, 255, 255], (-2.0, 2.0))
    """
    a = np.asarray(array, float)
    if a.ndim != 2:
        raise ValueError(f"array must be 2D; got shape {a.shape}")
    finite = np.isfinite(a)
    vals = a[finite]
    rgba = np.zeros(a.shape + (4,), np.uint8)
    rgba[..., 3] = np.where(finite, 255, 0)
    if vals.size == 0:
        return rgba, 0.0, 0.0
    if diverging:
        v = float(np.max(np.abs(vals))) or 1.0
        half = (len(_LUT) - 1) / 2
        idx = np.clip(np.round((np.where(finite, a, 0.0) / v + 1) * half), 0, len(_LUT) - 1)
        rgba[..., :3] = _LUT[idx.astype(np.intp)]
        return rgba, -v, v
    lo_p, hi_p = clip_percent
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"clip_percent must be (low, high) with 0 <= low < high <= 100; "
                         f"got {clip_percent}")
    if gamma <= 0:
        raise ValueError(f"gamma must be positive; got {gamma}")
    lo, hi = (float(x) for x in np.percentile(vals, [lo_p, hi_p]))
    span = (hi - lo) or 1.0
    g = np.clip((np.where(finite, a, lo) - lo) / span, 0.0, 1.0) ** gamma
    rgba[..., :3] = np.round(g * 255).astype(np.uint8)[..., None]
    return rgba, lo, hi


def png_bytes(rgba) -> bytes:
    """PNG encoding of an ``(h, w, 4)`` uint8 image (fast, light compression)."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buf, "png", compress_level=1)
    return buf.getvalue()


class Bitmap:
    """The PNG of a bqplot ``Image`` mark, double-buffered: bqplot redraws the mark
    when its ``image`` widget is replaced, not when that widget's bytes change, so a
    new picture is written into the spare ``ipywidgets.Image`` which then becomes
    the mark's image (two widgets per mark, however often it is redrawn).

    Parameters
    ----------
    scales : dict
        ``{"x": ..., "y": ...}`` bqplot scales of the figure.
    x, y : sequence of float
        ``(left, right)`` and ``(bottom, top)`` edges in scale units.
    """

    def __init__(self, scales, x, y):
        import bqplot as bq
        import ipywidgets as ipw

        blank = png_bytes(np.zeros((1, 1, 4), np.uint8))
        self.buffers = [ipw.Image(format="png", value=blank) for _ in range(2)]
        self.mark = bq.Image(image=self.buffers[0], x=[float(v) for v in x],
                             y=[float(v) for v in y], scales=scales)

    @property
    def value(self) -> bytes:
        """The PNG bytes on display."""
        return self.mark.image.value

    def draw(self, rgba) -> None:
        """Show an ``(h, w, 4)`` uint8 picture."""
        spare = self.buffers[1] if self.mark.image is self.buffers[0] else self.buffers[0]
        spare.value = png_bytes(rgba)
        self.mark.image = spare


def nice_length(span: float) -> float:
    """A round length (1, 2 or 5 x 10^n) close to a fifth of ``span``.

    Examples
    --------
    >>> nice_length(34.0), nice_length(0.9)
    (5.0, 0.2)
    """
    if not span > 0:
        raise ValueError(f"span must be positive; got {span}")
    target = span / 5
    e = 10.0 ** np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * e <= target * 1.5:
            return float(m * e)
    return float(e)


def colorbar_html(vmin: float, vmax: float, diverging: bool, units: str = "") -> str:
    """A horizontal colour bar as HTML: gradient plus the end and middle values."""
    if diverging:
        grad = ", ".join(MASK_COLORS)
    else:
        grad = "#000000, #ffffff"
    mid = 0.0 if diverging else 0.5 * (vmin + vmax)
    u = f" {units}" if units else ""
    return (f"<div style='width:100%;font-size:10px;line-height:12px'>"
            f"<div style='height:8px;border:1px solid #888;"
            f"background:linear-gradient(to right, {grad})'></div>"
            f"<div style='display:flex;justify-content:space-between'><span>{vmin:+.3g}</span>"
            f"<span>{mid:+.3g}</span><span>{vmax:+.3g}{u}</span></div></div>")


class ImagePanel:
    """A 2D array shown as a PNG in a bqplot figure, pixels drawn in their physical
    aspect (square for equal steps).

    The figure's scales run in pixel edges (pixel ``i`` spans ``[i, i + 1)``, row 0
    at the top), so marks drawn on top use ``column + 0.5, row + 0.5`` for pixel
    centres and a click reports ``(row, col) = floor(click_y), floor(click_x)``.

    Parameters
    ----------
    shape : tuple of int
        ``(h, w)`` of the arrays to show.
    title : str
        Drawn above the figure (never over the image).
    pixel_size : float or tuple of float
        Physical size of one pixel, or its ``(height, width)``, in ``units``: the
        scale bar runs along x, and a pixel is drawn ``height / width`` times as tall
        as it is wide (a scan with unequal steps keeps its shape on screen).
    units : str
        ``"Å"``, ``"mrad"``, or ``"px"`` (then no physical bar is drawn, a pixel bar is).
    zoom : float
        Screen pixels per data pixel.
    diverging : bool
        Mask colours centred on zero (with a colour bar) or grey.
    crop : tuple of int, optional
        ``(y0, y1, x0, x1)``: only this part of the array is drawn.
    """

    MARGIN = 2

    def __init__(self, shape, title: str = "", pixel_size: float = 1.0, units: str = "px",
                 zoom: float = 4.0, diverging: bool = False, crop=None):
        import bqplot as bq
        import ipywidgets as ipw

        self.shape = tuple(int(n) for n in shape)
        self.crop = tuple(int(c) for c in crop) if crop is not None else (
            0, self.shape[0], 0, self.shape[1])
        y0, y1, x0, x1 = self.crop
        if not (0 <= y0 < y1 <= self.shape[0] and 0 <= x0 < x1 <= self.shape[1]):
            raise ValueError(f"crop must lie within shape {self.shape}; got {self.crop}")
        self.diverging = bool(diverging)
        size_y, size_x = np.broadcast_to(np.asarray(pixel_size, float), (2,))
        self.pixel_size, self.units = float(size_x), units
        self.aspect = float(size_y / size_x) if size_x > 0 and size_y > 0 else 1.0
        self.clip_percent, self.gamma = (0.5, 99.5), 1.0
        self.x = bq.LinearScale(min=float(x0), max=float(x1))
        self.y = bq.LinearScale(min=float(y0), max=float(y1), reverse=True)
        self.scales = {"x": self.x, "y": self.y}
        self.png = Bitmap(self.scales, (x0, x1), (y1, y0))
        self.mark = self.png.mark
        self.bar, self.bar_label = self._scale_bar(bq)
        m = self.MARGIN
        # no hover toolbar: it covered the top-right pixels and its pan/zoom button
        # silently took every later click
        self.fig = bq.Figure(marks=[self.mark, self.bar, self.bar_label], padding_x=0,
                             padding_y=0, fig_margin={"top": m, "bottom": m, "left": m,
                                                      "right": m},
                             min_aspect_ratio=0.001, max_aspect_ratio=1000,
                             display_toolbar=False)
        self.fig.add_class(CLICK_THROUGH)
        self.title = ipw.HTML(f"<b>{title}</b>", layout={"margin": "0px"})
        self.colorbar = ipw.HTML("")
        self.array = np.zeros(self.shape)
        self.drawn = False  # nothing drawn yet
        self.vrange = (0.0, 0.0)
        self.set_zoom(zoom)
        self.widget = ipw.VBox([self.title, self.fig, self.colorbar, click_through_style()],
                               layout={"align_items": "flex-start", "margin": "2px 6px"})

    def _scale_bar(self, bq):
        y0, y1, x0, x1 = self.crop
        w_phys = (x1 - x0) * self.pixel_size
        length = nice_length(w_phys)
        px = length / self.pixel_size
        bx0 = x0 + 0.06 * (x1 - x0)
        by = y1 - 0.07 * (y1 - y0)
        bar = bq.Lines(x=[bx0, bx0 + px], y=[by, by], colors=["white"], stroke_width=4,
                       scales=self.scales)
        label = bq.Label(x=[bx0 + px / 2], y=[by - 0.04 * (y1 - y0)],
                         text=[f"{length:g} {self.units}"], colors=["white"],
                         font_weight="bold", default_size=11, align="middle",
                         scales=self.scales)
        self.bar_length = length
        return bar, label

    def set_zoom(self, zoom: float) -> None:
        """Screen pixels per data pixel along x (along y times the pixel's aspect)."""
        if not zoom > 0:
            raise ValueError(f"zoom must be positive; got {zoom}")
        y0, y1, x0, x1 = self.crop
        m = 2 * self.MARGIN
        self.zoom = float(zoom)
        w, h = round((x1 - x0) * zoom) + m, round((y1 - y0) * zoom * self.aspect) + m
        self.fig.layout.width, self.fig.layout.height = f"{w}px", f"{h}px"
        self.title.layout.width = self.colorbar.layout.width = f"{w}px"
        self.fit_domain()

    def mark_padding_px(self) -> float:
        """What bqplot pads the scales' range by on each side [screen px]: the largest
        ``sqrt(default_size) / 2 + 1`` of the figure's Scatter and Label marks (the
        scale bar's label is one), 0 without them."""
        sizes = [m.default_size for m in self.fig.marks if hasattr(m, "default_size")]
        return float(np.sqrt(max(sizes)) / 2 + 1) if sizes else 0.0

    def fit_domain(self) -> None:
        """Keep the image filling the plot area (square pixels) however the marks drawn
        on it make bqplot pad the scales' range (:meth:`mark_padding_px`): the domain is
        narrowed by as much, so the image's edges fall on the plot area's. Called on a
        zoom; call it after changing the figure's marks."""
        y0, y1, x0, x1 = self.crop
        p = self.mark_padding_px()
        m = 2 * self.MARGIN
        for scale, lo, hi, size in ((self.x, x0, x1, self.fig.layout.width),
                                    (self.y, y0, y1, self.fig.layout.height)):
            inset = p * (hi - lo) / (float(size[:-2]) - m)   # [data px]
            scale.min, scale.max = float(lo + inset), float(hi - inset)

    def show(self, array) -> None:
        """Draw ``array`` (full shape; the crop is applied here); the same array
        again sends nothing to the page."""
        a = np.asarray(array, float)
        if a.shape != self.shape:
            raise ValueError(f"array must have shape {self.shape}; got {a.shape}")
        if self.drawn and np.array_equal(a, self.array, equal_nan=True):
            return
        self.array = a.copy()
        self.redraw()

    def set_contrast(self, clip_percent=None, gamma=None) -> None:
        """Percentile clip [%] and gamma of a grey image; redraws."""
        if clip_percent is not None:
            self.clip_percent = tuple(float(c) for c in clip_percent)
        if gamma is not None:
            self.gamma = float(gamma)
        self.redraw()

    def redraw(self) -> None:
        y0, y1, x0, x1 = self.crop
        rgba, lo, hi = colorize(self.array[y0:y1, x0:x1], self.diverging, self.clip_percent,
                                self.gamma)
        self.vrange = (lo, hi)
        # a light bar on a light image is drawn dark
        light = rgba[..., :3].mean() > 150
        c = ["black"] if light else ["white"]
        if self.bar.colors != c:
            self.bar.colors = self.bar_label.colors = c
        self.png.draw(rgba)
        self.drawn = True
        if self.diverging:
            self.colorbar.value = colorbar_html(lo, hi, True)
