"""conv2d (mnist1d_np.conv2d): the kernels, their closed family, and the ops.

Everything is checked in float64 against a plain NumPy reference and central
differences; float32 against float64. The kernels take any memory layout and
return batch-last views, so layouts are checked too. With NUMBA_DISABLE_JIT=1
the batches shrink so that the pure-Python run stays short. The `rng`
fixture comes from conftest.py.
"""
from collections import namedtuple

import numba
import numpy as np
import pytest
from finite_differences import EPS, inner, numeric_gradient
from numpy_references import conv2d_reference

from mnist1d_np import Tensor, grad, ops
from mnist1d_np import conv2d as C
from mnist1d_np.gradcheck import check_grad

JIT = not numba.config.DISABLE_JIT
BATCH = 100 if JIT else 3     # the paper's batch, or a small one in pure Python


# name: (B, C_in, H, W, C_out, KH, KW, stride, padding)
CASES = {
    "mnist1": (BATCH, 1, 28, 28, 25, 5, 5, 2, 1),    # the image CNN's layers: 28 -> 13
    "mnist2": (BATCH, 25, 13, 13, 25, 3, 3, 2, 1),   # -> 7
    "mnist3": (BATCH, 25, 7, 7, 25, 3, 3, 2, 1),     # -> 4
    "stride1_pad0": (3, 4, 6, 5, 5, 3, 3, 1, 0),
    "k1": (3, 4, 5, 4, 2, 1, 1, 1, 0),
    "rectangular": (2, 3, 9, 6, 4, 4, 2, 3, 1),      # KH != KW, (H + 2p - K) % s != 0
    "stride_gt_k": (2, 2, 11, 9, 3, 2, 2, 4, 0),     # rows and columns skipped entirely
    "wide_padding": (2, 2, 4, 5, 3, 3, 3, 2, 4),     # taps fully inside the padding
    "one_output": (4, 3, 4, 3, 2, 4, 3, 1, 0),
    "many_samples": (130, 2, 5, 4, 3, 3, 3, 1, 1),  # more than _CHUNK_SAMPLES: 128 + 2
}
SMALL = [case for case in CASES if not case.startswith("mnist")]

Geometry = namedtuple("Geometry", "stride padding size kernel")


def conv_arrays(rng, case, dtype=np.float64):
    """Random x (B, C_in, H, W), w (C_out, C_in, KH, KW), gy (B, C_out, H_out, W_out), and the Geometry."""
    B, C_in, H, W, C_out, KH, KW, stride, padding = CASES[case]
    H_out, W_out = C.output_size((H, W), (KH, KW), stride, padding)
    shapes = [(B, C_in, H, W), (C_out, C_in, KH, KW), (B, C_out, H_out, W_out)]
    x, w, gy = (rng.standard_normal(s).astype(dtype) for s in shapes)
    return x, w, gy, Geometry(stride, padding, (H, W), (KH, KW))


# The closed family: each kernel is bilinear in its two arrays (a, b); its
# vector-Jacobian product in either one is another kernel of the family.
# name: (pick (a, b) from (x, w, gy), kernel(a, b, g), VJP in a: (c, a, b, g) -> array like a, VJP in b)
CLOSURE = {
    "forward": (
        lambda x, w, gy: (x, w),
        lambda x, w, g: C.forward(x, w, g.stride, g.padding),
        lambda c, x, w, g: C.grad_input(c, w, g.stride, g.padding, g.size),
        lambda c, x, w, g: C.grad_weight(x, c, g.stride, g.padding, g.kernel)),
    "grad_input": (
        lambda x, w, gy: (gy, w),
        lambda gy, w, g: C.grad_input(gy, w, g.stride, g.padding, g.size),
        lambda c, gy, w, g: C.forward(c, w, g.stride, g.padding),
        lambda c, gy, w, g: C.grad_weight(c, gy, g.stride, g.padding, g.kernel)),
    "grad_weight": (
        lambda x, w, gy: (x, gy),
        lambda x, gy, g: C.grad_weight(x, gy, g.stride, g.padding, g.kernel),
        lambda c, x, gy, g: C.grad_input(gy, c, g.stride, g.padding, g.size),
        lambda c, x, gy, g: C.forward(x, c, g.stride, g.padding)),
}


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_reference(rng, case):
    x, w, _, g = conv_arrays(rng, case)
    y = C.forward(x, w, g.stride, g.padding)
    np.testing.assert_allclose(y, conv2d_reference(x, w, g.stride, g.padding), rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kernel", CLOSURE)
@pytest.mark.parametrize("argument", [0, 1])
def test_closure_adjoint_identities(rng, case, kernel, argument):
    """<kernel(a, b), c> = <a, VJP_a(c)> and = <b, VJP_b(c)> to 1e-12: what the ops rely on."""
    x, w, gy, g = conv_arrays(rng, case)
    pick, f, *vjps = CLOSURE[kernel]
    a, b = pick(x, w, gy)
    out = f(a, b, g)
    c = rng.standard_normal(out.shape)
    lhs, rhs = inner(out, c), inner((a, b)[argument], vjps[argument](c, a, b, g))
    scale = np.sum(np.abs(out) * np.abs(c))      # bounds the rounding error of either sum
    assert abs(lhs - rhs) <= 1e-12 * scale


@pytest.mark.parametrize("case", ["mnist3", "rectangular", "wide_padding"])
def test_gradients_match_directional_finite_differences(rng, case):
    """Central differences of L = <forward(x, w), gy> along random directions in x and in w."""
    x, w, gy, g = conv_arrays(rng, case)
    loss = lambda x_, w_: inner(C.forward(x_, w_, g.stride, g.padding), gy)
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    fd_x = (loss(x + EPS * vx, w) - loss(x - EPS * vx, w)) / (2 * EPS)
    fd_w = (loss(x, w + EPS * vw) - loss(x, w - EPS * vw)) / (2 * EPS)
    assert fd_x == pytest.approx(inner(C.grad_input(gy, w, g.stride, g.padding, g.size), vx), rel=1e-6)
    assert fd_w == pytest.approx(inner(C.grad_weight(x, gy, g.stride, g.padding, g.kernel), vw), rel=1e-6)


@pytest.mark.parametrize("case", ["rectangular", "wide_padding", "stride_gt_k"])
def test_gradients_match_elementwise_finite_differences(rng, case):
    x, w, gy, g = conv_arrays(rng, case)
    loss = lambda x_, w_: inner(C.forward(x_, w_, g.stride, g.padding), gy)
    np.testing.assert_allclose(C.grad_input(gy, w, g.stride, g.padding, g.size),
                               numeric_gradient(lambda v: loss(v, w), x.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(C.grad_weight(x, gy, g.stride, g.padding, g.kernel),
                               numeric_gradient(lambda v: loss(x, v), w.copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kernel", CLOSURE)
def test_float32_in_float32_out(rng, kernel):
    x, w, gy, g = conv_arrays(rng, "mnist2", np.float32)
    pick, f = CLOSURE[kernel][:2]
    a, b = pick(x, w, gy)
    out32, out64 = f(a, b, g), f(a.astype(np.float64), b.astype(np.float64), g)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)


LAYOUTS = {
    "batch first": lambda a: a,
    "batch last": lambda a: np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 0, -1)), -1, 0),
    "channels last": lambda a: np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1),
    "strided": lambda a: np.repeat(a, 2, axis=2)[:, :, ::2],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kernel", CLOSURE)
def test_any_memory_layout_gives_the_same_numbers(rng, layout, kernel):
    """The kernels read every layout (a batch-last view for free) and give identical results."""
    x, w, gy, g = conv_arrays(rng, "rectangular")
    pick, f = CLOSURE[kernel][:2]
    a, b = pick(x, w, gy)
    moved = [LAYOUTS[layout](v) if v.shape[0] == x.shape[0] else v for v in (a, b)]  # batched arrays only
    np.testing.assert_array_equal(f(*moved, g), f(a, b, g))


def test_outputs_are_views_of_batch_last_arrays(rng):
    """What the next layer reads for free: conv2d's results are batch-last underneath."""
    x, w, gy, g = conv_arrays(rng, "mnist3")
    for out in (C.forward(x, w, g.stride, g.padding), C.grad_input(gy, w, g.stride, g.padding, g.size)):
        assert np.moveaxis(out, 0, -1).flags.c_contiguous
        assert np.shares_memory(C.batch_last(out), out)


@pytest.mark.parametrize("samples", [1, 2])     # per product: 3 chunks of one, or 2 + a partial chunk of 1
@pytest.mark.parametrize("kernel", CLOSURE)
def test_chunked_products_give_the_same_numbers(rng, monkeypatch, samples, kernel):
    x, w, gy, g = conv_arrays(rng, "stride1_pad0")
    pick, f = CLOSURE[kernel][:2]
    a, b = pick(x, w, gy)
    whole = f(a, b, g)
    rows, positions = x.shape[1] * w.shape[2] * w.shape[3], gy.shape[2] * gy.shape[3]
    monkeypatch.setattr(C, "_CHUNK", samples * rows * positions)
    assert [n for _, n in C._chunks(x.shape[0], rows, positions)] == [samples] * (3 // samples) + [1] * (samples - 1)
    np.testing.assert_allclose(f(a, b, g), whole, rtol=1e-13, atol=1e-13)


def test_bias_is_added_and_kept_float32(rng):
    x, w, _, g = conv_arrays(rng, "mnist3", np.float32)
    bias = rng.standard_normal(w.shape[0]).astype(np.float32)
    y = C.forward(x, w, g.stride, g.padding, bias)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, C.forward(x, w, g.stride, g.padding) + bias[:, None, None], rtol=1e-6, atol=1e-6)


def test_kernels_reject_a_gradient_of_the_wrong_shape(rng):
    x, w, gy, g = conv_arrays(rng, "rectangular")
    with pytest.raises(ValueError, match="gy has shape"):
        C.grad_input(gy[:, :, :-1], w, g.stride, g.padding, g.size)
    with pytest.raises(ValueError, match="gy has shape"):
        C.grad_weight(x, gy[:-1], g.stride, g.padding, g.kernel)


# ---------------------------------------------------------------------------
# The ops: gradients of every order through the closed family

def conv2d_tensor_reference(x, w, stride, padding):
    """conv2d from plain Tensor ops (zero-pad, gather windows, contract): differentiable to any order."""
    B, C_in, H, W = x.shape
    KH, KW = w.shape[2:]
    rows = ops.concatenate([np.zeros((B, C_in, padding, W)), x, np.zeros((B, C_in, padding, W))], axis=2)
    xp = ops.concatenate([np.zeros((B, C_in, H + 2 * padding, padding)), rows,
                          np.zeros((B, C_in, H + 2 * padding, padding))], axis=3)
    H_out, W_out = C.output_size((H, W), (KH, KW), stride, padding)
    i = (np.arange(H_out) * stride)[:, None, None, None] + np.arange(KH)[None, None, :, None]
    j = (np.arange(W_out) * stride)[None, :, None, None] + np.arange(KW)[None, None, None, :]
    windows = xp[:, :, i, j]                                             # (B, C_in, H_out, W_out, KH, KW)
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(B, H_out * W_out, -1)
    y = cols @ w.reshape(w.shape[0], -1).T                               # (B, positions, C_out)
    return y.transpose(0, 2, 1).reshape(B, w.shape[0], H_out, W_out)


OP_CASES = [((2, 2, 5, 4), (3, 2, 3, 2), 2, 1), ((2, 1, 6, 6), (2, 1, 3, 3), 1, 0),
            ((1, 2, 4, 5), (2, 2, 2, 3), 3, 2)]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", OP_CASES)
def test_op_matches_the_tensor_reference(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    np.testing.assert_allclose(C.conv2d(x, w, stride, padding).data,
                               conv2d_tensor_reference(Tensor(x), Tensor(w), stride, padding).data,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", OP_CASES)
def test_op_with_bias_to_first_and_second_order(x_shape, w_shape, stride, padding, relu):
    """tanh after the op, so that the second order has something to check. With relu=True no
    output of these generic inputs lies within the differences' step of relu's kink at 0."""
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=(w_shape[0], 1, 1))

    def f(x, w, b):
        return ops.tanh(C.conv2d(x, w, stride, padding, b, relu=relu))
    check_grad(f, [x, w, b])
    check_grad(f, [x, w, b], order=2)


def test_third_order_matches_the_tensor_reference():
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(2, 2, 5, 4)), requires_grad=True)
    w = Tensor(rng.normal(size=(3, 2, 3, 2)), requires_grad=True)

    def third(conv):
        y = (conv(x, w, 2, 1) ** 3).sum()
        gx, = grad(y, [x], create_graph=True)
        gw, = grad((gx * gx).sum(), [w], create_graph=True)
        return grad(gw.sum(), [x, w])
    for a, b in zip(third(C.conv2d), third(conv2d_tensor_reference)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-10)


def test_first_order_rule_equals_the_recorded_rules(rng):
    """The fast path on arrays (create_graph=False) against the Tensor rules (create_graph=True)."""
    arrays = rng.normal(size=(3, 2, 6, 5)), rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(4, 1, 1))
    weights = rng.normal(size=(3, 4, 3, 3))

    def gradients(create_graph):
        ts = [Tensor(a, requires_grad=True) for a in arrays]
        y = C.conv2d(ts[0], ts[1], 2, 1, ts[2], relu=True)
        return [g.data for g in grad((y * weights).sum(), ts, create_graph=create_graph)]
    for fast, recorded in zip(gradients(False), gradients(True)):
        np.testing.assert_allclose(fast, recorded, rtol=1e-13, atol=1e-13)


def test_op_errors_name_the_argument():
    with pytest.raises(ValueError, match="same C_in"):
        C.conv2d(np.zeros((2, 3, 6, 6)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="must be \\(B, C_in, H, W\\)"):
        C.conv2d(np.zeros((2, 3, 6)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        C.conv2d(np.zeros((2, 3, 6, 6)), np.zeros((4, 3, 3, 3)), stride=0)
    with pytest.raises(ValueError, match="exceeds the padded input"):
        C.conv2d(np.zeros((2, 3, 6, 2)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"bias must be a \(4, 1, 1\) float64 array, got \(4,\)"):
        C.conv2d(np.zeros((2, 3, 6, 6)), np.zeros((4, 3, 3, 3)), bias=np.zeros(4))
    with pytest.raises(TypeError, match="dtype"):
        C.conv2d(np.zeros((2, 3, 6, 6), np.float32), np.zeros((4, 3, 3, 3)))


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 2), (2, 2), (3, 0)])
def test_one_more_axis_an_image_one_row_high_is_conv1d(rng, stride, padding):
    """The lesson in one test: with a kernel one row high, the output row that reads the image's
    only row (padded row `padding`, so output row padding // stride) is conv1d's output."""
    from mnist1d_np.conv1d import conv1d
    x, w = rng.normal(size=(3, 2, 11)), rng.normal(size=(4, 2, 3))
    y = C.conv2d(x[:, :, None, :], w[:, :, None, :], stride, padding).data
    np.testing.assert_allclose(y[:, :, padding // stride], conv1d(x, w, stride, padding).data, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("samples", [1, 2])
def test_the_forwards_kept_columns_give_the_weight_gradient(rng, monkeypatch, samples):
    """A training step's forward keeps its im2col matrices (one per chunk); the weight gradient
    from them equals the one that builds them again."""
    x, w, gy, g = conv_arrays(rng, "stride1_pad0")
    rows, positions = x.shape[1] * w.shape[2] * w.shape[3], gy.shape[2] * gy.shape[3]
    monkeypatch.setattr(C, "_CHUNK", samples * rows * positions)
    kept = []
    C.forward(x, w, g.stride, g.padding, keep=kept)
    assert len(kept) == len(C._chunks(x.shape[0], rows, positions)) > 1
    np.testing.assert_array_equal(C.grad_weight(x, gy, g.stride, g.padding, g.kernel, kept),
                                  C.grad_weight(x, gy, g.stride, g.padding, g.kernel))
    t = Tensor(w, requires_grad=True)
    gw, = grad((C.conv2d(x, t, g.stride, g.padding) * gy).sum(), [t])
    np.testing.assert_allclose(gw.data, C.grad_weight(x, gy, g.stride, g.padding, g.kernel), rtol=1e-13, atol=1e-13)
