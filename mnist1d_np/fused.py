"""Differentiable ops backed by the numba kernels: conv1d and the GRU.

conv1d is a closed family of three ops (forward, input gradient, weight
gradient); each one's backward is made of the others, so conv1d can be
differentiated to any order (metalearning through a CNN works).

The GRU's backward is one fused kernel over time. It is exact to first
order, but not itself differentiable: a second differentiation through it
raises NotImplementedError (see tensor.make_op). `gru_reference` builds the
same GRU from plain Tensor ops, for tests and for higher-order work.
"""
import numpy as np

from . import kernels, meta_kernels, ops
from .tensor import is_grad_enabled, make_op


def _contiguous(t):
    return np.ascontiguousarray(t.data)


def _check_conv(x, w, stride, padding):
    if x.ndim != 3 or w.ndim != 3 or x.shape[1] != w.shape[1]:
        raise ValueError(f"conv1d: input {x.shape} and weight {w.shape} must be (B, C_in, L) "
                         "and (C_out, C_in, K) with the same C_in")
    if int(stride) != stride or stride < 1 or int(padding) != padding or padding < 0:
        raise ValueError(f"conv1d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    if x.shape[2] + 2 * padding < w.shape[2]:
        raise ValueError(f"conv1d: kernel size {w.shape[2]} exceeds padded length "
                         f"{x.shape[2] + 2 * padding}")
    if x.dtype != w.dtype:
        raise TypeError(f"conv1d: input dtype {x.dtype} and weight dtype {w.dtype} differ")


def conv1d(x, w, stride=1, padding=0, bias=None):
    """Cross-correlation, as torch.nn.functional.conv1d.

    x: (B, C_in, L), w: (C_out, C_in, K), bias: None or (C_out, 1) (the
    shape that broadcasts over positions) -> (B, C_out, (L + 2p - K) // s + 1).
    """
    x, w = ops.as_tensor(x), ops.as_tensor(w)
    _check_conv(x, w, stride, padding)
    length, size = x.shape[2], w.shape[2]
    inputs, vjps = [x, w], [lambda out, g: conv1d_grad_input(g, w, stride, padding, length),
                            lambda out, g: conv1d_grad_weight(x, g, stride, padding, size)]
    if bias is not None:
        bias = ops.as_tensor(bias)
        _check_conv_bias(bias, w)
        inputs.append(bias)
        vjps.append(lambda out, g: ops.sum_to(g, bias.shape))
    raw_bias = None if bias is None else _contiguous(bias).reshape(-1)
    y = kernels.conv1d_forward(_contiguous(x), _contiguous(w), stride, padding, raw_bias)
    return make_op("conv1d", y, inputs, vjps)


def _check_conv_bias(bias, w):
    if bias.shape != (w.shape[0], 1) or bias.dtype != w.dtype:
        raise ValueError(f"conv1d: bias must be a ({w.shape[0]}, 1) {w.dtype} array, "
                         f"got {bias.shape} {bias.dtype}")


def conv1d_grad_input(gy, w, stride, padding, length):
    """Transposed convolution: gy (B, C_out, L_out), w -> (B, C_in, length)."""
    gx = kernels.conv1d_grad_input(_contiguous(gy), _contiguous(w), stride, padding, length)
    size = w.shape[2]
    return make_op("conv1d_grad_input", gx, (gy, w), (
        lambda out, c: conv1d(c, w, stride, padding),
        lambda out, c: conv1d_grad_weight(c, gy, stride, padding, size)))


def conv1d_grad_weight(x, gy, stride, padding, size):
    """Correlation of x (B, C_in, L) with gy (B, C_out, L_out) -> (C_out, C_in, size)."""
    gw = kernels.conv1d_grad_weight(_contiguous(x), _contiguous(gy), stride, padding, size)
    length = x.shape[2]
    return make_op("conv1d_grad_weight", gw, (x, gy), (
        lambda out, c: conv1d_grad_input(gy, c, stride, padding, length),
        lambda out, c: conv1d(x, c, stride, padding)))


# ---------------------------------------------------------------- GRU

def _check_gru(x, params):
    hidden = params[1].shape[1]
    want = [(3 * hidden, x.shape[2]), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
    got = [p.shape for p in params]
    if x.ndim != 3 or got != want:
        raise ValueError(f"gru: input {x.shape} must be (B, T, I) and weights (W_ih, W_hh, b_ih, "
                         f"b_hh) must have shapes {want}, got {got}")
    if any(p.dtype != x.dtype for p in params):
        raise TypeError(f"gru: input and weights must share one dtype, got {x.dtype} and "
                        f"{[str(p.dtype) for p in params]}")


def gru(x, forward_params, reverse_params=None):
    """Every hidden state of a (bidirectional) GRU, as torch.nn.GRU(batch_first=True).

    x: (B, T, I); *_params: (W_ih (3H, I), W_hh (3H, H), b_ih (3H,), b_hh (3H,))
    Tensors, gates ordered (r, z, n). Returns (B, T, H), or (B, T, 2H) =
    [forward | reverse] when reverse_params is given. First-order only.
    """
    x = ops.as_tensor(x)
    params = tuple(forward_params) + tuple(reverse_params or ())
    for i in range(0, len(params), 4):
        _check_gru(x, params[i:i + 4])
    xd, wd = _contiguous(x), [_contiguous(p) for p in params]
    # Evaluation needs no cache for the backward pass.
    keep = is_grad_enabled() and any(t.requires_grad for t in (x,) + params)
    if reverse_params is None:
        hs, cache = kernels.gru_forward(xd, *wd, False, keep)
        backward = lambda g: kernels.gru_backward(g, xd, *wd, False, cache)
    else:
        hs, caches = kernels.gru_bidirectional_forward(xd, tuple(wd[:4]), tuple(wd[4:]), keep)
        backward = lambda g: _flatten_bidirectional(
            kernels.gru_bidirectional_backward(g, xd, tuple(wd[:4]), tuple(wd[4:]), caches))
    memo = [None, None]  # (upstream gradient, all input gradients)

    def grads(g_hs):
        # One fused BPTT gives every gradient; the first vjp asked runs it.
        # Holding g_hs itself (not its id) means a new array can never match.
        if memo[0] is not g_hs:
            memo[:] = g_hs, backward(np.ascontiguousarray(g_hs))
        return memo[1]
    vjps = [lambda out, g, i=i: grads(g)[i] for i in range(1 + len(params))]
    return make_op("gru", hs, (x,) + params, vjps, differentiable_backward=False)


def _flatten_bidirectional(result):
    gx, grads_forward, grads_reverse = result
    return (gx,) + tuple(grads_forward) + tuple(grads_reverse)


def gru_reference(x, forward_params, reverse_params=None):
    """The same GRU from plain Tensor ops (slow, but differentiable to any order)."""
    x = ops.as_tensor(x)
    outputs = [_gru_reference_direction(x, forward_params, False)]
    if reverse_params is not None:
        outputs.append(_gru_reference_direction(x, reverse_params, True))
    return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=2)


def _gru_reference_direction(x, params, reverse):
    W_ih, W_hh, b_ih, b_hh = params
    hidden = W_hh.shape[1]
    h = ops.as_tensor(np.zeros((x.shape[0], hidden), x.dtype))
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    states = {}
    for t in steps:
        gi = x[:, t, :] @ W_ih.T + b_ih
        gh = h @ W_hh.T + b_hh
        r = ops.sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = ops.sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = ops.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        states[t] = h
    return ops.stack([states[t] for t in range(x.shape[1])], axis=1)


# ---------------------------------------------------------------- learned elementwise activation

def _split_theta(theta):
    """theta (3H + 1,) = [w, c, a, b] of the scalar MLP z -> sum_j a_j tanh(w_j z + c_j) + b."""
    hidden = (theta.size - 1) // 3
    t = theta.data
    return t[:hidden], t[hidden:2 * hidden], t[2 * hidden:3 * hidden], t[-1]


# f'(z) of the last (z, theta) seen, shared by the ops of one step: the forward
# kernel and the slope's backward kernel compute it anyway. Keyed by the
# arrays themselves (held, so their ids cannot be reused).
_slope_cache = [None, None, None]


def _cached_slope(z, theta):
    if _slope_cache[0] is z.data and _slope_cache[1] is theta.data:
        return _slope_cache[2]
    w, c, a, b = _split_theta(theta)
    return meta_kernels.scalar_mlp_forward(_flat(z), w, c, a, b)[1]


def _remember_slope(z, theta, slope):
    _slope_cache[:] = z.data, theta.data, slope


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
    """A 1 -> H -> 1 tanh MLP applied to every element of z, by fused numba kernels.

    g(z) = sum_j a_j (tanh(w_j z + c_j) + noise_j) + b, theta = [w, c, a, b]
    (3H + 1,). z: any shape, same dtype as theta. noise: optional (H,)
    constant added to the hidden layer.

    What can be differentiated: g itself (in z and theta), and its gradient
    in z once more (in z and theta). That is what metalearning needs: the
    inner training run differentiates g in z, and the meta-gradient
    differentiates that in theta. The gradient in theta, and a third
    derivative in z, raise NotImplementedError if differentiated.
    """
    z, theta = ops.as_tensor(z), ops.as_tensor(theta)
    _check_scalar_mlp(z, theta, noise)
    noise = None if noise is None else np.asarray(noise, dtype=theta.dtype)
    w, c, a, b = _split_theta(theta)
    offset = b if noise is None else b + a @ noise
    y, slope = meta_kernels.scalar_mlp_forward(_flat(z), w, c, a, offset)
    _remember_slope(z, theta, slope)
    return make_op("scalar_mlp", y.reshape(z.shape), (z, theta), (
        lambda out, g: g * scalar_mlp_slope(z, theta),
        lambda out, g: _scalar_mlp_theta_vjp(g, z, theta, noise)))


def scalar_mlp_slope(z, theta):
    """g'(z) elementwise (the noise is a constant shift, so it drops out)."""
    slope = _cached_slope(z, theta)
    memo = [None, None]

    def vjps(h):  # one kernel pass gives both gradients (and f' for the cache)
        if memo[0] is not h:
            h_flat = np.ascontiguousarray(h, dtype=z.dtype).reshape(-1)
            w, c, a, _ = _split_theta(theta)
            gz, gw, gc, ga, again = meta_kernels.scalar_mlp_slope_vjp(_flat(z), w, c, a, h_flat)
            _remember_slope(z, theta, again)
            memo[:] = h, (gz.reshape(z.shape), np.concatenate([gw, gc, ga, np.zeros(1, z.dtype)]))
        return memo[1]
    return make_op("scalar_mlp_slope", slope.reshape(z.shape), (z, theta),
                   (lambda out, h: vjps(h)[0], lambda out, h: vjps(h)[1]),
                   differentiable_backward=False)


def _scalar_mlp_theta_vjp(g, z, theta, noise):
    """d/d theta of sum(g * scalar_mlp(z, theta)): (3H + 1,)."""
    w, c, a, _ = _split_theta(theta)
    g_flat = _flat(g)
    gw, gc, ga = meta_kernels.scalar_mlp_param_vjp(_flat(z), w, c, a, g_flat)
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
