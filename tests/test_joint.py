"""Joint species images under cross-validation: counts whose detector pixels see
known mixtures of two species, so the cross-talk of the independent (Pearson)
images and its removal are known in advance."""

import numpy as np
import pytest

import tdm_widgets as tw


def _mixed_counts(rng, electrons=4000.0):
    shape = (24, 24)
    t = np.zeros((2,) + shape)
    t[0, 2::6, 2::6] = 1.0
    t[1, 5::6, 4::6] = 1.0
    # 16 detector pixels; each sees species 0 and 1 in a different proportion and
    # species 1 always a little with species 0 (cross-talk for a Pearson mask)
    mix = np.stack([np.linspace(1.0, 0.2, 16), np.linspace(0.1, 1.0, 16)])
    lam = electrons / 16 * (1.0 + np.einsum("syx,sk->yxk", t, mix))
    counts = rng.poisson(lam).astype(np.uint32).reshape(shape + (4, 4))
    return counts, t


def _leak(img, t, own, other):
    """Signal of species ``other`` in an image meant for ``own``, in image sd."""
    bg = img[t.sum(0) == 0].mean()
    return (img[t[other] > 0].mean() - bg) / img.std(), (img[t[own] > 0].mean() - bg) / img.std()


def test_joint_images_remove_cross_talk_that_pearson_keeps(rng):
    counts, t = _mixed_counts(rng)
    r = tw.cross_validated_joint_images(counts, t, ridges=(0.0, 0.1, 1.0, 100.0))
    assert set(r.cv_error) == {0.0, 0.1, 1.0, 100.0} and r.ridge in r.cv_error
    assert r.cv_error[r.ridge] == min(r.cv_error.values())
    leak_p, _ = _leak(r.pearson.data[0], t, 0, 1)
    leak_j, own_j = _leak(r.joint.data[0], t, 0, 1)
    assert abs(leak_p) > 0.5                  # the Pearson image of 0 also shows 1
    assert abs(leak_j) < 0.25 * abs(leak_p)   # the joint one much less
    assert own_j > 1.0
    assert r.pearson.data.shape == r.joint.data.shape == t.shape


def test_joint_images_with_a_reference_region_and_bad_input(rng):
    counts, t = _mixed_counts(rng)
    region = np.zeros(t.shape[1:], bool)
    region[:12] = True
    r = tw.cross_validated_joint_images(counts, t, fit_region=region, ridges=(0.0, 1.0))
    assert abs(_leak(r.joint.data[0], t, 0, 1)[0]) < abs(_leak(r.pearson.data[0], t, 0, 1)[0])
    with pytest.raises(ValueError, match="counts"):
        tw.cross_validated_joint_images(counts.astype(float), t)
    with pytest.raises(ValueError, match="fit_region"):
        tw.cross_validated_joint_images(counts, t, fit_region=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="at least two templates"):
        tw.cross_validated_joint_images(counts, t[:1])
    with pytest.raises(ValueError, match="ridges"):
        tw.cross_validated_joint_images(counts, t, ridges=(-1.0,))


def test_joint_images_with_three_folds_equal_the_folds_spelled_out(rng):
    """folds=3: each part imaged by masks and a joint combination fitted on the other
    two parts (the multinomial draw written out with the documented generators)."""
    counts, t = _mixed_counts(rng, electrons=300.0)
    region = np.zeros(t.shape[1:], bool)
    region[:, :12] = True
    r = tw.cross_validated_joint_images(counts, t, fit_region=region, ridges=(1.0,),
                                        folds=3, seed=4)
    sy, sx = counts.shape[:2]
    n = counts.astype(np.int64)
    parts = np.zeros((3,) + counts.shape, np.int64)
    for idx in range(sy * sx):
        y, x = divmod(idx, sx)
        g = np.random.default_rng((4, idx))
        parts[0, y, x] = g.binomial(n[y, x], 1 / 3)
        parts[1, y, x] = g.binomial(n[y, x] - parts[0, y, x], 1 / 2)
    parts[2] = n - parts[0] - parts[1]
    pearson, joint = [], []
    for j in range(3):
        fit = n - parts[j]
        m = tw.pcc_mask(fit, t, region=region, show_progressbar=False)
        own = tw.apply_mask(fit, m, show_progressbar=False).data
        held = tw.apply_mask(parts[j], m, show_progressbar=False).data
        w = tw.unmix_images(own, t, 1.0, region=region)[1]
        pearson.append(held)
        joint.append(np.einsum("sj,syx->jyx", w, held))
    np.testing.assert_allclose(r.pearson.data, np.mean(pearson, 0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.joint.data, np.mean(joint, 0), rtol=1e-9, atol=1e-12)
    assert r.joint.metadata.TDM.parameters.folds == 3
    # each part holds a third of the counts
    assert np.allclose(parts.sum(axis=(1, 2, 3, 4)) / n.sum(), 1 / 3, atol=0.01)
    with pytest.raises(ValueError, match="folds"):
        tw.cross_validated_joint_images(counts, t, folds=1)
