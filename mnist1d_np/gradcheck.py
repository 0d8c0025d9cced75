"""Finite-difference checks of gradients and Hessian-vector products.

All checks run in float64 with central differences::

    check_grad(lambda x, w: ops.tanh(x @ w), [x, w])            # first order
    check_grad(lambda x, w: ops.tanh(x @ w), [x, w], order=2)   # Hessian-vector

A non-scalar output is reduced to a scalar with a fixed random projection
``sum(R * f(...))``. Order 2 differentiates ``<v, grad f>`` (with
``create_graph=True``) and compares the result, the Hessian-vector product
``H v``, with a central difference of the gradient along ``v``. Every random
draw comes from the ``rng`` argument (default: seeded), never global state.
"""
from dataclasses import dataclass

import numpy as np

from .tensor import Tensor, grad, no_grad


class GradcheckError(AssertionError):
    """Raised when analytic and numerical derivatives disagree."""


@dataclass
class GradcheckResult:
    ok: bool
    max_abs_error: float
    max_rel_error: float
    message: str


def numerical_grad(f, inputs, eps=1e-6):
    """Central-difference gradient of a scalar function, element by element.

    f: maps Tensors (one per input) to a scalar Tensor.
    inputs: list of arrays. Returns a list of float64 arrays shaped like them.
    """
    xs = _float64_arrays(inputs)
    return [_numerical_grad_of(f, xs, i, eps) for i in range(len(xs))]


def _numerical_grad_of(f, xs, i, eps):
    result = np.zeros_like(xs[i])
    for index in np.ndindex(xs[i].shape):
        result[index] = _central_difference(f, xs, _unit(xs, i, index), eps)
    return result


def _unit(xs, i, index):
    """A direction (one array per input) that is 1 at xs[i][index], 0 elsewhere."""
    direction = [np.zeros_like(x) for x in xs]
    direction[i][index] = 1.0
    return direction


def _central_difference(f, xs, direction, eps):
    """(f(x + eps d) - f(x - eps d)) / (2 eps) for a scalar f."""
    with no_grad():
        up = f(*[Tensor(x + eps * d) for x, d in zip(xs, direction)])
        down = f(*[Tensor(x - eps * d) for x, d in zip(xs, direction)])
    return (_scalar(up) - _scalar(down)) / (2 * eps)


def _scalar(y):
    if y.size != 1:
        raise ValueError(f"gradcheck: expected a scalar output, got shape {y.shape}")
    return float(y.data.reshape(()))


def check_grad(f, inputs, eps=1e-6, rtol=1e-6, atol=1e-8, mode="elementwise", order=1,
               rng=None, raise_exception=True):
    """Compare f's derivatives with central finite differences in float64.

    f: maps Tensors (one per input) to a Tensor of any shape.
    inputs: an array or a list of arrays (cast to float64).
    mode: "elementwise" compares every entry; "directional" compares the
      projection on a random direction (cheap for large inputs).
    order: 1 checks the gradient, 2 the Hessian-vector product.
    Passes where |analytic - numerical| <= atol + rtol * |numerical|.
    Returns a GradcheckResult; raises GradcheckError on failure unless
    raise_exception is False.
    """
    if mode not in ("elementwise", "directional") or order not in (1, 2):
        raise ValueError(f"check_grad: unknown mode {mode!r} or order {order!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    xs = _float64_arrays(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    scalar_f = _projected(f, xs, rng)
    check = _first_order if order == 1 else _second_order
    analytic, numerical = check(scalar_f, xs, eps, mode, rng)
    result = _compare(analytic, numerical, rtol, atol, f"order {order}, {mode}")
    if raise_exception and not result.ok:
        raise GradcheckError(result.message)
    return result


def _float64_arrays(inputs):
    return [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]


def _projected(f, xs, rng):
    """f reduced to a scalar by a fixed random projection of its output."""
    with no_grad():
        shape = f(*[Tensor(x) for x in xs]).shape
    if shape == ():
        return f
    weights = rng.standard_normal(shape)
    return lambda *ts: (f(*ts) * weights).sum()


def _gradient(f, xs, create_graph=False):
    """Tensors xs (requiring grad) and the gradient of scalar f at them."""
    ts = [Tensor(x, requires_grad=True) for x in xs]
    return ts, grad(f(*ts), ts, create_graph=create_graph)


def _first_order(f, xs, eps, mode, rng):
    _, analytic = _gradient(f, xs)
    analytic = [g.data for g in analytic]
    if mode == "elementwise":
        return analytic, numerical_grad(f, xs, eps)
    direction = [rng.standard_normal(x.shape) for x in xs]
    return [_dot(analytic, direction)], [_central_difference(f, xs, direction, eps)]


def _second_order(f, xs, eps, mode, rng):
    v = [rng.standard_normal(x.shape) for x in xs]
    ts, gradient = _gradient(f, xs, create_graph=True)
    v_dot_gradient = sum((g * vi).sum() for g, vi in zip(gradient, v))
    hessian_v = [h.data for h in grad(v_dot_gradient, ts)]
    up = _gradient(f, [x + eps * vi for x, vi in zip(xs, v)])[1]
    down = _gradient(f, [x - eps * vi for x, vi in zip(xs, v)])[1]
    numerical = [(gu.data - gd.data) / (2 * eps) for gu, gd in zip(up, down)]
    if mode == "elementwise":
        return hessian_v, numerical
    u = [rng.standard_normal(x.shape) for x in xs]
    return [_dot(hessian_v, u)], [_dot(numerical, u)]


def _dot(arrays, others):
    return np.array(sum(float(np.vdot(a, b)) for a, b in zip(arrays, others)))


def _compare(analytic, numerical, rtol, atol, label):
    """Largest errors over all inputs, and a message pointing at the worst entry."""
    worst = (0.0, None)  # (excess over tolerance, location)
    max_abs = max_rel = 0.0
    for i, (a, n) in enumerate(zip(analytic, numerical)):
        a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
        error = np.abs(a - n)
        if error.size == 0:
            continue
        max_abs = max(max_abs, float(error.max()))
        max_rel = max(max_rel, float((error / np.maximum(np.abs(n), 1e-300)).max()))
        excess = error - (atol + rtol * np.abs(n))
        index = np.unravel_index(np.argmax(excess), excess.shape)
        if not excess[index] <= worst[0]:  # also catches nan
            worst = (excess[index], (i, index, a[index], n[index]))
    ok = worst[1] is None
    message = (f"gradcheck ({label}): max abs error {max_abs:.3e}, max rel error {max_rel:.3e} "
               f"(rtol {rtol:g}, atol {atol:g})")
    if not ok:
        i, index, a, n = worst[1]
        message += f"; worst at input {i} index {index}: analytic {a!r} vs numerical {n!r}"
    return GradcheckResult(ok, max_abs, max_rel, message)
