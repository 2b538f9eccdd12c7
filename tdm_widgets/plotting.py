"""Publication-style matplotlib figures: images with scale bars and column overlays,
masks on a diverging map centred on zero (positive orange, negative blue)."""

from __future__ import annotations

import numpy as np

#: Column colours per species (Pb blue, Ti yellow, O red as in the paper's Fig 5). Fe is
#: cyan, not a brown or pink, so that its open circles stay distinct from O's red ones at
#: marker sizes of a few points and from Fig 4's red, pink and blue defect circles.
SPECIES_COLORS = {"Li": "#2ca02c", "Fe": "#17becf", "P": "#9467bd", "O": "#d62728",
                  "Pb": "#1f77b4", "Ti": "#e6b800", "all": "k"}

#: Colour-bar label of a PCC mask (Eq 5).
PCC_LABEL = "PCC [dimensionless]"
#: Colour-bar label of an image shown as z-scores (``show_image(..., zscore=True)``).
ZSCORE_LABEL = "z-score [image std]"


def mask_cmap():
    """Blue (negative) - white - orange (positive) colour map."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("tdm_mask", ["#2b6cb0", "#ffffff", "#ed8936"])


def _extent(sig):
    ax_x, ax_y = sig.axes_manager.signal_axes
    x0, y0 = ax_x.offset - ax_x.scale / 2, ax_y.offset - ax_y.scale / 2
    return [x0, x0 + ax_x.scale * ax_x.size, y0 + ax_y.scale * ax_y.size, y0], ax_x.units


#: ``gid`` of the artists a scale bar is drawn with (:func:`scale_bar`), so a figure
#: check (:func:`figure_report`) can find them.
SCALE_BAR_GID = "tdm-scale-bar"


def nice_length(span: float, fraction: float = 0.25) -> float:
    """A round bar length (1, 2 or 5 times a power of ten) of at most about
    ``fraction`` of ``span``.

    >>> nice_length(31.0), nice_length(48.0), nice_length(3.1)
    (5.0, 10.0, 0.5)
    """
    target = abs(span) * fraction
    if not target > 0:
        raise ValueError(f"span must be positive; got {span}")
    p = 10.0 ** np.floor(np.log10(target))
    return float(max(m * p for m in (1, 2, 5) if m * p <= target * 1.0001))


def scale_bar(ax, length=None, units="Å", color="w", loc=(0.06, 0.08), label="above",
              box=False):
    """Draw a scale bar on an image axes, labelled ``"<length> <units>"``.

    Both artists carry ``gid=SCALE_BAR_GID`` and labels starting with ``_`` (no legend
    entry). Call it after the view limits are set.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        An image axes in physical units (e.g. [Å] or [mrad]).
    length : float, optional
        Bar length [axis units]; None: a round length for the current view
        (:func:`nice_length`).
    units : str
        Unit printed after the length, e.g. ``"Å"`` or ``"mrad"``.
    color : str
        Colour of bar and label; their outline (or box) is black or white, whichever
        differs more.
    loc : tuple of float
        Left end of the bar, as fractions of the view's width and height from its lower
        left corner as displayed [dimensionless].
    label : {"above", "right"}
        The label above the bar's centre, or right of its end (a flatter bar, for a
        corner crowded with data).
    box : bool
        Draw the label on a semi-opaque box and the bar above other artists, so that
        column markers under them do not hide them.

    Returns
    -------
    float
        The length drawn [axis units].

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.imshow(np.zeros((10, 30)), extent=[0, 9.0, 3.0, 0])  # 0.3 Å pixels
    >>> scale_bar(ax, units="Å", box=True)
    2.0
    >>> plt.close(fig)
    """
    import matplotlib.patheffects as pe
    from matplotlib.colors import to_rgb

    if label not in ("above", "right"):
        raise ValueError(f"label must be 'above' or 'right'; got {label!r}")
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    if length is None:
        length = nice_length(x1 - x0)
    flipped = ax.yaxis_inverted()
    fx, fy = loc
    px = x0 + fx * (x1 - x0)
    py = y1 - fy * (y1 - y0) if flipped else y0 + fy * (y1 - y0)
    edge = "k" if np.mean(to_rgb(color)) > 0.5 else "w"  # readable on any background
    z = 5 if box else None  # above column markers (scatter, zorder 1)
    ax.plot([px, px + length], [py, py], color=color, lw=3, solid_capstyle="butt",
            gid=SCALE_BAR_GID, label="_scale bar", zorder=z,
            path_effects=[pe.Stroke(linewidth=4.5, foreground=edge), pe.Normal()])
    if label == "above":
        ty = py - 0.03 * (y1 - y0) if flipped else py + 0.03 * (y1 - y0)
        tx, ha, va = px + length / 2, "center", "bottom"
    else:
        tx, ty, ha, va = px + length + 0.015 * (x1 - x0), py, "left", "center"
    style = {"bbox": {"boxstyle": "round,pad=0.15", "fc": edge, "ec": "none", "alpha": 0.6},
             "zorder": 6} if box else {
        "path_effects": [pe.withStroke(linewidth=2, foreground=edge)]}
    ax.text(tx, ty, f"{length:g} {units}", color=color, ha=ha, va=va, fontsize=8,
            gid=SCALE_BAR_GID, label="_scale bar label", **style)
    return length


def overlay_columns(ax, columns, scale=(1.0, 1.0), offset=(0.0, 0.0), size=9,
                    species=None, legend=False):
    """Column positions [scan px] drawn as open circles in axis units
    (``offset + px * scale``, (y, x)), coloured by species (:data:`SPECIES_COLORS`).
    ``legend=True`` puts a legend of the species in one row below the axes, outside
    the image, so that it hides no column."""
    names = list(columns) if species is None else list(species)
    for name in names:
        pos = np.asarray(columns[name], float).reshape(-1, 2)
        ax.scatter(offset[1] + pos[:, 1] * scale[1], offset[0] + pos[:, 0] * scale[0],
                   s=size, facecolors="none", edgecolors=SPECIES_COLORS.get(name, "c"),
                   linewidths=0.8, label=name)
    if legend:
        outside_legend(ax, ncol=len(names))


def outside_legend(ax, ncol=1, **kwargs):
    """A legend below an axes, outside it, so that it covers no data.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes whose labelled artists the legend lists.
    ncol : int
        Number of legend columns.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.legend` (e.g. ``handles``, ``labels``,
        ``fontsize``).

    Returns
    -------
    matplotlib.legend.Legend
        The legend.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], label="a")
    >>> outside_legend(ax).get_texts()[0].get_text()
    'a'
    >>> plt.close(fig)
    """
    opts = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.01), "ncol": ncol,
            "fontsize": 7, "frameon": False, "handletextpad": 0.2, "columnspacing": 0.8,
            "borderaxespad": 0.2, "markerscale": 1.5}
    opts.update(kwargs)
    return ax.legend(**opts)


def _bar_color(img):
    """Black or white, whichever stands out on the image's lower-left corner."""
    h, w = img.shape[:2]
    corner = img[int(h * 0.75):, : max(1, int(w * 0.35))].astype(float)
    lo, hi = np.nanmin(img), np.nanmax(img)
    lum = (np.nanmean(corner) - lo) / ((hi - lo) or 1.0)
    return "k" if lum > 0.5 else "w"


def zscore(img):
    """An image as z-scores: ``(img - mean) / std`` over its finite pixels.

    Parameters
    ----------
    img : ndarray or Signal2D
        The image (data units).

    Returns
    -------
    ndarray
        The z-scores [image std], float64.

    Examples
    --------
    >>> zscore(np.array([[0.0, 2.0]]))
    array([[-1.,  1.]])
    """
    a = np.asarray(getattr(img, "data", img), float)
    sd = np.nanstd(a)
    return (a - np.nanmean(a)) / (sd if sd > 0 else 1.0)


def shared_range(images, z=True):
    """One colour range for a row of images, so that their values compare.

    Parameters
    ----------
    images : sequence of ndarray or Signal2D
        The images.
    z : bool
        Range of their z-scores (:func:`zscore`), as ``show_image(..., zscore=True)``
        draws them, instead of their data.

    Returns
    -------
    tuple of float
        ``(vmin, vmax)`` [image std, or data units].

    Examples
    --------
    >>> lo, hi = shared_range([np.array([0.0, 2.0]), np.array([0.0, 0.0, 0.0, 4.0])])
    >>> round(lo, 3), round(hi, 3)
    (-1.0, 1.732)
    """
    arrays = [zscore(i) if z else np.asarray(getattr(i, "data", i), float) for i in images]
    return (float(min(np.nanmin(a) for a in arrays)),
            float(max(np.nanmax(a) for a in arrays)))


def show_image(ax, sig, title="", columns=None, bar=None, cmap="gray", legend=False,
               zscore=False, vmin=None, vmax=None):
    """An image signal in angstrom with optional column overlay (positions in px).

    ``bar``: a scale-bar length [axis units], ``"auto"`` for a round length, or None
    (on a column overlay the bar's label is boxed, :func:`scale_bar`); ``legend``: a
    legend of the species overlaid, below the axes; ``zscore``: draw the image's
    z-scores (:func:`zscore`, colour-bar label :data:`ZSCORE_LABEL`) instead of its data;
    ``vmin``, ``vmax``: the colour range [data units or image std], e.g. one for a row
    (:func:`shared_range`). Returns the ``AxesImage`` (for :func:`add_colorbar`).
    """
    img = globals()["zscore"](sig) if zscore else np.asarray(sig.data)
    ext, units = _extent(sig)
    im = ax.imshow(img, cmap=cmap, extent=ext, interpolation="nearest", vmin=vmin, vmax=vmax)
    if columns:
        ax_x, ax_y = sig.axes_manager.signal_axes
        overlay_columns(ax, columns, (ax_y.scale, ax_x.scale), (ax_y.offset, ax_x.offset),
                        legend=legend)
    if bar:
        scale_bar(ax, None if bar == "auto" else bar, units, color=_bar_color(img),
                  box=bool(columns))
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return im


def show_pattern(ax, pattern, scale, offset, radii=(), title="", limit=None):
    """A diffraction pattern (log scale) in mrad with detector circles drawn by the
    same geometry as :func:`tdm_widgets.virtual_image`.

    Parameters
    ----------
    pattern : ndarray
        ``(det_y, det_x)`` intensities.
    scale, offset : tuple of float
        Detector calibration (y, x) [mrad].
    radii : sequence of float
        Circle radii [mrad] around 0 mrad.
    """
    from .core.geometry import circle

    p = np.asarray(pattern, float)
    y0, x0 = offset[0] - scale[0] / 2, offset[1] - scale[1] / 2
    ext = [x0, x0 + scale[1] * p.shape[1], y0 + scale[0] * p.shape[0], y0]
    ax.imshow(np.log10(np.clip(p, p[p > 0].min(), None)), cmap="magma", extent=ext)
    for r in radii:
        cy, cx = circle(r)
        ax.plot(cx, cy, color="c", lw=0.7)
    if limit:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(limit, -limit)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def symmetric_limit(masks, clip=None):
    """One symmetric colour limit for several masks, so that a row of them shares one
    colour bar and their magnitudes compare.

    Parameters
    ----------
    masks : sequence of ndarray or Signal2D, or ndarray
        The masks (a stack ``(k, det_y, det_x)`` counts as ``k`` masks).
    clip : float, optional
        Percentile of ``|mask|`` (over all masks) to end the scale at; default the
        largest value.

    Returns
    -------
    float
        The limit ``v`` of the colour range ``(-v, v)`` [mask units].

    Examples
    --------
    >>> symmetric_limit([np.array([0.1, -0.4]), np.array([0.3])])
    0.4
    """
    a = np.concatenate([np.abs(np.asarray(getattr(m, "data", m), float)).ravel()
                        for m in masks])
    a = a[np.isfinite(a)]
    v = float(np.percentile(a, clip) if clip else a.max()) if a.size else 0.0
    return v or 1.0


def show_mask(ax, sig, title="", limit_mrad=None, bar=None, binary=False, clip=None,
              vmax=None):
    """A detector mask in mrad on the zero-centred diverging map (orange positive,
    blue negative), or with ``binary=True`` a 0/1 mask in black and white (the
    paper's Fig 1d/2a convention). ``bar`` as in :func:`show_image`; ``clip``: the
    colour scale ends at this percentile of ``|mask|`` (default the largest value);
    ``vmax``: the colour range is ``(-vmax, vmax)`` [mask units] instead (one for a row
    of masks, :func:`symmetric_limit`). Returns the ``AxesImage`` (for
    :func:`add_colorbar`)."""
    m = np.asarray(sig.data)
    ext, units = _extent(sig)
    if binary:
        im = ax.imshow(m, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
    else:
        v = vmax or (np.percentile(np.abs(m), clip) if clip else np.max(np.abs(m))) or 1.0
        im = ax.imshow(m, cmap=mask_cmap(), vmin=-v, vmax=v, extent=ext,
                       interpolation="nearest")
    if limit_mrad:
        ax.set_xlim(-limit_mrad, limit_mrad)
        ax.set_ylim(limit_mrad, -limit_mrad)
    if bar:
        scale_bar(ax, None if bar == "auto" else bar, units,
                  color="w" if binary else "k")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return im


def add_colorbar(axes, label, image=None, **kwargs):
    """One labelled colour bar for an axes or a row of axes that share a colour range.

    Parameters
    ----------
    axes : matplotlib.axes.Axes or sequence of Axes
        The panels the bar belongs to; it takes its space from them.
    label : str
        The bar's label with its unit, e.g. :data:`PCC_LABEL` or :data:`ZSCORE_LABEL`.
    image : matplotlib.image.AxesImage, optional
        The image whose colour map and range it shows; default the last image of the
        first axes.
    **kwargs
        Passed to :meth:`matplotlib.figure.Figure.colorbar` (default ``shrink=0.85``,
        ``pad=0.01``, ``aspect=15``).

    Returns
    -------
    matplotlib.colorbar.Colorbar
        The colour bar.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(1, 2)
    >>> _ = [a.imshow(np.eye(3), vmin=-1, vmax=1) for a in ax]
    >>> add_colorbar(ax, PCC_LABEL).ax.get_ylabel()
    'PCC [dimensionless]'
    >>> plt.close(fig)
    """
    axs = list(np.ravel(axes)) if not hasattr(axes, "images") else [axes]
    im = image if image is not None else axs[0].images[-1]
    opts = {"shrink": 0.85, "pad": 0.01, "aspect": 15}
    opts.update(kwargs)
    cb = axs[0].figure.colorbar(im, ax=axs if len(axs) > 1 else axs[0], **opts)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=8)
    return cb


def show_displacements(ax, image, centres, displacement, step_A=(1.0, 1.0), scale=0.1,
                       title=""):
    """Displacement map (Fig 5h): arrows at each column, coloured by direction, over
    an image; ``centres`` and ``displacement`` in px (y, x), drawn in angstrom."""
    img = np.asarray(getattr(image, "data", image), float)
    sy, sx = step_A
    ax.imshow(img, cmap="gray", extent=[-sx / 2, sx * (img.shape[1] - 0.5),
                                         sy * (img.shape[0] - 0.5), -sy / 2])
    c = np.asarray(centres, float)
    d = np.asarray(displacement, float)
    ok = ~np.isnan(d[:, 0])
    angle = np.degrees(np.arctan2(d[ok, 0], d[ok, 1]))
    q = ax.quiver(c[ok, 1] * sx, c[ok, 0] * sy, d[ok, 1] * sx, d[ok, 0] * sy, angle,
                  cmap="hsv", clim=(-180, 180), angles="xy", scale_units="xy",
                  scale=scale, width=0.006)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return q


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def figure_report(fig) -> list[dict]:
    """One entry per axes of a figure: its title, whether it shows an image
    (``imshow``), whether it carries a scale bar (artists with ``gid=SCALE_BAR_GID``),
    whether both its axes are labelled, and whether it is a colour bar or the twin
    (``twinx``/``twiny``) of another axes, which share their panel's title.

    Returns
    -------
    list of dict
        Keys ``title``, ``image``, ``scale_bar``, ``labelled``, ``colorbar``, ``twin``.
    """
    out = []
    axes = fig.get_axes()
    for ax in axes:
        title = " ".join(t for t in (ax.get_title("left"), ax.get_title(),
                                     ax.get_title("right")) if t).strip()
        artists = ax.lines + ax.texts + ax.patches + ax.collections + ax.artists
        bar = any(a.get_gid() == SCALE_BAR_GID for a in artists)
        pos = ax.get_position().bounds
        twin = any(o is not ax and np.allclose(o.get_position().bounds, pos)
                   and (o.get_shared_x_axes().joined(o, ax)
                        or o.get_shared_y_axes().joined(o, ax))
                   and axes.index(o) < axes.index(ax) for o in axes)
        out.append({"title": title, "image": bool(ax.images), "scale_bar": bar,
                    "labelled": bool(ax.axison and ax.get_xlabel() and ax.get_ylabel()),
                    "colorbar": _is_colorbar(ax), "twin": twin})
    return out


def check_figure(fig, name: str, panels: int | None = None) -> str:
    """Check a figure the way the paper's figures are drawn, and summarise it.

    Every panel (an axes that is neither a colour bar nor a twin) has a title, and
    every panel showing an image has a scale bar (or, for an image of a matrix such
    as D, labelled axes). Notebooks print the summary under their figures, so a
    lost panel changes the stored output (``tests/test_notebook_figures.py``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        The figure's name in the summary.
    panels : int, optional
        The number of panels it must have.

    Returns
    -------
    str
        ``"<name>: <n> panels (<k> images), titled <t>/<n>, images with a scale bar
        <b> [and with labelled axes <l>] of <k>"``.

    Raises
    ------
    AssertionError
        Naming the panels without a title or scale bar, or the wrong panel count.
    """
    rep = [r for r in figure_report(fig) if not (r["colorbar"] or r["twin"])]
    images = [r for r in rep if r["image"]]
    untitled = [i for i, r in enumerate(rep) if not r["title"]]
    unbarred = [r["title"] or "(untitled)" for r in images
                if not (r["scale_bar"] or r["labelled"])]
    problems = []
    if untitled:
        problems.append(f"panels {untitled} have no title")
    if unbarred:
        problems.append(f"images without a scale bar: {unbarred}")
    if panels is not None and len(rep) != panels:
        problems.append(f"{len(rep)} panels, expected {panels}")
    if problems:
        raise AssertionError(f"{name}: " + "; ".join(problems))
    n_bar = sum(r["scale_bar"] for r in images)
    n_lab = sum(r["labelled"] and not r["scale_bar"] for r in images)
    return (f"{name}: {len(rep)} panels ({len(images)} images), titled "
            f"{len(rep) - len(untitled)}/{len(rep)}, images with a scale bar {n_bar}"
            + (f" and with labelled axes {n_lab}" if n_lab else "") + f" of {len(images)}")


class Steps:
    """Progress of a long notebook cell as printed lines, one before each step, and the
    total time at the end (plain text, so a notebook's stored output stays the same from
    run to run: ``notebooks/nbval_sanitize.cfg`` masks the time).

    Examples
    --------
    >>> steps = Steps(2)
    >>> steps("Poisson noise")
    [1/2] Poisson noise
    """

    def __init__(self, total: int):
        from time import perf_counter

        self.total, self.i, self._t0, self._clock = int(total), 0, perf_counter(), perf_counter

    def __call__(self, what: str) -> None:
        self.i += 1
        print(f"[{self.i}/{self.total}] {what}", flush=True)  # noqa: T201 - a notebook's progress line

    def done(self) -> None:
        print(f"done in {self._clock() - self._t0:.1f} s", flush=True)  # noqa: T201 - as above
