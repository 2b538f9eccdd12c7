"""tdm-widgets: template-derived masks (TDM) for atomic-resolution 4D-STEM.

Public API::

    TDMSession                                   one dataset, its one-pass statistics and
                                                 named templates: masks, images, edits
    load, from_array, add_poisson_noise          data in
    data_path                                     every dataset of data_manifest.yaml
    bf_disk, calibrate_detector, virtual_image    virtual detectors
    find_bad_pixels, set_bad_pixels               dead, hot, stuck pixels: excluded everywhere
    measure_descan, correct_descan                descan, corrected inside every pass
    pcc_mask, apply_mask, column_stats            template-derived masks and images
    pick                                          named images from a stack
    data_matrix                                   the sorted matrix D of Fig 1d
    point_templates, specificity, ...             templates from columns, contrast
    lattice_from_peaks, register_cell             a known unit cell on a user's scan
    cross_validated_image, specificity_report     honest (held-out) TDM images
    cross_validated_joint_images, unmix_images    species images fitted jointly
    center_of_mass, icom, eigen_images,           measurements around the masks
    shot_noise_snr_db, unit_cell_snr_db,
    line_profile, match_thickness, displacement_vectors, refine_by_tdm
"""

from ._version import __version__
from .analysis.displacement import (
    displacement_vectors,
    fit_columns,
    fit_displacements,
    refine_by_tdm,
    start_dependence,
)
from .analysis.icom import center_of_mass, icom
from .analysis.pacbed import match_thickness, resample_pattern
from .analysis.pca import eigen_closeness, eigen_images
from .analysis.profiles import line_profile
from .analysis.snr import shot_noise_snr_db, unit_cell_average, unit_cell_snr_db
from .analysis.unmix import unmix_images
from .badpixels import BadPixels, find_bad_pixels, set_bad_pixels
from .column_templates import (
    format_specificity,
    point_templates,
    random_positions_template,
    specificity,
)
from .cross_validation import (
    cross_validated_image,
    cross_validated_joint_images,
    specificity_report,
)
from .datasets import data_path
from .descan import Descan, correct_descan, measure_descan
from .imaging import (
    apply_mask,
    bf_disk,
    calibrate_detector,
    column_stats,
    data_matrix,
    detector_annulus,
    pcc_mask,
    virtual_image,
)
from .io import from_array, load
from .live import LiveTDM, export_weighted_detector
from .noise import add_poisson_noise
from .positions import (
    Lattice,
    find_peaks,
    lattice_from_peaks,
    lattice_from_points,
    load_positions,
    peak_heights,
    rectangle_region,
    refine_lattice,
    refine_positions,
    replicate,
    save_positions,
)
from .registration import Registration, cell_from_columns, register_cell
from .session import TDMSession
from .signals import pick


def explore(s, columns=None, **kwargs):
    """The linked explorer (:class:`tdm_widgets.widgets.Explorer`) for a dataset.

    A painter on an image of the scan drives the templates of every species; masks,
    images and their specificity table update after each click. Display ``.widget``
    in JupyterLab (``ipywidgets`` and ``bqplot`` are imported only here).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        4D data (numpy-backed or lazy), detector calibrated in mrad.
    columns : dict of str to array_like, optional
        Starting column positions per species, ``(n, 2)`` (y, x) [scan px].
    **kwargs
        Passed to :class:`tdm_widgets.widgets.Explorer`: ``species`` (painter
        layers), ``image`` (image to paint on; the virtual ABF if None), ``bf_mrad``
        [mrad], ``debounce_s`` [s], ``background``.

    Returns
    -------
    tdm_widgets.widgets.Explorer
        Its ``widget`` is the JupyterLab view; ``painter``, ``compute()`` and
        ``save(folder)`` drive it from code.

    Examples
    --------
    >>> from tdm_widgets.demo import BUNDLED
    >>> from tdm_widgets.simulate import columns_of, select
    >>> series = tw.load(BUNDLED)
    >>> ex = tw.explore(select(series, thickness_nm=70), columns_of(series),
    ...                 background=False)
    >>> ex.widget                                   # doctest: +SKIP
    """
    from .widgets import explore as _explore

    return _explore(s, columns, **kwargs)


__all__ = [
    "BadPixels", "Descan", "Lattice", "LiveTDM", "Registration", "TDMSession", "__version__",
    "add_poisson_noise", "apply_mask", "bf_disk", "calibrate_detector", "cell_from_columns",
    "center_of_mass", "column_stats", "correct_descan", "cross_validated_image",
    "cross_validated_joint_images", "data_matrix", "data_path", "detector_annulus",
    "displacement_vectors", "fit_columns", "fit_displacements",
    "eigen_closeness", "eigen_images", "explore", "export_weighted_detector",
    "find_bad_pixels", "find_peaks", "format_specificity", "from_array", "icom",
    "lattice_from_peaks", "lattice_from_points", "line_profile", "load", "load_positions",
    "match_thickness", "measure_descan", "pcc_mask", "peak_heights", "pick", "point_templates",
    "random_positions_template", "rectangle_region", "refine_by_tdm", "refine_lattice",
    "refine_positions", "register_cell", "replicate", "resample_pattern", "save_positions",
    "set_bad_pixels", "shot_noise_snr_db", "specificity", "specificity_report",
    "start_dependence", "unit_cell_average", "unit_cell_snr_db", "unmix_images",
    "virtual_image",
]
