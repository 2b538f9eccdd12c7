"""Sparse edits, live use, the physical detector, out-of-core and dask.distributed."""

import json
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from tdm_widgets.core.apply import apply_masks, physical_weights
from tdm_widgets.core.correlate import pcc_masks
from tdm_widgets.core.engine import TDMEngine
from tdm_widgets.signals import as_column_stats


def test_engine_edit_equals_recomputation(data4d, rng):
    t = np.zeros((2,) + data4d.shape[:2])
    t[0, 1, 1] = t[0, 5, 4] = 1
    t[1] = rng.random(data4d.shape[:2])
    eng = TDMEngine(data4d, t)
    delta = np.zeros(data4d.shape[:2])
    delta[7, 2] = 1.0  # add one column to template 0
    eng.edit(0, delta)
    t2 = t.copy()
    t2[0] += delta
    np.testing.assert_allclose(eng.masks(), pcc_masks(data4d, t2)[0], rtol=1e-10, atol=1e-14)
    m = eng.masks("pcc_over_mean")
    np.testing.assert_allclose(eng.images(m, normalized=True),
                               apply_masks(data4d, m, normalized=True), rtol=1e-10)
    # lazy data: the edit reads only the touched patterns
    lazy = TDMEngine(da.from_array(data4d, chunks=(4, 4, 12, 10)), t)
    lazy.edit(0, delta)
    np.testing.assert_allclose(lazy.masks(), eng.masks(), rtol=1e-10, atol=1e-14)


def test_live_tdm_equals_apply_mask_on_finished_scan(data4d, rng):
    s = tw.from_array(data4d)
    masks = tw.pcc_mask(s, rng.random((3,) + data4d.shape[:2]))
    stats = as_column_stats(tw.column_stats(s))  # the signal back as arrays
    w, off = physical_weights(masks.data, stats)
    live = tw.LiveTDM(w, data4d.shape[:2], offset=off)
    rows = (data4d[y] for y in range(data4d.shape[0]))  # one scan row at a time
    *_, last = live.consume(rows)
    np.testing.assert_allclose(last, tw.apply_mask(s, masks, normalized=True).data,
                               rtol=1e-10)
    partial = tw.LiveTDM(masks.data[0], data4d.shape[:2]).feed(data4d[0, 0])
    assert np.isfinite(partial[0, 0]) and np.isnan(partial[0, 1])


def test_exported_detector_reproduces_eq6(tmp_path, data4d, rng):
    import tifffile

    s = tw.from_array(data4d)
    mask = tw.pcc_mask(s, rng.random(data4d.shape[:2]))
    stats = tw.column_stats(s)
    tw.export_weighted_detector(mask, stats, tmp_path / "det")
    w = np.load(tmp_path / "det.npy")
    off = json.loads((tmp_path / "det.json").read_text())["offset"][0]
    raw = np.einsum("abij,ij->ab", data4d.astype(float), w[0]) + off
    np.testing.assert_allclose(raw, tw.apply_mask(s, mask, normalized=True).data, rtol=1e-9)
    np.testing.assert_allclose(tifffile.imread(tmp_path / "det.tif"), w.astype(np.float32))


def test_distributed_cluster_gives_identical_results(data4d, rng):
    distributed = pytest.importorskip("distributed")
    t = rng.random((2,) + data4d.shape[:2])
    lazy = da.from_array(data4d, chunks=(3, 9, 12, 10))
    local = pcc_masks(lazy, t)[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        remote = pcc_masks(lazy, t)[0]
        img = apply_masks(lazy, remote, normalized=True).compute()
    np.testing.assert_array_equal(remote, local)
    eager = apply_masks(data4d, local, normalized=True)
    # chunked vs whole-array sums: round-off relative to the largest image value
    np.testing.assert_allclose(img, eager, rtol=1e-12, atol=1e-12 * np.abs(eager).max())


def test_distributed_cluster_runs_a_lazy_hspy_and_a_lazy_npy(tmp_path, rng, capfd):
    """A lazy ``.hspy`` (HyperSpy reads it through h5py) and a lazy ``.npy`` go through
    masks, Eq 2 and Eq 6 images, a virtual image and a session's images on a
    dask.distributed cluster, equal to the eager numpy results; the cluster's progress
    goes to stderr, not stdout."""
    distributed = pytest.importorskip("distributed")
    import hyperspy.api as hs

    data = rng.poisson(6.0, (12, 10, 16, 16)).astype(np.uint16)
    data[::3, ::2, 6:10, 6:10] += 20
    s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=2.0)
    s.save(tmp_path / "scan.hspy")
    np.save(tmp_path / "scan.npy", data)
    t = np.zeros((12, 10))
    t[::3, ::2] = 1
    cols = {"A": np.argwhere(t > 0)}
    kw = dict(show_progressbar=False)
    masks = tw.pcc_mask(s, t, **kw)
    eq2 = tw.apply_mask(s, masks, **kw).data
    eq6 = tw.apply_mask(s, masks, normalized=True, **kw).data
    virtual = tw.virtual_image(s, 0, 6, **kw).data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster):
        for lazy in (hs.load(tmp_path / "scan.hspy", lazy=True),
                     tw.load(tmp_path / "scan.npy", lazy=True, scan_step_A=0.3)):
            if lazy.axes_manager.signal_axes[0].units != "mrad":
                lazy.axes_manager.signal_axes[0].units = "mrad"
                lazy.axes_manager.signal_axes[1].units = "mrad"
                for ax in lazy.axes_manager.signal_axes:
                    ax.scale, ax.offset = 2.0, -16.0
            m = tw.pcc_mask(lazy, t, show_progressbar=True)
            np.testing.assert_allclose(m.data, masks.data, atol=1e-13)
            np.testing.assert_allclose(tw.apply_mask(lazy, m, **kw).data.compute(), eq2,
                                       rtol=1e-12)
            np.testing.assert_allclose(
                tw.apply_mask(lazy, m, normalized=True, **kw).data.compute(), eq6,
                rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(tw.virtual_image(lazy, 0, 6, **kw).data.compute(),
                                       virtual)
            session = tw.TDMSession.from_columns(lazy, cols, combined=None, **kw)
            np.testing.assert_allclose(np.asarray(session.images().data)[0], eq2, rtol=1e-12)
    out, err = capfd.readouterr()
    assert "Completed" not in out


OUT_OF_CORE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, dask, dask.array as da
    import tdm_widgets as tw
    from tdm_widgets.core.correlate import pcc_masks
    from tdm_widgets.core.apply import apply_masks, physical_weights
    path = sys.argv[1]
    t = np.load(sys.argv[2])
    s = tw.load(path, lazy=True)
    dask.config.set(num_workers=2)
    # one-off process costs (loading the compiled kernels, thread pools) come first,
    # on one chunk, so that what is measured is what the data's size costs
    warm = pcc_masks(s.data[:1], np.random.default_rng(0).random((1, 64)), progress=False)[0]
    apply_masks(s.data[:1], warm, progress=False).compute()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m, _ = pcc_masks(s.data, t, progress=False)
    img = apply_masks(s.data, m, progress=False).compute()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(sys.argv[3], m); np.save(sys.argv[4], img)
    print(json.dumps({"before_kb": before, "peak_kb": peak}))
""")


def test_out_of_core_zarr_bounded_memory(tmp_path):
    """A zarr dataset is processed chunk by chunk with peak resident memory at most
    25 % of the data size, and the results equal the in-memory ones.

    Peak memory follows the chunk size, not the data size: dask and zarr keep some
    six to eight chunks in flight with two threads (a plain ``dask`` sum over 9.4 MB
    chunks of this array grows by about 60 MB), so the chunks here are one scan row
    (2.4 MB), as the README recommends for data several times the memory. The
    one-off cost of loading the compiled kernels (about 70 MB, whatever the data
    size) is paid on one chunk before the measurement starts."""
    rng = np.random.default_rng(0)
    shape, chunks = (64, 64, 96, 96), (1, 64, 96, 96)  # 151 MB, whole patterns per chunk
    z = da.random.RandomState(0).random(shape, chunks=chunks).astype(np.float32)
    z.to_zarr(str(tmp_path / "big.zarr"))
    t = np.zeros((3, 64, 64))
    t[0, ::8, ::8] = 1
    t[1] = rng.random((64, 64))
    t[2, 3::8, 5::8] = 1
    np.save(tmp_path / "t.npy", t)
    (tmp_path / "run.py").write_text(OUT_OF_CORE)
    res = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "big.zarr"),
                          str(tmp_path / "t.npy"), str(tmp_path / "m.npy"),
                          str(tmp_path / "i.npy")], capture_output=True, text=True, check=True)
    mem = json.loads(res.stdout.strip().splitlines()[-1])
    nbytes = np.prod(shape) * 4
    grew = (mem["peak_kb"] - mem["before_kb"]) * 1024
    assert grew <= 0.25 * nbytes, f"peak memory grew by {grew / 2**20:.0f} MiB"
    data = da.from_zarr(str(tmp_path / "big.zarr")).compute()
    m_ref, _ = pcc_masks(data, t, progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), m_ref, rtol=1e-10, atol=1e-14)
    img_ref = apply_masks(data, m_ref, progress=False)
    # chunked and in-memory sums differ only by float64 rounding (order of addition)
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), img_ref, rtol=1e-10,
                               atol=1e-12 * np.abs(img_ref).max())


def test_cupy_arrays_take_the_same_path(data4d, rng):
    """Where cupy and a GPU are present, device arrays go through the generic kernels."""
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("no GPU")
    t = rng.random(data4d.shape[:2])
    m_gpu, _ = pcc_masks(cp.asarray(data4d), t, progress=False)
    np.testing.assert_allclose(m_gpu, pcc_masks(data4d, t, progress=False)[0], rtol=1e-9)


def test_whole_patterns_bounds_the_chunks_and_warns_about_split_detectors():
    """Chunks that split the detector become whole patterns of at most CHUNK_BYTES (not
    the old chunk times the number of detector pieces), with a warning naming the cure;
    one huge chunk is split the same way; many tiny chunks are joined silently; good
    chunks are kept as they are."""
    import warnings

    from tdm_widgets.core.blocks import CHUNK_BYTES, whole_patterns

    def largest(a):
        return np.prod([max(c) for c in a.chunks]) * a.dtype.itemsize

    for chunks in ((256, 256, 32, 32), (90, 90, 90, 90), (-1, -1, -1, -1)):
        a = da.zeros((256, 256, 128, 128), dtype=np.uint16, chunks=chunks)
        with pytest.warns(UserWarning, match="whole patterns and a few scan rows"):
            w = whole_patterns(a)
        assert w.chunks[2:] == ((128,), (128,)) and largest(w) <= CHUNK_BYTES
    tiny = da.zeros((64, 64, 32, 32), dtype=np.uint16, chunks=(1, 1, 32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        joined = whole_patterns(tiny)
        good = da.zeros((120, 136, 144, 144), dtype=np.uint16, chunks=(10, -1, -1, -1))
        assert whole_patterns(good) is good
    assert joined.npartitions < tiny.npartitions / 64 and largest(joined) <= CHUNK_BYTES
