"""Publication-style matplotlib figures: images with scale bars and column overlays,
masks on a diverging map centred on zero (positive orange, negative blue)."""

from __future__ import annotations

import numpy as np

#: Column colours per species (Pb blue, Ti yellow, O red as in the paper's Fig 5).
SPECIES_COLORS = {"Li": "#2ca02c", "Fe": "#8c564b", "P": "#9467bd", "O": "#d62728",
                  "Pb": "#1f77b4", "Ti": "#e6b800", "all": "k"}


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


def scale_bar(ax, length=None, units="Å", color="w"):
    """Draw a bar of ``length`` (axis units; a round length for the current view if
    None) in the lower left of an image axis, labelled ``"<length> <units>"``.

    Both artists carry ``gid=SCALE_BAR_GID`` and labels starting with ``_`` (no legend
    entry). Call it after the view limits are set. Returns the length drawn.
    """
    import matplotlib.patheffects as pe
    from matplotlib.colors import to_rgb

    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    if length is None:
        length = nice_length(x1 - x0)
    flipped = ax.yaxis_inverted()
    px = x0 + 0.06 * (x1 - x0)
    py = y1 - 0.08 * (y1 - y0) if flipped else y0 + 0.08 * (y1 - y0)
    ty = py - 0.03 * (y1 - y0) if flipped else py + 0.03 * (y1 - y0)
    edge = "k" if np.mean(to_rgb(color)) > 0.5 else "w"  # readable on any background
    ax.plot([px, px + length], [py, py], color=color, lw=3, solid_capstyle="butt",
            gid=SCALE_BAR_GID, label="_scale bar",
            path_effects=[pe.Stroke(linewidth=4.5, foreground=edge), pe.Normal()])
    ax.text(px + length / 2, ty, f"{length:g} {units}", color=color, ha="center",
            va="bottom", fontsize=7, gid=SCALE_BAR_GID, label="_scale bar label",
            path_effects=[pe.withStroke(linewidth=2, foreground=edge)])
    return length


def overlay_columns(ax, columns, scale=(1.0, 1.0), offset=(0.0, 0.0), size=9,
                    species=None, legend=False):
    """Column positions [scan px] drawn as open circles in axis units
    (``offset + px * scale``, (y, x)), coloured by species (:data:`SPECIES_COLORS`)."""
    names = list(columns) if species is None else list(species)
    for name in names:
        pos = np.asarray(columns[name], float).reshape(-1, 2)
        ax.scatter(offset[1] + pos[:, 1] * scale[1], offset[0] + pos[:, 0] * scale[0],
                   s=size, facecolors="none", edgecolors=SPECIES_COLORS.get(name, "c"),
                   linewidths=0.8, label=name)
    if legend:
        ax.legend(loc="upper right", fontsize=6, framealpha=0.8, handletextpad=0.2,
                  borderpad=0.3, markerscale=1.5)


def _bar_color(img):
    """Black or white, whichever stands out on the image's lower-left corner."""
    h, w = img.shape[:2]
    corner = img[int(h * 0.75):, : max(1, int(w * 0.35))].astype(float)
    lo, hi = np.nanmin(img), np.nanmax(img)
    lum = (np.nanmean(corner) - lo) / ((hi - lo) or 1.0)
    return "k" if lum > 0.5 else "w"


def show_image(ax, sig, title="", columns=None, bar=None, cmap="gray", legend=False):
    """An image signal in angstrom with optional column overlay (positions in px).

    ``bar``: a scale-bar length [axis units], ``"auto"`` for a round length, or None;
    ``legend``: a legend of the species overlaid.
    """
    img = np.asarray(sig.data)
    ext, units = _extent(sig)
    ax.imshow(img, cmap=cmap, extent=ext, interpolation="nearest")
    if columns:
        ax_x, ax_y = sig.axes_manager.signal_axes
        overlay_columns(ax, columns, (ax_y.scale, ax_x.scale), (ax_y.offset, ax_x.offset),
                        legend=legend)
    if bar:
        scale_bar(ax, None if bar == "auto" else bar, units, color=_bar_color(img))
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


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


def show_mask(ax, sig, title="", limit_mrad=None, bar=None, binary=False, clip=None):
    """A detector mask in mrad on the zero-centred diverging map (orange positive,
    blue negative), or with ``binary=True`` a 0/1 mask in black and white (the
    paper's Fig 1d/2a convention). ``bar`` as in :func:`show_image`; ``clip``: the
    colour scale ends at this percentile of ``|mask|`` (default the largest value)."""
    m = np.asarray(sig.data)
    ext, units = _extent(sig)
    if binary:
        ax.imshow(m, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="nearest")
    else:
        v = (np.percentile(np.abs(m), clip) if clip else np.max(np.abs(m))) or 1.0
        ax.imshow(m, cmap=mask_cmap(), vmin=-v, vmax=v, extent=ext, interpolation="nearest")
    if limit_mrad:
        ax.set_xlim(-limit_mrad, limit_mrad)
        ax.set_ylim(limit_mrad, -limit_mrad)
    if bar:
        scale_bar(ax, None if bar == "auto" else bar, units,
                  color="w" if binary else "k")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


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
