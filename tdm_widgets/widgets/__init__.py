"""JupyterLab panels (ipywidgets + bqplot). Each panel has a ``.widget`` to display
and a Python API that does what a click does; the panels hold view state only.
Images are drawn as PNG bitmaps (:mod:`.raster`), never as per-pixel SVG."""

from .explorer import Explorer, explore
from .mask_viewer import MaskViewer
from .matrix_view import MatrixView
from .painter import TemplatePainter
from .scatter import RadialPCCScatter

__all__ = ["Explorer", "MaskViewer", "MatrixView", "RadialPCCScatter", "TemplatePainter",
           "explore"]
