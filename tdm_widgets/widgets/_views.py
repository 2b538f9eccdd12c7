"""bqplot building blocks shared by the panels: image grids with optional overlays."""

from __future__ import annotations

import numpy as np

#: Blue (negative) - white - orange (positive), as the paper draws correlation maps.
MASK_COLORS = ["#2b6cb0", "#ffffff", "#ed8936"]


def grid_view(array, title: str = "", diverging: bool = False, size_px: int = 260):
    """A bqplot Figure showing ``array`` as a grid of cells (row 0 at the top).

    Returns
    -------
    figure, mark, scales
        The figure, its GridHeatMap and a dict of the x, y and colour scales.
    """
    import bqplot as bq

    a = np.asarray(array, float)
    sx, sy = bq.LinearScale(min=0, max=a.shape[1]), bq.LinearScale(min=0, max=a.shape[0],
                                                                     reverse=True)
    if diverging:
        v = float(np.max(np.abs(a))) or 1.0
        sc = bq.ColorScale(colors=MASK_COLORS, mid=0.0, min=-v, max=v)
    else:
        sc = bq.ColorScale(scheme="Greys", reverse=True)
    mark = bq.GridHeatMap(color=a, row=np.arange(a.shape[0]), column=np.arange(a.shape[1]),
                          scales={"row": sy, "column": sx, "color": sc},
                          stroke="transparent")
    ratio = a.shape[0] / a.shape[1]
    fig = bq.Figure(marks=[mark], title=title, padding_x=0, padding_y=0,
                    fig_margin={"top": 30, "bottom": 5, "left": 5, "right": 5},
                    layout={"width": f"{size_px}px", "height": f"{int(size_px * ratio) + 35}px"})
    return fig, mark, {"x": sx, "y": sy, "color": sc}


def update_grid(mark, scales, array, diverging: bool = False) -> None:
    """Replace the colours of a grid view (and its symmetric range if diverging)."""
    a = np.asarray(array, float)
    if diverging:
        v = float(np.max(np.abs(a))) or 1.0
        scales["color"].min, scales["color"].max = -v, v
    mark.color = a
