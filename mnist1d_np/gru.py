"""The GRU: fused numba kernels, the op built on them, and a plain-Tensor reference.

What it computes: one direction of ``torch.nn.GRU`` (batch_first, one layer,
h0 = 0), gates stacked (r, z, n) in W_ih (3H, I), W_hh (3H, H), b_ih, b_hh (3H,)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``gru_reference`` (at the end) is exactly these lines in Tensor ops: slow, but
differentiable to any order, and what the tests compare the kernels with.

``gru(x, forward_params, reverse_params=None)`` is the fast op. Its kernels::

    forward_kernel(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache) -> (hs, cache)
    backward_kernel(g_hs, x, W_ih, W_hh, b_ih, b_hh, reverse, cache)
        -> (gx, gW_ih, gW_hh, gb_ih, gb_hh)
    bidirectional_forward_kernel(x, params_f, params_r, keep_cache) -> (hs2, (cache_f, cache_r))
    bidirectional_backward_kernel(g_hs2, x, params_f, params_r, caches) -> (gx, grads_f, grads_r)

x: (B, T, I), hs and g_hs: (B, T, H); params_*: tuples (W_ih, W_hh, b_ih,
b_hh). A bidirectional GRU is two directions with separate weights, outputs
concatenated as hs2 (B, T, 2H) = [forward | reverse]; the bidirectional
kernels write and read that array directly (a concatenation and a split
would cost ~100 us per step). ``cache`` holds the gates, ~5 T H floats per
sample. The backward kernel is fused back-propagation through time: one pass
gives every gradient (a *joint* backward rule, see ``tensor.make_op``), and
it is first-order only: differentiating through it again raises.

How it is fast: the state is laid out batch-last, (H, lanes), and all samples
of a chunk step in lock-step, so every per-step loop is a vector loop over
lanes, the gates included, whose exp is ``fastmath.exp_fraction`` (libm's exp
does not vectorise and alone would cost more than all the rest). Cold, the
kernels compile in ~7 s per dtype; cached, in a fraction of a second.
"""
import numpy as np
from numba import njit

from . import ops
from .fastmath import gemm_nn, gemm_nt, padded, sigmoid, tanh
from .tensor import is_grad_enabled, make_op

_CHUNK_SAMPLES = 128   # most samples run in lock-step ...
_CHUNK_LANES = 8       # ... padded to a multiple of this

# ---------------------------------------------------------------------------
# The kernels, one direction
#
# Samples run in chunks of Bc lanes (at most ~128, a multiple of 8); in a
# chunk the state is (H, Bc), batch last, and every loop below is a vector
# loop over lanes. Lanes past the last sample carry zero input and zero
# gradient, so they never leak into the results.
#
# cache: (n_chunks, T, 5, H, Bc) with n_chunks = ceil(B / 128) and
# Bc = ceil(B / n_chunks) rounded up to a multiple of 8. For sample
# b = c*Bc + l and time t, cache[c, t, :, j, l] = (r, z, n, W_hn h + b_hn, h')
# at hidden unit j, where h is the state before consuming x[b, t] and
# h' = hs[b, t, j] the state after it.

def _gru_geometry(x_shape, W_ih_shape, W_hh_shape, b_ih_shape, b_hh_shape):
    """(H, n_chunks, Bc); the shapes were checked by the op."""
    B = x_shape[0]
    H = W_hh_shape[1]
    n_chunks = -(-B // _CHUNK_SAMPLES)
    return H, n_chunks, padded(-(-B // max(1, n_chunks)), _CHUNK_LANES)


def _gather_step(x, b0, nb, t, xs):
    """xs[i, l] = x[b0 + l, t, i] for lanes l < nb, zero beyond."""
    xs[:] = 0
    for i in range(x.shape[2]):
        for lane in range(nb):
            xs[i, lane] = x[b0 + lane, t, i]


def _add_step(g, b0, nb, t, col, dh):
    """dh[j, l] += g[b0 + l, t, col + j] for lanes l < nb."""
    for j in range(dh.shape[0]):
        for lane in range(nb):
            dh[j, lane] += g[b0 + lane, t, col + j]


def _scatter_add_step(v, b0, nb, t, col, out):
    """out[b0 + l, t, col + j] += v[j, l] for lanes l < nb."""
    for j in range(v.shape[0]):
        for lane in range(nb):
            out[b0 + lane, t, col + j] += v[j, lane]


def _affine(W, v, bias, out):
    """out = W @ v + bias[:, None]."""
    for g in range(out.shape[0]):
        out[g] = bias[g]
    gemm_nn(W, v, out)


def _gru_cell(h_prev, gi, gh, out):
    """Gates and new state from the pre-activations, lane-wise.

    h_prev: (H, Bc); gi = W_ih x + b_ih and gh = W_hh h_prev + b_hh: (3H, Bc);
    out: (5, H, Bc) receives r, z, n, gh_n and h'.
    """
    H = h_prev.shape[0]
    for j in range(H):
        ir, iz, i_n = gi[j], gi[H + j], gi[2 * H + j]
        hr, hz, hn = gh[j], gh[H + j], gh[2 * H + j]
        hp, r, z, n, ghn, h = h_prev[j], out[0, j], out[1, j], out[2, j], out[3, j], out[4, j]
        for lane in range(hp.size):
            r[lane] = sigmoid(ir[lane] + hr[lane])
            z[lane] = sigmoid(iz[lane] + hz[lane])
            ghn[lane] = hn[lane]
            n[lane] = tanh(i_n[lane] + r[lane] * hn[lane])
            h[lane] = n[lane] + z[lane] * (hp[lane] - n[lane])  # (1 - z) n + z h


def _gru_run(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache, hs, col):
    """Runs one direction, adding its states into hs[:, :, col:col + H] (zeroed); returns the cache."""
    B, T, I = x.shape
    H, n_chunks, Bc = _gru_geometry(x.shape, W_ih.shape, W_hh.shape, b_ih.shape, b_hh.shape)
    cache = np.empty((n_chunks if keep_cache else 1, T, 5, H, Bc), x.dtype)
    xs = np.empty((I, Bc), x.dtype)
    gi = np.empty((3 * H, Bc), x.dtype)
    gh = np.empty((3 * H, Bc), x.dtype)
    h0 = np.zeros((H, Bc), x.dtype)
    for c in range(n_chunks):
        b0, slot = c * Bc, c if keep_cache else 0
        nb = min(Bc, B - b0)
        h_prev = h0
        for s in range(T):
            t = T - 1 - s if reverse else s
            _gather_step(x, b0, nb, t, xs)
            _affine(W_ih, xs, b_ih, gi)
            _affine(W_hh, h_prev, b_hh, gh)
            _gru_cell(h_prev, gi, gh, cache[slot, t])
            h_prev = cache[slot, t, 4]
            _scatter_add_step(h_prev, b0, nb, t, col, hs)
    return cache


def forward_kernel(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache=True):
    """One GRU direction: x (B, T, I) -> (hs (B, T, H), cache).

    W_ih: (3H, I), W_hh: (3H, H), b_ih, b_hh: (3H,), gates stacked (r, z, n).
    hs[:, t] is the state after consuming x[:, t]; with reverse=True time runs
    from T-1 down to 0 (torch's backward direction). cache: (n_chunks, T, 5,
    H, Bc), see above. keep_cache=False (inference) keeps one chunk only,
    which is still the whole cache when B <= 128. Numba compiles a call that
    omits keep_cache apart from one that passes it: pass it explicitly both
    in training and in inference to share one compilation.
    """
    hs = np.zeros((x.shape[0], x.shape[1], W_hh.shape[1]), x.dtype)
    return hs, _gru_run(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache, hs, 0)


def _gru_cell_backward(dh, h_prev, gates, dgi, dgh):
    """Back-propagates one step through the gates, lane-wise.

    dh: (H, Bc) gradient w.r.t. the step's output h'; on return it holds
    dh * z, the direct part of the gradient w.r.t. h_prev. gates: (5, H, Bc)
    from the cache. dgi, dgh: (3H, Bc) receive the gradients w.r.t. the
    pre-activations W_ih x + b_ih and W_hh h_prev + b_hh.
    """
    H = dh.shape[0]
    for j in range(H):
        r, z, n, hn, hp, d = gates[0, j], gates[1, j], gates[2, j], gates[3, j], h_prev[j], dh[j]
        gir, giz, gin, ghr, ghz, ghn = dgi[j], dgi[H + j], dgi[2 * H + j], dgh[j], dgh[H + j], dgh[2 * H + j]
        for lane in range(d.size):
            dn = d[lane] - d[lane] * z[lane]                 # dh (1 - z)
            da_n = dn - dn * n[lane] * n[lane]               # through tanh
            da_r = da_n * hn[lane] * (r[lane] - r[lane] * r[lane])
            da_z = d[lane] * (hp[lane] - n[lane]) * (z[lane] - z[lane] * z[lane])
            gir[lane] = da_r
            ghr[lane] = da_r
            giz[lane] = da_z
            ghz[lane] = da_z
            gin[lane] = da_n
            ghn[lane] = da_n * r[lane]
            d[lane] = d[lane] * z[lane]


def _gru_run_backward(g_hs, col, x, W_ih, W_hh, b_ih, b_hh, reverse, cache, gx):
    """BPTT of one direction whose states are hs[:, :, col:col + H], given g_hs
    = dL/dhs. Adds dL/dx into gx; returns (gW_ih, gW_hh, gb_ih, gb_hh)."""
    B, T, I = x.shape
    H, n_chunks, Bc = _gru_geometry(x.shape, W_ih.shape, W_hh.shape, b_ih.shape, b_hh.shape)
    if g_hs.shape[:2] != (B, T) or g_hs.shape[2] < col + H or cache.shape != (n_chunks, T, 5, H, Bc):
        raise ValueError("gru backward: g_hs or cache has the wrong shape")
    W_ih_t, W_hh_t = W_ih.T.copy(), W_hh.T.copy()
    gW_ih, gW_hh = np.zeros((3 * H, I), x.dtype), np.zeros((3 * H, H), x.dtype)
    gb_ih, gb_hh = np.zeros((3 * H, 1), x.dtype), np.zeros((3 * H, 1), x.dtype)
    ones = np.ones((1, Bc), x.dtype)  # bias gradients are products with a row of ones
    xs, gxs, dh = np.empty((I, Bc), x.dtype), np.empty((I, Bc), x.dtype), np.empty((H, Bc), x.dtype)
    dgi, dgh = np.empty((3 * H, Bc), x.dtype), np.empty((3 * H, Bc), x.dtype)
    h0 = np.zeros((H, Bc), x.dtype)
    for c in range(n_chunks):
        b0 = c * Bc
        nb = min(Bc, B - b0)
        dh[:] = 0
        for s in range(T - 1, -1, -1):
            t = T - 1 - s if reverse else s
            h_prev = h0 if s == 0 else cache[c, t + 1 if reverse else t - 1, 4]
            _add_step(g_hs, b0, nb, t, col, dh)
            _gru_cell_backward(dh, h_prev, cache[c, t], dgi, dgh)
            gemm_nn(W_hh_t, dgh, dh)       # dh_prev = dh z + W_hh^T dgh
            gemm_nt(dgh, h_prev, gW_hh)
            gemm_nt(dgh, ones, gb_hh)
            _gather_step(x, b0, nb, t, xs)
            gemm_nt(dgi, xs, gW_ih)
            gemm_nt(dgi, ones, gb_ih)
            gxs[:] = 0
            gemm_nn(W_ih_t, dgi, gxs)
            _scatter_add_step(gxs, b0, nb, t, 0, gx)
    return gW_ih, gW_hh, gb_ih.reshape(3 * H), gb_hh.reshape(3 * H)


def backward_kernel(g_hs, x, W_ih, W_hh, b_ih, b_hh, reverse, cache):
    """Back-propagation through time for one GRU direction.

    g_hs: (B, T, H) gradient w.r.t. hs; x, weights, reverse: as given to
    forward_kernel; cache: its second output. Returns (gx (B, T, I),
    gW_ih (3H, I), gW_hh (3H, H), gb_ih (3H,), gb_hh (3H,)).
    """
    if g_hs.shape[2] != W_hh.shape[1]:
        raise ValueError("backward_kernel: g_hs has the wrong shape")
    gx = np.zeros(x.shape, x.dtype)
    gW_ih, gW_hh, gb_ih, gb_hh = _gru_run_backward(g_hs, 0, x, W_ih, W_hh, b_ih, b_hh, reverse, cache, gx)
    return gx, gW_ih, gW_hh, gb_ih, gb_hh


def bidirectional_forward_kernel(x, forward_params, reverse_params, keep_cache=True):
    """Both directions, separate weights: x (B, T, I) -> (hs (B, T, 2H), (cache_f, cache_r)).

    *_params: tuples (W_ih, W_hh, b_ih, b_hh), one per direction; hs =
    [forward | reverse] on the last axis, written in place (no concatenation).
    """
    H = forward_params[1].shape[1]
    hs = np.zeros((x.shape[0], x.shape[1], 2 * H), x.dtype)
    cache_f = _gru_run(x, *forward_params, False, keep_cache, hs, 0)
    cache_r = _gru_run(x, *reverse_params, True, keep_cache, hs, H)
    return hs, (cache_f, cache_r)


def bidirectional_backward_kernel(g_hs, x, forward_params, reverse_params, caches):
    """g_hs: (B, T, 2H) -> (gx (B, T, I), grads_f, grads_r), each grads
    (gW_ih, gW_hh, gb_ih, gb_hh) of its direction."""
    H = forward_params[1].shape[1]
    if g_hs.shape[2] != 2 * H:
        raise ValueError("bidirectional_backward_kernel: g_hs has the wrong shape")
    gx = np.zeros(x.shape, x.dtype)
    grads_f = _gru_run_backward(g_hs, 0, x, *forward_params, False, caches[0], gx)
    grads_r = _gru_run_backward(g_hs, H, x, *reverse_params, True, caches[1], gx)
    return gx, grads_f, grads_r


_gru_geometry = njit(cache=True)(_gru_geometry)
_gather_step = njit(cache=True)(_gather_step)
_add_step = njit(cache=True)(_add_step)
_scatter_add_step = njit(cache=True)(_scatter_add_step)
_affine = njit(cache=True)(_affine)
_gru_cell = njit(cache=True, error_model="numpy", fastmath={"contract"})(_gru_cell)
# No fastmath 'contract' here: with it, LLVM fused multiply-adds differently when
# the kernel was compiled in the running process than in the copy numba loads
# from its cache, so the gradients depended on whether the cache was warm.
_gru_cell_backward = njit(cache=True)(_gru_cell_backward)
_gru_run = njit(cache=True)(_gru_run)
_gru_run_backward = njit(cache=True)(_gru_run_backward)
forward_kernel = njit(cache=True)(forward_kernel)
backward_kernel = njit(cache=True)(backward_kernel)
bidirectional_forward_kernel = njit(cache=True)(bidirectional_forward_kernel)
bidirectional_backward_kernel = njit(cache=True)(bidirectional_backward_kernel)


# ---------------------------------------------------------------------------
# The op

def _contiguous(t):
    return np.ascontiguousarray(t.data)


def _check_gru(x, params):
    if x.ndim != 3:
        raise ValueError(f"gru: input must be (B, T, I), got shape {x.shape}")
    if params[1].ndim != 2:
        raise ValueError(f"gru: W_hh must be (3H, H), got shape {params[1].shape}")
    hidden = params[1].shape[1]
    want = [(3 * hidden, x.shape[2]), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
    got = [p.shape for p in params]
    if got != want:
        raise ValueError(f"gru: input {x.shape} is (B, T, I), so the weights (W_ih, W_hh, b_ih, "
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
        hs, cache = forward_kernel(xd, *wd, False, keep)

        def all_gradients(hs, g_hs):  # the joint rule: one BPTT pass, every gradient
            return backward_kernel(np.ascontiguousarray(g_hs), xd, *wd, False, cache)
    else:
        hs, caches = bidirectional_forward_kernel(xd, tuple(wd[:4]), tuple(wd[4:]), keep)

        def all_gradients(hs, g_hs):
            gx, grads_forward, grads_reverse = bidirectional_backward_kernel(
                np.ascontiguousarray(g_hs), xd, tuple(wd[:4]), tuple(wd[4:]), caches)
            return (gx,) + tuple(grads_forward) + tuple(grads_reverse)
    return make_op("gru", hs, (x,) + params, all_gradients, differentiable_backward=False)


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
