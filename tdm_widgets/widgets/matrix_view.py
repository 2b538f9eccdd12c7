"""MatrixView: the sorted matrix D of Fig 1d with a read-out of each entry."""

from __future__ import annotations

import numpy as np

from ._views import grid_view


class MatrixView:
    """The sorted, column-normalised D (rows: scan positions by high-angle intensity;
    columns: detector pixels by radius), binned to at most ``max_cells`` per side for
    display, with a hover read-out of scan position and detector pixel.

    Parameters
    ----------
    dm : DataMatrix
        From :func:`tdm_widgets.data_matrix`.
    scan_shape, det_shape : tuple of int
    """

    def __init__(self, dm, scan_shape, det_shape, max_cells: int = 160):
        import ipywidgets as ipw

        self.dm, self.scan_shape, self.det_shape = dm, scan_shape, det_shape
        p, q = dm.matrix.shape
        self.bin = (max(1, -(-p // max_cells)), max(1, -(-q // max_cells)))
        by, bx = self.bin
        m = dm.matrix[: p // by * by, : q // bx * bx]
        self.display = m.reshape(p // by, by, q // bx, bx).mean(axis=(1, 3))
        self.fig, self.mark, _ = grid_view(self.display, "sorted D (Fig 1d)", diverging=True,
                                           size_px=420)
        self.label = ipw.Label("hover over D")
        self.mark.tooltip = None
        self.mark.on_hover(self._on_hover)
        self.widget = ipw.VBox([self.fig, self.label])

    def readout(self, row: int, col: int) -> dict:
        """What the displayed cell (row, col) holds: the first scan position and
        detector pixel of the bin, their coordinates and the mean value."""
        r, c = row * self.bin[0], col * self.bin[1]
        sp = int(self.dm.row_order[r])
        dp = int(self.dm.col_order[c])
        sy, sx = np.unravel_index(sp, self.scan_shape)
        dy, dx = np.unravel_index(dp, self.det_shape)
        info = {"scan_yx": (int(sy), int(sx)), "detector_yx": (int(dy), int(dx)),
                "radius": float(self.dm.radius[c]), "value": float(self.display[row, col])}
        self.label.value = (f"scan (y, x) = {info['scan_yx']}, detector (y, x) = "
                            f"{info['detector_yx']}, r = {info['radius']:.1f}, "
                            f"D̂ = {info['value']:+.2f}")
        return info

    def _on_hover(self, _, event):
        d = event.get("data", {})
        if "row" in d and "column" in d:
            self.readout(int(d["row"]), int(d["column"]))
