"""A learned activation function: a small tanh network applied to every element.

Chapter 05 metalearns an activation g: a 1 -> H -> 1 tanh MLP applied to
every element of an array. For parameters theta = [w, c, a, b] (H, H, H, 1)
and every element z,

    g(z)  = sum_j a_j t_j + b,            t_j = tanh(w_j z + c_j)
    g'(z) = sum_j a_j w_j s_j,            s_j = 1 - t_j^2

``scalar_mlp_reference`` (at the end) is this formula in Tensor ops, for the
tests. Written that way it builds (elements x H) temporaries: 1.28 M numbers
per inner step of the paper's setup, kept for 301 steps. The numba kernels
here make one pass over (element, hidden unit) pairs each, hold t and s in
registers, and keep nothing but their (elements,) or (H,) results:

    forward_kernel(z, w, c, a, offset) -> (g(z), g'(z))
    param_vjp_kernel(z, w, c, a, up)   -> gradients of sum(up * g(z)) in w, c, a
    slope_vjp_kernel(z, w, c, a, h)    -> gradients of sum(h * g'(z)) in z, w, c, a

What can be differentiated (``scalar_mlp``): g itself, in z and theta, and
its z-gradient g'(z) once more, in z and theta. That is what metalearning
needs: the inner training run differentiates g in z, and the meta-gradient
differentiates that in theta. The gradient in theta, and a third derivative
in z, raise NotImplementedError if differentiated.

How it is fast: tanh is ``fastmath.tanh`` (vectorises, libm's does not);
loops over elements run in parallel chunks, each with its own accumulators
for the parameter gradients (so the sums do not depend on the number of
threads). The op calls the kernels through ``fastmath.ThreadChooser``: one
thread or all, whichever is faster at the moment, so that a core kept busy
by another program does not stall every call. Constants are made in the
input's dtype (a bare 1 or 2 would promote float32 to float64 and stop
vectorisation).
"""
import numpy as np
from numba import njit, prange

from . import ops
from .fastmath import ThreadChooser, tanh
from .tensor import make_op

_CHUNK = 256  # elements per parallel task


# ---------------------------------------------------------------------------
# The kernels

def _forward(z, w, c, a, offset):
    """g(z) and g'(z) for every element. z: (E,); w, c, a: (H,) -> two (E,) arrays."""
    aw, zero, one = a * w, z.dtype.type(0), z.dtype.type(1)
    y, dy = np.empty_like(z), np.empty_like(z)
    for e in prange(z.size):
        ze = z[e]
        acc_y, acc_dy = zero, zero
        for j in range(w.size):
            t = tanh(w[j] * ze + c[j])
            acc_y += a[j] * t
            acc_dy += aw[j] * (one - t * t)
        y[e], dy[e] = acc_y + offset, acc_dy
    return y, dy


def _param_vjp(z, w, c, a, up):
    """Gradient of sum_e up_e g(z_e) with respect to w, c and a: three (H,) arrays."""
    one = z.dtype.type(1)
    n_chunks = (z.size + _CHUNK - 1) // _CHUNK
    acc = np.zeros((n_chunks, 3, w.size), z.dtype)  # rows: w, c, a
    for k in prange(n_chunks):
        gw, gc, ga = acc[k, 0], acc[k, 1], acc[k, 2]
        for e in range(k * _CHUNK, min((k + 1) * _CHUNK, z.size)):
            ze, ue = z[e], up[e]
            for j in range(w.size):
                t = tanh(w[j] * ze + c[j])
                gas = ue * a[j] * (one - t * t)
                ga[j] += ue * t
                gc[j] += gas
                gw[j] += gas * ze
    total = acc.sum(axis=0)
    return total[0], total[1], total[2]


def _slope_vjp(z, w, c, a, h):
    """Vector-Jacobian products of g' with upstream h (E,).

    Returns (gz (E,), gw, gc, ga (H,)): gz_e = h_e g''(z_e), and the
    parameter gradients of sum_e h_e g'(z_e).
    """
    aw, zero, one, minus_two = a * w, z.dtype.type(0), z.dtype.type(1), z.dtype.type(-2)
    n_chunks = (z.size + _CHUNK - 1) // _CHUNK
    acc = np.zeros((n_chunks, 3, w.size), z.dtype)  # rows: w, c, a
    gz = np.empty_like(z)
    for k in prange(n_chunks):
        gw, gc, ga = acc[k, 0], acc[k, 1], acc[k, 2]
        for e in range(k * _CHUNK, min((k + 1) * _CHUNK, z.size)):
            ze, he = z[e], h[e]
            acc_ddy = zero
            for j in range(w.size):
                t = tanh(w[j] * ze + c[j])
                s = one - t * t
                ts2 = minus_two * t * s    # d s / d u
                acc_ddy += aw[j] * w[j] * ts2
                ga[j] += he * w[j] * s
                gc[j] += he * aw[j] * ts2
                gw[j] += he * a[j] * (s + w[j] * ze * ts2)
            gz[e] = he * acc_ddy
    total = acc.sum(axis=0)
    return gz, total[0], total[1], total[2]


forward_kernel = njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})(_forward)
param_vjp_kernel = njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})(_param_vjp)
# 'reassoc' only (no 'contract'), for the same reason as gru._gru_cell_backward:
# with 'contract', a freshly compiled kernel and its cached copy rounded differently.
slope_vjp_kernel = njit(cache=True, parallel=True, fastmath={"reassoc"})(_slope_vjp)


def _elements(z, *rest):
    return z.size


# What the op calls: the kernels with the thread count chosen as they run.
_run_forward = ThreadChooser(forward_kernel, _elements)
_run_param_vjp = ThreadChooser(param_vjp_kernel, _elements)
_run_slope_vjp = ThreadChooser(slope_vjp_kernel, _elements)


# ---------------------------------------------------------------------------
# The op

def _split_theta(theta):
    """theta (3H + 1,) = [w, c, a, b] of the scalar MLP z -> sum_j a_j tanh(w_j z + c_j) + b."""
    hidden = (theta.size - 1) // 3
    t = theta.data
    return t[:hidden], t[hidden:2 * hidden], t[2 * hidden:3 * hidden], t[-1]


def _flat(t):
    return np.ascontiguousarray(t.data).reshape(-1)


def _check_scalar_mlp(z, theta, noise):
    if theta.ndim != 1 or theta.size % 3 != 1 or theta.size < 4:
        raise ValueError(f"scalar_mlp: theta must have shape (3H + 1,), got {theta.shape}")
    if z.dtype != theta.dtype:
        raise TypeError(f"scalar_mlp: z dtype {z.dtype} and theta dtype {theta.dtype} differ")
    hidden = (theta.size - 1) // 3
    if noise is not None and np.shape(noise) != (hidden,):
        raise ValueError(f"scalar_mlp: noise must have shape ({hidden},), got {np.shape(noise)}")


def scalar_mlp(z, theta, noise=None):
    """g(z) for every element of z, by the fused kernels.

    g(z) = sum_j a_j (tanh(w_j z + c_j) + noise_j) + b, theta = [w, c, a, b]
    (3H + 1,). z: any shape, same dtype as theta. noise: optional (H,)
    constant added to the hidden layer. Returns a Tensor of z's shape.
    """
    z, theta = ops.as_tensor(z), ops.as_tensor(theta)
    _check_scalar_mlp(z, theta, noise)
    noise = None if noise is None else np.asarray(noise, dtype=theta.dtype)
    w, c, a, b = _split_theta(theta)
    offset = b if noise is None else b + a @ noise
    y, slope = _run_forward(_flat(z), w, c, a, offset)
    # The kernel gives g'(z) for free: hand it to the z-gradient, which needs it.
    slope = slope.reshape(z.shape)
    return make_op("scalar_mlp", y.reshape(z.shape), (z, theta), (
        lambda out, g: g * scalar_mlp_slope(z, theta, slope),
        lambda out, g: _scalar_mlp_theta_vjp(g, z, theta, noise)))


def scalar_mlp_slope(z, theta, slope=None):
    """g'(z) elementwise (the noise is a constant shift, so it drops out).

    slope: g'(z) if already computed (scalar_mlp's forward kernel gives it).
    Its gradients in z and theta come from one kernel pass (a joint rule);
    they are first-order only.
    """
    if slope is None:
        w, c, a, b = _split_theta(theta)
        slope = _run_forward(_flat(z), w, c, a, b)[1].reshape(z.shape)

    def gradients(slope, h):
        w, c, a, _ = _split_theta(theta)
        h_flat = np.ascontiguousarray(h, dtype=z.dtype).reshape(-1)
        gz, gw, gc, ga = _run_slope_vjp(_flat(z), w, c, a, h_flat)
        return gz.reshape(z.shape), np.concatenate([gw, gc, ga, np.zeros(1, z.dtype)])
    return make_op("scalar_mlp_slope", slope, (z, theta), gradients, differentiable_backward=False)


def _scalar_mlp_theta_vjp(g, z, theta, noise):
    """d/d theta of sum(g * scalar_mlp(z, theta)): (3H + 1,)."""
    w, c, a, _ = _split_theta(theta)
    g_flat = _flat(g)
    gw, gc, ga = _run_param_vjp(_flat(z), w, c, a, g_flat)
    g_sum = g_flat.sum(dtype=g_flat.dtype)
    if noise is not None:
        ga = ga + noise * g_sum
    out = np.concatenate([gw, gc, ga, np.array([g_sum], dtype=z.dtype)])

    def third_order(out, h):
        raise NotImplementedError("scalar_mlp: the gradient with respect to theta is not "
                                  "differentiable (first-order only)")
    return make_op("scalar_mlp_theta_vjp", out, (g, z, theta), (third_order,) * 3,
                   differentiable_backward=False)


def scalar_mlp_reference(z, theta, noise=None):
    """The same function from plain Tensor ops (for tests): builds (size of z) x H arrays."""
    z, theta = ops.as_tensor(z), ops.as_tensor(theta)
    hidden = (theta.size - 1) // 3
    w, c, a, b = theta[:hidden], theta[hidden:2 * hidden], theta[2 * hidden:3 * hidden], theta[-1]
    t = ops.tanh(z.reshape(*z.shape, 1) * w + c)
    if noise is not None:
        t = t + np.asarray(noise, dtype=theta.dtype)
    return (t * a).sum(axis=-1) + b
