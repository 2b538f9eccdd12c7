"""The weighted-detector export, run by LiberTEM's ApplyMasksUDF, gives the Eq 6 images.

This is the route of docs/libertem.md: ``tw.export_weighted_detector`` writes
``w = m / sigma`` and an offset per mask; LiberTEM weights every frame by ``w`` (the
same UDF runs on LiberTEM-live streams) and the offset is added afterwards.
"""

import doctest
import pickle

import numpy as np
import pytest

import tdm_widgets as tw

pytest.importorskip("libertem")

from libertem.api import Context  # noqa: E402
from libertem.executor.inline import InlineJobExecutor  # noqa: E402

from tdm_widgets import libertem_udf  # noqa: E402


@pytest.fixture(scope="module")
def ctx():
    return Context(executor=InlineJobExecutor())


def test_bundled_species_images_through_libertem(ctx, tmp_path):
    """The README's masks (Li, Fe, P, O, all) on the bundled LiFePO4 at 70 nm."""
    from tdm_widgets.demo import BUNDLED
    from tdm_widgets.simulate import columns_of, select

    series = tw.load(BUNDLED)
    s = select(series, thickness_nm=70)
    templates, names = tw.point_templates(columns_of(series), s.data.shape[:2])
    masks = tw.pcc_mask(s, templates, detector_region=(0, 23.5), progress=False)
    ref = tw.apply_mask(s, masks, normalized=True, progress=False).data
    det = tw.export_weighted_detector(masks, tw.column_stats(s), tmp_path / "tdm")

    ds = ctx.load("memory", data=np.asarray(s.data), sig_dims=2)  # float16, as stored
    for source in (det, tmp_path / "tdm", tmp_path / "tdm.npy"):
        images = libertem_udf.run_weighted_detector(ctx, ds, source)
        assert images.shape == ref.shape == (len(names),) + s.data.shape[:2]
        scale = np.abs(ref).max()
        np.testing.assert_allclose(images, ref, rtol=0, atol=1e-12 * scale)
    # the species images are not trivially equal to one another (a real check)
    assert np.abs(images[0] - images[1]).max() > 0.1 * scale


def test_plain_libertem_udf_and_single_mask(ctx, tmp_path, rng):
    """The route without the helpers: the .npy weights in a mask factory, plus the
    offset from the .json, as a LiberTEM user would write it; one 2D mask."""
    import json

    from libertem.udf.masks import ApplyMasksUDF

    data = rng.poisson(30.0, (9, 7, 12, 10)).astype(np.uint16)
    data[..., 0, 0] = 5  # a constant pixel: weight 0
    s = tw.from_array(data, scan_step_A=0.5, mrad_per_px=2.0)
    template = np.zeros((9, 7))
    template[::3, ::2] = 1
    mask = tw.pcc_mask(s, template, progress=False)
    ref = tw.apply_mask(s, mask, normalized=True, progress=False).data
    tw.export_weighted_detector(mask, tw.column_stats(s), tmp_path / "w")

    w = np.load(tmp_path / "w.npy")
    offset = json.loads((tmp_path / "w.json").read_text())["offset"]
    assert w.shape == (1, 12, 10) and w[0, 0, 0] == 0
    udf = ApplyMasksUDF(mask_factories=[lambda: w[0]], mask_dtype=np.float64,
                        preferred_dtype=np.float64)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data, sig_dims=2), udf=udf)
    plain = res["intensity"].data[..., 0] + offset[0]
    np.testing.assert_allclose(plain, ref, rtol=1e-12, atol=1e-9)
    helper = libertem_udf.images_from_result(res, tmp_path / "w")
    np.testing.assert_allclose(helper[0], plain, rtol=0, atol=0)


def test_udf_pickles_and_refuses_mismatch(tmp_path, rng):
    det = {"weights": rng.random((2, 4, 4)), "offset": [1.0, -2.0]}
    udf = libertem_udf.apply_masks_udf(det)
    pickle.loads(pickle.dumps(udf))  # distributed executors ship the UDF to workers
    with pytest.raises(ValueError, match="holds 3 images"):
        libertem_udf.images_from_result({"intensity": np.zeros((2, 2, 3))}, det)
    np.save(tmp_path / "x.npy", np.ones((3, 4, 4)))
    (tmp_path / "x.json").write_text('{"offset": [0.0, 1.0]}')
    with pytest.raises(ValueError, match="not from one export"):
        libertem_udf.load_weighted_detector(tmp_path / "x")


def test_module_examples_run():
    """The runnable examples in tdm_widgets.libertem_udf's docstrings."""
    result = doctest.testmod(libertem_udf, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


def test_partial_results_while_the_scan_runs(ctx, rng):
    """run_udf_iter (what a live acquisition yields): offset alone where no frame has
    been processed, the full Eq 6 images at the end."""
    data = rng.random((8, 6, 4, 4))
    det = {"weights": rng.random((2, 4, 4)), "offset": [1.0, -2.0]}
    ds = ctx.load("memory", data=data, sig_dims=2, num_partitions=4)
    parts = [libertem_udf.images_from_result(p.buffers[0], det)
             for p in ctx.run_udf_iter(dataset=ds, udf=libertem_udf.apply_masks_udf(det))]
    assert len(parts) == 4
    assert (parts[0][0] == 1.0).sum() == 36 and (parts[0][1] == -2.0).sum() == 36
    offset = np.array(det["offset"])[:, None, None]
    full = np.einsum("yxij,kij->kyx", data, det["weights"]) + offset
    np.testing.assert_allclose(parts[-1], full, rtol=1e-12)
