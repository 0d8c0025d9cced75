"""Every op, driven from one table: forward vs NumPy, gradients and Hessian-vector
products vs finite differences (float64), and dtype preservation (float32)."""
import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from numpy_references import conv2d_reference, max_pool2d_reference

from mnist1d_np import Tensor, grad, nn, ops
from mnist1d_np.conv2d import conv2d
from mnist1d_np.gradcheck import check_grad

SCALAR_TO_BATCH = [(), (4,), (3, 4), (2, 3, 4)]
BROADCAST_SHAPES = [(), (4,), (3, 4), (1, 4), (3, 1), (2, 1, 4)]
ALL_BROADCAST_PAIRS = list(itertools.product(BROADCAST_SHAPES, repeat=2))


# ---------------------------------------------------------------- input domains

@dataclass(frozen=True)
class Domain:
    """Uniform on [low, high], kept at least `margin` away from `kinks`."""
    low: float = -2.0
    high: float = 2.0
    kinks: tuple = ()
    margin: float = 0.1

    def sample(self, shape, rng):
        x = rng.uniform(self.low, self.high, size=shape)
        for kink in self.kinks:
            near = np.abs(x - kink) < self.margin
            x = np.where(near, kink + np.copysign(self.margin, x - kink) * 2, x)
        return x


REAL = Domain()
POSITIVE = Domain(0.5, 2.0)        # log, sqrt, bases of powers, divisors
AWAY_FROM_0 = Domain(kinks=(0.0,))  # relu, abs, elu


@dataclass(frozen=True)
class Case:
    name: str
    op: object          # Tensors -> Tensor
    reference: object   # ndarrays -> ndarray
    shapes: list        # one tuple of input shapes per test
    domains: tuple = (REAL,)

    def domain(self, i):
        return self.domains[min(i, len(self.domains) - 1)]


def unary(name, op, reference, domain=REAL, shapes=SCALAR_TO_BATCH):
    return Case(name, op, reference, [(s,) for s in shapes], (domain,))


def binary(name, op, reference, domains=(REAL, REAL)):
    return Case(name, op, reference, ALL_BROADCAST_PAIRS, domains)


def on(name, op, reference, *shapes, domains=(REAL,)):
    return Case(name, op, reference, [shape if isinstance(shape, list) else (shape,)
                                      for shape in shapes], domains)


# ---------------------------------------------------------------- numpy references

def np_logsumexp(x, axis=None, keepdims=False):
    peak = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis, keepdims=True)


def np_cross_entropy(logits, labels):
    return -np.mean(np_log_softmax(logits, 1)[np.arange(len(labels)), labels])


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


def np_scatter_add(x, index, shape):
    out = np.zeros(shape, dtype=x.dtype)
    np.add.at(out, index, x)
    return out


REPEATED = np.array([0, 2, 0, 0])


def through_longdouble(x):
    """x cast up to long double, scaled, and cast back: exact in both directions, so
    finite differences in float64 stay accurate while astype's backward is exercised."""
    return ops.astype(ops.astype(x, np.longdouble) * 3, x.dtype)


def np_normalize(x, axis=-1):
    return x / np.linalg.norm(x, axis=axis, keepdims=True)


COND = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])
LABELS = np.array([2, 0, 4, 2])
MASK = np.array([[True, False, True, False], [False, True, True, False],
                 [True, False, False, True]])

# ---------------------------------------------------------------- the table

CASES = [
    # arithmetic on every broadcast pair (operators and functions both)
    binary("add", lambda a, b: a + b, np.add),
    binary("sub", ops.sub, np.subtract),
    binary("mul", lambda a, b: a * b, np.multiply),
    binary("div", lambda a, b: a / b, np.divide, (REAL, POSITIVE)),
    binary("power", lambda a, b: a ** b, np.power, (POSITIVE, REAL)),
    binary("maximum", ops.maximum, np.maximum),
    binary("minimum", ops.minimum, np.minimum),
    binary("where", lambda a, b: ops.where(COND, a, b), lambda a, b: np.where(COND, a, b)),
    # constants on either side (reflected operators)
    unary("radd_const", lambda x: 1.5 + x, lambda x: 1.5 + x),
    unary("rsub_const", lambda x: 2.0 - x, lambda x: 2.0 - x),
    unary("mul_const", lambda x: x * 0.5, lambda x: x * 0.5),
    unary("rmul_array", lambda x: np.full(4, 0.5) * x, lambda x: np.full(4, 0.5) * x),
    unary("rdiv_const", lambda x: 2.0 / x, lambda x: 2.0 / x, POSITIVE),
    unary("div_const", lambda x: x / 3, lambda x: x / 3),
    unary("pow_int", lambda x: x ** 3, lambda x: x ** 3),
    unary("pow_half", lambda x: x ** 0.5, np.sqrt, POSITIVE),
    unary("rpow_const", lambda x: 2.0 ** x, lambda x: 2.0 ** x),
    unary("neg", lambda x: -x, np.negative),
    unary("square", ops.square, np.square),
    # elementwise functions
    unary("exp", ops.exp, np.exp),
    unary("log", ops.log, np.log, POSITIVE),
    unary("sqrt", ops.sqrt, np.sqrt, POSITIVE),
    unary("tanh", ops.tanh, np.tanh),
    unary("sigmoid", ops.sigmoid, np_sigmoid),
    unary("relu", ops.relu, lambda x: np.maximum(x, 0), AWAY_FROM_0),
    unary("elu", ops.elu, np_elu, AWAY_FROM_0),
    unary("elu_alpha", lambda x: ops.elu(x, 0.7), lambda x: np_elu(x, 0.7), AWAY_FROM_0),
    unary("softplus", ops.softplus, lambda x: np.log1p(np.exp(x))),
    unary("swish", ops.swish, lambda x: x * np_sigmoid(x)),
    unary("abs", abs, np.abs, AWAY_FROM_0),
    unary("clip", lambda x: ops.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7),
          Domain(kinks=(-0.5, 0.7))),
    unary("clip_low", lambda x: ops.clip(x, -0.5, None), lambda x: np.maximum(x, -0.5),
          Domain(kinks=(-0.5,))),
    # reductions
    unary("sum", ops.sum, np.sum),
    unary("sum_method", lambda x: x.sum(), np.sum),
    on("sum_axis0", lambda x: x.sum(axis=0), lambda x: x.sum(axis=0), (3, 4), (2, 3, 4)),
    on("sum_axis-1_keep", lambda x: ops.sum(x, -1, keepdims=True),
       lambda x: x.sum(-1, keepdims=True), (4,), (3, 4), (2, 3, 4)),
    on("sum_axes02", lambda x: x.sum(axis=(0, 2)), lambda x: x.sum(axis=(0, 2)), (2, 3, 4)),
    unary("mean", ops.mean, np.mean),
    on("mean_axis1", lambda x: x.mean(axis=1), lambda x: x.mean(axis=1), (3, 4), (2, 3, 4)),
    on("mean_axes_keep", lambda x: ops.mean(x, (0, 1), keepdims=True),
       lambda x: x.mean((0, 1), keepdims=True), (3, 4), (2, 3, 4)),
    unary("max", ops.max, np.max),
    on("max_axis0", lambda x: x.max(axis=0), lambda x: x.max(axis=0), (3, 4), (2, 3, 4)),
    on("max_axis-1_keep", lambda x: ops.max(x, -1, keepdims=True),
       lambda x: x.max(-1, keepdims=True), (4,), (3, 4), (2, 3, 4)),
    unary("logsumexp", ops.logsumexp, np_logsumexp),
    on("logsumexp_axis0", lambda x: ops.logsumexp(x, 0), lambda x: np_logsumexp(x, 0),
       (4,), (3, 4), (2, 3, 4)),
    on("logsumexp_keep", lambda x: ops.logsumexp(x, -1, keepdims=True),
       lambda x: np_logsumexp(x, -1, keepdims=True), (3, 4), (2, 3, 4)),
    # matrix products
    on("matmul", lambda a, b: a @ b, np.matmul,
       [(3, 4), (4, 2)], [(4,), (4, 2)], [(3, 4), (4,)], [(4,), (4,)], [(2, 3, 4), (4, 5)],
       [(2, 3, 4), (2, 4, 5)], [(1, 3, 4), (2, 4, 2)], [(4,), (2, 4, 3)], [(2, 3, 4), (4,)]),
    on("rmatmul_array", lambda x: np.arange(12.0).reshape(3, 4) @ x,
       lambda x: np.arange(12.0).reshape(3, 4) @ x, (4, 2), (4,)),
    # shapes
    on("reshape", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3), (3, 4), (2, 6)),
    on("reshape_infer", lambda x: ops.reshape(x, (-1, 4)), lambda x: x.reshape(-1, 4),
       (3, 4), (2, 3, 4)),
    on("T", lambda x: x.T, lambda x: x.T, (4,), (3, 4), (2, 3, 4)),
    on("transpose_axes", lambda x: x.transpose(1, 2, 0), lambda x: x.transpose(1, 2, 0),
       (2, 3, 4)),
    on("broadcast_to", lambda x: ops.broadcast_to(x, (2, 3, 4)),
       lambda x: np.broadcast_to(x, (2, 3, 4)), (), (4,), (3, 1), (1, 3, 4)),
    on("sum_to", lambda x: ops.sum_to(x, (3, 1)),
       lambda x: x.reshape(-1, 3, x.shape[-1]).sum(axis=(0, 2))[:, None],
       (2, 3, 4), (3, 4)),
    on("getitem_basic", lambda x: x[1:, ::2], lambda x: x[1:, ::2], (3, 4), (2, 3, 4)),
    on("getitem_int", lambda x: x[1], lambda x: x[1], (4,), (3, 4)),
    on("getitem_newaxis", lambda x: x[..., None, 1], lambda x: x[..., None, 1], (3, 4)),
    on("getitem_repeats", lambda x: x[[0, 2, 0, 0]], lambda x: x[[0, 2, 0, 0]], (4,), (3, 4)),
    on("getitem_pairs", lambda x: x[np.array([0, 1, 1]), np.array([2, 3, 2])],
       lambda x: x[np.array([0, 1, 1]), np.array([2, 3, 2])], (3, 4), (2, 4, 3)),
    on("getitem_mask", lambda x: x[MASK], lambda x: x[MASK], (3, 4)),
    on("concatenate", lambda a, b, c: ops.concatenate([a, b, c]),
       lambda a, b, c: np.concatenate([a, b, c]),
       [(4,), (2,), (3,)], [(1, 4), (3, 4), (2, 4)]),
    on("concatenate_last", lambda a, b: ops.concatenate((a, b), axis=-1),
       lambda a, b: np.concatenate((a, b), axis=-1), [(3, 2), (3, 4)], [(2, 3, 1), (2, 3, 2)]),
    on("stack", lambda a, b, c: ops.stack([a, b, c]), lambda a, b, c: np.stack([a, b, c]),
       [(), (), ()], [(3, 4), (3, 4), (3, 4)]),
    on("stack_axis1", lambda a, b: ops.stack([a, b], axis=1),
       lambda a, b: np.stack([a, b], axis=1), [(3, 4), (3, 4)]),
    on("scatter_add_repeats", lambda x: ops.scatter_add(x, REPEATED, (3,) + x.shape[1:]),
       lambda x: np_scatter_add(x, REPEATED, (3,) + x.shape[1:]), (4,), (4, 2)),
    on("astype_longdouble", through_longdouble, lambda x: (x.astype(np.longdouble) * 3).astype(x.dtype),
       (), (4,), (3, 4)),
    on("roll", lambda x: ops.roll(x, 2, axis=-1), lambda x: np.roll(x, 2, axis=-1),
       (4,), (3, 4)),
    on("roll_multi", lambda x: ops.roll(x, (1, -1), axis=(0, 1)),
       lambda x: np.roll(x, (1, -1), axis=(0, 1)), (3, 4)),
    on("roll_flat", lambda x: ops.roll(x, 5), lambda x: np.roll(x, 5), (3, 4)),
    # neural-network functions
    on("log_softmax", ops.log_softmax, np_log_softmax, (4,), (3, 4), (2, 3, 4)),
    on("log_softmax_axis0", lambda x: ops.log_softmax(x, 0), lambda x: np_log_softmax(x, 0),
       (3, 4), (2, 3, 4)),
    on("softmax", ops.softmax, lambda x: np.exp(np_log_softmax(x)), (4,), (3, 4), (2, 3, 4)),
    on("softmax_axis0", lambda x: ops.softmax(x, 0), lambda x: np.exp(np_log_softmax(x, 0)),
       (3, 4)),
    on("cross_entropy", lambda x: ops.cross_entropy(x, LABELS),
       lambda x: np_cross_entropy(x, LABELS), (4, 5)),
    on("normalize", ops.normalize, np_normalize, (4,), (3, 4), (2, 3, 4)),
    on("normalize_axis0", lambda x: ops.normalize(x, axis=0), lambda x: np_normalize(x, 0),
       (3, 4)),
    # layers with one more axis: the 2-D convolution (a closed family, so every order) and max pooling
    on("conv2d", lambda x, w: conv2d(x, w, 2, 1), lambda x, w: conv2d_reference(x, w, 2, 1),
       [(2, 3, 5, 4), (4, 3, 3, 2)], [(1, 2, 6, 6), (2, 2, 3, 3)]),
    on("conv2d_bias_relu", lambda x, w, b: conv2d(x, w, 1, 0, b, relu=True),
       lambda x, w, b: np.maximum(conv2d_reference(x, w, 1, 0) + b, 0), [(2, 2, 4, 5), (3, 2, 2, 2), (3, 1, 1)]),
    on("max_pool2d", lambda x: nn.MaxPool2d(2)(x), lambda x: max_pool2d_reference(x, 2, 2),
       (2, 3, 4, 5), (1, 2, 6, 6)),
    on("max_pool2d_overlapping", lambda x: nn.MaxPool2d(3, 1)(x), lambda x: max_pool2d_reference(x, 3, 1),
       (2, 2, 5, 4)),
]

PARAMS = [pytest.param(case, shapes, id=f"{case.name}-{'-'.join(map(str, shapes))}")
          for case in CASES for shapes in case.shapes]


def make_inputs(case, shapes, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [case.domain(i).sample(shape, rng).astype(dtype) for i, shape in enumerate(shapes)]


# ---------------------------------------------------------------- the tests

def test_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case, shapes", PARAMS)
def test_forward_matches_numpy(case, shapes):
    xs = make_inputs(case, shapes)
    out = case.op(*[Tensor(x) for x in xs])
    assert isinstance(out, Tensor)
    expected = np.asarray(case.reference(*xs))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case, shapes", PARAMS)
def test_gradient_matches_finite_differences(case, shapes):
    check_grad(case.op, make_inputs(case, shapes), eps=1e-6, rtol=1e-6, atol=1e-8)


def quadratic_of(op):
    """y + y^2 of the op's output: even for a linear op the Hessian is then nonzero,
    and reaching it means differentiating the op's backward rule itself."""
    def f(*xs):
        y = op(*xs)
        return y + y * y
    return f


@pytest.mark.parametrize("case, shapes", PARAMS)
def test_hessian_vector_product_matches_finite_differences(case, shapes):
    check_grad(quadratic_of(case.op), make_inputs(case, shapes), order=2,
               eps=1e-6, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case, shapes", PARAMS)
def test_float32_is_preserved_forward_and_backward(case, shapes):
    xs = [Tensor(x, requires_grad=True) for x in make_inputs(case, shapes, dtype=np.float32)]
    out = case.op(*xs)
    assert out.dtype == np.float32
    projection = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    grads = grad((out * projection).sum(), xs, create_graph=True)
    assert [g.dtype for g in grads] == [np.float32] * len(xs)
    second = grad(sum((g * g).sum() for g in grads) + (out * out).sum(), xs)
    assert [g.dtype for g in second] == [np.float32] * len(xs)
    reference = case.reference(*[x.data.astype(np.float64) for x in xs])
    np.testing.assert_allclose(out.data, reference, rtol=1e-4, atol=1e-5)
    # The float32 gradients are the float64 ones, to float32 precision.
    xs64 = [Tensor(x.data.astype(np.float64), requires_grad=True) for x in xs]
    grads64 = grad((case.op(*xs64) * projection.astype(np.float64)).sum(), xs64)
    for g32, g64 in zip(grads, grads64):
        np.testing.assert_allclose(g32.data, g64.data, rtol=1e-3, atol=1e-4)


def test_cross_entropy_rejects_labels_out_of_range():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        ops.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        ops.cross_entropy(logits, np.array([-1, 0]))


# ---------------------------------------------------------------- ties, kinks and edges
# The table keeps inputs away from kinks; these pin what happens exactly on them.

def gradient(f, x):
    x = Tensor(np.asarray(x, dtype=float), requires_grad=True)
    return grad(f(x), x).data


def test_max_splits_the_gradient_among_tied_maxima():
    np.testing.assert_array_equal(gradient(ops.max, [1.0, 3.0, 3.0, 2.0]), [0, 0.5, 0.5, 0])
    rows = [[1.0, 3.0, 3.0, 3.0], [2.0, 0.0, 2.0, 1.0]]
    np.testing.assert_allclose(gradient(lambda x: ops.max(x, axis=1).sum(), rows),
                               [[0, 1 / 3, 1 / 3, 1 / 3], [0.5, 0, 0.5, 0]])


@pytest.mark.parametrize("op", [ops.maximum, ops.minimum])
def test_maximum_and_minimum_send_ties_to_the_first_argument(op):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 0.0, 5.0]), requires_grad=True)
    ga, gb = grad(op(a, b).sum(), [a, b])
    winner_a = np.array([True, op is ops.maximum, op is ops.minimum])
    np.testing.assert_array_equal(ga.data, winner_a.astype(float))
    np.testing.assert_array_equal(gb.data, (~winner_a).astype(float))


@pytest.mark.parametrize("op", [ops.relu, ops.abs])
def test_relu_and_abs_have_gradient_zero_at_zero(op):
    np.testing.assert_array_equal(gradient(lambda x: op(x).sum(), [-1.0, 0.0, 2.0]),
                                  [0.0 if op is ops.relu else -1.0, 0.0, 1.0])


def test_clip_with_only_an_upper_bound():
    x = np.array([-3.0, 0.2, 0.9])
    np.testing.assert_array_equal(ops.clip(Tensor(x), None, 0.5).data, [-3.0, 0.2, 0.5])
    np.testing.assert_array_equal(gradient(lambda t: ops.clip(t, None, 0.5).sum(), x), [1, 1, 0])


def test_logsumexp_of_an_all_minus_inf_row_is_minus_inf():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, np.log(3.0), -np.inf]])
    with np.errstate(invalid="raise"):  # a nan would raise; log(0) = -inf is fine
        out = ops.logsumexp(Tensor(x), axis=1).data
    np.testing.assert_array_equal(out, [-np.inf, np.log(4.0)])


def test_log_softmax_keeps_minus_inf_entries_and_normalises_the_rest():
    x = np.array([[0.0, -np.inf, np.log(3.0)]])
    with np.errstate(invalid="raise"):  # a nan would raise; log(0) = -inf is fine
        out = ops.log_softmax(Tensor(x)).data
    np.testing.assert_allclose(out, [[np.log(0.25), -np.inf, np.log(0.75)]])


def test_astype_round_trip_through_float32_keeps_second_order():
    """f(x) = sum(y^2), y = float64(float32(x)): gradient 2y, Hessian-vector product 2v."""
    x = Tensor(np.array([0.5, -1.25, 2.0]), requires_grad=True)
    y = ops.astype(ops.astype(x, np.float32), np.float64)
    g, = grad((y * y).sum(), [x], create_graph=True)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g.data, 2 * x.data)
    v = np.array([1.0, -2.0, 0.5])
    hvp, = grad((g * v).sum(), [x])
    np.testing.assert_allclose(hvp.data, 2 * v, rtol=1e-7)


def test_cross_entropy_of_an_empty_batch_is_an_error():
    with pytest.raises(ValueError, match="empty batch"):
        ops.cross_entropy(np.zeros((0, 10)), np.zeros(0, dtype=int))
