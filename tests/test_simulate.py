"""Structures, the ci preset end to end, determinism, and one pipeline for
simulated and loaded data."""

import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.simulate import (
    PRESETS,
    columns_of,
    lifepo4_cell,
    lifepo4_defects,
    pbtio3_cell,
    pbtio3_domain_wall,
    select,
    simulate,
)
from tdm_widgets.simulate.atom_columns import projected_columns
from tdm_widgets.simulate.runner import detector_rebin_matrix, fft_friendly


def test_lifepo4_stoichiometry_and_columns():
    c = lifepo4_cell()
    assert c.get_chemical_formula() == "Fe4Li4O16P4"
    cols = projected_columns(c)
    # [001]: 4 Li, 4 Fe, 4 P(+O1) and 12 O columns per cell
    assert {k: len(v) for k, v in cols.items()} == {"Fe": 4, "Li": 4, "O": 12, "P": 4}


def test_lifepo4_defects_ground_truth():
    st = lifepo4_defects()
    a, b, c = lifepo4_cell().cell.lengths()
    nz = 4
    atoms, truth = st.build((4, 5), nz, (a, b))
    counts = {s: atoms.get_chemical_symbols().count(s) for s in ("Li", "Fe", "O", "P")}
    per = 4 * 5 * nz
    assert counts == {"Li": 4 * per - nz // 2, "Fe": 4 * per + nz // 2 + nz,
                      "O": 16 * per - nz, "P": 4 * per}
    # the anti-site column alternates Li, Fe along the beam
    xy = truth["antisite_FeLi_A"][0]
    near = np.flatnonzero(np.hypot(*(atoms.positions[:, :2] - xy).T) < 0.3)
    seq = [atoms[i].symbol for i in near[np.argsort(atoms.positions[near, 2])]]
    assert seq == ["Li", "Fe"] * (nz // 2)
    # the extra Fe column is at its site, one Fe per cell, far from other columns
    xy = truth["extra_Fe_A"][0]
    d = np.hypot(*(atoms.positions[:, :2] - xy).T)
    assert [atoms[i].symbol for i in np.flatnonzero(d < 0.3)] == ["Fe"] * nz
    assert np.sort(d)[nz] > 1.0
    # the vacancy column is empty
    assert np.min(np.hypot(*(atoms.positions[:, :2] - truth["vacancy_O_A"][0]).T)) > 0.5


def test_pbtio3_polar_cell():
    c = pbtio3_cell()
    assert c.get_chemical_formula() == "O3PbTi"
    lx, ly, lz = c.cell.lengths()
    assert ly / lx == pytest.approx(1.06)
    ti = c.positions[c.get_chemical_symbols().index("Ti")]
    # Ti sits 0.317 A below the centre of its four O neighbours: P along -y
    o = c.positions[[i for i, x in enumerate(c.get_chemical_symbols()) if x == "O"]]
    cage = np.mean([o[0, 1], o[0, 1] + ly, o[1, 1], o[2, 1]])
    assert ti[1] - cage == pytest.approx(-0.316, abs=0.002)
    assert pbtio3_cell(0.2).positions[1, 1] - cage == pytest.approx(0.2)


def test_domain_wall_geometry_and_polarisation():
    st = pbtio3_domain_wall()
    atoms, truth = st.build((10, 10), 2, (2 * 3.9, 2 * 3.9 * 1.06))
    p, xy, dom = truth["polarisation_Ti"], truth["columns_Ti_A"], truth["domain_Ti"]
    wall, point = truth["wall_direction"], truth["wall_point_A"][0]
    normal = np.array([wall[1], -wall[0]])
    side = (xy - point) @ normal
    assert np.all((side >= -1e-6) == (dom == 1))
    np.testing.assert_allclose(p[dom == 1], [[0, -1]] * int((dom == 1).sum()))
    p2 = p[dom == 2]
    np.testing.assert_allclose(p2, [p2[0]] * len(p2))
    assert p2[0][0] > 0.99 and abs(np.degrees(np.arcsin(p2[0][1]))) < 5  # ~ +x, twin tilt
    # P along the Ti displacement from the centre of its four O neighbours
    ti, o = truth["columns_Ti_A"], truth["columns_O_A"]
    for d in (1, 2):
        i = np.flatnonzero(dom == d)[len(np.flatnonzero(dom == d)) // 2]
        dist = np.hypot(*(o - ti[i]).T)
        cage = o[np.argsort(dist)[1:5]].mean(0)  # skip the O 0.33 A away
        assert (ti[i] - cage) @ p[i] > 0.3
    # head-to-tail: the polarisation component normal to the wall is continuous
    assert p[dom == 1][0] @ normal == pytest.approx(p[dom == 2][0] @ normal)
    # the wall runs diagonally, no two columns coincide
    assert 30 < np.degrees(np.arctan2(wall[1], wall[0])) < 60
    from scipy.spatial import cKDTree
    allxy = np.concatenate([truth[k] for k in truth if k.startswith("columns")])
    assert cKDTree(allxy).query(allxy, k=2)[0][:, 1].min() > 0.3


def test_fft_friendly_and_rebin_conserves_intensity():
    assert [fft_friendly(n) for n in (287, 289, 301, 310)] == [288, 300, 320, 320]
    coords = (np.arange(83) - 41) * 0.81
    R = detector_rebin_matrix(coords, 32, 2.0)
    inside = np.abs(coords) < 30
    np.testing.assert_allclose(R.sum(0)[inside], 1.0)


@pytest.fixture(scope="module")
def ci_signal():
    return simulate("ci", "lifepo4", thickness_nm=(1.0, 2.0), show_progressbar=False)


def test_ci_preset_end_to_end(ci_signal, tmp_path):
    s = ci_signal
    assert s.axes_manager.navigation_dimension == 3
    assert [a.name for a in s.axes_manager.navigation_axes] == ["x", "y", "thickness"]
    assert s.axes_manager.signal_axes[0].units == "mrad"
    assert s.axes_manager.navigation_axes[0].units == "Å"
    # intensities are fractions of the beam: a thin crystal scatters little beyond 40 mrad
    sums = s.data.sum(axis=(-1, -2))
    assert np.all((sums > 0.95) & (sums <= 1.001))
    meta = s.metadata.Simulation
    assert meta.parameters.abtem_version
    assert {"Li", "Fe", "P", "O"} == set(columns_of(s))
    # a simulated signal and a loaded file go through the same pcc_mask path
    s.save(tmp_path / "ci.hspy")
    loaded = select(tw.load(tmp_path / "ci.hspy"), thickness_nm=2.0)
    direct = select(s, thickness_nm=2.0)
    t = np.zeros(direct.data.shape[:2])
    t[0, 0] = 1
    np.testing.assert_allclose(tw.pcc_mask(loaded, t).data, tw.pcc_mask(direct, t).data)


def test_scalar_ground_truth_is_saved_and_read_back(tmp_path):
    """A structure's scalar ground truth (the domain wall's ``polarisation_along_ti_shift``
    flag, once a 0-d array that RosettaSciIO cannot write) survives .hspy, and
    ``truth_of`` keeps the stored polarisation sign when the flag is there."""
    from tdm_widgets.simulate import truth_of
    from tdm_widgets.simulate.output import to_signal
    from tdm_widgets.simulate.runner import SimulationResult

    pol = np.array([[0.0, -1.0], [1.0, 0.0]])
    res = SimulationResult(
        data=np.zeros((1, 1, 2, 2, 4, 4), np.float32), pacbed=np.zeros((1, 1, 4, 4)),
        thickness_nm=np.array([1.0]), scan_step_A=(0.5, 0.5), mrad_per_px=1.0,
        pacbed_mrad_per_px=(1.0, 1.0), columns={"Ti": np.zeros((2, 2))},
        parameters={"defocus_nm": [0.0], "structure": "test", "energy_eV": 2e5,
                    "semiangle_mrad": 23.5},
        truth={"polarisation_Ti": pol, "polarisation_along_ti_shift": np.array(True),
               "wall_point_A": np.array([[1.0, 2.0]])})
    path = tmp_path / "truth.hspy"
    to_signal(res, "test", "none").save(path)
    truth = truth_of(tw.load(path))
    assert truth["polarisation_along_ti_shift"] == np.True_
    np.testing.assert_array_equal(truth["polarisation_Ti"], pol)
    np.testing.assert_array_equal(truth["wall_point_A"], [[1.0, 2.0]])


def test_same_seed_same_array(ci_signal):
    again = simulate("ci", "lifepo4", thickness_nm=(1.0, 2.0), show_progressbar=False)
    np.testing.assert_array_equal(again.data, ci_signal.data)


def test_unknown_names():
    with pytest.raises(ValueError, match="preset must be one of"):
        simulate("huge", "lifepo4")
    with pytest.raises(ValueError, match="structure must be one of"):
        simulate("ci", "graphene")
    assert set(PRESETS) == {"ci", "bundled", "paper"}


def test_defocus_ensemble_member_equals_single_run():
    """The ensemble's axis order: member i is the run at defocus i."""
    ens = simulate("ci", "lifepo4", thickness_nm=(1.0,), defocus_nm=(-3.0, 4.0),
                   show_progressbar=False)
    one = simulate("ci", "lifepo4", thickness_nm=(1.0,), defocus_nm=4.0, show_progressbar=False)
    assert [a.name for a in ens.axes_manager.navigation_axes] == ["x", "y", "defocus"]
    member = select(ens, defocus_nm=4.0)
    np.testing.assert_allclose(member.data, one.data, rtol=1e-4, atol=1e-7)
    assert not np.allclose(select(ens, defocus_nm=-3.0).data, one.data, rtol=1e-2)


def test_strips_of_rows_equal_one_scan(monkeypatch):
    """Scanning in strips of rows (to bound memory) gives the same patterns."""
    import tdm_widgets.simulate.runner as runner

    whole = simulate("ci", "lifepo4", thickness_nm=(1.0,), show_progressbar=False)
    monkeypatch.setattr(runner, "MAX_POSITIONS_PER_RUN", 20)  # 2 rows of 10 per strip
    strips = simulate("ci", "lifepo4", thickness_nm=(1.0,), show_progressbar=False)
    np.testing.assert_allclose(strips.data, whole.data, rtol=1e-4, atol=1e-7)


def test_bundled_defects_are_found_where_the_ground_truth_puts_them():
    """Masks from one perfect reference cell (paper Fig 4) applied to the defect scan:
    the O vacancy is dark in the O image, the extra Fe column bright in the Fe image and
    not in the Li image, the Fe_Li anti-site weaker than Li columns in the Li image."""
    from tdm_widgets.manifest import ROOT

    s = tw.load(ROOT / "data/bundled/lifepo4_defects.hspy")
    truth = {k: np.asarray(v) for k, v in s.metadata.Simulation.truth.as_dictionary().items()}
    cols = columns_of(s)
    sy, sx = s.data.shape[:2]
    ref = np.zeros((sy, sx), bool)
    ref[sy // 2:, sx // 2:] = True  # scan cell (1, 1) is perfect
    t, names = tw.point_templates(cols, (sy, sx), combined=None)
    img = tw.apply_mask(s, tw.pcc_mask(s, t, region=ref, detector_region=(0, 23.5))).data
    z = {n: (img[i] - img[i].mean()) / img[i].std() for i, n in enumerate(names)}

    def at(name, key):
        y, x = np.rint(truth[key][0]).astype(int)
        return z[name][y % sy, x % sx]

    def typical(name):
        rc = np.rint(cols[name]).astype(int)
        return z[name][rc[:, 0] % sy, rc[:, 1] % sx].mean()

    assert at("O", "vacancy_O_px") < typical("O") - 2.5
    assert at("Fe", "extra_Fe_px") > 2.5 and at("Li", "extra_Fe_px") < 1.0
    assert at("Li", "antisite_FeLi_px") < typical("Li") - 2.0


def test_bundled_domain_wall_adf_matches_ground_truth():
    """Z-contrast at the stored column positions: Pb brightest, Ti next, O dark; the
    stored polarisation differs between the two domains."""
    from tdm_widgets.manifest import ROOT

    s = tw.load(ROOT / "data/bundled/pbtio3_domain_wall.hspy")
    truth = {k: np.asarray(v) for k, v in s.metadata.Simulation.truth.as_dictionary().items()}
    adf = tw.virtual_image(s, 30, 64).data
    sy, sx = adf.shape
    z = {}
    for sp in ("Pb", "Ti", "O"):
        p = truth[f"columns_{sp}_px"]
        inside = (p[:, 0] >= 0) & (p[:, 0] < sy - 0.5) & (p[:, 1] >= 0) & (p[:, 1] < sx - 0.5)
        z[sp] = tw.specificity(adf, {sp: p[inside]})[sp]
    assert z["Pb"] > 2.5 and z["Pb"] > z["Ti"] > 1.0 > z["O"]
    pol, dom = truth["polarisation_Ti"], truth["domain_Ti"]
    assert {1, 2} <= set(dom.tolist())
    assert pol[dom == 1][0] @ pol[dom == 2][0] < 0.1  # about 90 degrees apart


def test_lifepo4_supercell_any_size():
    from tdm_widgets.simulate import lifepo4

    sc = lifepo4((2, 3), thickness_A=10.0)  # rounded up to 3 cells along c
    assert len(sc) == 28 * 2 * 3 * 3
    np.testing.assert_allclose(sc.cell.lengths(), [2 * 10.33, 3 * 6.01, 3 * 4.69])


def test_local_cluster_gives_the_serial_array(ci_signal):
    """abTEM's own graph on a 2-worker dask.distributed cluster (separate processes)
    gives the serial run's array, seeded phonons included."""
    from distributed import Client, LocalCluster

    serial = simulate("ci", "lifepo4", thickness_nm=(1.0, 2.0), show_progressbar=False,
                      num_configs=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_cluster = simulate("ci", "lifepo4", thickness_nm=(1.0, 2.0), show_progressbar=False,
                              num_configs=2, scheduler=client)
        assert client.nthreads() and len(client.nthreads()) == 2
    np.testing.assert_allclose(on_cluster.data, serial.data, rtol=1e-5, atol=1e-9)
    # two configurations are not the one-configuration run: the phonons are real
    assert not np.allclose(serial.data, ci_signal.data, rtol=1e-3, atol=1e-6)


def test_estimate_covers_cluster_and_gpu_needs_cupy():
    from tdm_widgets.simulate.runner import check_device, estimate_text, plan_scan

    plan = plan_scan(lifepo4_defects(), PRESETS["ci"], [1.0])
    one = estimate_text(plan, PRESETS["ci"])
    eight = estimate_text(plan, PRESETS["ci"], threads=8)
    assert "one CPU core" in one and "worker threads" not in one
    minutes = float(eight.split("min on one CPU core, ")[1].split(" min")[0])
    assert minutes == pytest.approx(round(plan.estimate_s / 8 / 60, 1))
    assert "8 worker threads" in eight
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'; got 'tpu'"):
        check_device("tpu")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs CuPy"):
            simulate("ci", "lifepo4", thickness_nm=(1.0,), show_progressbar=False, device="gpu")
    else:
        assert check_device("gpu") == "gpu"


@pytest.fixture(scope="module")
def ci_raw(tmp_path_factory):
    """A ci-tier raw run (native detector to the antialiasing limit, 3 exit planes)."""
    from tdm_widgets.cli import main

    raw = tmp_path_factory.mktemp("raw") / "ci"
    assert main(["simulate", "ci", "lifepo4", "--thickness", "1", "2", "3", "--raw",
                 str(raw)]) == 0
    return raw


def test_raw_run_is_the_native_detector_of_the_integrated_run(ci_raw):
    """The raw folder holds every exit plane at abTEM's native sampling; integrating it
    onto the ci preset's 4 mrad pixels gives the ci run's patterns."""
    import json

    from tdm_widgets.simulate.runner import detector_rebin_matrix

    meta = json.loads((ci_raw / "meta.json").read_text())
    raw = np.load(ci_raw / "raw.npy")
    assert list(raw.shape) == meta["shape"] and raw.dtype == np.float32
    assert raw.shape[:2] == (1, 3) and meta["thickness_nm"] == pytest.approx([0.938, 1.876, 2.814])
    ky, kx = np.asarray(meta["ky_mrad"]), np.asarray(meta["kx_mrad"])
    assert np.diff(kx) == pytest.approx(np.full(len(kx) - 1, meta["parameters"][
        "simulated_mrad_per_px"][0]), rel=1e-4)
    assert min(abs(ky).max(), abs(kx).max()) > 50  # beyond the ci preset's 40 mrad
    # the same thicknesses: the same slab depth, so the same seeded phonons
    ref = select(simulate("ci", "lifepo4", thickness_nm=(1.0, 2.0, 3.0), show_progressbar=False),
                 thickness_nm=2.0)
    ry, rx = detector_rebin_matrix(ky, 20, 4.0), detector_rebin_matrix(kx, 20, 4.0)
    integrated = ry @ raw[0, 1].astype(np.float64) @ rx.T
    np.testing.assert_allclose(integrated, ref.data, rtol=1e-4, atol=1e-7)


def test_pack_and_load_round_trip(ci_raw, tmp_path, capsys):
    """Packed fine centre + ring come back from tw.load as one calibrated detector:
    the centre is the 1 mrad integration, every 2 x 2 block sums to it, PACBED of
    every plane is kept, and a lazy load equals the eager one."""
    import json

    from tdm_widgets.simulate.runner import detector_rebin_matrix

    out = tmp_path / "ci_packed.hspy"
    from tdm_widgets.cli import main
    assert main(["pack", str(ci_raw), "--out", str(out), "--thickness", "1", "3",
                 "--fine-mrad", "16", "--max-mrad", "40"]) == 0
    s = tw.load(out)
    # stored precision kept: float16 values of intensity_scale x the beam fraction
    assert s.data.shape == (2, 6, 10, 80, 80) and s.data.dtype == np.float16
    data = s.data.astype(np.float64) / s.metadata.Simulation.intensity_scale
    ax = s.axes_manager.signal_axes
    assert ax[0].units == "mrad" and ax[0].scale == 1.0 and ax[0].offset == -40.0
    meta = json.loads((ci_raw / "meta.json").read_text())
    raw = np.load(ci_raw / "raw.npy").astype(np.float64)
    ry = detector_rebin_matrix(np.asarray(meta["ky_mrad"]), 80, 1.0)
    rx = detector_rebin_matrix(np.asarray(meta["kx_mrad"]), 80, 1.0)
    ref = np.einsum("ij,tyxjk,lk->tyxil", ry, raw[0, [0, 2]], rx)
    tol = 2e-3 * ref.max()  # float16 storage
    np.testing.assert_allclose(data[..., 24:56, 24:56], ref[..., 24:56, 24:56], atol=tol)
    blocks = lambda a: a.reshape(a.shape[:-2] + (40, 2, 40, 2)).sum(axis=(-3, -1))  # noqa: E731
    np.testing.assert_allclose(blocks(data), blocks(ref), atol=4 * tol)
    assert not np.allclose(data[..., :24, :], 0)  # the ring is there
    sim = s.metadata.Simulation
    np.testing.assert_allclose(sim.pacbed, raw[0].mean(axis=(1, 2)), rtol=1e-5, atol=1e-12)
    assert list(sim.pacbed_thickness_nm) == pytest.approx([0.938, 1.876, 2.814])
    assert list(sim.thickness_nm) == pytest.approx([0.938, 2.814])
    assert select(s, thickness_nm=3).data.shape == (6, 10, 80, 80)
    lazy = tw.load(out, lazy=True)
    np.testing.assert_array_equal(np.asarray(lazy.data), s.data)
    for extra, message in ((["--max-mrad", "80"], "beyond the simulated detector"),
                           (["--fine-mrad", "15", "--max-mrad", "40"], "whole multiples")):
        assert main(["pack", str(ci_raw), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tdm: error:") and message in err and err.count("\n") == 1


def test_regenerate_a_packed_ci_dataset(ci_raw, tmp_path, monkeypatch, capsys):
    """Two seeds packed together are their mean with the configurations summed, and
    tdm data regenerate re-runs both raw runs + pack into a temporary folder and
    compares."""
    from tdm_widgets import manifest
    from tdm_widgets.cli import main

    raw1 = tmp_path / "raw_seed1"
    assert main(["simulate", "ci", "lifepo4", "--thickness", "1", "2", "3", "--seed", "1",
                 "--raw", str(raw1)]) == 0
    out = tmp_path / "packed.hspy"
    assert main(["pack", str(ci_raw), str(raw1), "--out", str(out), "--thickness", "2",
                 "--fine-mrad", "16", "--max-mrad", "40"]) == 0
    s = tw.load(out)
    assert s.metadata.Simulation.parameters.preset.num_configs == 2
    assert list(s.metadata.Simulation.parameters.seeds) == [0, 1]
    both = (np.load(ci_raw / "raw.npy")[0].mean(axis=(1, 2), dtype=np.float64)
            + np.load(raw1 / "raw.npy")[0].mean(axis=(1, 2), dtype=np.float64)) / 2
    np.testing.assert_allclose(s.metadata.Simulation.pacbed, both, rtol=1e-5, atol=1e-12)
    generator = s.metadata.Simulation.generator_command
    assert generator.count("simulate ci lifepo4") == 2 and "&& tdm pack" in generator
    man = {"datasets": [{"name": "ci", "tier": "ci", "file": str(out), "generator": generator}]}
    monkeypatch.setattr(manifest, "ROOT", tmp_path)
    monkeypatch.setattr(manifest, "_run_generator",
                        lambda c: main(c[1:]))  # the same CLI, in-process
    assert manifest.regenerate("ci", manifest=man) == 0.0
    # a different seed is a different dataset: regenerate says so
    man["datasets"][0]["generator"] = generator.replace("--seed 1", "--seed 5")
    with pytest.raises(ValueError, match="differs by"):
        manifest.regenerate("ci", manifest=man)
    capsys.readouterr()
    assert main(["pack", str(ci_raw), str(ci_raw), "--out", str(out)]) == 2
    assert "repeat a phonon seed" in capsys.readouterr().err
    other = tmp_path / "raw_other"  # another seed, but also other exit planes
    assert main(["simulate", "ci", "lifepo4", "--thickness", "1", "2", "--seed", "2",
                 "--raw", str(other)]) == 0
    capsys.readouterr()
    assert main(["pack", str(ci_raw), str(other), "--out", str(out)]) == 2
    assert "differ only in the phonon seed" in capsys.readouterr().err
