"""Pooling layers (nn.MaxPool1d, nn.AvgPool1d, nn.LPPool1d, nn.MaxPool2d): values,
shapes, gradients against finite differences, ties, and bad arguments."""
import numpy as np
import pytest
from numpy_references import max_pool2d_reference

from mnist1d_np import Tensor, grad, nn
from mnist1d_np.gradcheck import check_grad

LAYERS = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d, "l2": nn.LPPool1d}
REDUCE = {"max": lambda w: w.max(-1), "avg": lambda w: w.mean(-1),
          "l2": lambda w: np.sqrt((w ** 2).sum(-1))}
# (length, kernel_size, stride): side by side, overlapping, with gaps, a ragged end, one window
WINDOWS = [(8, 2, None), (9, 3, 1), (10, 2, 3), (7, 2, 2), (5, 5, None), (6, 4, 2)]


def windows_np(x, size, stride):
    """The reference: every window as its own row, (B, C, L_out, size)."""
    starts = range(0, x.shape[-1] - size + 1, stride)
    return np.stack([x[..., s:s + size] for s in starts], axis=-2)


def pooled(name, x, kernel_size, stride=None):
    return LAYERS[name](kernel_size, stride)(Tensor(np.asarray(x, dtype=np.float64))).data


def gradient(layer, x, upstream):
    """d sum(upstream * layer(x)) / dx."""
    t = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    return grad((layer(t) * upstream).sum(), t).data


# ---------------------------------------------------------------- forward

def test_hand_made_windows_side_by_side():
    x = [[[1.0, 3.0, 2.0, 5.0, -1.0, 4.0, 0.0]]]  # length 7, k = 2: the last entry is left out
    np.testing.assert_array_equal(pooled("max", x, 2), [[[3, 5, 4]]])
    np.testing.assert_array_equal(pooled("avg", x, 2), [[[2, 3.5, 1.5]]])
    np.testing.assert_allclose(pooled("l2", x, 2), [[np.sqrt([10, 29, 17])]], rtol=1e-15)


def test_hand_made_overlapping_windows():
    x = [[[1.0, 3.0, 2.0, 5.0]], [[-4.0, -2.0, -3.0, 0.0]]]  # two examples, k = 3, stride 1
    np.testing.assert_array_equal(pooled("max", x, 3, 1), [[[3, 5]], [[-2, 0]]])
    np.testing.assert_allclose(pooled("avg", x, 3, 1), [[[2, 10 / 3]], [[-3, -5 / 3]]], rtol=1e-15)
    np.testing.assert_allclose(pooled("l2", x, 3, 1), [[np.sqrt([14, 38])], [np.sqrt([29, 13])]],
                               rtol=1e-15)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("length, kernel_size, stride", WINDOWS)
def test_matches_numpy_windows_and_shapes(name, length, kernel_size, stride):
    x = np.random.default_rng(7).normal(size=(2, 3, length))
    y = pooled(name, x, kernel_size, stride)
    assert y.shape == (2, 3, (length - kernel_size) // (stride or kernel_size) + 1)
    np.testing.assert_allclose(y, REDUCE[name](windows_np(x, kernel_size, stride or kernel_size)),
                               rtol=1e-14)


@pytest.mark.parametrize("name", LAYERS)
def test_stride_defaults_to_kernel_size_and_float32_stays_float32(name):
    layer = LAYERS[name](4)
    assert (layer.kernel_size, layer.stride) == (4, 4)
    x = Tensor(np.random.default_rng(0).normal(size=(3, 2, 40)).astype(np.float32), requires_grad=True)
    y = layer(x)
    assert y.shape == (3, 2, 10) and y.dtype == np.float32
    assert grad(y.sum(), x).dtype == np.float32


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("length, kernel_size, stride", WINDOWS)
def test_gradients_match_finite_differences(name, length, kernel_size, stride):
    # Normal draws: no ties and no all-zero window, where max and l2 are not differentiable.
    x = np.random.default_rng(3).normal(size=(2, 3, length))
    check_grad(lambda t: LAYERS[name](kernel_size, stride)(t), [x])


@pytest.mark.parametrize("length, kernel_size, stride", WINDOWS)
def test_l2_hessian_vector_products_match_finite_differences(length, kernel_size, stride):
    x = np.random.default_rng(3).normal(size=(2, 3, length))
    check_grad(lambda t: nn.LPPool1d(kernel_size, stride)(t), [x], order=2)


@pytest.mark.parametrize("name", ["max", "avg"])
@pytest.mark.parametrize("length, kernel_size, stride", WINDOWS)
def test_max_and_avg_gradients_are_constant_so_the_second_derivative_is_zero(name, length, kernel_size, stride):
    """Their gradient is a fixed selection or 1/k weights: differentiating it
    again (create_graph) records nothing that depends on x."""
    x = Tensor(np.random.default_rng(3).normal(size=(2, 3, length)), requires_grad=True)
    y = LAYERS[name](kernel_size, stride)(x)
    g = grad((y * np.random.default_rng(4).normal(size=y.shape)).sum(), x, create_graph=True)
    assert not g.requires_grad


def test_l2_second_derivative_is_not_zero():
    """The order-2 check above is only informative if the Hessian is not zero."""
    x = Tensor(np.array([[[1.0, 2.0, -0.5, 3.0]]]), requires_grad=True)
    g = grad(nn.LPPool1d(2)(x).sum(), x, create_graph=True)
    hessian_row = grad(g[0, 0, 0], x).data  # d/dx (x0 / |(x0, x1)|) = (x1^2, -x0 x1) / |.|^3
    np.testing.assert_allclose(hessian_row[0, 0, :2], np.array([4.0, -2.0]) / 5 ** 1.5, rtol=1e-14)


def test_l2_all_zero_window_gives_zero_and_a_zero_gradient():
    """As PyTorch's lp_pool1d: a window of zeros (common after a ReLU) pools to 0
    with gradient 0, not nan (sqrt's own gradient at 0 is infinite)."""
    x = [[[0.0, 0.0, 3.0, 4.0]]]
    layer = nn.LPPool1d(2)
    np.testing.assert_array_equal(pooled("l2", x, 2), [[[0.0, 5.0]]])
    np.testing.assert_allclose(gradient(layer, x, np.array([2.0, 1.0])), [[[0, 0, 0.6, 0.8]]], rtol=1e-15)
    check_grad(layer, [np.array(x)])  # the central difference of |x| at 0 is 0 too


def test_avg_gradient_is_one_over_k_for_every_window_an_entry_is_in():
    # k = 3, stride 1 on length 5: entry i is in min(i + 1, 3, 5 - i) windows
    g = gradient(nn.AvgPool1d(3, 1), np.zeros((1, 1, 5)), np.ones(3))
    np.testing.assert_allclose(g, [[[1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]]], rtol=1e-15)


# ---------------------------------------------------------------- max-pooling ties

def test_max_pool_tie_gives_the_whole_gradient_to_the_first_maximum():
    """As PyTorch's max_pool1d (ops.max may share it among the tied entries)."""
    x = [[[2.0, 2.0, 5.0, 1.0, 4.0, 4.0, 7.0, 7.0]]]
    upstream = np.array([1.0, 10.0, 100.0, 1000.0])
    np.testing.assert_array_equal(gradient(nn.MaxPool1d(2), x, upstream),
                                  [[[1, 0, 10, 0, 100, 0, 1000, 0]]])


def test_max_pool_three_way_tie_and_overlapping_windows():
    x = [[[3.0, 3.0, 3.0, 1.0]]]  # k = 3, stride 1: windows (3, 3, 3) and (3, 3, 1)
    g = gradient(nn.MaxPool1d(3, 1), x, np.array([1.0, 10.0]))
    np.testing.assert_array_equal(g, [[[1, 10, 0, 0]]])


def test_max_pool_nan_wins_as_in_pytorch():
    y = pooled("max", [[[np.nan, 1.0, 1.0, np.nan, -np.inf, 2.0]]], 2)
    assert np.isnan(y[0, 0, 0]) and np.isnan(y[0, 0, 1]) and y[0, 0, 2] == 2.0


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=0), "kernel_size must be an integer >= 1, got 0"),
    (dict(kernel_size=2.5), "kernel_size must be an integer >= 1, got 2.5"),
    (dict(kernel_size=True), "kernel_size must be an integer >= 1, got True"),
    (dict(kernel_size=2, stride=0), "stride must be an integer >= 1, got 0"),
    (dict(kernel_size=2, stride=-1), "stride must be an integer >= 1, got -1"),
])
def test_rejects_bad_window(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        LAYERS[name](**kwargs)


@pytest.mark.parametrize("name", LAYERS)
def test_rejects_kernel_longer_than_input(name):
    with pytest.raises(ValueError, match=r"kernel_size must be in \[1, 5\] \(the input length\), got 6"):
        LAYERS[name](6)(Tensor(np.zeros((1, 1, 5))))


def test_lp_pool_supports_only_p_2():
    with pytest.raises(ValueError, match="only p=2 is supported, got p=3"):
        nn.LPPool1d(2, p=3)


# ---------------------------------------------------------------- MaxPool2d: the same with one more axis
# (its gradients against finite differences, first and second order, are in test_ops.py's table)

@pytest.mark.parametrize("shape, kernel_size, stride", [((2, 3, 8, 6), 2, None), ((1, 2, 7, 9), 3, 2),
                                                         ((2, 1, 5, 5), 5, None), ((1, 2, 6, 7), 2, 3)])
def test_max_pool2d_matches_numpy_windows_and_keeps_float32(shape, kernel_size, stride):
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    y = nn.MaxPool2d(kernel_size, stride)(Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, max_pool2d_reference(x, kernel_size, stride or kernel_size))


def test_max_pool2d_tie_gives_the_gradient_to_the_first_maximum_row_by_row():
    """As PyTorch's max_pool2d: windows are scanned row by row, the first maximum wins."""
    x = [[[[1.0, 4.0, 0.0, 0.0],
           [4.0, 4.0, 0.0, 0.0]]]]                 # left window: three tied 4s; right: all tied
    t = Tensor(np.array(x), requires_grad=True)
    g = grad((nn.MaxPool2d(2)(t) * np.array([1.0, 10.0])).sum(), t).data
    np.testing.assert_array_equal(g, [[[[0, 1, 10, 0], [0, 0, 0, 0]]]])


def test_max_pool2d_nan_wins():
    y = nn.MaxPool2d(2)(Tensor(np.array([[[[1.0, 2.0], [np.nan, 0.0]]]]))).data
    assert np.isnan(y[0, 0, 0, 0])


def test_max_pool2d_rejects_bad_windows_and_inputs():
    with pytest.raises(ValueError, match="MaxPool2d: kernel_size must be an integer >= 1, got 0"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match="MaxPool2d: stride must be an integer >= 1, got -1"):
        nn.MaxPool2d(2, -1)
    with pytest.raises(ValueError, match=r"kernel_size in \[1, min\(H, W\)\], got shape \(1, 1, 3, 5\)"):
        nn.MaxPool2d(4)(Tensor(np.zeros((1, 1, 3, 5))))
    with pytest.raises(ValueError, match=r"must be \(B, C, H, W\)"):
        nn.MaxPool2d(2)(Tensor(np.zeros((1, 4, 4))))
