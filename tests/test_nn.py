"""Layers, kernel-backed ops and the paper's models."""
import numpy as np
import pytest

from mnist1d_np import Tensor, grad, nn, ops
from mnist1d_np.conv1d import conv1d
from mnist1d_np.gru import gru, gru_reference
from mnist1d_np.learned_activation import scalar_mlp, scalar_mlp_reference
from mnist1d_np.gradcheck import check_grad


@pytest.mark.parametrize("name, count", [("logistic", 410), ("mlp", 15210), ("cnn", 5210), ("gru", 5134)])
def test_paper_models_parameter_counts_and_shapes(name, count):
    model = nn.make_model(name, np.random.default_rng(0))
    assert nn.count_parameters(model) == count
    assert model(Tensor(np.zeros((7, 40)))).shape == (7, 10)


def test_make_model_rejects_unknown_name_and_bad_rng():
    with pytest.raises(ValueError, match="model must be one of"):
        nn.make_model("resnet", np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(3, 4, rng=0)


def test_initialisers_use_pytorch_default_bounds():
    rng = np.random.default_rng(0)
    layer = nn.Linear(40, 100, rng)
    assert 0.95 / np.sqrt(40) < np.abs(layer.weight.data).max() <= 1 / np.sqrt(40)
    conv = nn.Conv1d(25, 25, 3, rng)
    assert 0.95 / np.sqrt(75) < np.abs(conv.weight.data).max() <= 1 / np.sqrt(75)
    g = nn.GRU(1, 6, rng, bidirectional=True)
    values = np.concatenate([p.data.ravel() for p in g.parameters().values()])
    assert 0.95 / np.sqrt(6) < np.abs(values).max() <= 1 / np.sqrt(6)
    assert abs(values.mean()) < 0.05  # centred, as U(-b, b)


def test_same_seed_same_model_and_dtype():
    a = nn.make_model("cnn", np.random.default_rng(5), dtype=np.float32)
    b = nn.make_model("cnn", np.random.default_rng(5), dtype=np.float32)
    for (na, pa), (nb, pb) in zip(a.parameters().items(), b.parameters().items()):
        assert na == nb and pa.dtype == np.float32 and np.array_equal(pa.data, pb.data)
    assert a(Tensor(np.ones((2, 40), np.float32))).dtype == np.float32


def test_flatten_parameters_gives_views():
    model = nn.make_model("mlp", np.random.default_rng(0))
    before = {k: p.data.copy() for k, p in model.parameters().items()}
    flat = nn.flatten_parameters(model)
    assert flat.size == 15210
    assert all(np.array_equal(before[k], p.data) for k, p in model.parameters().items())
    flat[:] = 0
    assert all(not p.data.any() for p in model.parameters().values())


def test_load_parameters_checks_names_and_shapes():
    model = nn.make_model("logistic", np.random.default_rng(0))
    values = {k: np.ones(p.shape) for k, p in model.parameters().items()}
    model.load_parameters(values)
    assert model.linear.weight.data.sum() == 400
    with pytest.raises(ValueError, match="shape"):
        model.load_parameters({**values, "linear.bias": np.ones(3)})
    with pytest.raises(ValueError, match="names differ"):
        model.load_parameters({"linear.weight": values["linear.weight"]})


# ---------------------------------------------------------------- conv1d

def conv1d_reference(x, w, stride, padding):
    """conv1d from plain Tensor ops: zero-pad, gather windows, contract."""
    zeros = np.zeros(x.shape[:2] + (padding,), x.dtype)
    xp = ops.concatenate([zeros, x, zeros], axis=2)
    size, length = w.shape[2], xp.shape[2]
    starts = np.arange(0, length - size + 1, stride)
    windows = xp[:, :, starts[:, None] + np.arange(size)]           # (B, C_in, L_out, K)
    cols = windows.transpose(0, 2, 1, 3).reshape(x.shape[0], len(starts), -1)
    return (cols @ w.reshape(w.shape[0], -1).T).transpose(0, 2, 1)  # (B, C_out, L_out)


CONV_CASES = [((3, 1, 40), (4, 1, 5), 2, 1), ((2, 3, 10), (5, 3, 3), 2, 1),
              ((2, 2, 9), (3, 2, 1), 1, 0), ((2, 2, 12), (2, 2, 4), 3, 2)]


@pytest.fixture(params=["blocks", "blas"])
def conv_path(request, monkeypatch):
    """Run a test on both of conv1d's paths (the numba block kernels, the BLAS products)."""
    import mnist1d_np.conv1d as conv_module
    monkeypatch.setattr(conv_module, "BLAS_FROM", 0 if request.param == "blas" else 1 << 62)
    return request.param


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv1d_matches_reference_to_first_and_second_order(x_shape, w_shape, stride, padding, conv_path):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    np.testing.assert_allclose(conv1d(x, w, stride, padding).data,
                               conv1d_reference(Tensor(x), Tensor(w), stride, padding).data,
                               rtol=1e-10, atol=1e-12)

    def f(x, w):
        return ops.tanh(conv1d(x, w, stride, padding))
    check_grad(f, [x, w])
    check_grad(f, [x, w], order=2)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv1d_with_bias_adds_it_and_differentiates_to_second_order(x_shape, w_shape, stride, padding, conv_path):
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=(w_shape[0], 1))
    np.testing.assert_allclose(conv1d(x, w, stride, padding, b).data,
                               conv1d(x, w, stride, padding).data + b, rtol=1e-14, atol=1e-14)

    def f(x, w, b):
        return ops.tanh(conv1d(x, w, stride, padding, b))
    check_grad(f, [x, w, b])
    check_grad(f, [x, w, b], order=2)


def test_conv1d_third_order_matches_reference(conv_path):
    rng = np.random.default_rng(2)
    x, w = Tensor(rng.normal(size=(2, 2, 8)), requires_grad=True), Tensor(rng.normal(size=(3, 2, 3)), requires_grad=True)

    def third(conv):
        y = (conv(x, w, 2, 1) ** 3).sum()
        gx, = grad(y, [x], create_graph=True)
        gw, = grad((gx * gx).sum(), [w], create_graph=True)
        return grad(gw.sum(), [x, w])
    for a, b in zip(third(conv1d), third(conv1d_reference)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-10)


def test_conv1d_errors():
    with pytest.raises(ValueError, match="conv1d"):
        conv1d(np.zeros((2, 3, 10)), np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match="stride"):
        conv1d(np.zeros((2, 3, 10)), np.zeros((4, 3, 3)), stride=0)
    with pytest.raises(ValueError, match="exceeds"):
        conv1d(np.zeros((2, 3, 2)), np.zeros((4, 3, 5)))
    with pytest.raises(ValueError, match=r"bias must be a \(4, 1\) float64 array, got \(4,\)"):
        conv1d(np.zeros((2, 3, 10)), np.zeros((4, 3, 3)), bias=np.zeros(4))


# ---------------------------------------------------------------- GRU

def gru_params(rng, input_size, hidden, dtype=np.float64):
    shapes = [(3 * hidden, input_size), (3 * hidden, hidden), (3 * hidden,), (3 * hidden,)]
    return [Tensor(rng.uniform(-0.5, 0.5, s).astype(dtype), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_kernel_matches_autodiff_reference(bidirectional):
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(4, 7, 2)), requires_grad=True)
    fwd, rev = gru_params(rng, 2, 5), (gru_params(rng, 2, 5) if bidirectional else None)
    out, ref = gru(x, fwd, rev), gru_reference(x, fwd, rev)
    np.testing.assert_allclose(out.data, ref.data, rtol=0, atol=1e-12)
    seed = rng.normal(size=out.shape)
    inputs = [x] + fwd + (rev or [])
    for a, b in zip(grad(out, inputs, seed), grad(ref, inputs, seed)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)


def test_gru_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 1))
    params = [p.data for p in gru_params(rng, 1, 3) + gru_params(rng, 1, 3)]
    check_grad(lambda x, *p: gru(x, p[:4], p[4:]), [x] + params)


def test_gru_second_differentiation_raises():
    rng = np.random.default_rng(5)
    x = Tensor(rng.normal(size=(2, 3, 1)))
    params = gru_params(rng, 1, 2)
    g = grad((gru(x, params) ** 2).sum(), params, create_graph=True)
    with pytest.raises(NotImplementedError, match="gru"):
        grad(sum((gi * gi).sum() for gi in g), params)


def test_gru_float32_stays_float32():
    rng = np.random.default_rng(6)
    params = gru_params(rng, 1, 3, np.float32)
    out = gru(Tensor(rng.normal(size=(2, 5, 1)).astype(np.float32)), params)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grad(out.sum(), params))


def test_flatten_and_sequential():
    model = nn.Sequential(nn.Conv1d(1, 2, 3, np.random.default_rng(0)), ops.relu, nn.Flatten())
    assert model(Tensor(np.ones((4, 1, 10)))).shape == (4, 16)
    assert list(model.parameters()) == ["0.weight", "0.bias"]


# ---------------------------------------------------------------- learned elementwise activation

def scalar_mlp_inputs(rng, hidden=7, shape=(3, 5)):
    theta = np.concatenate([rng.uniform(-1, 1, hidden), rng.uniform(-1, 1, hidden),
                            rng.uniform(-0.5, 0.5, hidden), [0.1]])
    return rng.normal(size=shape), theta, rng.uniform(-0.1, 0.1, hidden)


def test_scalar_mlp_matches_reference_with_gradients():
    rng = np.random.default_rng(8)
    z, theta, noise = scalar_mlp_inputs(rng)
    np.testing.assert_allclose(scalar_mlp(z, theta, noise).data,
                               scalar_mlp_reference(z, theta, noise).data, rtol=1e-12, atol=1e-14)
    check_grad(lambda z, th: ops.tanh(scalar_mlp(z, th, noise)), [z, theta])


def test_scalar_mlp_second_order_through_the_z_gradient():
    """The metalearning pattern: differentiate a z-gradient with respect to z and theta."""
    rng = np.random.default_rng(9)
    z0, theta0, noise = scalar_mlp_inputs(rng)
    target = rng.normal(size=z0.shape)

    def meta(fn):
        z, theta = Tensor(z0, requires_grad=True), Tensor(theta0, requires_grad=True)
        inner = ((fn(z, theta, noise) - target) ** 2).sum()
        gz = grad(inner, z, create_graph=True)
        stepped = z - 0.3 * gz                       # one unrolled SGD step on z
        outer = (ops.tanh(fn(stepped, theta, noise)) * target).sum() + (gz ** 2).sum()
        return [g.data for g in grad(outer, [z, theta])]
    for a, b in zip(meta(scalar_mlp), meta(scalar_mlp_reference)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_scalar_mlp_refuses_unsupported_orders():
    rng = np.random.default_rng(10)
    z0, theta0, _ = scalar_mlp_inputs(rng)
    z, theta = Tensor(z0, requires_grad=True), Tensor(theta0, requires_grad=True)
    g_theta = grad(scalar_mlp(z, theta).sum(), theta, create_graph=True)
    with pytest.raises(NotImplementedError, match="scalar_mlp"):
        grad((g_theta ** 2).sum(), z)
    gz = grad(scalar_mlp(z, theta).sum(), z, create_graph=True)
    gzz = grad((gz ** 2).sum(), z, create_graph=True)
    with pytest.raises(NotImplementedError, match="scalar_mlp_slope"):
        grad(gzz.sum(), z)


def test_scalar_mlp_float32_and_shape_errors():
    rng = np.random.default_rng(11)
    z, theta, noise = scalar_mlp_inputs(rng)
    out = scalar_mlp(z.astype(np.float32), theta.astype(np.float32), noise)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, scalar_mlp_reference(z, theta, noise).data, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="theta"):
        scalar_mlp(z, theta[:-1])
    with pytest.raises(ValueError, match="noise"):
        scalar_mlp(z, theta, noise[:3])


def test_torch_generator_replays_pytorchs_stream():
    # torch.manual_seed(0); torch.rand(3) -> tensor([0.4963, 0.7682, 0.0885])
    draws = nn.TorchGenerator(0).uniform(0.0, 1.0, 3)
    assert draws.dtype == np.float32
    np.testing.assert_array_equal(np.round(draws, 4), np.float32([0.4963, 0.7682, 0.0885]))
    # Layers draw in PyTorch's order: Linear's (out, in) weight row by row, then its bias.
    layer = nn.Linear(3, 2, nn.TorchGenerator(7))
    stream = nn.TorchGenerator(7)
    weight = stream.uniform(-1 / np.sqrt(3), 1 / np.sqrt(3), (2, 3))
    np.testing.assert_array_equal(layer.weight.data, weight.T.astype(np.float64))
    np.testing.assert_array_equal(layer.bias.data, stream.uniform(-1 / np.sqrt(3), 1 / np.sqrt(3), 2))
    # Conv1d: the (out, in, kernel) weight, then the bias, each in C order.
    conv, stream = nn.Conv1d(2, 3, 4, nn.TorchGenerator(7)), nn.TorchGenerator(7)
    np.testing.assert_array_equal(conv.weight.data, stream.uniform(-1 / np.sqrt(8), 1 / np.sqrt(8), (3, 2, 4)))
    np.testing.assert_array_equal(conv.bias.data.ravel(), stream.uniform(-1 / np.sqrt(8), 1 / np.sqrt(8), 3))


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 1.5, "0"])
def test_torch_generator_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32 - 1\]"):
        nn.TorchGenerator(seed)


# ---------------------------------------------------------------- one graph, several grad calls
# A fused backward computes every input gradient at once; it must recompute when
# the same graph is differentiated again with another upstream gradient.

def test_gru_backward_follows_each_grad_calls_upstream_gradient():
    rng = np.random.default_rng(12)
    x = Tensor(rng.normal(size=(3, 4, 2)), requires_grad=True)
    params = gru_params(rng, 2, 3)
    fused, reference = gru(x, params), gru_reference(x, params)
    for _ in range(2):
        upstream = rng.normal(size=fused.shape)
        got = grad(fused, [x] + list(params), grad_outputs=upstream)
        want = grad(reference, [x] + list(params), grad_outputs=upstream)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)


def test_learned_activation_follows_each_grad_calls_upstream_gradient():
    rng = np.random.default_rng(13)
    z0, theta0, noise = scalar_mlp_inputs(rng)
    upstreams = [rng.normal(size=z0.shape) for _ in range(2)]
    z, theta = Tensor(z0, requires_grad=True), Tensor(theta0, requires_grad=True)
    results = []
    for fn in (scalar_mlp, scalar_mlp_reference):
        y = fn(z, theta, noise)
        gz = grad(y.sum(), z, create_graph=True)      # the slope g'(z), itself differentiable
        results.append([[g.data for g in grad(out, [z, theta], grad_outputs=upstream)]
                        for upstream in upstreams for out in (y, gz)])
    for got, want in zip(*results):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_convnet_features_feed_its_linear_layer(rng):
    model = nn.make_model("cnn", np.random.default_rng(3))
    x = Tensor(rng.normal(size=(6, 40)))
    features = model.features(x)
    assert features.shape == (6, 125)
    np.testing.assert_allclose(model.linear(features).data, model(x).data, rtol=1e-12)


# ---------------------------------------------------------------- the image models

@pytest.mark.parametrize("name, count", [("logistic", 7850), ("mlp", 89610), ("cnn", 15960), ("gru", 4666)])
def test_image_models_parameter_counts_and_shapes(name, count):
    """28 x 28 images row by row: logistic 784*10 + 10; MLP 784*100 + 100 + 100*100 + 100 + 1010;
    CNN 650 + 5650 + 5650 + 400*10 + 10; GRU 2 * (18*28 + 18*6 + 36) + 336*10 + 10."""
    model = nn.make_model(name, np.random.default_rng(0), dtype=np.float32, image_shape=(28, 28))
    assert nn.count_parameters(model) == count
    y = model(Tensor(np.zeros((3, 784), np.float32)))
    assert y.shape == (3, 10) and y.dtype == np.float32


def test_image_models_read_rows_and_pixels_where_they_should(rng):
    cnn = nn.make_model("cnn", rng, image_shape=(28, 28))
    assert cnn.features(Tensor(np.zeros((2, 784)))).shape == (2, 400)       # 25 channels x 4 x 4
    gru = nn.make_model("gru", rng, image_shape=(12, 20))
    assert gru.gru.W_ih.shape == (18, 20) and gru.linear.weight.shape == (12 * 12, 10)  # 12 steps of 20 pixels
    x = rng.random((2, 240))
    np.testing.assert_array_equal(gru(Tensor(x)).data,
                                  gru.linear(gru.gru(Tensor(x.reshape(2, 12, 20))).reshape(2, -1)).data)


def test_make_model_rejects_a_bad_image_shape():
    for bad in [(28,), (28, 0), (28, 2.5), "28x28"]:
        with pytest.raises(ValueError, match="image_shape must be \\(height, width\\)"):
            nn.make_model("mlp", np.random.default_rng(0), image_shape=bad)
    with pytest.raises(ValueError, match="at least \\(3, 3\\)"):
        nn.make_model("cnn", np.random.default_rng(0), image_shape=(2, 28))
    smallest = nn.make_model("cnn", np.random.default_rng(0), image_shape=(3, 3))
    assert smallest(Tensor(np.zeros((1, 9)))).shape == (1, 10)


def test_conv2d_initialiser_uses_pytorch_default_bounds():
    conv = nn.Conv2d(25, 8, 3, np.random.default_rng(0))
    assert conv.weight.shape == (8, 25, 3, 3) and conv.bias.shape == (8, 1, 1)
    values = np.concatenate([conv.weight.data.ravel(), conv.bias.data.ravel()])
    assert 0.95 / np.sqrt(225) < np.abs(values).max() <= 1 / np.sqrt(225)


# ---------------------------------------------------------------- FLOPs per example

def test_flops_of_two_small_conv2d_layers_by_hand(rng):
    """Conv2d 2->3 (3x3, s2, p1) on 5 x 5 -> 3 x 3, then 3->4 (2x2) -> 2 x 2, then linear 16 -> 5.
    Multiply-adds: 9 positions * 3 channels * (2*9) = 486; 4 * 4 * (3*4) = 192; 16 * 5 = 80.
    FLOPs: 2 per multiply-add; backward: weight gradients (the same again), and input gradients
    for all but the first layer, whose input is the data."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, rng, stride=2, padding=1), ops.relu, nn.Conv2d(3, 4, 2, rng),
                          nn.Flatten(), nn.Linear(16, 5, rng))
    count = nn.flops_per_example(model, (2, 5, 5))
    assert count == {"forward": 2 * (486 + 192 + 80), "backward": 2 * (486 + 192 + 80) + 2 * (192 + 80)}


def test_flops_of_the_paper_models_by_hand():
    """ConvNet: lengths 40 -> 19 -> 10 -> 5, multiply-adds 19*25*5 + 10*25*75 + 5*25*75 + 125*10.
    GRUNet: per step and direction 18*1 (input) + 18*6 (recurrent), 40 steps, 2 directions, then 480*10;
    the recurrent products need their input gradient (the previous state's) even in the first layer."""
    conv = 19 * 25 * 5 + 10 * 25 * 75 + 5 * 25 * 75 + 125 * 10
    assert nn.flops_per_example(nn.make_model("cnn", np.random.default_rng(0))) == {
        "forward": 2 * conv, "backward": 2 * conv + 2 * (conv - 19 * 25 * 5)}
    from_input, recurrent, linear = 40 * 2 * 18, 40 * 2 * 18 * 6, 480 * 10
    assert nn.flops_per_example(nn.make_model("gru", np.random.default_rng(0))) == {
        "forward": 2 * (from_input + recurrent + linear),
        "backward": 2 * (from_input + recurrent + linear) + 2 * (recurrent + linear)}
    assert nn.flops_per_example(nn.make_model("mlp", np.random.default_rng(0))) == {
        "forward": 2 * (4000 + 10000 + 1000), "backward": 2 * (4000 + 10000 + 1000) + 2 * (10000 + 1000)}


def test_flops_of_the_image_cnn_by_hand():
    """28 -> 13 -> 7 -> 4: 169*25*25 + 49*25*225 + 16*25*225 + 400*10 multiply-adds."""
    conv = 169 * 25 * 25 + 49 * 25 * 225 + 16 * 25 * 225 + 400 * 10
    model = nn.make_model("cnn", np.random.default_rng(0), dtype=np.float32, image_shape=(28, 28))
    assert nn.flops_per_example(model, (784,)) == {"forward": 2 * conv, "backward": 2 * conv + 2 * (conv - 169 * 625)}


def test_flops_refuses_a_layer_it_cannot_count(rng):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(3), requires_grad=True)

        def forward(self, x):
            return x * self.scale
    with pytest.raises(NotImplementedError, match="Scaled has parameters but no flops"):
        nn.flops_per_example(nn.Sequential(nn.Linear(4, 3, rng), Scaled()), (4,))


def test_flops_counting_leaves_no_trace(rng):
    """Counting inside no_grad gives the same numbers, and afterwards calls are not recorded."""
    model = nn.make_model("mlp", rng)
    from mnist1d_np import no_grad
    with no_grad():
        inside = nn.flops_per_example(model)
    assert inside == nn.flops_per_example(model)
    model(Tensor(np.zeros((1, 40))))
    assert getattr(nn._traced, "calls", None) is None
