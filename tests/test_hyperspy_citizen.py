"""The toolkit as a HyperSpy citizen: show_progressbar and hs.preferences, metadata
carried to every result, reciprocal-space detector axes in mrad from the beam energy,
no "not understood" warning on load, .zspy where the installed zarr allows it."""

import importlib.metadata
import logging
import warnings

import hyperspy.api as hs
import numpy as np
import pytest
from merlin_writer import write_mib

import tdm_widgets as tw
from tdm_widgets.core import blocks
from tdm_widgets.core.geometry import wavelength_A
from tdm_widgets.simulate import columns_of, select


@pytest.fixture(scope="module")
def lfp():
    series = tw.load(tw.data_path("lifepo4_thickness"))
    return select(series, thickness_nm=70), columns_of(series)


def _diffraction_signal(s, units="mrad", beam_energy_keV=200.0,
                        signal_type="electron_diffraction"):
    """A copy of ``s`` as pyxem would hold it: detector in ``units``, beam energy and
    convergence angle in metadata, a signal type."""
    out = s.deepcopy()
    lam = wavelength_A(beam_energy_keV * 1e3)
    per_mrad = {"mrad": 1.0, "$A^{-1}$": 1e-3 / lam, "nm^-1": 1e-2 / lam}[units]
    for ax in out.axes_manager.signal_axes:
        ax.scale, ax.offset, ax.units = ax.scale * per_mrad, ax.offset * per_mrad, units
    out.metadata.set_item("Acquisition_instrument.TEM.beam_energy", beam_energy_keV)
    out.metadata.set_item("Acquisition_instrument.TEM.convergence_angle", 23.5)
    out.metadata.set_item("Acquisition_instrument.TEM.Detector.Diffraction.camera_length",
                          0.12)
    out.metadata.set_item("Signal.signal_type", signal_type)
    return out


# --- show_progressbar --------------------------------------------------------------

@pytest.fixture
def bars(monkeypatch):
    """The ``enabled`` value of every progress bar a pass opens."""
    seen = []
    real = blocks._progress

    def spy(total, desc, enabled):
        seen.append(enabled)
        return real(total, desc, False)

    monkeypatch.setattr(blocks, "_progress", spy)
    return seen


@pytest.fixture
def preference():
    old = hs.preferences.General.show_progressbar
    yield hs.preferences.General
    hs.preferences.General.show_progressbar = old


def test_preference_decides_when_show_progressbar_is_not_given(lfp, bars, preference):
    s, _ = lfp
    preference.show_progressbar = False
    tw.virtual_image(s, 11, 23.5)
    assert bars and not any(bars)
    bars.clear()
    preference.show_progressbar = True
    tw.virtual_image(s, 11, 23.5)
    assert bars and all(bars)
    bars.clear()
    tw.virtual_image(s, 11, 23.5, show_progressbar=False)  # the argument wins
    assert bars and not any(bars)


def test_progress_is_a_deprecated_alias(lfp, bars, preference):
    s, cols = lfp
    preference.show_progressbar = True
    t, _ = tw.point_templates(cols, s.data.shape[:2])
    with pytest.warns(PendingDeprecationWarning, match="show_progressbar"):
        m = tw.pcc_mask(s, t[0], progress=False)
    assert bars and not any(bars)
    np.testing.assert_array_equal(m.data, tw.pcc_mask(s, t[0], show_progressbar=False).data)
    with pytest.raises(TypeError, match="both"):
        tw.pcc_mask(s, t[0], progress=False, show_progressbar=False)


def test_every_public_pass_takes_show_progressbar():
    import inspect

    from tdm_widgets.core.engine import TDMEngine
    from tdm_widgets.simulate import run_multislice, run_raw, simulate

    public = [getattr(tw, n) for n in tw.__all__] + [simulate, run_multislice, run_raw,
                                                      TDMEngine.images]
    for f in public:
        if not callable(f):
            continue
        params = inspect.signature(f).parameters
        assert "progress" not in params, f
    for f in (tw.bf_disk, tw.virtual_image, tw.pcc_mask, tw.apply_mask, tw.column_stats,
              tw.data_matrix, tw.find_bad_pixels, tw.measure_descan, tw.cross_validated_image,
              tw.specificity_report, tw.cross_validated_joint_images, tw.shot_noise_snr_db,
              tw.center_of_mass, tw.icom, tw.eigen_images, TDMEngine, tw.TDMSession,
              tw.data_path,
              simulate, run_multislice):
        p = inspect.signature(f).parameters["show_progressbar"]
        assert p.default is None, f


# --- metadata carried to every result ----------------------------------------------

def test_acquisition_instrument_and_signal_type_reach_every_result(lfp):
    s0, cols = lfp
    s = _diffraction_signal(s0)
    t, names = tw.point_templates(cols, s.data.shape[:2])
    kw = dict(show_progressbar=False)
    masks = tw.pcc_mask(s, t, detector_region=(0, 23.5), **kw)
    results = {
        "virtual image": tw.virtual_image(s, 11, 23.5, **kw),
        "masks": masks,
        "images Eq 2": tw.apply_mask(s, masks, **kw),
        "images Eq 6": tw.apply_mask(s, masks, normalized=True, **kw),
        "cross-validated": tw.cross_validated_image(s, t[:2], split="cells", **kw),
        "centre of mass": tw.center_of_mass(s, **kw),
        "iCoM": tw.icom(s, **kw),
    }
    for what, r in results.items():
        acq = r.metadata.Acquisition_instrument.TEM
        assert acq.beam_energy == 200.0 and acq.convergence_angle == 23.5, what
        assert acq.Detector.Diffraction.camera_length == 0.12, what
        assert r.metadata.TDM.source.signal_type == "electron_diffraction", what
    # masks live on the source's detector: its signal type; images are real space
    assert masks.metadata.Signal.signal_type == "electron_diffraction"
    assert results["images Eq 6"].metadata.Signal.signal_type == ""
    assert results["virtual image"].metadata.Signal.signal_type == ""


def test_results_keep_their_metadata_through_hspy(lfp, tmp_path):
    s0, cols = lfp
    s = _diffraction_signal(s0)
    t, _ = tw.point_templates(cols, s.data.shape[:2])
    masks = tw.pcc_mask(s, t, show_progressbar=False)
    masks.save(tmp_path / "masks.hspy")
    back = hs.load(tmp_path / "masks.hspy")
    assert back.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
    assert back.metadata.Signal.signal_type == "electron_diffraction"


# --- reciprocal-space detector axes -----------------------------------------------

@pytest.mark.parametrize("units", ["$A^{-1}$", "nm^-1"])
def test_reciprocal_detector_axes_are_converted_to_mrad(lfp, units):
    s0, cols = lfp
    ref = _diffraction_signal(s0, "mrad")
    k = _diffraction_signal(s0, units)
    assert k.axes_manager.signal_axes[0].units == units
    # a 200 kV pattern: 23.5 mrad is 23.5e-3 / 0.02508 A = 0.937 A^-1
    per_mrad = 1e-3 / wavelength_A(200e3)
    assert k.axes_manager.signal_axes[0].scale == pytest.approx(
        ref.axes_manager.signal_axes[0].scale * per_mrad * (10 if "nm" in units else 1))
    kw = dict(show_progressbar=False)
    # radii between pixel centres: on the 1 mrad grid a pixel sits at exactly 11 mrad, and
    # the round-off of the unit conversion would decide which side of the edge it falls
    np.testing.assert_allclose(tw.virtual_image(k, 11.5, 23.5, **kw).data,
                               tw.virtual_image(ref, 11.5, 23.5, **kw).data)
    t, _ = tw.point_templates(cols, s0.data.shape[:2])
    mk = tw.pcc_mask(k, t, detector_region=(0, 23.5), **kw)
    mr = tw.pcc_mask(ref, t, detector_region=(0, 23.5), **kw)
    np.testing.assert_allclose(mk.data, mr.data)
    for a, b in zip(mk.axes_manager.signal_axes, mr.axes_manager.signal_axes):
        assert a.units == "mrad" and a.scale == pytest.approx(b.scale)
        assert a.offset == pytest.approx(b.offset)


def test_reciprocal_axes_without_beam_energy_name_it(lfp):
    s0, _ = lfp
    k = _diffraction_signal(s0, "$A^{-1}$")
    del k.metadata.Acquisition_instrument.TEM.beam_energy
    with pytest.raises(ValueError, match="beam_energy"):
        tw.virtual_image(k, 11, 23.5, show_progressbar=False)
    # 200 kV written in eV is named as a unit mistake, not an empty annulus
    k.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200000.0)
    with pytest.raises(ValueError, match=r"beam_energy is 200000, read as keV.*200 if it "
                                         r"was given in eV"):
        tw.virtual_image(k, 11, 23.5, show_progressbar=False)


# --- loading: the signal-type warning, .zspy ----------------------------------------

def test_loading_a_merlin_file_prints_no_signal_type_warning(tmp_path, caplog, rng):
    data = rng.integers(0, 4000, (3, 4, 16, 16)).astype(">u2")
    write_mib(tmp_path / "scan.mib", data.astype(np.uint16), counter_depth=12)
    with caplog.at_level(logging.INFO):
        s = tw.load(tmp_path / "scan.mib", navigation_shape=(4, 3))
    assert s.data.shape == (3, 4, 16, 16)
    hs_warnings = [r for r in caplog.records if r.levelno >= logging.WARNING
                   and "not understood" in r.getMessage()]
    assert not hs_warnings
    info = [r.getMessage() for r in caplog.records if r.name == "tdm_widgets.io"]
    assert info and "electron_diffraction" in info[0] and "pyxem" in info[0]
    assert s.metadata.Signal.signal_type == "electron_diffraction"  # kept


ZARR_MAJOR = int(importlib.metadata.version("zarr").split(".")[0])


@pytest.mark.skipif(ZARR_MAJOR >= 3, reason="HyperSpy's .zspy (RosettaSciIO 0.15) needs "
                    "zarr < 3; this environment has zarr 3 for abTEM. The core install "
                    "(zarr 2) runs this in tests/test_install.py")
def test_zspy_round_trip(lfp, tmp_path):
    s0, cols = lfp
    s = _diffraction_signal(s0)
    s.save(tmp_path / "scan.zspy")
    back = tw.load(tmp_path / "scan.zspy", lazy=True)
    t, _ = tw.point_templates(cols, s.data.shape[:2])
    np.testing.assert_allclose(tw.pcc_mask(back, t, show_progressbar=False).data,
                               tw.pcc_mask(s, t, show_progressbar=False).data, atol=1e-12)


@pytest.mark.skipif(ZARR_MAJOR < 3, reason="only zarr 3 lacks HyperSpy's .zspy")
def test_zspy_under_zarr3_says_what_to_install(tmp_path):
    bad = tmp_path / "x.zspy"
    bad.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="zarr < 3"):
            tw.load(bad)


@pytest.mark.parametrize("scan_units, factor", [("μm", 1e4), ("µm", 1e4), (" nm", 10.0),
                                                ("Angstroms", 1.0), ("\u212b", 1.0)])
def test_unit_spellings_that_look_alike_convert_alike(scan_units, factor):
    """The Greek mu and the micro sign, the Angstrom sign and Å, a stray space or a
    plural: the same units (the Greek mu was refused, showing the same text)."""
    data = np.random.default_rng(0).poisson(4.0, (4, 5, 8, 8)).astype(np.float32) / 100
    s = tw.from_array(data, scan_step_A=0.1, mrad_per_px=1.0)
    for ax in s.axes_manager.navigation_axes:
        ax.units, ax.scale = scan_units, 0.3 / factor
    img = tw.virtual_image(s, 0, 3, show_progressbar=False)
    assert [a.units for a in img.axes_manager.signal_axes] == ["Å", "Å"]
    assert img.axes_manager.signal_axes[0].scale == pytest.approx(0.3)
    counts = tw.add_poisson_noise(s, 100.0, seed=0)   # needs the scan step in angstrom
    assert counts.metadata.TDM.noise.parameters.electrons_per_position == pytest.approx(
        100.0 * 0.3 * 0.3)
    k = tw.from_array(data, scan_step_A=0.3)
    k.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    for ax in k.axes_manager.signal_axes:
        ax.units, ax.scale, ax.offset = "1/Angstrom", 0.01, -0.04
    stats = tw.column_stats(k, show_progressbar=False)
    assert stats.axes_manager.signal_axes[0].units == "mrad"


@pytest.mark.parametrize("lazy", [False, True])
def test_a_4d_emd_with_four_signal_axes_loads_as_scan_by_detector(tmp_path, rng, lazy):
    """A 4D EMD as py4DSTEM writes it (read by HyperSpy with four signal axes and no
    navigation axis) loads as scan x detector in array order, equal to the array, with
    its masks equal to those of the same array; the signal itself is refused with the
    remedy named."""
    data = rng.poisson(5.0, (6, 5, 8, 7)).astype(np.uint16)
    hs.signals.BaseSignal(data).save(tmp_path / "scan.emd")
    raw = hs.load(tmp_path / "scan.emd")
    assert (raw.axes_manager.navigation_dimension, raw.axes_manager.signal_dimension) == (0, 4)
    s = tw.load(tmp_path / "scan.emd", lazy=lazy)
    np.testing.assert_array_equal(np.asarray(s.data), data)
    t = rng.random((6, 5))
    np.testing.assert_allclose(tw.pcc_mask(s, t, show_progressbar=False).data,
                               tw.pcc_mask(data, t, show_progressbar=False).data, atol=1e-13)
    with pytest.raises(ValueError, match=r"signal dimension 4.*transpose\(signal_axes=2\)"):
        tw.pcc_mask(raw, t, show_progressbar=False)


def test_a_non_uniform_axis_is_named(rng):
    s = hs.signals.Signal2D(rng.random((3, 4, 5, 6)))
    s.axes_manager.signal_axes[1].name = "ky"
    s.axes_manager.signal_axes[1].convert_to_non_uniform_axis()
    with pytest.raises(ValueError, match=r"signal axis 1 \('ky'\) of the data is non-uniform"):
        tw.pcc_mask(s, rng.random((4, 3)), show_progressbar=False)


def test_a_mask_from_another_detector_calibration_is_warned(rng):
    """A mask fitted at 2 mrad/px applied to data at 2.1 mrad/px, or with the centre
    moved by a pixel, is warned; the same calibration, a 0.1 % rescale and a plain
    array are not."""
    data = rng.poisson(5.0, (6, 6, 8, 8)).astype(np.uint16)
    t = rng.random((6, 6))
    mask = tw.pcc_mask(tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0), t,
                       show_progressbar=False)
    quiet = [tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0),
             tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.002)]
    for s in quiet:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tw.apply_mask(s, mask, show_progressbar=False)
            tw.apply_mask(tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.1), mask.data,
                          show_progressbar=False)
    loud = [tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.1),
            tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0, center_px=(5, 4))]
    for s in loud:
        with pytest.warns(UserWarning, match=r"not the data's .*other camera length or centre"):
            tw.apply_mask(s, mask, show_progressbar=False)


def test_a_stack_sliced_by_hyperspy_keeps_the_names_of_its_own_images(rng):
    """``masks.inav[::-1]``, ``masks.inav[1:3]``, ``masks.inav[0]``: HyperSpy copies
    ``metadata.TDM.names`` whole. The images of a reversed stack were named in the old
    order (the image of the "all" mask called "A", and ``pick(..., "A")`` gave the
    "all" mask); a part of a stack was a ValueError "4 names for 2 images"."""
    counts = rng.poisson(20.0, (6, 7, 9, 11)).astype(np.uint16)
    s = tw.from_array(counts, scan_step_A=0.3, mrad_per_px=1.0)
    t, names = tw.point_templates({"A": [[1, 1], [4, 5]], "B": [[2, 4]], "C": [[5, 1]]},
                                  (6, 7))
    masks = tw.pcc_mask(s, t, names=names, show_progressbar=False)
    kw = dict(show_progressbar=False)

    def own(name):  # the image of one named mask, from the whole stack
        return tw.apply_mask(s, tw.pick(masks, name), **kw).data

    rev = tw.apply_mask(s, masks.inav[::-1], **kw)
    assert rev.metadata.TDM.names == ["all", "C", "B", "A"]
    for name in names:
        np.testing.assert_allclose(tw.pick(rev, name).data, own(name))
        np.testing.assert_allclose(tw.pick(masks.inav[::-1], name).data,
                                   tw.pick(masks, name).data)
    part = tw.apply_mask(s, masks.inav[1:3], **kw)
    assert part.metadata.TDM.names == ["B", "C"]
    np.testing.assert_allclose(tw.pick(part, "C").data, own("C"))
    two = tw.pick(masks.inav[1:], ["all", "B"])   # a new stack: its axis counts again
    assert two.metadata.TDM.names == ["all", "B"]
    np.testing.assert_allclose(tw.pick(two, "B").data, tw.pick(masks, "B").data)
    one = tw.apply_mask(s, masks.inav[0], **kw)     # which image it was is not known
    assert one.metadata.TDM.get_item("names") is None
    np.testing.assert_allclose(one.data, own("A"))
    with pytest.raises(ValueError, match="pick from the whole stack"):
        tw.pick(masks.inav[0], "A")


@pytest.mark.parametrize("units, per_inv_A", [("nm^{-1}", 10.0), ("Å^{-1}", 1.0),
                                              ("A^{-1}", 1.0), ("Å$^{-1}$", 1.0),
                                              ("Å-1", 1.0), ("1 /nm", 10.0)])
def test_reciprocal_units_in_latex_or_brace_spelling_are_converted(units, per_inv_A):
    """``nm^{-1}`` (HyperSpy's own axes examples), ``Å^{-1}``, ``Å$^{-1}$``: the same
    reciprocal units as ``nm^-1`` and ``1/Å``; they were refused as 'not calibrated in
    mrad' with the advice to fit the BF disc."""
    data = np.random.default_rng(0).poisson(9.0, (4, 5, 12, 14)).astype(np.uint16)
    lam = wavelength_A(200e3)
    ref = tw.from_array(data, scan_step_A=0.3, mrad_per_px=0.8, center_px=(5.3, 8.6))
    k = ref.deepcopy()
    k.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    for ax in k.axes_manager.signal_axes:  # mrad -> 1/A -> the units asked for
        f = 1e-3 / lam * per_inv_A
        ax.scale, ax.offset, ax.units = ax.scale * f, ax.offset * f, units
    kw = dict(show_progressbar=False)
    np.testing.assert_allclose(tw.virtual_image(k, 1.3, 4.1, **kw).data,
                               tw.virtual_image(ref, 1.3, 4.1, **kw).data)
    stats = tw.column_stats(k, **kw)
    for a, b in zip(stats.axes_manager.signal_axes, ref.axes_manager.signal_axes):
        assert a.units == "mrad"
        assert (a.scale, a.offset) == (pytest.approx(b.scale), pytest.approx(b.offset))
