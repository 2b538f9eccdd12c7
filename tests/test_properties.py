"""Hypothesis properties of the PCC map.

Each example is data Hypothesis draws (shapes, values, a pixel, an affine map) on top
of a random base that makes every detector pixel and the template vary, so ``assume``
rejects almost nothing; each test also counts the examples it really checked."""

import numpy as np
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tdm_widgets.core.correlate import pcc_masks

shapes = st.tuples(st.integers(3, 6), st.integers(3, 6), st.integers(2, 4), st.integers(2, 4))

EXAMPLES = 60


@st.composite
def data_and_template(draw):
    """Data in [1, 100] and a template in [0, 1]: a seeded random base plus a drawn
    part (Hypothesis' constant and repeated values, shrunk towards zero)."""
    shape = draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = 1 + 49 * rng.random(shape) + draw(arrays(np.float64, shape,
                                                    elements=st.floats(0, 50)))
    t = 0.5 * rng.random(shape[:2]) + draw(arrays(np.float64, shape[:2],
                                                  elements=st.floats(0, 0.5)))
    return data, t


def _varies(data, t):
    D = data.reshape(data.shape[0] * data.shape[1], -1)
    return t.std() > 1e-3 and np.all(D.std(0) > 1e-3 * np.abs(D).max())


def test_invariant_to_positive_affine_transform_of_a_pixel():
    checked = []

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(data_and_template(), st.floats(0.01, 100), st.floats(-1e3, 1e3), st.data())
    def check(dt, a, b, data):
        d, t = dt
        assume(_varies(d, t))
        j = data.draw(st.integers(0, d.shape[2] - 1))
        k = data.draw(st.integers(0, d.shape[3] - 1))
        m0, _ = pcc_masks(d, t, progress=False)
        d2 = d.copy()
        d2[:, :, j, k] = a * d2[:, :, j, k] + b
        m1, _ = pcc_masks(d2, t, progress=False)
        np.testing.assert_allclose(m1, m0, rtol=1e-7, atol=1e-9)
        event(f"scan {d.shape[0] * d.shape[1]} positions")
        checked.append(1)

    check()
    assert len(checked) >= EXAMPLES  # no example skipped silently


def test_template_equal_to_a_pixel_image_gives_correlation_one():
    checked = []

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(data_and_template(), st.data())
    def check(dt, data):
        d, _ = dt
        j = data.draw(st.integers(0, d.shape[2] - 1))
        k = data.draw(st.integers(0, d.shape[3] - 1))
        t = d[:, :, j, k]
        assume(_varies(d, t))
        m, _ = pcc_masks(d, t, progress=False)
        assert abs(m[j, k] - 1) < 1e-9
        assert np.all(np.abs(m) <= 1 + 1e-9)
        checked.append(1)

    check()
    assert len(checked) >= EXAMPLES
