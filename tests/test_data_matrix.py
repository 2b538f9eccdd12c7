"""The sorted matrix D of Fig 1d."""

import numpy as np

import tdm_widgets as tw
from conftest import reference_normalised


def test_data_matrix_sorting_and_values(rng):
    sy, sx, dy, dx = 6, 5, 16, 16
    yy, xx = np.indices((dy, dx))
    r = np.hypot(yy - 8, xx - 8)
    disc = np.where(r < 4, 100.0, 1.0)
    data = disc * rng.uniform(0.5, 1.5, (sy, sx, dy, dx))
    s = tw.from_array(data, mrad_per_px=1.0)
    dm = tw.data_matrix(s, normalized=False)
    order = dm.metadata.DataMatrix
    D = data.reshape(sy * sx, dy * dx)
    np.testing.assert_allclose(dm.data, D[order.row_order][:, order.col_order], rtol=1e-6)
    assert np.all(np.diff(order.radius) >= 0)            # columns by radius
    np.testing.assert_allclose(order.radius, np.sort(r.ravel()), atol=0.02)  # [mrad]
    assert order.radius_units == "mrad"
    assert list(order.scan_shape) == [sy, sx] and list(order.det_shape) == [dy, dx]
    disk = tw.bf_disk(s)
    outside = np.hypot(yy - disk.center_px[0], xx - disk.center_px[1]) > disk.radius_px
    high = D[:, outside.ravel()].sum(1)
    assert np.all(np.diff(high[order.row_order]) >= 0)   # rows by high-angle intensity
    assert sorted(order.row_order) == list(range(sy * sx))
    norm = tw.data_matrix(s, normalized=True)
    no = norm.metadata.DataMatrix
    np.testing.assert_allclose(norm.data, reference_normalised(D)[no.row_order][:, no.col_order],
                               rtol=1e-4, atol=1e-5)
    assert [a.name for a in norm.axes_manager.signal_axes] == ["detector pixel",
                                                               "scan position"]
