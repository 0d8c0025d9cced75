"""Optimizers: the update formulas, both paths (arrays in place, Tensors
functional), and hypergradients through unrolled training."""
import numpy as np
import pytest

from mnist1d_np import Tensor, grad, ops
from mnist1d_np.optim import Optimizer, adam, rmsprop, sgd

RULES = {
    "sgd": lambda: sgd(0.1),
    "sgd_momentum": lambda: sgd(0.1, momentum=0.9),
    "adam": lambda: adam(0.01),
    "adam_weight_decay": lambda: adam(0.01, betas=(0.8, 0.99), weight_decay=0.1),
    "rmsprop": lambda: rmsprop(0.01, mu=0.9),
}


def random_arrays(rng, dtype=np.float64):
    return [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(2).astype(dtype)]


# ---------------------------------------------------------------- formulas

def reference_adam(p, grads, lr, b1, b2, eps, wd):
    """The update exactly as written in torch.optim.Adam's documentation."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def reference_sgd(p, grads, lr, momentum):
    buf = None
    for g in grads:
        buf = g if buf is None else momentum * buf + g
        p = p - lr * buf
    return p


def reference_rmsprop(p, grads, lr, mu, eps=1e-8):
    avg_sq = np.ones_like(p)
    for g in grads:
        avg_sq = mu * avg_sq + (1 - mu) * g ** 2
        p = p - lr * g / (np.sqrt(avg_sq) + eps)
    return p


def run(rule, p, grads):
    params = [p.copy()]
    state = rule.init(params)
    for g in grads:
        params, state = rule.update(params, [g], state)
    return params[0]


@pytest.mark.parametrize("rule, reference", [
    (adam(0.01), lambda p, gs: reference_adam(p, gs, 0.01, 0.9, 0.999, 1e-8, 0.0)),
    (adam(0.03, (0.8, 0.99), 1e-6, 0.1),
     lambda p, gs: reference_adam(p, gs, 0.03, 0.8, 0.99, 1e-6, 0.1)),
    (sgd(0.1), lambda p, gs: reference_sgd(p, gs, 0.1, 0.0)),
    (sgd(0.1, momentum=0.9), lambda p, gs: reference_sgd(p, gs, 0.1, 0.9)),
    (rmsprop(0.01, mu=0.9), lambda p, gs: reference_rmsprop(p, gs, 0.01, 0.9)),
])
def test_updates_match_the_published_formulas(rng, rule, reference):
    p = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(5)]
    np.testing.assert_allclose(run(rule, p, grads), reference(p, grads), rtol=1e-12)


@pytest.mark.parametrize("name", RULES)
def test_array_and_tensor_paths_agree(rng, name):
    arrays = random_arrays(rng)
    tensors = [Tensor(a.copy()) for a in arrays]
    rule = RULES[name]()
    array_state, tensor_state = rule.init(arrays), rule.init(tensors)
    for _ in range(4):
        grads = random_arrays(rng)
        arrays, array_state = rule.update(arrays, grads, array_state)
        tensors, tensor_state = rule.update(tensors, [Tensor(g) for g in grads], tensor_state)
    assert array_state["step"] == tensor_state["step"] == 4
    for a, t in zip(arrays, tensors):
        np.testing.assert_allclose(t.data, a, rtol=1e-13)


@pytest.mark.parametrize("name", RULES)
def test_array_path_updates_in_place(rng, name):
    params = random_arrays(rng)
    originals = [p.copy() for p in params]
    rule = RULES[name]()
    new, _ = rule.update(params, random_arrays(rng), rule.init(params))
    assert all(n is p for n, p in zip(new, params))
    assert not np.allclose(params[0], originals[0])


@pytest.mark.parametrize("name", RULES)
def test_tensor_path_is_purely_functional(rng, name):
    params = {"w": Tensor(rng.standard_normal((3, 2))), "b": Tensor(rng.standard_normal(2))}
    before = {k: p.data.copy() for k, p in params.items()}
    rule = RULES[name]()
    state = rule.init(params)
    buffers_before = {k: v.copy() for k, v in state.items() if k != "step"}
    new, new_state = rule.update(params, {k: Tensor(np.ones(p.shape)) for k, p in params.items()},
                                 state)
    assert list(new) == ["w", "b"] and all(isinstance(p, Tensor) for p in new.values())
    for k in params:
        np.testing.assert_array_equal(params[k].data, before[k])
    assert state["step"] == 0 and new_state["step"] == 1
    for name_, buffer in buffers_before.items():
        assert all(np.array_equal(buffer[k], state[name_][k]) for k in buffer)


@pytest.mark.parametrize("name", RULES)
def test_float32_stays_float32_on_both_paths(rng, name):
    arrays = random_arrays(rng, np.float32)
    rule = RULES[name]()
    arrays, _ = rule.update(arrays, random_arrays(rng, np.float32), rule.init(arrays))
    tensors = [Tensor(a) for a in random_arrays(rng, np.float32)]
    tensors, _ = rule.update(tensors, [Tensor(a) for a in random_arrays(rng, np.float32)],
                             rule.init(tensors))
    assert [a.dtype for a in arrays] + [t.dtype for t in tensors] == [np.float32] * 4


def test_optimizer_wrapper_trains_tensors_in_place(rng):
    x = rng.standard_normal((64, 5))
    labels = np.argmax(x @ rng.standard_normal((5, 3)), axis=1)  # a learnable task
    params = {"w": Tensor(np.zeros((5, 3)), requires_grad=True),
              "b": Tensor(np.zeros(3), requires_grad=True)}
    w = params["w"]
    optimizer = Optimizer(adam(0.05), params)

    def loss():
        return ops.cross_entropy(x @ params["w"] + params["b"], labels)
    first = loss().item()
    for _ in range(50):
        optimizer.step(grad(loss(), params))
    assert params["w"] is w and loss().item() < 0.5 * first
    assert optimizer.state["step"] == 50


# ---------------------------------------------------------------- hypergradients

X = np.random.default_rng(3).standard_normal((16, 4))
LABELS = np.random.default_rng(4).integers(0, 3, 16)
W0 = np.random.default_rng(5).standard_normal((4, 3)) * 0.5
B0 = np.zeros(3)


def training_loss(params):
    return ops.cross_entropy(X @ params[0] + params[1], LABELS)


def mean_unrolled_loss(rule, steps=10):
    """Mean training loss over `steps` updates, differentiable end to end."""
    params = [Tensor(W0, requires_grad=True), Tensor(B0, requires_grad=True)]
    state = rule.init(params)
    total = 0.0
    for _ in range(steps):
        grads = grad(training_loss(params), params, create_graph=True)
        params, state = rule.update(params, grads, state)
        total = total + training_loss(params)
    return total / steps


HYPER = {
    "sgd_lr": (lambda h: sgd(h), 0.5),
    "sgd_momentum_lr": (lambda h: sgd(h, momentum=0.9), 0.2),
    "sgd_momentum_coefficient": (lambda h: sgd(0.2, momentum=h), 0.8),
    "rmsprop_lr": (lambda h: rmsprop(h, mu=0.9), 0.05),
    "rmsprop_mu": (lambda h: rmsprop(0.05, mu=h), 0.9),
    "adam_lr": (lambda h: adam(h), 0.05),
}


@pytest.mark.parametrize("name", HYPER)
def test_hypergradient_matches_finite_differences(name):
    make_rule, value = HYPER[name]
    hyper = Tensor(value, requires_grad=True)
    analytic = grad(mean_unrolled_loss(make_rule(hyper)), hyper).item()
    eps = 1e-6
    numerical = (mean_unrolled_loss(make_rule(value + eps)).item()
                 - mean_unrolled_loss(make_rule(value - eps)).item()) / (2 * eps)
    assert abs(analytic) > 1e-3
    assert analytic == pytest.approx(numerical, rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------- two steps by hand
# A large eps (0.1) makes its placement matter, and two steps test the bias
# correction's step count: a slip in either changes these numbers in the 2nd digit.

def two_steps(rule):
    p = np.array([1.0])
    state = rule.init([p])
    for g in (0.5, -0.25):
        rule.update([p], [np.array([g])], state)
    return p[0]


def test_adam_two_steps_by_hand():
    # step 1: m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25; p = 1 - 0.1 * 0.5 / (0.5 + 0.1)
    p1 = 1 - 0.1 * 0.5 / (0.5 + 0.1)
    # step 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225
    m_hat, v_hat = 0.02 / (1 - 0.9 ** 2), 0.00031225 / (1 - 0.999 ** 2)
    p2 = p1 - 0.1 * m_hat / (np.sqrt(v_hat) + 0.1)
    assert two_steps(adam(0.1, eps=0.1)) == pytest.approx(p2, rel=1e-12)
    assert abs(p2 - 0.8954) < 1e-4  # by hand: 0.91667 - 0.1 * 0.10526 / (0.39523 + 0.1)


def test_rmsprop_two_steps_by_hand():
    # avg_sq starts at 1: step 1 avg = 0.5 + 0.5 * 0.25 = 0.625, step 2 avg = 0.3125 + 0.03125
    p1 = 1 - 0.1 * 0.5 / (np.sqrt(0.625) + 0.1)
    p2 = p1 + 0.1 * 0.25 / (np.sqrt(0.34375) + 0.1)
    assert two_steps(rmsprop(0.1, mu=0.5, eps=0.1)) == pytest.approx(p2, rel=1e-12)


def test_sgd_momentum_two_steps_by_hand():
    # PyTorch's form: buf = g, then buf = 0.9 * 0.5 - 0.25 = 0.2; p = 1 - 0.05 - 0.02
    assert two_steps(sgd(0.1, momentum=0.9)) == pytest.approx(0.93, rel=1e-12)


@pytest.mark.parametrize("as_tensors", [False, True])
def test_sgd_momentum_is_pytorchs_form_on_a_hand_computed_example(as_tensors):
    """torch.optim.SGD: v <- momentum v + g (v starts at g), p <- p - lr v.

    By hand, lr 0.1, momentum 0.9, p0 = (1, -2), g1 = (0.5, 1), g2 = (-1, 2):
    v1 = (0.5, 1),     p1 = (0.95, -2.1);
    v2 = 0.9 v1 + g2 = (-0.55, 2.9),  p2 = p1 - 0.1 v2 = (1.005, -2.39).
    The dampened form (v <- m v + (1 - m) g) would give p1 = (0.995, -2.01).
    """
    wrap = Tensor if as_tensors else np.asarray
    rule = sgd(0.1, momentum=0.9)
    params = [wrap(np.array([1.0, -2.0]))]
    state = rule.init(params)
    expected = [(0.95, -2.1), (1.005, -2.39)]
    for g, want in zip(([0.5, 1.0], [-1.0, 2.0]), expected):
        params, state = rule.update(params, [wrap(np.array(g))], state)
        got = params[0].data if as_tensors else params[0]
        np.testing.assert_allclose(got, want, rtol=1e-14)
    buf = state["buf"][0]
    np.testing.assert_allclose(buf.data if as_tensors else buf, (-0.55, 2.9), rtol=1e-14)


# ---------------------------------------------------------------- Adam's in-place fast path

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_fast_path_is_the_rules_step(rng, dtype, weight_decay):
    """The numba pass (float arrays) against Adam.step, the rule written once, over three steps."""
    rule = adam(0.01, weight_decay=weight_decay)
    params = {"w": rng.normal(size=(30, 7)).astype(dtype), "b": rng.normal(size=7).astype(dtype)}
    expected = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
    state = rule.init(params)
    for step in (1, 2, 3):
        grads = {k: rng.normal(size=p.shape).astype(dtype) for k, p in params.items()}
        assert rule.update(params, grads, state)[0] is params
        expected = {k: rule.step(*expected[k][:1], grads[k], *expected[k][1:], step) for k in params}
    for k, (p, m, v) in expected.items():
        for ours, reference in ((params[k], p), (state["m"][k], m), (state["v"][k], v)):
            assert ours.dtype == dtype
            np.testing.assert_allclose(ours, reference, rtol=2 * np.finfo(dtype).eps, atol=0)


def test_adam_fast_path_steps_aside_for_strided_arrays(rng):
    """A non-contiguous parameter takes the general path, with the same result."""
    rule, base = adam(0.01), rng.normal(size=(6, 4))
    strided, contiguous = base.copy()[:, ::2], np.ascontiguousarray(base[:, ::2])
    g = rng.normal(size=strided.shape)
    for p in (strided, contiguous):
        rule.update([p], [g], rule.init([p]))
    np.testing.assert_allclose(strided, contiguous, rtol=1e-15)
