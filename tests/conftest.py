"""Shared fixtures: small random data and a plain-numpy reference of every equation."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def reference_normalised(D):
    """Eq 3 materialised: every column standardised (population std)."""
    D = np.asarray(D, float)
    return (D - D.mean(0)) / D.std(0)


def reference_pcc(data, template, region=None, over_mean=False):
    """Pearson correlation of a template with every pixel-STEM image, by Eq 3-5
    (Eq 7 with over_mean), materialising the normalised matrix."""
    sy, sx, dy, dx = data.shape
    D = np.asarray(data, float).reshape(sy * sx, dy * dx)
    t = np.asarray(template, float).reshape(-1)
    if region is not None:
        sel = np.asarray(region).reshape(-1)
        D, t = D[sel], t[sel]
    Dh = reference_normalised(D)
    if over_mean:
        Dh = Dh / D.mean(0)
    th = (t - t.mean()) / t.std()
    return (th @ Dh / len(t)).reshape(dy, dx)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def data4d(rng):
    """Positive float32 data with structure: (11, 9) scan x (12, 10) detector."""
    base = rng.gamma(3.0, 20.0, size=(1, 1, 12, 10))
    mod = 1 + 0.3 * rng.standard_normal((11, 9, 12, 10))
    return (base * np.abs(mod)).astype(np.float32)
