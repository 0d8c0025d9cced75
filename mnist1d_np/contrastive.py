"""Self-supervised losses on two views: z1, z2 (N, D), row i of each from example i.

Every loss is written with differentiable ops (normalize, matmul,
logsumexp, ...), so it can be differentiated twice like any other op.

- info_nce: the paper's notebook. Each z1[i] must pick out its partner
  z2[i] among the N second views; scores = z1 @ z2.T / tau on unit vectors,
  loss = mean_i(-scores[i, i] + logsumexp_j scores[i, j]). Only the second
  views act as negatives ("half-batch" repulsion).
- nt_xent: SimCLR's symmetric form. All 2N views are candidates, in both
  directions, the view itself excluded.
- triplet_margin: on unit vectors, every (anchor z1[i], positive z2[i],
  negative z2[j], j != i) with a hinge on the distance gap.
- vicreg: invariance (MSE between views) + variance (a hinge keeping each
  dimension's SD near 1) + covariance (decorrelated dimensions). No negatives.
- negative_cosine: SimSiam's negative-free loss. A predictor's outputs
  p1, p2 chase the other branch's z, which is held constant (detach()):
  that stop-gradient is what keeps the representation from collapsing.
"""
import numpy as np

from . import ops

__all__ = ["info_nce", "nt_xent", "triplet_margin", "vicreg", "negative_cosine", "LOSSES"]


def info_nce(z1, z2, tau=0.5):
    """The notebook's InfoNCE: mean(-diag(S) + logsumexp(S, axis=1)), S = u1 @ u2.T / tau.

    z1, z2: (N, D) Tensors; u = z / ||z|| row-wise. Returns a scalar Tensor.
    """
    u1, u2 = _unit_pair(z1, z2, tau)
    scores = (u1 @ u2.T) / tau
    positives = ops.sum(u1 * u2, axis=1) / tau  # diag(scores) without indexing
    return ops.mean(ops.logsumexp(scores, axis=1) - positives)


def nt_xent(z1, z2, tau=0.5):
    """SimCLR's NT-Xent over 2N views u = [u1; u2] (each row's partner is N rows away).

    loss = mean over the 2N rows a of -s(a, partner) + logsumexp_{b != a} s(a, b),
    with s = u @ u.T / tau. Returns a scalar Tensor.
    """
    u1, u2 = _unit_pair(z1, z2, tau)
    views = ops.concatenate([u1, u2], axis=0)
    scores = (views @ views.T) / tau
    self_pairs = np.eye(scores.shape[0], dtype=bool)
    # exp(-inf) = 0 drops each view from its own denominator; where() sends it no gradient.
    others = ops.where(self_pairs, -np.inf, scores)
    positives = ops.sum(u1 * u2, axis=1) / tau
    return ops.mean(ops.logsumexp(others, axis=1)) - ops.mean(positives)


def triplet_margin(z1, z2, margin=0.5, eps=1e-8):
    """mean over i != j of relu(margin + d(u1[i], u2[i]) - d(u1[i], u2[j])).

    d is the Euclidean distance between unit vectors, sqrt(2 - 2 cos + eps)
    (eps keeps its gradient finite when two views coincide).
    """
    if margin <= 0:
        raise ValueError(f"triplet_margin: margin must be > 0, got {margin}")
    u1, u2 = _unit_pair(z1, z2)
    n = u1.shape[0]
    distances = ops.sqrt(ops.maximum(2.0 - 2.0 * (u1 @ u2.T), 0.0) + eps)
    positive = ops.sqrt(ops.maximum(2.0 - 2.0 * ops.sum(u1 * u2, axis=1, keepdims=True), 0.0) + eps)
    hinges = ops.relu(margin + positive - distances)
    off_diagonal = ~np.eye(n, dtype=bool)
    return ops.sum(ops.where(off_diagonal, hinges, 0.0)) / (n * (n - 1))


def vicreg(z1, z2, invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0,
           target_sd=1.0, eps=1e-4):
    """VICReg on raw (unnormalised) z1, z2 (N, D), N >= 2.

    invariance: mean((z1 - z2)^2); variance: per branch, mean_d relu(target_sd - sqrt(var_d + eps))
    with the unbiased variance, averaged over the two branches; covariance: per branch, the sum
    of squared off-diagonal covariances / D, summed over the branches (as the VICReg paper).
    """
    z1, z2 = ops.as_tensor(z1), ops.as_tensor(z2)
    _check_views(z1, z2)
    if z1.shape[0] < 2:
        raise ValueError(f"vicreg: needs at least 2 examples, got {z1.shape[0]}")
    invariance = ops.mean(ops.square(z1 - z2))
    variance = (_variance_hinge(z1, target_sd, eps) + _variance_hinge(z2, target_sd, eps)) / 2
    covariance = _off_diagonal_covariance(z1) + _off_diagonal_covariance(z2)
    return (invariance_weight * invariance + variance_weight * variance
            + covariance_weight * covariance)


def _variance_hinge(z, target_sd, eps):
    centred = z - ops.mean(z, axis=0, keepdims=True)
    variance = ops.sum(ops.square(centred), axis=0) / (z.shape[0] - 1)
    return ops.mean(ops.relu(target_sd - ops.sqrt(variance + eps)))


def _off_diagonal_covariance(z):
    n, d = z.shape
    centred = z - ops.mean(z, axis=0, keepdims=True)
    covariance = (centred.T @ centred) / (n - 1)
    off_diagonal = ~np.eye(d, dtype=bool)
    return ops.sum(ops.where(off_diagonal, ops.square(covariance), 0.0)) / d


def negative_cosine(p1, p2, z1, z2):
    """SimSiam: (D(p1, z2) + D(p2, z1)) / 2 with D(p, z) = -mean_i cos(p[i], z[i]),
    and z held constant (detached): no gradient flows into the target branch.

    p1, p2: predictor outputs (N, D); z1, z2: projector outputs (N, D).
    """
    p1, p2, z1, z2 = (ops.as_tensor(t) for t in (p1, p2, z1, z2))
    for other in (p2, z1, z2):
        _check_views(p1, other, "p1")
    return (_negative_cosine(p1, z2.detach()) + _negative_cosine(p2, z1.detach())) / 2


def _negative_cosine(p, z):
    return -ops.mean(ops.sum(ops.normalize(p, axis=1) * ops.normalize(z, axis=1), axis=1))


def _unit_pair(z1, z2, tau=None):
    z1, z2 = ops.as_tensor(z1), ops.as_tensor(z2)
    _check_views(z1, z2)
    if tau is not None and not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    return ops.normalize(z1, axis=1), ops.normalize(z2, axis=1)


def _check_views(z1, z2, name="z1"):
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] < 1:
        raise ValueError(f"{name} and its partner must be (N, D) arrays of one shape with N >= 1, "
                         f"got {z1.shape} and {z2.shape}")


LOSSES = {"info_nce": info_nce, "nt_xent": nt_xent, "triplet": triplet_margin, "vicreg": vicreg}
