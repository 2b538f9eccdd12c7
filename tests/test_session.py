"""The session that owns the pass, counted: every read of the data goes through a
counting array under a dask array, so a test knows how many passes (or patterns) an
operation really read."""

import json

import dask.array as da
import numpy as np
import pytest

import tdm_widgets as tw
from conftest import reference_pcc
from tdm_widgets import demo
from tdm_widgets.core.correlate import pcc_masks


class CountingArray:
    """A read-only array-like that counts the values read through it."""

    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape, self.dtype, self.ndim = self.a.shape, self.a.dtype, self.a.ndim
        self.values_read = 0

    def __getitem__(self, index):
        out = self.a[index]
        self.values_read += out.size
        return out


def counted(a, chunks):
    """``(dask array over a, counter)``."""
    counter = CountingArray(a)
    return da.from_array(counter, chunks=chunks), counter


def passes(counter, size):
    """Passes over data of ``size`` values read so far."""
    return counter.values_read / size


def test_the_counter_counts_every_pass(data4d):
    """One virtual image reads the data once, a mask and an image twice."""
    lazy, counter = counted(data4d, (4, -1, -1, -1))
    size = data4d.size
    s = tw.from_array(lazy, mrad_per_px=2.0)
    tw.virtual_image(s, 0, 6, show_progressbar=False).compute(show_progressbar=False)
    assert passes(counter, size) == 1
    m = tw.pcc_mask(s, np.eye(11, 9), show_progressbar=False)
    tw.apply_mask(s, m, show_progressbar=False).compute(show_progressbar=False)
    assert passes(counter, size) == 3


def test_eq6_after_pcc_mask_makes_no_statistics_pass(data4d, rng):
    t = rng.random((2,) + data4d.shape[:2])
    lazy, counter = counted(data4d, (3, -1, -1, -1))
    size = data4d.size
    s = tw.from_array(lazy, scan_step_A=0.2, mrad_per_px=2.0)
    masks = tw.pcc_mask(s, t, show_progressbar=False)
    assert passes(counter, size) == 1  # the statistics
    img = tw.apply_mask(s, masks, normalized=True, show_progressbar=False)
    img.compute(show_progressbar=False)
    assert passes(counter, size) == 2  # the image only
    # the reference: Eq 6 materialised, D_hat @ m
    sy, sx, dy, dx = data4d.shape
    D = data4d.reshape(sy * sx, -1).astype(float)
    Dh = (D - D.mean(0)) / D.std(0)
    ref = (Dh @ masks.data.reshape(2, -1).T).T.reshape(2, sy, sx)
    np.testing.assert_allclose(img.data, ref, rtol=1e-9, atol=1e-9)
    # a bare array carries no statistics: Eq 6 then costs a statistics pass too
    tw.apply_mask(s, masks.data, normalized=True,
                  show_progressbar=False).compute(show_progressbar=False)
    assert passes(counter, size) == 4
    # nor does a mask of other data
    other = tw.pcc_mask(data4d.copy(), t, show_progressbar=False)
    tw.apply_mask(s, other, normalized=True, show_progressbar=False).compute(show_progressbar=False)
    assert passes(counter, size) == 6


def test_save_after_images_makes_no_image_pass(data4d, tmp_path):
    """The README's session: statistics, images, save: two passes, not three; after an
    edit the images (new weights) cost one pass again, and the saved images equal them."""
    import hyperspy.api as hs

    lazy, counter = counted(data4d, (3, -1, -1, -1))
    session = tw.TDMSession.from_columns(lazy, {"A": [[1, 1], [5, 4]], "B": [[2, 7]]},
                                         show_progressbar=False)
    session.masks()
    images = session.images()
    assert passes(counter, data4d.size) == 2
    session.save(tmp_path / "one")
    assert passes(counter, data4d.size) == 2
    np.testing.assert_array_equal(hs.load(tmp_path / "one" / "images.hspy").data, images.data)
    session.add_column("A", 7, 2)
    read = counter.values_read
    edited = session.images()
    assert counter.values_read - read == data4d.size
    session.save(tmp_path / "two")
    assert counter.values_read - read == data4d.size
    assert not np.allclose(edited.data[0], images.data[0])


def test_an_edit_reads_only_the_touched_patterns(data4d):
    """A column added or removed reads that one pattern, once, although it changes two
    templates (its species and "all"); the masks equal a fresh computation."""
    sy, sx, dy, dx = data4d.shape
    lazy, counter = counted(data4d, (1, 1, -1, -1))  # one pattern per chunk
    cols = {"A": [[1, 1], [5, 4]], "B": [[2, 7], [8, 3]]}
    session = tw.TDMSession.from_columns(lazy, cols, show_progressbar=False)
    session.masks()
    assert passes(counter, data4d.size) == 1
    read = counter.values_read
    session.add_column("A", 7, 2)
    assert counter.values_read - read == dy * dx                    # one pattern
    session.remove_column("B", 2.2, 6.9)
    assert counter.values_read - read == 2 * dy * dx                # and one more
    session.masks()                                                 # no pass
    assert counter.values_read - read == 2 * dy * dx
    t, names = tw.point_templates({"A": [[1, 1], [5, 4], [7, 2]], "B": [[8, 3]]},
                                  (sy, sx))
    assert session.names == names
    for i in range(len(names)):
        np.testing.assert_allclose(session.mask_array()[i], reference_pcc(data4d, t[i]),
                                   rtol=1e-9, atol=1e-12)


def test_demo_reads_the_data_twice(tmp_path, monkeypatch):
    """``tdm demo``: the statistics pass, then one pass for every TDM and virtual image;
    the PACBED shown is the statistics' mean."""
    series = tw.load(demo.BUNDLED)
    counters = []

    def counted_load(path):
        lazy = series.as_lazy()
        lazy.data, counter = counted(series.data, (1, 5) + (-1,) * (series.data.ndim - 2))
        counters.append(counter)
        return lazy

    monkeypatch.setattr(demo, "load", counted_load)
    table = demo.run_demo(tmp_path, demo.BUNDLED, thickness_nm=70, show_progressbar=False)
    member = int(np.prod(series.data.shape[1:]))
    assert passes(counters[0], member) == 2
    # what the two passes gave equals the plain functions on the data in memory
    from tdm_widgets.simulate import columns_of, select

    s = select(series, thickness_nm=70)
    cols = columns_of(series)
    abf = tw.virtual_image(s, 11, 23.5, show_progressbar=False)
    def species(row):  # the table's rows also hold the null controls' own positions
        return {k: v for k, v in row.items() if not k.startswith("null")}

    assert species(table["virtual ABF"]) == pytest.approx(tw.specificity(abf, cols))
    t, names = tw.point_templates(cols, s.data.shape[:2], demo.SPECIES)
    images = tw.apply_mask(s, tw.pcc_mask(s, t, detector_region=(0, 23.5), show_progressbar=False),
                           show_progressbar=False)
    for i, n in enumerate(names):
        assert species(table[f"TDM {n}"]) == pytest.approx(tw.specificity(images.data[i], cols))


def test_session_takes_a_signal_and_names_its_results(data4d, rng):
    s = tw.from_array(data4d, scan_step_A=0.25, mrad_per_px=2.0)
    t = {"A": rng.random(data4d.shape[:2]), "B": rng.random(data4d.shape[:2])}
    session = tw.TDMSession(s, t, detector_region=(0, 8), show_progressbar=False)
    masks = session.masks()
    assert masks.metadata.TDM.names == ["A", "B"]
    assert masks.axes_manager.signal_axes[0].units == "mrad"
    ref, _ = pcc_masks(data4d, np.stack(list(t.values())),
                       detector_region=tw.detector_annulus(s, data4d.shape[2:], 0, 8))
    np.testing.assert_allclose(masks.data, ref, rtol=1e-9, atol=1e-12)
    images = session.images(virtual={"BF": (0, 6)})
    assert images.metadata.TDM.names == ["A", "B", "BF"]
    assert images.axes_manager.signal_axes[0].scale == 0.25
    np.testing.assert_allclose(tw.pick(images, "BF").data,
                               tw.virtual_image(s, 0, 6, show_progressbar=False).data, rtol=1e-12)
    np.testing.assert_allclose(tw.pick(images, ["B"]).data[0],
                               tw.apply_mask(s, masks, show_progressbar=False).data[1], rtol=1e-12)
    stats = session.column_stats()
    np.testing.assert_allclose(stats.data, tw.column_stats(s, show_progressbar=False).data)
    np.testing.assert_allclose(stats.data[0], data4d.mean((0, 1)), rtol=1e-6)


def test_saved_provenance_records_checksums_not_arrays(tmp_path, data4d):
    s = tw.from_array(data4d, scan_step_A=0.25, mrad_per_px=2.0)
    session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [5, 4]]}, show_progressbar=False)
    folder = session.save(tmp_path / "out")
    record = json.loads((folder / "session.json").read_text())
    assert set(record["parameters"]["templates"]["A"]) == {"shape", "dtype", "nonzero",
                                                           "sha256"}
    import hyperspy.api as hs

    for name in ("masks.hspy", "images.hspy"):
        meta = hs.load(folder / name).metadata.TDM.as_dictionary()

        def arrays(node):
            if isinstance(node, dict):
                return [a for v in node.values() for a in arrays(v)]
            return [node] if isinstance(node, np.ndarray) else []

        assert arrays(meta) == []


def test_eq6_of_a_region_mask_uses_the_region_also_after_reloading(tmp_path, rng):
    """Eq 6 of a mask fitted on a reference region standardises by that region's
    statistics (numpy reference: ``((D - mean_R) / std_R) m``), whether the mask is
    fresh or reloaded from a file (the region is recorded in its metadata); a plain
    array is standardised by the whole scan; the result says which; the region of
    another scan shape is an error naming ``stats``."""
    import hyperspy.api as hs

    data = rng.poisson(6.0, (12, 10, 8, 8)).astype(np.uint16)
    data[::3, ::2, 3:5, 3:5] += 9
    s = tw.from_array(data, scan_step_A=0.3, mrad_per_px=2.0)
    t = np.zeros((12, 10))
    t[::3, ::2] = 1
    region = np.zeros((12, 10), bool)
    region[:6] = True
    region[7, 3] = True  # not a rectangle
    m = tw.pcc_mask(s, t, region=region, show_progressbar=False)

    def eq6(positions):
        d = data.reshape(120, 64).astype(np.float64)
        ref = d[positions.ravel()]
        z = (d - ref.mean(0)) / ref.std(0)
        return (z @ m.data.ravel()).reshape(12, 10)

    kept = tw.apply_mask(s, m, normalized=True, show_progressbar=False)
    np.testing.assert_allclose(kept.data, eq6(region), rtol=1e-12, atol=1e-12)
    m.save(tmp_path / "m.hspy")
    back = tw.apply_mask(s, hs.load(tmp_path / "m.hspy"), normalized=True,
                         show_progressbar=False)
    np.testing.assert_allclose(back.data, eq6(region), rtol=1e-12, atol=1e-12)
    assert back.metadata.TDM.parameters.statistics == \
        f"reference region of the mask ({region.sum()} positions)"
    plain = tw.apply_mask(s, m.data, normalized=True, show_progressbar=False)
    np.testing.assert_allclose(plain.data, eq6(np.ones((12, 10), bool)), rtol=1e-12,
                               atol=1e-12)
    assert plain.metadata.TDM.parameters.statistics == "whole scan"
    crop = tw.from_array(data[:11], scan_step_A=0.3, mrad_per_px=2.0)
    with pytest.raises(ValueError, match=r"region of a \(12, 10\) scan.*pass stats="):
        tw.apply_mask(crop, hs.load(tmp_path / "m.hspy"), normalized=True,
                      show_progressbar=False)


def test_bf_disk_reads_the_data_once_with_its_descan_check():
    """The descan check's grid of patterns comes from the mean pattern's pass: one read
    of every value (it read some chunks a second time), and a disc that moves across
    the scan is still warned about."""
    yy, xx = np.mgrid[:32, :32]
    sy, sx = 12, 10
    data = np.zeros((sy, sx, 32, 32))
    for y in range(sy):
        for x in range(sx):  # the disc drifts 2 px along x over the scan
            data[y, x] = 100.0 * (np.hypot(yy - 16, xx - 14 - 2 * x / (sx - 1)) < 8) + 1
    lazy, counter = counted(data, (2, -1, -1, -1))
    s = tw.from_array(lazy, mrad_per_px=2.0)
    with pytest.warns(UserWarning, match="moves 2.0. detector px"):
        disk = tw.bf_disk(s, show_progressbar=False)
    assert passes(counter, data.size) == 1
    np.testing.assert_allclose(disk.center_px, (16.0, 15.0), atol=0.3)
