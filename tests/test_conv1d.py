"""conv1d (mnist1d_np.conv1d): the kernels and their closed family.

Everything is checked in float64 against plain NumPy references and central
differences; float32 is checked against float64. The tests also pass with
NUMBA_DISABLE_JIT=1, where batches shrink so the pure-Python run stays short.
The seeded `rng` fixture (and the autouse seeding) come from conftest.py.
"""
from collections import namedtuple

import numba
import numpy as np
import pytest
from finite_differences import EPS, inner, numeric_gradient

JIT = not numba.config.DISABLE_JIT
BATCH = 100 if JIT else 4     # the paper's batch, or a small one in pure Python
from mnist1d_np import conv1d as C
from mnist1d_np.tensor import Tensor


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
        lambda x, w, g: C.forward_kernel(x, w, g.stride, g.padding),
        lambda c, x, w, g: C.grad_input_kernel(c, w, g.stride, g.padding, g.L),
        lambda c, x, w, g: C.grad_weight_kernel(x, c, g.stride, g.padding, g.K)),
    "grad_input": (
        lambda x, w, gy: (gy, w),
        lambda gy, w, g: C.grad_input_kernel(gy, w, g.stride, g.padding, g.L),
        lambda c, gy, w, g: C.forward_kernel(c, w, g.stride, g.padding),
        lambda c, gy, w, g: C.grad_weight_kernel(c, gy, g.stride, g.padding, g.K)),
    "grad_weight": (
        lambda x, w, gy: (x, gy),
        lambda x, gy, g: C.grad_weight_kernel(x, gy, g.stride, g.padding, g.K),
        lambda c, x, gy, g: C.grad_input_kernel(gy, c, g.stride, g.padding, g.L),
        lambda c, x, gy, g: C.forward_kernel(x, c, g.stride, g.padding)),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv1d_forward_matches_reference(rng, case):
    x, w, _, g = conv_arrays(rng, case)
    y = C.forward_kernel(x, w, g.stride, g.padding)
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
    loss = lambda x_, w_: inner(C.forward_kernel(x_, w_, g.stride, g.padding), gy)
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    fd_x = (loss(x + EPS * vx, w) - loss(x - EPS * vx, w)) / (2 * EPS)
    fd_w = (loss(x, w + EPS * vw) - loss(x, w - EPS * vw)) / (2 * EPS)
    assert fd_x == pytest.approx(inner(C.grad_input_kernel(gy, w, g.stride, g.padding, g.L), vx), rel=1e-6)
    assert fd_w == pytest.approx(inner(C.grad_weight_kernel(x, gy, g.stride, g.padding, g.K), vw), rel=1e-6)


@pytest.mark.parametrize("case", ["uneven_stride", "wide_padding"])
def test_conv1d_gradients_match_elementwise_finite_differences(rng, case):
    x, w, gy, g = conv_arrays(rng, case)
    loss = lambda x_, w_: inner(C.forward_kernel(x_, w_, g.stride, g.padding), gy)
    np.testing.assert_allclose(C.grad_input_kernel(gy, w, g.stride, g.padding, g.L),
                               numeric_gradient(lambda v: loss(v, w), x.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(C.grad_weight_kernel(x, gy, g.stride, g.padding, g.K),
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
    y = C.forward_kernel(x, w, g.stride, g.padding)
    np.testing.assert_array_equal(C.forward_kernel(x_strided, w, g.stride, g.padding), y)


def test_conv1d_rejects_bad_shapes(rng):
    x, w, gy, g = conv_arrays(rng, "paper3")
    s, p = g.stride, g.padding
    with pytest.raises(ValueError, match="same C_in"):
        C.conv1d(x, np.ascontiguousarray(w[:, :3]), s, p)
    with pytest.raises(ValueError, match="exceeds padded length"):
        C.conv1d(np.ascontiguousarray(x[:, :, :1]), w, s, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        C.conv1d(x, w, 0, p)
    with pytest.raises(ValueError):
        C.grad_input_kernel(np.ascontiguousarray(gy[:, :, :-1]), w, s, p, g.L)
    with pytest.raises(ValueError):
        C.grad_weight_kernel(x, np.ascontiguousarray(gy[:-1]), s, p, g.K)


# ---------------------------------------------------------------------------
# The BLAS path: the same three kernels, as whole-batch products

BLAS_PAIRS = {   # name: (block kernel, BLAS path, pick its arrays from (x, w, gy), its geometry arguments)
    "forward": (C.forward_kernel, C.blas_forward, lambda x, w, gy: (x, w), lambda g: (g.stride, g.padding)),
    "grad_input": (C.grad_input_kernel, C.blas_grad_input, lambda x, w, gy: (gy, w),
                   lambda g: (g.stride, g.padding, g.L)),
    "grad_weight": (C.grad_weight_kernel, C.blas_grad_weight, lambda x, w, gy: (x, gy),
                    lambda g: (g.stride, g.padding, g.K)),
}


@pytest.mark.parametrize("chunk", [1 << 19, 50])    # one product per call, or several with a partial last one
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("kernel", BLAS_PAIRS)
def test_blas_path_equals_block_kernels(rng, monkeypatch, chunk, case, kernel):
    """Both paths compute the same sums in another order: equal to 1e-12 of the sum of |terms|."""
    monkeypatch.setattr(C, "_BLAS_CHUNK", chunk)
    x, w, gy, g = conv_arrays(rng, case)
    blocks, blas_path, pick, geometry = BLAS_PAIRS[kernel]
    a, b = pick(x, w, gy)
    expected = blocks(a, b, *geometry(g))
    scale = blocks(np.abs(a), np.abs(b), *geometry(g))
    assert np.all(np.abs(blas_path(a, b, *geometry(g)) - expected) <= 1e-12 * scale)


def test_blas_forward_adds_the_bias_and_keeps_float32(rng):
    x, w, _, g = conv_arrays(rng, "paper2", np.float32)
    bias = rng.standard_normal(w.shape[0]).astype(np.float32)
    y = C.blas_forward(x, w, g.stride, g.padding, bias)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, C.forward_kernel(x, w, g.stride, g.padding, bias), rtol=1e-5, atol=1e-5)


def test_blas_path_rejects_bad_shapes(rng):
    x, w, gy, g = conv_arrays(rng, "paper3")
    with pytest.raises(ValueError, match="wrong shape"):
        C.blas_grad_input(np.ascontiguousarray(gy[:, :, :-1]), w, g.stride, g.padding, g.L)
    with pytest.raises(ValueError, match="wrong shape"):
        C.blas_grad_weight(x, np.ascontiguousarray(gy[:-1]), g.stride, g.padding, g.K)


def test_wide_layers_take_the_blas_path_and_narrow_ones_the_blocks(rng, monkeypatch):
    """The dispatchers route by C_out * C_in * K; the op then differentiates through either path alike."""
    calls = []
    for name in ("blas_forward", "blas_grad_input", "blas_grad_weight"):
        original = getattr(C, name)
        monkeypatch.setattr(C, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    x, w, _, g = conv_arrays(rng, "paper2")
    assert not C.uses_blas(w.shape)
    y = C.conv1d(x, w, g.stride, g.padding, relu=True)
    assert calls == []
    monkeypatch.setattr(C, "BLAS_FROM", w.size)
    assert C.uses_blas(w.shape)
    y_blas = C.conv1d(x, w, g.stride, g.padding, relu=True)
    np.testing.assert_allclose(y_blas.data, y.data, rtol=1e-12, atol=1e-12)
    C.conv1d_grad_input(y_blas, Tensor(w), g.stride, g.padding, g.L)
    C.conv1d_grad_weight(Tensor(x), y_blas, g.stride, g.padding, g.K)
    assert calls == ["blas_forward", "blas_grad_input", "blas_grad_weight"]
