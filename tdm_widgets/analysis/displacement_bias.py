"""Bias of a displacement measurement, calibrated on simulations with known
displacements, and its correction."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: File format of a calibration (:func:`load_displacement_bias`).
FORMAT = "tdm_widgets.displacement_bias"
#: How far beyond the calibrated ranges a correction may reach, as a fraction of each
#: range (a calibration at 19.9-44.9 nm also corrects 45 nm).
EXTRAPOLATION = 0.1


def _as_1d(value, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, float))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers (a scalar or a 1-D array); "
                         f"got {value!r}")
    return arr


@dataclass(frozen=True)
class DisplacementBias:
    """Linear bias model ``measured - true = a + b * measured + c * thickness`` of one
    measurement recipe on one structure, fitted on simulations with known
    displacements (:func:`fit_displacement_bias`).

    Parameters
    ----------
    coefficients : tuple of float
        ``(a [angstrom], b [1], c [angstrom/nm])``.
    residual_sd_A : float
        Standard deviation of the calibration runs about the model [angstrom]: the
        uncertainty of a corrected value (phonon draws and simulation settings differ
        between the runs, so it includes them).
    displacement_range_A : tuple of float
        Measured displacements the calibration spans [angstrom].
    thickness_range_nm : tuple of float
        Thicknesses the calibration spans [nm].
    runs : int
        Number of calibration runs.
    conditions : dict
        What the calibration holds for: structure, sign convention, beam, detector
        and fitting settings, the simulations it was made from.

    Examples
    --------
    >>> bias = fit_displacement_bias([-0.3, 0.0, 0.3, -0.3, 0.0, 0.3],
    ...                              [-0.29, 0.02, 0.33, -0.29, 0.02, 0.33],
    ...                              [20, 20, 20, 40, 40, 40])
    >>> [round(float(v), 3) for v in bias.correct([0.0, 0.3], 30)]
    [0.02, 0.33]
    """

    coefficients: tuple
    residual_sd_A: float
    displacement_range_A: tuple
    thickness_range_nm: tuple
    runs: int
    conditions: dict = field(default_factory=dict)

    def bias(self, measured_A, thickness_nm) -> np.ndarray:
        """Expected ``measured - true`` of measured displacements at a thickness.

        Parameters
        ----------
        measured_A : float or array_like
            Measured displacements [angstrom], inside ``displacement_range_A`` or
            :data:`EXTRAPOLATION` of it beyond an end.
        thickness_nm : float or array_like
            Specimen thickness [nm] (one, or one per displacement), likewise inside
            ``thickness_range_nm``.

        Returns
        -------
        ndarray
            The bias [angstrom].

        Raises
        ------
        ValueError
            Naming the argument that is not finite or outside the calibrated range.

        Examples
        --------
        >>> bias = DisplacementBias((0.01, 0.0, 0.0), 0.02, (-0.3, 0.3), (20, 45), 6)
        >>> bias.bias([0.0, 0.1], 30).tolist()
        [0.01, 0.01]
        """
        m = _as_1d(measured_A, "measured_A")
        t = _as_1d(thickness_nm, "thickness_nm")
        for arr, name, (lo, hi), unit in (
                (m, "measured_A", self.displacement_range_A, "angstrom"),
                (t, "thickness_nm", self.thickness_range_nm, "nm")):
            reach = EXTRAPOLATION * (hi - lo)
            if np.any(arr < lo - reach) or np.any(arr > hi + reach):
                raise ValueError(f"{name} must lie in the calibrated range {lo:g} to {hi:g} "
                                 f"{unit} (or {EXTRAPOLATION:.0%} of it beyond either end); "
                                 f"got {np.ravel(arr).tolist()}")
        a, b, c = self.coefficients
        return a + b * m + c * t

    def correct(self, measured_A, thickness_nm) -> np.ndarray:
        """Measured displacements less their bias.

        Parameters
        ----------
        measured_A : float or array_like
            Measured displacements [angstrom], inside ``displacement_range_A``.
        thickness_nm : float or array_like
            Specimen thickness [nm], inside ``thickness_range_nm``.

        Returns
        -------
        ndarray
            Corrected displacements [angstrom]; their uncertainty is ``residual_sd_A``
            beside the measurement's own.

        Examples
        --------
        >>> bias = DisplacementBias((0.01, 0.0, 0.0), 0.02, (-0.3, 0.3), (20, 45), 6)
        >>> bias.correct(0.1, 30).round(3).tolist()
        [0.09]
        """
        m = _as_1d(measured_A, "measured_A")
        return m - self.bias(m, thickness_nm)


def fit_displacement_bias(measured_A, true_A, thickness_nm,
                          conditions: dict | None = None) -> DisplacementBias:
    """Least-squares linear bias model of calibration runs: simulations of a structure
    with known displacements, measured with the recipe the model will correct.

    The bias is modelled as a function of the *measured* displacement (what a user
    has), so that :meth:`DisplacementBias.correct` needs no inversion.

    Parameters
    ----------
    measured_A, true_A : array_like
        ``(n,)`` measured and true displacements of the runs [angstrom].
    thickness_nm : array_like
        ``(n,)`` specimen thickness of each run [nm].
    conditions : dict, optional
        Stored with the model (see :class:`DisplacementBias`).

    Returns
    -------
    DisplacementBias

    Raises
    ------
    ValueError
        For arrays of different lengths, non-finite values, fewer than five runs, or
        runs that do not span two displacements and two thicknesses.

    Examples
    --------
    >>> m = np.array([-0.3, 0.0, 0.3, -0.3, 0.0, 0.3])
    >>> t = np.array([20, 20, 20, 40, 40, 40])
    >>> bias = fit_displacement_bias(m, m - (0.01 - 0.1 * m + 0.001 * t), t)
    >>> np.round(bias.coefficients, 4).tolist(), bias.residual_sd_A < 1e-12
    ([0.01, -0.1, 0.001], True)
    """
    m = _as_1d(measured_A, "measured_A")
    d = _as_1d(true_A, "true_A")
    t = _as_1d(thickness_nm, "thickness_nm")
    if not len(m) == len(d) == len(t):
        raise ValueError(f"measured_A, true_A and thickness_nm must have one length; got "
                         f"{len(m)}, {len(d)} and {len(t)}")
    if len(m) < 5 or np.ptp(m) == 0 or np.ptp(t) == 0:
        raise ValueError("the calibration needs at least five runs spanning two or more "
                         "displacements and thicknesses")
    design = np.column_stack([np.ones_like(m), m, t])
    coef, *_ = np.linalg.lstsq(design, m - d, rcond=None)
    resid = (m - d) - design @ coef
    return DisplacementBias(tuple(float(v) for v in coef),
                            float(np.sqrt(resid @ resid / (len(m) - 3))),
                            (float(m.min()), float(m.max())), (float(t.min()), float(t.max())),
                            len(m), dict(conditions or {}))


def load_displacement_bias(path=None) -> DisplacementBias:
    """The bias model of a calibration file: the bundled PbTiO3 [100] one by default.

    Parameters
    ----------
    path : str or Path, optional
        A ``tdm_widgets.displacement_bias`` JSON file (``runs``: one record per
        calibration run with ``measured_A``, ``true_A``, ``thickness_nm``;
        ``conditions``); default ``tdm_widgets.data_path("pbtio3_displacement_bias")``:
        Ti displacement from its O cage in PbTiO3 [100] measured by
        :func:`tdm_widgets.fit_displacements` from virtual-ADF peaks, made with
        ``tools/validate_displacement.py calibrate`` (its ``conditions`` say which
        recipe and simulations).

    Returns
    -------
    DisplacementBias
        Refitted from the stored runs.

    Examples
    --------
    >>> bias = load_displacement_bias()
    >>> bias.conditions["structure"][:7], bias.runs >= 84
    ('PbTiO3 ', True)
    """
    if path is None:
        from ..datasets import data_path

        path = data_path("pbtio3_displacement_bias")
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (format: {doc.get('format')!r})")
    runs = doc["runs"]
    return fit_displacement_bias([r["measured_A"] for r in runs], [r["true_A"] for r in runs],
                                 [r["thickness_nm"] for r in runs], doc.get("conditions"))
