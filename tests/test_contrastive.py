"""Contrastive losses: hand-computed values on 3 examples, gradients to second order."""
import numpy as np
import pytest

from mnist1d_np import Tensor, contrastive, grad
from mnist1d_np.gradcheck import check_grad

EYE3 = np.eye(3)  # three orthonormal views: every cosine is 0 or 1


# ---------------------------------------------------------------- hand-computed values

def test_info_nce_by_hand():
    # scores = I / 0.5: each row is -2 + log(e^2 + 1 + 1).
    assert contrastive.info_nce(Tensor(EYE3), Tensor(EYE3), tau=0.5).item() == pytest.approx(
        np.log(np.e ** 2 + 2) - 2, rel=1e-12)
    # Scaling a row does not matter (the views are normalised).
    assert contrastive.info_nce(Tensor(3 * EYE3), Tensor(EYE3), tau=0.5).item() == pytest.approx(
        np.log(np.e ** 2 + 2) - 2, rel=1e-12)


def test_nt_xent_by_hand():
    # 6 views; each has its partner (score 2) and 4 orthogonal others (score 0), itself excluded.
    assert contrastive.nt_xent(Tensor(EYE3), Tensor(EYE3), tau=0.5).item() == pytest.approx(
        np.log(np.e ** 2 + 4) - 2, rel=1e-12)


def test_triplet_by_hand():
    eps = 1e-8
    # Positives coincide (distance sqrt(eps)), negatives are orthogonal (distance sqrt(2 + eps)).
    expected = 2.0 + np.sqrt(eps) - np.sqrt(2 + eps)
    assert contrastive.triplet_margin(Tensor(EYE3), Tensor(EYE3), margin=2.0, eps=eps).item() == \
        pytest.approx(expected, rel=1e-12)
    assert contrastive.triplet_margin(Tensor(EYE3), Tensor(EYE3), margin=1.0).item() == 0.0


def test_vicreg_by_hand():
    # Each dimension holds (1, 0, 0) in some order: unbiased variance 1/3; every off-diagonal
    # covariance is -1/6, so each branch's covariance term is 6 * (1/36) / 3 = 1/18.
    expected = 25 * (1 - np.sqrt(1 / 3 + 1e-4)) + 2 / 18
    assert contrastive.vicreg(Tensor(EYE3), Tensor(EYE3)).item() == pytest.approx(expected, rel=1e-12)
    shifted = EYE3 + np.array([[0.1, 0, 0], [0, 0, 0], [0, 0, 0]])
    invariance = 0.01 / 9  # one entry differs by 0.1
    assert contrastive.vicreg(Tensor(shifted), Tensor(EYE3), variance_weight=0, covariance_weight=0,
                              invariance_weight=1).item() == pytest.approx(invariance, rel=1e-12)


def test_negative_cosine_by_hand():
    p = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    z = np.array([[3.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # cosines 1, 1/sqrt(2), 0
    expected = -(1 + 1 / np.sqrt(2) + 0) / 3
    assert contrastive.negative_cosine(Tensor(p), Tensor(p), Tensor(z), Tensor(z)).item() == \
        pytest.approx(expected, rel=1e-12)


def _loop_info_nce(z1, z2, tau):
    """The notebook's formula with explicit loops, as an independent reference."""
    u1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    u2 = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    total = 0.0
    for i in range(len(u1)):
        scores = [u1[i] @ u2[j] / tau for j in range(len(u2))]
        total += -scores[i] + np.log(np.sum(np.exp(scores)))
    return total / len(u1)


def _loop_nt_xent(z1, z2, tau):
    u = np.concatenate([z1, z2]) / np.linalg.norm(np.concatenate([z1, z2]), axis=1, keepdims=True)
    n, total = len(z1), 0.0
    for a in range(2 * n):
        partner = (a + n) % (2 * n)
        others = [u[a] @ u[b] / tau for b in range(2 * n) if b != a]
        total += -u[a] @ u[partner] / tau + np.log(np.sum(np.exp(others)))
    return total / (2 * n)


def test_info_nce_and_nt_xent_match_loops(rng):
    z1, z2 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    for tau in (0.1, 0.5, 1.0):
        assert contrastive.info_nce(Tensor(z1), Tensor(z2), tau).item() == pytest.approx(
            _loop_info_nce(z1, z2, tau), rel=1e-12)
        assert contrastive.nt_xent(Tensor(z1), Tensor(z2), tau).item() == pytest.approx(
            _loop_nt_xent(z1, z2, tau), rel=1e-12)


# ---------------------------------------------------------------- gradients

LOSSES = {
    "info_nce": lambda a, b: contrastive.info_nce(a, b, tau=0.5),
    "nt_xent": lambda a, b: contrastive.nt_xent(a, b, tau=0.5),
    "triplet": lambda a, b: contrastive.triplet_margin(a, b, margin=1.5),
    "vicreg": lambda a, b: contrastive.vicreg(a, b),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("order", [1, 2])
def test_gradients_against_finite_differences(name, order, rng):
    z1, z2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    check_grad(LOSSES[name], [z1, z2], order=order)


@pytest.mark.parametrize("order", [1, 2])
def test_negative_cosine_gradient_reaches_the_predictor_only(order, rng):
    p1, p2, z1, z2 = (rng.normal(size=(3, 4)) for _ in range(4))
    check_grad(lambda a, b: contrastive.negative_cosine(a, b, Tensor(z1), Tensor(z2)), [p1, p2],
               order=order)
    zs = [Tensor(z1, requires_grad=True), Tensor(z2, requires_grad=True)]
    with pytest.raises(RuntimeError, match="no output requires a gradient"):  # z1, z2 are stopped
        grad(contrastive.negative_cosine(Tensor(p1), Tensor(p2), *zs), zs)
    # Without the stop-gradient the same cosine would pull on the targets.
    attached = grad(contrastive._negative_cosine(Tensor(p1), zs[1]), zs[1])
    assert np.abs(attached.data).max() > 1e-3


# ---------------------------------------------------------------- InfoNCE's optimum

def _simplex(n):
    """n unit vectors in R^n with pairwise cosine -1/(n-1): the spread-out optimum."""
    centred = np.eye(n) - 1.0 / n
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def test_info_nce_is_minimal_when_views_coincide_and_spread(rng):
    best = _simplex(4)
    loss = lambda a, b: contrastive.info_nce(Tensor(a), Tensor(b), tau=0.5).item()
    optimum = loss(best, best)
    assert optimum < loss(best, best[[1, 0, 2, 3]])                  # views not paired
    assert optimum < loss(np.ones((4, 4)), np.ones((4, 4)))          # coincide but collapsed
    assert optimum < loss(np.eye(4), np.eye(4))                      # coincide, spread less well
    for _ in range(50):                                               # any small move is worse
        a, b = (best + 0.05 * rng.normal(size=best.shape) for _ in range(2))
        assert optimum < loss(a, b)


def test_info_nce_gradient_vanishes_at_the_optimum():
    best = Tensor(_simplex(4), requires_grad=True)
    other = Tensor(_simplex(4), requires_grad=True)
    g1, g2 = grad(contrastive.info_nce(best, other, tau=0.5), [best, other])
    np.testing.assert_allclose(g1.data, 0.0, atol=1e-12)
    np.testing.assert_allclose(g2.data, 0.0, atol=1e-12)


# ---------------------------------------------------------------- bad input

def test_bad_input_raises():
    with pytest.raises(ValueError, match="tau"):
        contrastive.info_nce(Tensor(EYE3), Tensor(EYE3), tau=0.0)
    with pytest.raises(ValueError, match="same shape|one shape"):
        contrastive.nt_xent(Tensor(EYE3), Tensor(np.eye(2)))
    with pytest.raises(ValueError, match="margin"):
        contrastive.triplet_margin(Tensor(EYE3), Tensor(EYE3), margin=0.0)
    with pytest.raises(ValueError, match="at least 2"):
        contrastive.vicreg(Tensor(np.ones((1, 3))), Tensor(np.ones((1, 3))))
