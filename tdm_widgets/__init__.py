"""tdm-widgets: template-derived masks (TDM) for atomic-resolution 4D-STEM.

Public API::

    load, from_array, add_poisson_noise          data in
    bf_disk, calibrate_detector, virtual_image    virtual detectors
    find_bad_pixels, set_bad_pixels               dead, hot, stuck pixels: excluded everywhere
    measure_descan, correct_descan                descan, corrected inside every pass
    pcc_mask, apply_mask, column_stats            template-derived masks and images
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

#: Module -> the public names it defines: each module is imported on first use of
#: one of its names (PEP 562), so ``import tdm_widgets`` is cheap and a notebook pays
#: only for what it uses.
_MODULES = {
    ".analysis.displacement": "displacement_vectors refine_by_tdm start_dependence",
    ".analysis.icom": "center_of_mass icom",
    ".analysis.pacbed": "match_thickness resample_pattern",
    ".analysis.pca": "eigen_closeness eigen_images",
    ".analysis.profiles": "line_profile",
    ".analysis.snr": "shot_noise_snr_db unit_cell_average unit_cell_snr_db",
    ".analysis.unmix": "unmix_images",
    ".columns": "format_specificity point_templates random_positions_template specificity",
    ".badpixels": "BadPixels find_bad_pixels set_bad_pixels",
    ".core.disk": "BFDisk",
    ".descan": "Descan correct_descan measure_descan",
    ".imaging": "apply_mask bf_disk calibrate_detector column_stats data_matrix "
                "detector_annulus pcc_mask virtual_image",
    ".core.engine": "TDMEngine",
    ".io": "from_array load",
    ".live": "LiveTDM export_weighted_detector",
    ".noise": "add_poisson_noise",
    ".registration": "Registration cell_from_columns register_cell",
    ".templates": "Lattice find_peaks lattice_from_peaks lattice_from_points load_positions "
                  "peak_heights rectangle_region refine_lattice refine_positions replicate "
                  "save_positions",
    ".validation": "cross_validated_image cross_validated_joint_images specificity_report",
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names.split()}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tdm_widgets' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def explore(s, columns=None, **kwargs):
    """The linked explorer (:class:`tdm_widgets.widgets.Explorer`) for a dataset;
    display ``.widget`` in JupyterLab."""
    from .widgets import explore as _explore

    return _explore(s, columns, **kwargs)


__all__ = [
    "BFDisk", "BadPixels", "Descan", "Lattice", "LiveTDM", "Registration", "TDMEngine", "__version__",
    "add_poisson_noise", "apply_mask", "bf_disk", "calibrate_detector", "cell_from_columns",
    "center_of_mass", "correct_descan", "column_stats", "cross_validated_image",
    "cross_validated_joint_images",
    "data_matrix", "detector_annulus", "displacement_vectors", "eigen_closeness",
    "eigen_images", "explore", "export_weighted_detector", "find_bad_pixels", "find_peaks", "format_specificity", "from_array", "icom",
    "lattice_from_peaks", "lattice_from_points", "line_profile", "load", "load_positions", "match_thickness",
    "measure_descan", "pcc_mask", "peak_heights", "point_templates", "random_positions_template",
    "rectangle_region", "refine_by_tdm", "refine_lattice", "register_cell", "refine_positions",
    "replicate", "resample_pattern", "save_positions", "set_bad_pixels", "shot_noise_snr_db",
    "specificity", "specificity_report", "start_dependence", "unit_cell_average",
    "unit_cell_snr_db", "unmix_images",
    "virtual_image",
]
