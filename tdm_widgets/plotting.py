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


def scale_bar(ax, length, units, color="w"):
    """Draw a bar of ``length`` (axis units) in the lower left of an image axis."""
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    px, py = x0 + 0.06 * (x1 - x0), y1 - 0.08 * (y1 - y0)
    ax.plot([px, px + length], [py, py], color=color, lw=3, solid_capstyle="butt")
    ax.text(px + length / 2, py - 0.03 * (y1 - y0), f"{length:g} {units}", color=color,
            ha="center", va="bottom", fontsize=7)


def show_image(ax, sig, title="", columns=None, bar=None, cmap="gray"):
    """An image signal in angstrom with optional column overlay (positions in px)."""
    img = np.asarray(sig.data)
    ext, units = _extent(sig)
    ax.imshow(img, cmap=cmap, extent=ext, interpolation="nearest")
    if columns:
        ax_x, ax_y = sig.axes_manager.signal_axes
        for name, pos in columns.items():
            pos = np.asarray(pos)
            ax.scatter(ax_x.offset + pos[:, 1] * ax_x.scale, ax_y.offset + pos[:, 0] * ax_y.scale,
                       s=9, facecolors="none", edgecolors=SPECIES_COLORS.get(name, "c"),
                       linewidths=0.8, label=name)
    if bar:
        lum = (img - img.min()) / (np.ptp(img) or 1.0)
        scale_bar(ax, bar, units, color="k" if lum.mean() > 0.5 else "w")
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


def show_mask(ax, sig, title="", limit_mrad=None, bar=None):
    """A detector mask in mrad on the zero-centred diverging map."""
    m = np.asarray(sig.data)
    ext, units = _extent(sig)
    v = np.max(np.abs(m)) or 1.0
    ax.imshow(m, cmap=mask_cmap(), vmin=-v, vmax=v, extent=ext, interpolation="nearest")
    if limit_mrad:
        ax.set_xlim(-limit_mrad, limit_mrad)
        ax.set_ylim(limit_mrad, -limit_mrad)
    if bar:
        scale_bar(ax, bar, units, color="k")
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
