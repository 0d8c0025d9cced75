"""Every fused op against its unfused composition, driven from one table.

A fused op (ops.linear, conv1d and conv2d with relu=True) must give the composition's
numbers: the same forward, the same gradients on both backward paths (the
first-order rule on arrays, and the Tensor rules recorded with
create_graph=True), the same Hessian-vector products, and both orders must
match finite differences (float64).
"""
from dataclasses import dataclass

import numpy as np
import pytest

from mnist1d_np import Tensor, grad, nn, ops
from mnist1d_np.conv1d import conv1d
from mnist1d_np.conv2d import conv2d
from mnist1d_np.gradcheck import check_grad


@dataclass(frozen=True)
class Fused:
    fused: object      # f(*inputs) -> Tensor
    composed: object   # the same function from unfused ops
    shapes: tuple      # one shape per input


FUSED = {
    "linear": Fused(lambda x, w, b: ops.linear(x, w, b), lambda x, w, b: x @ w + b, ((5, 4), (4, 3), (3,))),
    "linear, relu": Fused(lambda x, w, b: ops.linear(x, w, b, relu=True),
                          lambda x, w, b: ops.relu(x @ w + b), ((5, 4), (4, 3), (3,))),
    "linear, relu, no bias": Fused(lambda x, w: ops.linear(x, w, relu=True),
                                   lambda x, w: ops.relu(x @ w), ((5, 4), (4, 3))),
    "conv1d, relu": Fused(lambda x, w, b: conv1d(x, w, 2, 1, b, relu=True),
                          lambda x, w, b: ops.relu(conv1d(x, w, 2, 1, b)), ((2, 3, 10), (4, 3, 3), (4, 1))),
    "conv1d, relu, no bias": Fused(lambda x, w: conv1d(x, w, 1, 0, relu=True),
                                   lambda x, w: ops.relu(conv1d(x, w, 1, 0)), ((2, 2, 9), (3, 2, 2))),
    "conv2d, relu": Fused(lambda x, w, b: conv2d(x, w, 2, 1, b, relu=True),
                          lambda x, w, b: ops.relu(conv2d(x, w, 2, 1, b)), ((2, 3, 6, 5), (4, 3, 3, 3), (4, 1, 1))),
    "conv2d, relu, no bias": Fused(lambda x, w: conv2d(x, w, 1, 0, relu=True),
                                   lambda x, w: ops.relu(conv2d(x, w, 1, 0)), ((2, 2, 5, 4), (3, 2, 2, 2))),
}


def draw(case, rng):
    return [rng.normal(size=shape) for shape in FUSED[case].shapes]


def gradients(f, arrays, create_graph, needs_grad=None):
    """Gradients of sum(R * f) for a fixed R, w.r.t. the inputs in needs_grad (default: all)."""
    needs_grad = needs_grad or [True] * len(arrays)
    ts = [Tensor(a, requires_grad=n) for a, n in zip(arrays, needs_grad)]
    y = f(*ts)
    weights = np.random.default_rng(7).normal(size=y.shape)
    wanted = [t for t in ts if t.requires_grad]
    return [g.data for g in grad((y * weights).sum(), wanted, create_graph=create_graph)]


def hessian_vector(f, arrays, v):
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    y = f(*ts)
    weights = np.random.default_rng(7).normal(size=y.shape)
    gs = grad(ops.tanh(y * weights).sum(), ts, create_graph=True)
    return [h.data for h in grad(sum((g * vi).sum() for g, vi in zip(gs, v)), ts)]


@pytest.mark.parametrize("case", FUSED)
def test_forward_is_the_compositions(case, rng):
    arrays = draw(case, rng)
    np.testing.assert_array_equal(FUSED[case].fused(*arrays).data, FUSED[case].composed(*arrays).data)


@pytest.mark.parametrize("case", FUSED)
@pytest.mark.parametrize("create_graph", [False, True], ids=["first-order rule", "recorded rules"])
def test_gradients_are_the_compositions(case, rng, create_graph):
    arrays = draw(case, rng)
    for needs_grad in ([True] * len(arrays), [False] + [True] * (len(arrays) - 1)):  # x constant, as in training
        fused = gradients(FUSED[case].fused, arrays, create_graph, needs_grad)
        composed = gradients(FUSED[case].composed, arrays, create_graph, needs_grad)
        assert len(fused) == sum(needs_grad)
        for a, b in zip(fused, composed):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("case", FUSED)
def test_hessian_vector_products_are_the_compositions(case, rng):
    arrays = draw(case, rng)
    v = [rng.normal(size=a.shape) for a in arrays]
    for a, b in zip(hessian_vector(FUSED[case].fused, arrays, v), hessian_vector(FUSED[case].composed, arrays, v)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", FUSED)
@pytest.mark.parametrize("order", [1, 2])
def test_finite_differences(case, rng, order):
    """tanh after the op, so that the second order has something to check."""
    fused = FUSED[case].fused
    check_grad(lambda *ts: ops.tanh(fused(*ts)), draw(case, rng), order=order)


def test_float32_in_float32_out(rng):
    x, w, b = (rng.normal(size=s).astype(np.float32) for s in ((5, 4), (4, 3), (3,)))
    t = Tensor(w, requires_grad=True)
    y = ops.linear(x, t, b, relu=True)
    assert y.dtype == np.float32 and grad(y.sum(), t).dtype == np.float32


def test_linear_rejects_bad_shapes_and_dtypes(rng):
    x, w = rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"linear: x \(5, 3\) and w \(4, 3\)"):
        ops.linear(x[:, :3], w)
    with pytest.raises(ValueError, match=r"linear: b must have shape \(3,\)"):
        ops.linear(x, w, np.ones(4))
    with pytest.raises(TypeError, match="linear: x, w and b must share one float dtype"):
        ops.linear(Tensor(x.astype(np.float32)), Tensor(w))


def test_sequential_fuses_linear_and_relu(rng):
    """nn.Sequential runs Linear + ops.relu as one op, with the composition's numbers."""
    first, last = nn.Linear(4, 6, rng), nn.Linear(6, 2, rng)
    model = nn.Sequential(first, ops.relu, last, ops.relu, ops.tanh)
    assert [(layer, relu) for layer, relu in model._plan] == [(first, True), (last, True), (ops.tanh, False)]
    x = Tensor(rng.normal(size=(3, 4)))
    y = model(x)
    np.testing.assert_array_equal(y.data, ops.tanh(ops.relu(ops.relu(x @ first.weight + first.bias) @ last.weight
                                                            + last.bias)).data)
    assert y._node.inputs[0]._node.op == "linear"


def test_sequential_fuses_conv2d_and_relu(rng):
    conv = nn.Conv2d(2, 3, 3, rng, padding=1)
    model = nn.Sequential(conv, ops.relu, nn.Flatten())
    assert model._plan[0] == (conv, True)
    x = Tensor(rng.normal(size=(2, 2, 5, 4)))
    np.testing.assert_array_equal(model(x).data, ops.relu(conv(x)).data.reshape(2, -1))
