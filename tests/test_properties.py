"""Hypothesis properties of the PCC map."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tdm_widgets.core.correlate import pcc_masks

shapes = st.tuples(st.integers(3, 6), st.integers(3, 6), st.integers(2, 4), st.integers(2, 4))


@st.composite
def data_and_template(draw):
    shape = draw(shapes)
    elems = st.floats(1.0, 100.0, width=64)
    data = draw(arrays(np.float64, shape, elements=elems))
    t = draw(arrays(np.float64, shape[:2], elements=st.floats(0, 1)))
    return data, t


def _varies(data, t):
    D = data.reshape(data.shape[0] * data.shape[1], -1)
    return t.std() > 1e-3 and np.all(D.std(0) > 1e-3 * np.abs(D).max())


@settings(max_examples=60, deadline=None)
@given(data_and_template(), st.floats(0.01, 100), st.floats(-1e3, 1e3), st.data())
def test_invariant_to_positive_affine_transform_of_a_pixel(dt, a, b, data):
    d, t = dt
    if not _varies(d, t):
        return
    j = data.draw(st.integers(0, d.shape[2] - 1))
    k = data.draw(st.integers(0, d.shape[3] - 1))
    m0, _ = pcc_masks(d, t, progress=False)
    d2 = d.copy()
    d2[:, :, j, k] = a * d2[:, :, j, k] + b
    m1, _ = pcc_masks(d2, t, progress=False)
    np.testing.assert_allclose(m1, m0, rtol=1e-7, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(data_and_template(), st.data())
def test_template_equal_to_a_pixel_image_gives_correlation_one(dt, data):
    d, _ = dt
    j = data.draw(st.integers(0, d.shape[2] - 1))
    k = data.draw(st.integers(0, d.shape[3] - 1))
    t = d[:, :, j, k]
    if not _varies(d, t):
        return
    m, _ = pcc_masks(d, t, progress=False)
    assert abs(m[j, k] - 1) < 1e-9
    assert np.all(np.abs(m) <= 1 + 1e-9)
