"""Every dtype and byte order a reader can return goes through every kernel, eager
and lazy, and gives what a plain float64 numpy computation gives."""

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from conftest import reference_pcc
from tdm_widgets.core import kernels
from tdm_widgets.core.apply import apply_masks
from tdm_widgets.core.correlate import pcc_masks
from tdm_widgets.core.engine import TDMEngine

# what RosettaSciIO and numpy hand over: Merlin 1/6/12/24-bit (uint8, >u2, >u4), other
# counting detectors (little-endian uint16/32/64, signed after dark subtraction), and
# floats of every width in both byte orders
DTYPES = ["u1", "<u2", ">u2", "<u4", ">u4", "<u8", ">u8", "i1", "<i2", ">i2", "<i4",
          ">i4", "<i8", ">i8", "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "?"]


def _data(dtype, shape=(7, 6, 9, 8), seed=0):
    """Counts 0..100 (exact in every dtype; bool: 0/1) with structure over the scan."""
    rng = np.random.default_rng(seed)
    sy, sx, dy, dx = shape
    lam = 20 * (1 + np.sin(np.arange(sy)[:, None, None, None] * 1.3
                           + np.arange(sx)[None, :, None, None] * 0.7
                           + np.arange(dy * dx).reshape(1, 1, dy, dx) * 0.1))
    counts = np.minimum(rng.poisson(lam), 100)
    if np.dtype(dtype).kind == "b":
        counts = counts > 20
    return counts.astype(dtype)


def _templates(shape):
    sy, sx = shape
    t = np.zeros((3, sy, sx))
    t[0, 2, 3] = 1.0
    t[1] = np.random.default_rng(1).random((sy, sx))
    t[2, ::2, ::3] = 2.0
    return t


def _reference_masks(data, t):
    return np.stack([reference_pcc(np.asarray(data, np.float64), ti) for ti in t])


def _reference_images(data, masks):
    sy, sx, dy, dx = data.shape
    D = np.asarray(data, np.float64).reshape(sy * sx, dy * dx)
    return (D @ masks.reshape(len(masks), -1).T).T.reshape(-1, sy, sx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lazy", [False, True])
def test_statistics_masks_images_every_dtype(dtype, lazy, monkeypatch):
    """Statistics, projections (masks) and both image equations equal the float64
    reference for every dtype and byte order, from numpy blocks and from dask chunks
    (including chunks that split the detector), with converted copies of one row."""
    monkeypatch.setattr(kernels, "COPY_CHUNK_BYTES", 1)  # one row per converted copy
    data = _data(dtype)
    ref = np.asarray(data, np.float64)
    x = da.from_array(data, chunks=(3, 4, 5, -1)) if lazy else data
    t = _templates(data.shape[:2])
    masks, stats = pcc_masks(x, t)
    np.testing.assert_allclose(masks, _reference_masks(ref, t), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.mean, ref.mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(stats.std, ref.std(axis=(0, 1)), rtol=1e-9, atol=1e-12)
    images = np.asarray(apply_masks(x, masks))
    np.testing.assert_allclose(images, _reference_images(ref, masks), rtol=1e-9, atol=1e-9)
    norm = np.asarray(apply_masks(x, masks, normalized=True, stats=stats))
    dh = (ref - ref.mean(axis=(0, 1))) / np.where(stats.valid, ref.std(axis=(0, 1)), 1.0)
    np.testing.assert_allclose(norm, _reference_images(dh * stats.valid, masks),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [">u2", ">u4", "<f2", ">f4", "?"])
@pytest.mark.parametrize("lazy", [False, True])
def test_sparse_projection_of_an_edit_every_dtype(dtype, lazy, monkeypatch):
    """A template edit reads only the touched patterns, converted, and gives the masks of
    the edited template from scratch."""
    monkeypatch.setattr(kernels, "COPY_CHUNK_BYTES", 1)
    data = _data(dtype, seed=2)
    t = _templates(data.shape[:2])
    eng = TDMEngine(da.from_array(data, chunks=(2, -1, -1, -1)) if lazy else data, t,
                    show_progressbar=False)
    delta = np.zeros(data.shape[:2])
    delta[1, 1], delta[4, 0], delta[6, 5] = 1.0, -0.5, 2.0
    eng.edit(0, delta)
    t[0] += delta
    np.testing.assert_allclose(eng.masks(), _reference_masks(data, t), rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [">u2", ">u4", "<f2", ">f8", "i1"])
def test_live_feed_every_dtype(dtype):
    """LiveTDM fed big-endian, half-precision or signed rows gives the float64 images."""
    data = _data(dtype, seed=3)
    w = np.random.default_rng(4).standard_normal((2,) + data.shape[2:])
    live = tw.LiveTDM(w, data.shape[:2], offset=[1.0, -2.0])
    for row in data:
        out = live.feed(row)
    exp = _reference_images(data, w) + np.array([1.0, -2.0])[:, None, None]
    np.testing.assert_allclose(out, exp, rtol=1e-12, atol=1e-9)


def test_non_contiguous_views_and_byte_swapped_views():
    """Strided, transposed and reversed views (and a byte-swapped view of the same
    buffer) give the same masks and images as a contiguous native copy."""
    base = _data(">u2", shape=(9, 8, 10, 12), seed=5)
    views = [base[::2, 1:, :, ::-1], base.transpose(1, 0, 3, 2)[:, :, 1:],
             base.view(base.dtype.newbyteorder()).byteswap()[:, ::2]]
    for v in views:
        assert not v.flags.c_contiguous or not v.dtype.isnative
        native = np.ascontiguousarray(v.astype(v.dtype.newbyteorder("=")))
        np.testing.assert_array_equal(native, np.asarray(v, np.float64))
        t = _templates(v.shape[:2])
        got, _ = pcc_masks(v, t)
        np.testing.assert_allclose(got, _reference_masks(native, t), rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(apply_masks(v, got), apply_masks(native, got),
                                   rtol=1e-12, atol=1e-9)


def test_converted_copies_are_row_chunks_not_the_block():
    """Data the kernels cannot read as stored is converted at most one row chunk at a
    time (1/32 of the block, at most COPY_CHUNK_BYTES); native data is not copied."""
    x = np.zeros((256, 1000), ">u2")
    chunks = kernels._row_chunks(x, 256)
    assert max(c.stop - c.start for c in chunks) == 256 // 32
    assert sum(c.stop - c.start for c in chunks) == 256
    assert kernels._row_chunks(x.astype("<u2"), 256) == [slice(0, 256)]
    assert kernels.kernel_dtype(">u4") == np.dtype("<u4")
    assert kernels.kernel_dtype(">f2") == np.dtype("float32")
    assert kernels.kernel_dtype("f4") is None


@pytest.mark.parametrize("lazy", [False, True])
def test_big_endian_npy_loads_and_processes(tmp_path, lazy):
    """A big-endian .npy file loads (eager and lazy) and gives the native-endian result."""
    data = _data(">u2", seed=6)
    np.save(tmp_path / "be.npy", data)
    s = tw.load(tmp_path / "be.npy", lazy=lazy)
    assert s.data.dtype == np.dtype(">u2")
    t = _templates(data.shape[:2])
    m = tw.pcc_mask(s, t)
    exp = _reference_masks(data.astype("<u2"), t)
    np.testing.assert_allclose(m.data, exp, rtol=1e-9, atol=1e-12)
    img = tw.apply_mask(s, m)
    np.testing.assert_allclose(np.asarray(img.data), _reference_images(data, exp),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", ["u1", ">u2", ">u4", "<u8", "i2"])
def test_dose_halves_do_not_depend_on_chunking(dtype):
    """The binomial halves drawn lazily with chunks that split the scan and the detector
    are identical to the eager ones (one generator per scan position on whole
    patterns), in every integer dtype and byte order."""
    from tdm_widgets.cross_validation import thinned_halves

    data = _data(dtype, seed=7)
    a, b = thinned_halves(data, seed=11)
    for chunks in ((3, 4, 5, 3), (1, 1, 2, 8), (7, 6, 9, 8)):
        la, lb = thinned_halves(da.from_array(data, chunks=chunks), seed=11)
        np.testing.assert_array_equal(la.compute(), a)
        np.testing.assert_array_equal(lb.compute(), b)
    np.testing.assert_array_equal(a.astype(np.int64) + b, data.astype(np.int64))
    assert 0.3 < a.sum() / data.astype(np.int64).sum() < 0.7
