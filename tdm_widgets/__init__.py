"""tdm-widgets: template-derived masks (TDM) for atomic-resolution 4D-STEM.

Public API::

    load, from_array, add_poisson_noise          data in
    bf_disk, calibrate_detector, virtual_image    virtual detectors
    pcc_mask, apply_mask, column_stats            template-derived masks and images
    data_matrix                                   the sorted matrix D of Fig 1d
    point_templates, specificity                  templates from columns, contrast table
"""

from ._version import __version__
from .core.disk import BFDisk
from .imaging import apply_mask, bf_disk, calibrate_detector, column_stats, data_matrix, \
    detector_annulus, pcc_mask, virtual_image
from .io import from_array, load
from .noise import add_poisson_noise
from .columns import point_templates, specificity

__all__ = [
    "__version__", "BFDisk", "add_poisson_noise", "apply_mask", "bf_disk",
    "calibrate_detector", "column_stats", "data_matrix", "detector_annulus",
    "from_array", "load", "pcc_mask", "point_templates", "specificity", "virtual_image",
]
