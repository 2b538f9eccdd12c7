"""The sorted matrix D of Fig 1d."""

import numpy as np
from conftest import reference_normalised

import tdm_widgets as tw


def test_data_matrix_sorting_and_values(rng):
    sy, sx, dy, dx = 6, 5, 16, 16
    yy, xx = np.indices((dy, dx))
    r = np.hypot(yy - 8, xx - 8)
    disc = np.where(r < 4, 100.0, 1.0)
    data = disc * rng.uniform(0.5, 1.5, (sy, sx, dy, dx))
    s = tw.from_array(data, mrad_per_px=1.0)
    dm = tw.data_matrix(s, normalized=False)
    D = data.reshape(sy * sx, dy * dx)
    np.testing.assert_allclose(dm.matrix, D[dm.row_order][:, dm.col_order], rtol=1e-6)
    assert np.all(np.diff(dm.radius) >= 0)            # columns by radius
    disk = tw.bf_disk(s)
    outside = np.hypot(yy - disk.center_px[0], xx - disk.center_px[1]) > disk.radius_px
    high = D[:, outside.ravel()].sum(1)
    assert np.all(np.diff(high[dm.row_order]) >= 0)   # rows by high-angle intensity
    assert sorted(dm.row_order) == list(range(sy * sx))
    norm = tw.data_matrix(s, normalized=True)
    np.testing.assert_allclose(norm.matrix,
                               reference_normalised(D)[norm.row_order][:, norm.col_order],
                               rtol=1e-4, atol=1e-5)
