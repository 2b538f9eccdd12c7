"""Bias calibration of displacement measurements (issue #15): a known linear bias is
recovered, corrections stay inside the calibrated ranges, and the bundled PbTiO3
calibration corrects each of its sets when fitted on the others."""

import json

import numpy as np
import pytest

import tdm_widgets as tw


def synthetic_runs(noise_A=0.0, seed=0, repeats=1):
    rng = np.random.default_rng(seed)
    measured = np.tile(np.linspace(-0.35, 0.3, 6), 4 * repeats)
    thickness = np.tile(np.repeat([20.0, 28.0, 36.0, 45.0], 6), repeats)
    true = measured - (-0.07 - 0.065 * measured + 0.0015 * thickness) \
        + rng.normal(0, noise_A, measured.size)
    return measured, true, thickness


def test_a_known_linear_bias_is_recovered_and_removed():
    m, d, t = synthetic_runs()
    bias = tw.fit_displacement_bias(m, d, t)
    np.testing.assert_allclose(bias.coefficients, (-0.07, -0.065, 0.0015), atol=1e-12)
    np.testing.assert_allclose(bias.correct(m, t), d, atol=1e-12)
    assert bias.runs == 24 and bias.thickness_range_nm == (20.0, 45.0)


def test_residual_sd_estimates_the_scatter_of_the_runs():
    m, d, t = synthetic_runs(noise_A=0.02, seed=3, repeats=25)
    bias = tw.fit_displacement_bias(m, d, t)
    # 600 runs: the sd estimate is within a few per cent; the model is recovered
    assert abs(bias.residual_sd_A - 0.02) < 0.003
    assert np.all(np.abs(np.subtract(bias.coefficients, (-0.07, -0.065, 0.0015)))
                  < (4e-3, 4e-3, 1e-4))
    # what is left after the correction is the scatter itself
    err = bias.correct(m, t) - d
    assert abs(np.sqrt(np.mean(err ** 2)) - 0.02) < 0.003


@pytest.mark.parametrize("kwargs, name", [
    (dict(measured_A=0.0, thickness_nm=60.0), "thickness_nm"),
    (dict(measured_A=0.5, thickness_nm=30.0), "measured_A"),
    (dict(measured_A=np.nan, thickness_nm=30.0), "measured_A"),
])
def test_correction_outside_the_calibration_names_the_argument(kwargs, name):
    bias = tw.fit_displacement_bias(*synthetic_runs())
    with pytest.raises(ValueError, match=name):
        bias.correct(**kwargs)


def test_correction_reaches_a_tenth_of_each_range_beyond_it():
    bias = tw.fit_displacement_bias(*synthetic_runs())   # 20-45 nm, -0.35 to 0.3 A
    assert np.isfinite(bias.correct(0.3 + 0.06, 45.0 + 2.4)).all()
    with pytest.raises(ValueError, match="thickness_nm"):
        bias.correct(0.0, 45.0 + 2.6)
    with pytest.raises(ValueError, match="measured_A"):
        bias.correct(-0.35 - 0.07, 30.0)


def test_calibration_input_errors():
    m, d, t = synthetic_runs()
    with pytest.raises(ValueError, match="one length"):
        tw.fit_displacement_bias(m, d[:-1], t)
    with pytest.raises(ValueError, match="at least five runs"):
        tw.fit_displacement_bias(m[:4], d[:4], t[:4])
    with pytest.raises(ValueError, match="at least five runs"):
        tw.fit_displacement_bias(m, d, np.full_like(t, 30.0))


def test_a_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "positions.json"
    path.write_text(json.dumps({"format": "tdm_widgets.positions", "runs": []}))
    with pytest.raises(ValueError, match="not a tdm_widgets.displacement_bias file"):
        tw.load_displacement_bias(path)


def test_bundled_calibration_corrects_each_set_from_the_others():
    """Leave one simulation set out (other slab, grid, scan step, detector sampling and
    phonon seed than the sets the model is fitted on): the README's numbers."""
    doc = json.loads(tw.data_path("pbtio3_displacement_bias").read_text())
    runs = doc["runs"]
    sets = np.array([r["set"] for r in runs])
    m, d, t = (np.array([r[k] for r in runs]) for k in ("measured_A", "true_A",
                                                          "thickness_nm"))
    assert len(set(sets)) == 9 and len(runs) == 84
    err = np.empty_like(m)
    for name in set(sets):
        out = sets == name
        bias = tw.fit_displacement_bias(m[~out], d[~out], t[~out])
        err[out] = bias.correct(m[out], t[out]) - d[out]
    assert np.sum(np.abs(m - d) <= 0.05) == 68          # uncorrected
    assert np.sum(np.abs(err) <= 0.05) >= 82 and np.abs(err).max() < 0.06
    assert np.sqrt(np.mean(err ** 2)) < 0.6 * np.sqrt(np.mean((m - d) ** 2))
