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
    fit_displacements, load_displacement_bias     Ti-O displacement and its bias correction
"""

from ._version import __version__

#: Module -> the public names it defines: each module is imported on first use of
#: one of its names (PEP 562), so ``import tdm_widgets`` is cheap and a notebook pays
#: only for what it uses.
_MODULES = {
    ".analysis.displacement": "displacement_vectors fit_columns fit_displacements "
                              "refine_by_tdm start_dependence",
    ".analysis.displacement_bias": "DisplacementBias fit_displacement_bias "
                                   "load_displacement_bias",
    ".analysis.icom": "center_of_mass icom",
    ".analysis.pacbed": "match_thickness resample_pattern",
    ".analysis.pca": "eigen_closeness eigen_images",
    ".analysis.profiles": "line_profile",
    ".analysis.snr": "shot_noise_snr_db unit_cell_average unit_cell_snr_db",
    ".analysis.unmix": "unmix_images",
    ".badpixels": "BadPixels find_bad_pixels set_bad_pixels",
    ".column_templates": "format_specificity point_templates random_positions_template "
                         "specificity",
    ".cross_validation": "cross_validated_image cross_validated_joint_images "
                         "specificity_report",
    ".datasets": "data_path",
    ".descan": "Descan correct_descan measure_descan",
    ".imaging": "apply_mask bf_disk calibrate_detector column_stats data_matrix "
                "detector_annulus pcc_mask virtual_image",
    ".io": "from_array load",
    ".live": "LiveTDM export_weighted_detector",
    ".noise": "add_poisson_noise",
    ".positions": "Lattice find_peaks lattice_from_peaks lattice_from_points load_positions "
                  "peak_heights rectangle_region refine_lattice refine_positions replicate "
                  "save_positions",
    ".registration": "Registration cell_from_columns register_cell",
    ".session": "TDMSession",
    ".signals": "pick",
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
    "BadPixels", "Descan", "DisplacementBias", "Lattice", "LiveTDM", "Registration",
    "TDMSession", "__version__",
    "add_poisson_noise", "apply_mask", "bf_disk", "calibrate_detector", "cell_from_columns",
    "center_of_mass", "column_stats", "correct_descan", "cross_validated_image",
    "cross_validated_joint_images", "data_matrix", "data_path", "detector_annulus",
    "displacement_vectors", "fit_columns", "fit_displacement_bias", "fit_displacements",
    "eigen_closeness", "eigen_images", "explore", "export_weighted_detector",
    "find_bad_pixels", "find_peaks", "format_specificity", "from_array", "icom",
    "lattice_from_peaks", "lattice_from_points", "line_profile", "load",
    "load_displacement_bias", "load_positions",
    "match_thickness", "measure_descan", "pcc_mask", "peak_heights", "pick", "point_templates",
    "random_positions_template", "rectangle_region", "refine_by_tdm", "refine_lattice",
    "refine_positions", "register_cell", "replicate", "resample_pattern", "save_positions",
    "set_bad_pixels", "shot_noise_snr_db", "specificity", "specificity_report",
    "start_dependence", "unit_cell_average", "unit_cell_snr_db", "unmix_images",
    "virtual_image",
]
