"""The checker itself: it passes correct derivatives and catches wrong ones.

The mutation tests break one backward rule on purpose and assert that the
checker notices, at first and at second order. Without them a checker that
always passes would look exactly like a correct engine.
"""
import numpy as np
import pytest

from mnist1d_np import Tensor, ops
from mnist1d_np.gradcheck import GradcheckError, check_grad, numerical_grad
from mnist1d_np.tensor import make_op

X = np.array([[0.3, -1.1, 0.8], [1.4, -0.2, 0.5]])
W = np.array([[0.7, -0.4], [0.1, 0.9], [-0.6, 0.2]])


def layer(x, w):
    return ops.tanh(x @ w)


def test_numerical_grad_matches_a_known_gradient():
    (g,) = numerical_grad(lambda x: (x ** 3).sum(), [X])
    np.testing.assert_allclose(g, 3 * X ** 2, rtol=1e-8)


def test_numerical_grad_needs_a_scalar_function():
    with pytest.raises(ValueError, match="expected a scalar output"):
        numerical_grad(lambda x: x * 2, [X])


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
@pytest.mark.parametrize("order", [1, 2])
def test_correct_derivatives_pass(mode, order):
    result = check_grad(layer, [X, W], mode=mode, order=order)
    assert result.ok and result.max_rel_error < 1e-6
    assert "max abs error" in result.message


def test_accepts_a_single_array_and_tensors():
    assert check_grad(ops.exp, X).ok
    assert check_grad(ops.exp, [Tensor(X)]).ok


def test_random_draws_use_only_the_given_generator():
    state = np.random.get_state()[1].copy()
    first = check_grad(layer, [X, W], mode="directional", rng=np.random.default_rng(5))
    second = check_grad(layer, [X, W], mode="directional", rng=np.random.default_rng(5))
    assert first == second
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_rejects_unknown_mode_or_order():
    with pytest.raises(ValueError, match="unknown mode"):
        check_grad(layer, [X, W], mode="sideways")
    with pytest.raises(ValueError, match="or order 3"):
        check_grad(layer, [X, W], order=3)


# ---------------------------------------------------------------- catching wrong derivatives

def wrong_square(x):
    """x^2 with a backward that forgets the factor 2."""
    x = ops.as_tensor(x)
    return make_op("wrong_square", x.data ** 2, (x,), (lambda out, g: g * x,))


def test_wrong_gradient_is_reported_with_the_worst_entry():
    with pytest.raises(GradcheckError, match=r"order 1, elementwise.*worst at input 0 index"):
        check_grad(wrong_square, [X])
    result = check_grad(wrong_square, [X], mode="directional", raise_exception=False)
    assert not result.ok and result.max_rel_error > 0.1


def test_nan_gradient_fails():
    def nan_grad(x):
        x = ops.as_tensor(x)
        return make_op("nan_grad", x.data * 2, (x,), (lambda out, g: g * np.nan,))
    assert not check_grad(nan_grad, [X], raise_exception=False).ok


@pytest.mark.parametrize("order", [1, 2])
def test_mutated_tanh_rule_is_caught(monkeypatch, order):
    """Drop a factor of tanh's derivative: 1 - out instead of 1 - out^2 (in both
    rules: the Tensor one, and the one on arrays that first-order walks use)."""
    assert check_grad(layer, [X, W], order=order).ok
    monkeypatch.setattr(ops, "_tanh_vjp", lambda out, g: g * (1 - out))
    monkeypatch.setattr(ops, "_tanh_on_arrays", lambda out, g: (g * (1 - out),))
    with pytest.raises(GradcheckError):
        check_grad(layer, [X, W], order=order)


def test_detached_rule_passes_first_order_but_fails_second(monkeypatch):
    """A rule with the right values that treats the output as a constant: only
    the Hessian check can tell, which is why every op gets one."""
    monkeypatch.setattr(ops, "_tanh_vjp", lambda out, g: g * (1 - Tensor(out.data) ** 2))
    assert check_grad(layer, [X, W], order=1).ok
    with pytest.raises(GradcheckError, match="order 2"):
        check_grad(layer, [X, W], order=2)


def test_mutated_unbroadcasting_is_caught_at_second_order(monkeypatch):
    """sum_to's own backward (broadcast_to) only matters when differentiating a
    backward pass: doubling it is invisible at first order, caught at second."""
    real_sum_to = ops.sum_to

    def sum_to_with_wrong_backward(x, shape):
        x = ops.as_tensor(x)
        summed = real_sum_to(Tensor(x.data), shape)
        return make_op("sum_to", summed.data, (x,),
                       (lambda out, g: 2 * ops.broadcast_to(g, x.shape),))

    def bias_square(x, b):
        return ops.square(x + b)  # b: (3,) broadcast over rows of x: (2, 3)

    b = np.array([0.2, -0.3, 0.5])
    monkeypatch.setattr(ops, "sum_to", sum_to_with_wrong_backward)
    assert check_grad(bias_square, [X, b], order=1).ok
    with pytest.raises(GradcheckError):
        check_grad(bias_square, [X, b], order=2)
