"""Tests for mnist1d_np.kernels: conv1d and its closed family, and the fused GRU.

Everything is checked in float64 against plain NumPy references and central
differences; float32 is checked against float64. The tests also pass with
NUMBA_DISABLE_JIT=1, where batches shrink so the pure-Python run stays short.
The seeded `rng` fixture (and the autouse seeding) come from conftest.py.
"""
import subprocess
import sys
from collections import namedtuple

import numba
import numpy as np
import pytest

from mnist1d_np import kernels as K

JIT = not numba.config.DISABLE_JIT
BATCH = 100 if JIT else 4     # the paper's batch, or a small one in pure Python
EPS = 1e-6                    # central-difference step


def inner(a, b):
    """<a, b> = sum(a * b)."""
    return float(np.sum(a * b))


@pytest.mark.skipif(not JIT, reason="needs the JIT")
def test_import_compiles_nothing():
    code = ("import numba, mnist1d_np.kernels as K; print(sum(len(f.signatures) for f in vars(K).values()"
            " if isinstance(f, numba.core.dispatcher.Dispatcher)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


# ---------------------------------------------------------------------------
# conv1d

def conv1d_reference(x, w, stride, padding):
    """y[b, o, t] = sum_{c, k} w[o, c, k] x_pad[b, c, t*stride + k], by einsum per output position."""
    K_ = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    L_out = (xp.shape[2] - K_) // stride + 1
    windows = [xp[:, :, t * stride:t * stride + K_] for t in range(L_out)]
    return np.stack([np.einsum("bck,ock->bo", win, w) for win in windows], axis=2)


# name: (B, C_in, L, C_out, K, stride, padding)
CONV_CASES = {
    "paper1": (BATCH, 1, 40, 25, 5, 2, 1),      # -> L_out 19
    "paper2": (BATCH, 25, 19, 25, 3, 2, 1),     # -> 10
    "paper3": (BATCH, 25, 10, 25, 3, 2, 1),     # -> 5
    "stride1_pad0": (3, 4, 12, 5, 3, 1, 0),
    "k1": (3, 4, 7, 2, 1, 1, 0),
    "uneven_stride": (2, 3, 21, 4, 4, 3, 1),    # (L + 2p - K) % s != 0
    "stride_gt_k": (2, 2, 17, 3, 2, 4, 0),      # inputs skipped entirely
    "wide_padding": (2, 2, 5, 3, 3, 2, 4),      # taps fully inside the padding
    "one_output": (5, 3, 4, 2, 4, 1, 0),
    "many_blocks": (150, 2, 30, 3, 3, 1, 1),    # several blocks, last one partial
}


Geometry = namedtuple("Geometry", "stride padding L K")


def conv_arrays(rng, case, dtype=np.float64):
    """Random x (B, C_in, L), w (C_out, C_in, K), gy (B, C_out, L_out), and the Geometry."""
    B, C_in, L, C_out, K_, stride, padding = CONV_CASES[case]
    L_out = (L + 2 * padding - K_) // stride + 1
    shapes = [(B, C_in, L), (C_out, C_in, K_), (B, C_out, L_out)]
    x, w, gy = (rng.standard_normal(s).astype(dtype) for s in shapes)
    return x, w, gy, Geometry(stride, padding, L, K_)


# The closed family. Each kernel is bilinear in its two arrays (a, b), and its
# vector-Jacobian product in either one is another kernel of the family.
# name: (pick (a, b) from (x, w, gy), kernel(a, b, g), VJP in a: (c, a, b, g) -> array like a, VJP in b)
CLOSURE = {
    "forward": (
        lambda x, w, gy: (x, w),
        lambda x, w, g: K.conv1d_forward(x, w, g.stride, g.padding),
        lambda c, x, w, g: K.conv1d_grad_input(c, w, g.stride, g.padding, g.L),
        lambda c, x, w, g: K.conv1d_grad_weight(x, c, g.stride, g.padding, g.K)),
    "grad_input": (
        lambda x, w, gy: (gy, w),
        lambda gy, w, g: K.conv1d_grad_input(gy, w, g.stride, g.padding, g.L),
        lambda c, gy, w, g: K.conv1d_forward(c, w, g.stride, g.padding),
        lambda c, gy, w, g: K.conv1d_grad_weight(c, gy, g.stride, g.padding, g.K)),
    "grad_weight": (
        lambda x, w, gy: (x, gy),
        lambda x, gy, g: K.conv1d_grad_weight(x, gy, g.stride, g.padding, g.K),
        lambda c, x, gy, g: K.conv1d_grad_input(gy, c, g.stride, g.padding, g.L),
        lambda c, x, gy, g: K.conv1d_forward(x, c, g.stride, g.padding)),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv1d_forward_matches_reference(rng, case):
    x, w, _, g = conv_arrays(rng, case)
    y = K.conv1d_forward(x, w, g.stride, g.padding)
    np.testing.assert_allclose(y, conv1d_reference(x, w, g.stride, g.padding), rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("kernel", CLOSURE)
@pytest.mark.parametrize("argument", [0, 1])
def test_conv1d_closure_adjoint_identities(rng, case, kernel, argument):
    """<kernel(a, b), c> = <a, VJP_a(c)> and = <b, VJP_b(c)> to 1e-12: what the autodiff wrapper relies on."""
    x, w, gy, g = conv_arrays(rng, case)
    pick, f, *vjps = CLOSURE[kernel]
    a, b = pick(x, w, gy)
    out = f(a, b, g)
    c = rng.standard_normal(out.shape)
    lhs, rhs = inner(out, c), inner((a, b)[argument], vjps[argument](c, a, b, g))
    scale = np.sum(np.abs(out) * np.abs(c))      # bounds the rounding error of either sum
    assert abs(lhs - rhs) <= 1e-12 * scale


@pytest.mark.parametrize("case", ["paper2", "uneven_stride", "wide_padding"])
def test_conv1d_gradients_match_directional_finite_differences(rng, case):
    """Central differences of L = <conv1d_forward(x, w), gy> along random directions in x and in w."""
    x, w, gy, g = conv_arrays(rng, case)
    loss = lambda x_, w_: inner(K.conv1d_forward(x_, w_, g.stride, g.padding), gy)
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    fd_x = (loss(x + EPS * vx, w) - loss(x - EPS * vx, w)) / (2 * EPS)
    fd_w = (loss(x, w + EPS * vw) - loss(x, w - EPS * vw)) / (2 * EPS)
    assert fd_x == pytest.approx(inner(K.conv1d_grad_input(gy, w, g.stride, g.padding, g.L), vx), rel=1e-6)
    assert fd_w == pytest.approx(inner(K.conv1d_grad_weight(x, gy, g.stride, g.padding, g.K), vw), rel=1e-6)


@pytest.mark.parametrize("case", ["uneven_stride", "wide_padding"])
def test_conv1d_gradients_match_elementwise_finite_differences(rng, case):
    x, w, gy, g = conv_arrays(rng, case)
    loss = lambda x_, w_: inner(K.conv1d_forward(x_, w_, g.stride, g.padding), gy)
    np.testing.assert_allclose(K.conv1d_grad_input(gy, w, g.stride, g.padding, g.L),
                               numeric_gradient(lambda v: loss(v, w), x.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(K.conv1d_grad_weight(x, gy, g.stride, g.padding, g.K),
                               numeric_gradient(lambda v: loss(x, v), w.copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kernel", CLOSURE)
def test_conv1d_float32_in_float32_out(rng, kernel):
    x, w, gy, g = conv_arrays(rng, "paper2", np.float32)
    pick, f = CLOSURE[kernel][:2]
    a, b = pick(x, w, gy)
    out32, out64 = f(a, b, g), f(a.astype(np.float64), b.astype(np.float64), g)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)


def test_conv1d_accepts_non_contiguous_input(rng):
    x, w, _, g = conv_arrays(rng, "paper3")
    x_strided = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 1, 2)), 1, 2)
    assert not x_strided.flags.c_contiguous
    y = K.conv1d_forward(x, w, g.stride, g.padding)
    np.testing.assert_array_equal(K.conv1d_forward(x_strided, w, g.stride, g.padding), y)


def test_conv1d_rejects_bad_shapes(rng):
    x, w, gy, g = conv_arrays(rng, "paper3")
    s, p = g.stride, g.padding
    with pytest.raises(ValueError):
        K.conv1d_forward(x, np.ascontiguousarray(w[:, :3]), s, p)        # C_in mismatch
    with pytest.raises(ValueError):
        K.conv1d_forward(np.ascontiguousarray(x[:, :, :1]), w, s, 0)     # kernel longer than the input
    with pytest.raises(ValueError):
        K.conv1d_grad_input(np.ascontiguousarray(gy[:, :, :-1]), w, s, p, g.L)
    with pytest.raises(ValueError):
        K.conv1d_grad_weight(x, np.ascontiguousarray(gy[:-1]), s, p, g.K)


# ---------------------------------------------------------------------------
# GRU

def gru_reference(x, W_ih, W_hh, b_ih, b_hh, reverse):
    """torch.nn.GRU's recurrences, one direction, h0 = 0: a plain loop over time."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    sigmoid = lambda a: 1 / (1 + np.exp(-a))
    h, hs = np.zeros((B, H)), np.empty((B, T, H))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        gi, gh = x[:, t] @ W_ih.T + b_ih, h @ W_hh.T + b_hh
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs[:, t] = h
    return hs


def gru_arrays(rng, B, T, I, H, dtype=np.float64):
    """Random x (B, T, I); weights uniform in +-2/sqrt(H), twice torch's init, so gates saturate somewhat."""
    x = rng.standard_normal((B, T, I))
    shapes = [(3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]
    params = [rng.uniform(-1, 1, s) * 2 / np.sqrt(H) for s in shapes]
    return x.astype(dtype), tuple(p.astype(dtype) for p in params)


def numeric_gradient(f, a):
    """Element-wise central differences of the scalar f at a."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        up = f(a)
        a[i] = old - EPS
        g[i] = (up - f(a)) / (2 * EPS)
        a[i] = old
    return g


SMALL, PAPER, MULTI_CHUNK = (3, 5, 2, 4), (100, 40, 1, 6), (300 if JIT else 131, 7, 2, 3)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("size", [SMALL, PAPER, MULTI_CHUNK], ids=["small", "paper", "multi_chunk"])
def test_gru_forward_matches_reference(rng, size, reverse):
    x, params = gru_arrays(rng, *size)
    hs, _ = K.gru_forward(x, *params, reverse)
    np.testing.assert_allclose(hs, gru_reference(x, *params, reverse), rtol=0, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_backward_matches_finite_differences_of_reference(rng, reverse):
    """Every gradient, element by element, against central differences of the NumPy reference."""
    x, params = gru_arrays(rng, *SMALL)
    g_hs = rng.standard_normal((*x.shape[:2], SMALL[3]))
    _, cache = K.gru_forward(x, *params, reverse)
    grads = K.gru_backward(g_hs, x, *params, reverse, cache)
    arrays = [x, *params]
    for k, grad in enumerate(grads):
        def loss(v, k=k):
            args = arrays[:k] + [v] + arrays[k + 1:]
            return inner(gru_reference(*args, reverse), g_hs)
        np.testing.assert_allclose(grad, numeric_gradient(loss, arrays[k].copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("size", [SMALL, PAPER, MULTI_CHUNK], ids=["small", "paper", "multi_chunk"])
def test_gru_backward_matches_directional_finite_differences(rng, size, reverse):
    """Random projection L = <hs, G>; directional central differences of the kernel forward."""
    x, params = gru_arrays(rng, *size)
    arrays = [x, *params]
    g_hs = rng.standard_normal((*x.shape[:2], size[3]))
    _, cache = K.gru_forward(x, *arrays[1:], reverse)
    grads = K.gru_backward(g_hs, *arrays, reverse, cache)
    directions = [rng.standard_normal(a.shape) for a in arrays]
    shifted = lambda step: [a + step * d for a, d in zip(arrays, directions)]
    loss = lambda step: inner(K.gru_forward(*shifted(step), reverse)[0], g_hs)
    fd = (loss(EPS) - loss(-EPS)) / (2 * EPS)
    assert fd == pytest.approx(sum(inner(g, d) for g, d in zip(grads, directions)), rel=1e-6)


def test_gru_cache_layout(rng):
    """cache[c, t, :, j, l] = (r, z, n, W_hn h + b_hn, hs[c*Bc + l, t, j]) as documented."""
    B, T, I, H = MULTI_CHUNK
    x, (W_ih, W_hh, b_ih, b_hh) = gru_arrays(rng, B, T, I, H)
    hs, cache = K.gru_forward(x, W_ih, W_hh, b_ih, b_hh, False)
    n_chunks, Bc = cache.shape[0], cache.shape[4]
    assert cache.shape == (n_chunks, T, 5, H, Bc) and n_chunks * Bc >= B and Bc % 8 == 0
    lanes = cache.transpose(0, 4, 1, 2, 3).reshape(n_chunks * Bc, T, 5, H)[:B]   # (B, T, 5, H)
    np.testing.assert_array_equal(lanes[:, :, 4], hs)
    h_prev = np.concatenate([np.zeros((B, 1, H)), hs[:, :-1]], axis=1)
    np.testing.assert_allclose(lanes[:, :, 3], h_prev @ W_hh[2 * H:].T + b_hh[2 * H:], atol=1e-12)
    r, z, n = lanes[:, :, 0], lanes[:, :, 1], lanes[:, :, 2]
    np.testing.assert_allclose((1 - z) * n + z * h_prev, hs, atol=1e-12)
    assert np.all((r > 0) & (r < 1) & (z > 0) & (z < 1) & (np.abs(n) < 1))


def test_gru_forward_without_cache(rng):
    x, params = gru_arrays(rng, *MULTI_CHUNK)
    hs, cache = K.gru_forward(x, *params, True)
    hs_light, light = K.gru_forward(x, *params, True, False)
    np.testing.assert_array_equal(hs_light, hs)
    assert light.shape == (1, *cache.shape[1:])


@pytest.mark.parametrize("backward", [False, True])
def test_gru_float32_in_float32_out(rng, backward):
    x, params = gru_arrays(rng, *SMALL)
    runs = []
    for dtype in (np.float32, np.float64):
        args = [a.astype(dtype) for a in [x, *params]]
        hs, cache = K.gru_forward(*args, False)
        runs.append(K.gru_backward(np.ones_like(hs), *args, False, cache) if backward else (hs,))
    for out32, out64 in zip(*runs):
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)


def test_gru_bidirectional_matches_two_directions(rng):
    """[forward | reverse] on the last axis; gradients are those of the two directions."""
    H = SMALL[3]
    x, params_f = gru_arrays(rng, *SMALL)
    _, params_r = gru_arrays(rng, *SMALL)
    hs, caches = K.gru_bidirectional_forward(x, params_f, params_r, True)
    expected = np.concatenate([gru_reference(x, *params_f, False), gru_reference(x, *params_r, True)], axis=2)
    np.testing.assert_allclose(hs, expected, rtol=0, atol=1e-10)
    g = rng.standard_normal(hs.shape)
    gx, grads_f, grads_r = K.gru_bidirectional_backward(g, x, params_f, params_r, caches)
    gx_f, *expected_f = K.gru_backward(np.ascontiguousarray(g[:, :, :H]), x, *params_f, False, caches[0])
    gx_r, *expected_r = K.gru_backward(np.ascontiguousarray(g[:, :, H:]), x, *params_r, True, caches[1])
    np.testing.assert_allclose(gx, gx_f + gx_r, atol=1e-14)
    for got, want in zip(grads_f + grads_r, expected_f + expected_r):
        np.testing.assert_array_equal(got, want)


def test_gru_rejects_bad_shapes(rng):
    x, (W_ih, W_hh, b_ih, b_hh) = gru_arrays(rng, *SMALL)
    with pytest.raises(ValueError):
        K.gru_forward(x, W_ih[:, :1], W_hh, b_ih, b_hh, False)
    hs, cache = K.gru_forward(x, W_ih, W_hh, b_ih, b_hh, False)
    with pytest.raises(ValueError):
        K.gru_backward(np.ascontiguousarray(hs[:, :-1]), x, W_ih, W_hh, b_ih, b_hh, False, cache)
    params = (W_ih, W_hh, b_ih, b_hh)
    _, caches = K.gru_bidirectional_forward(x, params, params, True)
    with pytest.raises(ValueError):
        K.gru_bidirectional_backward(hs, x, params, params, caches)       # (B, T, H), not (B, T, 2H)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-7), (np.float64, 4e-16)])
def test_gate_nonlinearities(dtype, tol):
    """The vectorisable sigmoid and tanh: absolute error ~ eps, saturation, NaN kept."""
    @numba.njit(error_model="numpy")
    def gates(a):
        s, t = np.empty_like(a), np.empty_like(a)
        for i in range(a.size):
            s[i], t[i] = K._sigmoid(a[i]), K._tanh(a[i])
        return s, t
    a = np.concatenate([np.linspace(-60, 60, 4001), np.linspace(-1e-3, 1e-3, 101)]).astype(dtype)
    s, t = gates(a)
    assert s.dtype == t.dtype == dtype
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-a.astype(np.float64))), rtol=0, atol=tol)
    np.testing.assert_allclose(t, np.tanh(a.astype(np.float64)), rtol=0, atol=2 * tol)
    s, t = gates(np.array([np.inf, -np.inf, np.nan, 1e30, -1e30], dtype))
    np.testing.assert_array_equal(t, [1, -1, np.nan, 1, -1])
    assert s[0] == s[3] == 1 and np.isnan(s[2])
    assert 0 < s[1] < 1e-30 and 0 < s[4] < 1e-30    # exp's argument is clamped to [-80, 80]
