"""The engine: Tensor API, grad's contract, custom ops, higher orders, deep graphs, memory."""
import gc
import weakref

import numpy as np
import pytest

import mnist1d_np
from mnist1d_np import Tensor, grad, no_grad, ops
from mnist1d_np.gradcheck import check_grad
from mnist1d_np.tensor import is_grad_enabled, make_op


# ---------------------------------------------------------------- the Tensor API

def test_array_attributes():
    t = Tensor(np.arange(12.0).reshape(3, 4))
    assert (t.shape, t.ndim, t.dtype, t.size, len(t)) == ((3, 4), 2, np.float64, 12, 3)
    assert t.numpy() is t.data
    assert Tensor(2.5).item() == 2.5 and float(Tensor([1.5])) == 1.5
    assert t.T.shape == (4, 3) and t.transpose(1, 0).shape == (4, 3)
    assert t.reshape(2, 6).shape == t.reshape((2, 6)).shape == (2, 6)


def test_repr_shows_values_and_origin():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(x) == "Tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "Tensor([2., 4.], op=mul)"


def test_comparisons_are_plain_bool_arrays_and_hash_is_identity():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([3.0, 2.0, 1.0])
    for result, expected in [(a < b, [1, 0, 0]), (a <= b, [1, 1, 0]), (a > 2, [0, 0, 1]),
                             (a >= b, [0, 1, 1]), (a == b, [0, 1, 0]), (a != b, [1, 0, 1])]:
        assert type(result) is np.ndarray and result.dtype == bool
        np.testing.assert_array_equal(result, np.array(expected, dtype=bool))
    assert len({a, b, a}) == 2


def test_ndarray_on_the_left_defers_to_tensor():
    x = Tensor(np.ones(3), requires_grad=True)
    for y in (np.full(3, 2.0) * x, np.ones(3) + x, np.ones(3) - x, np.ones(3) / x,
              np.ones((2, 3)) @ x):
        assert isinstance(y, Tensor) and y.requires_grad


def test_detach_and_indexing():
    x = Tensor(np.arange(6.0), requires_grad=True)
    assert not x.detach().requires_grad and x.detach().data is x.data
    np.testing.assert_array_equal(x[1:3].data, [1.0, 2.0])
    np.testing.assert_array_equal(x[Tensor(np.array([0, 0]))].data, [0.0, 0.0])


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        Tensor(np.arange(3), requires_grad=True)
    assert not Tensor(np.arange(3)).requires_grad


def test_import_loads_numpy_only():
    import subprocess
    import sys
    code = ("import sys, mnist1d_np; "
            "print([m for m in ('numba', 'matplotlib', 'scipy', 'IPython', 'jupytext', 'mnist1d_np.notebooks') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert mnist1d_np.__version__


# ---------------------------------------------------------------- grad's contract

def test_grad_returns_the_structure_it_was_given():
    a, b = Tensor(2.0, requires_grad=True), Tensor(3.0, requires_grad=True)
    y = a * b
    assert grad(y, a).item() == 3.0
    assert [g.item() for g in grad(y, [a, b])] == [3.0, 2.0]
    assert isinstance(grad(y, (a, b)), tuple)
    grads = grad(y, {"b": b, "a": a})
    assert list(grads) == ["b", "a"] and grads["a"].item() == 3.0


def test_unrelated_input_gets_zeros_of_its_shape_and_dtype():
    x = Tensor(np.ones(3), requires_grad=True)
    unused = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    g = grad((x * x).sum(), unused)
    assert g.shape == (2, 2) and g.dtype == np.float32 and not g.data.any()


def test_non_scalar_output_needs_grad_outputs():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="not a scalar; pass grad_outputs"):
        grad(x * 2, x)
    np.testing.assert_array_equal(grad(x * 2, x, grad_outputs=np.arange(3.0)).data, [0, 2, 4])
    with pytest.raises(ValueError, match="does not match output shape"):
        grad(x * 2, x, grad_outputs=np.ones(4))


def test_several_outputs_add_their_gradients():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    g = grad([(x * x).sum(), x * 3], x, grad_outputs=[1.0, np.ones(2)])
    np.testing.assert_array_equal(g.data, 2 * x.data + 3)


def test_fan_out_accumulates_and_intermediates_can_be_inputs():
    x = Tensor(1.5, requires_grad=True)
    h = x * x
    y = h * h + h + x
    g_x, g_h = grad(y, [x, h])
    assert g_h.item() == pytest.approx(2 * h.item() + 1)
    assert g_x.item() == pytest.approx(4 * 1.5 ** 3 + 2 * 1.5 + 1)


def test_grads_require_grad_only_with_create_graph():
    x = Tensor(np.ones(2), requires_grad=True)
    y = (ops.exp(x)).sum()
    assert not grad(y, x).requires_grad and grad(y, x)._node is None
    assert grad(y, x, create_graph=True).requires_grad
    assert not grad((x * np.ones(2)).sum(), x, create_graph=True).requires_grad


def test_first_order_backward_builds_no_nodes(monkeypatch):
    from mnist1d_np import tensor
    built, node = [], tensor._Node
    monkeypatch.setattr(tensor, "_Node", lambda *args: built.append(args[0]) or node(*args))
    x = Tensor(np.ones(3), requires_grad=True)
    y = (ops.tanh(x) * x).sum()
    built.clear()
    grad(y, x)
    assert built == []


def test_inputs_not_needing_grad_get_no_backward_work(monkeypatch):
    calls = []
    data = Tensor(np.ones((2, 3)))
    w = Tensor(np.ones((3, 1)), requires_grad=True)
    other = Tensor(np.ones((2, 1)), requires_grad=True)
    y = (data @ w + other).sum()
    monkeypatch.setattr(ops, "matmul", lambda *args: calls.append(args) or np.matmul(*args))
    grad(y, other)
    assert calls == []  # w's gradient is never computed: only `other` was asked for


def test_no_grad_context_and_decorator_restore_state():
    x = Tensor(1.0, requires_grad=True)
    with no_grad():
        assert not (x * 2).requires_grad and not is_grad_enabled()
    assert is_grad_enabled()

    @no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad and is_grad_enabled()
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError
    assert is_grad_enabled() and (x * 2).requires_grad


# ---------------------------------------------------------------- dtypes

def test_constants_take_the_tensor_dtype():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    for y in (x * 0.5, x + np.float64(1), x * np.array(2.0), 1 - x, 2.0 ** x, x / 3,
              ops.where(x > 0, x, 0.0), ops.maximum(x, np.zeros(3)), ops.tanh(x)):
        assert y.dtype == np.float32
        assert grad(y.sum(), x).dtype == np.float32


def test_mixed_precision_gradients_come_back_in_each_inputs_dtype():
    x32 = Tensor(np.ones(3, np.float32), requires_grad=True)
    x64 = Tensor(np.ones((2, 1)), requires_grad=True)
    y = x32 * x64
    assert y.dtype == np.float64
    g32, g64 = grad(y.sum(), [x32, x64])
    assert (g32.dtype, g64.dtype) == (np.float32, np.float64)
    np.testing.assert_array_equal(g32.data, [2, 2, 2])


# ---------------------------------------------------------------- error messages

@pytest.mark.parametrize("make_error, message", [
    (lambda: Tensor(np.ones(3)) + Tensor(np.ones(4)),
     r"add: shapes \(3,\) and \(4,\) cannot be broadcast"),
    (lambda: ops.mul(np.ones((2, 3)), Tensor(np.ones(2))), r"mul: shapes \(2, 3\) and \(2,\)"),
    (lambda: Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2))),
     r"matmul: shapes \(3, 4\) and \(5, 2\) are not aligned"),
    (lambda: Tensor(np.ones(4)) @ Tensor(np.ones(3)),
     r"matmul: shapes \(4,\) and \(3,\) are not aligned"),
    (lambda: ops.reshape(np.ones((3, 4)), (5,)), r"reshape: cannot reshape \(3, 4\) into \(5,\)"),
    (lambda: ops.broadcast_to(np.ones(3), (4,)),
     r"broadcast_to: shape \(3,\) cannot be broadcast to \(4,\)"),
    (lambda: ops.sum_to(np.ones((3, 4)), (2,)),
     r"sum_to: shape \(3, 4\) cannot be summed to \(2,\)"),
    (lambda: ops.concatenate([np.ones((2, 3)), np.ones((2, 4))]), r"concatenate: shapes"),
    (lambda: ops.cross_entropy(np.ones((4, 3)), np.zeros(5, int)),
     r"cross_entropy: logits \(4, 3\)"),
])
def test_shape_errors_name_the_op_and_shapes(make_error, message):
    with pytest.raises(ValueError, match=message):
        make_error()


def test_backward_with_wrong_shape_names_the_op():
    x = Tensor(np.ones(3), requires_grad=True)
    y = make_op("sloppy", x.data * 2, (x,), (lambda out, g: ops.sum(g),))
    message = r"sloppy: backward returned .* shape \(\) .* shape \(3,\)"
    with pytest.raises(RuntimeError, match=message):
        grad(y.sum(), x)


# ---------------------------------------------------------------- custom ops

def cube(x):
    """A differentiable custom op: backward written with Tensor ops."""
    x = ops.as_tensor(x)
    return make_op("cube", x.data ** 3, (x,), (lambda out, g: g * 3 * x * x,))


def first_order_cube(x):
    """The same op from raw-array functions: first order only."""
    x = ops.as_tensor(x)
    return make_op("first_order_cube", x.data ** 3, (x,),
                   (lambda out, g: g * 3 * x.data ** 2,), differentiable_backward=False)


def test_differentiable_custom_op_has_exact_first_and_second_derivatives():
    x = np.array([0.5, -1.2, 2.0])
    check_grad(cube, [x])
    check_grad(cube, [x], order=2)


def test_first_order_op_gives_exact_gradients():
    x = np.array([0.5, -1.2, 2.0])
    check_grad(first_order_cube, [x])


def test_differentiating_through_a_first_order_op_twice_raises():
    x = Tensor(np.array([0.5, -1.2]), requires_grad=True)
    g = grad(first_order_cube(ops.tanh(x)).sum(), x, create_graph=True)  # no error yet
    assert g.requires_grad
    np.testing.assert_allclose(g.data, 3 * np.tanh(x.data) ** 2 * (1 - np.tanh(x.data) ** 2))
    message = r"first_order_cube: backward is not differentiable \(first-order only\)"
    with pytest.raises(NotImplementedError, match=message):
        grad(g.sum(), x)


def test_second_derivative_elsewhere_in_the_graph_still_works():
    x = Tensor(np.array([0.5, -1.2]), requires_grad=True)
    w = Tensor(np.array([0.3, 0.7]), requires_grad=True)
    loss = first_order_cube(x).sum() + (ops.exp(w) * w).sum()
    g_x, g_w = grad(loss, [x, w], create_graph=True)
    np.testing.assert_allclose(grad(g_w.sum(), w).data, np.exp(w.data) * (w.data + 2))


def test_make_op_checks_its_arguments():
    with pytest.raises(TypeError, match="bad: input 0 is a ndarray"):
        make_op("bad", np.ones(2), (np.ones(2),), (None,))
    with pytest.raises(ValueError, match="bad: got 1 inputs but 2 backward rules"):
        make_op("bad", np.ones(2), (Tensor(np.ones(2)),), (None, None))


# ---------------------------------------------------------------- higher orders

def test_third_derivative_of_tanh_is_exact():
    x = Tensor(np.array([-1.3, 0.2, 0.9]), requires_grad=True)
    first = grad(ops.tanh(x).sum(), x, create_graph=True)
    second = grad(first.sum(), x, create_graph=True)
    third = grad(second.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(first.data, 1 - t ** 2, rtol=1e-14)
    np.testing.assert_allclose(second.data, -2 * t * (1 - t ** 2), rtol=1e-14)
    np.testing.assert_allclose(third.data, -2 * (1 - t ** 2) * (1 - 3 * t ** 2), rtol=1e-13)


def test_fourth_derivative_of_exp_of_square():
    # d^4/dx^4 exp(x^2) = (16x^4 + 48x^2 + 12) exp(x^2)
    x = Tensor(0.7, requires_grad=True)
    derivative = ops.exp(x * x)
    for _ in range(4):
        derivative = grad(derivative, x, create_graph=True)
    assert derivative.item() == pytest.approx((16 * 0.7 ** 4 + 48 * 0.49 + 12) * np.exp(0.49),
                                              rel=1e-13)


# ---------------------------------------------------------------- deep graphs and memory

def test_million_node_chain_differentiates_without_recursion():
    x = Tensor(1.0, requires_grad=True)
    y = x
    gc.disable()  # the cyclic collector rescans the growing graph; the engine needs none of it
    try:
        for _ in range(10 ** 6):
            y = -y
        assert grad(y, x).item() == 1.0
        del y
    finally:
        gc.enable()


def build_and_differentiate(create_graph):
    """A small network; returns weakrefs to an intermediate and to the gradient."""
    w = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    hidden = ops.tanh(np.ones((2, 4)) @ w)
    loss = ops.cross_entropy(hidden, np.array([0, 2]))
    g = grad(loss, w, create_graph=create_graph)
    if create_graph:
        grad((g * g).sum(), w)
    return weakref.ref(hidden), weakref.ref(g), weakref.ref(loss)


@pytest.mark.parametrize("create_graph", [False, True])
def test_graphs_are_freed_by_reference_counting_alone(create_graph):
    gc.collect()
    gc.disable()
    try:
        refs = build_and_differentiate(create_graph)
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def test_graphs_leave_no_cyclic_garbage():
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        build_and_differentiate(False)
        build_and_differentiate(True)
        gc.collect()
        engine_garbage = [o for o in gc.garbage
                          if type(o).__module__.startswith("mnist1d_np")
                          or getattr(o, "__module__", "").startswith("mnist1d_np")]
        assert engine_garbage == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_upstream_gradients_are_released_as_soon_as_consumed():
    alive_when_called = []
    seen = []

    def spy(x):
        def vjp(out, g):
            alive_when_called.append(sum(r() is not None for r in seen))
            seen.append(weakref.ref(g))
            return g * 1.0
        return make_op("spy", x.data.copy(), (x,), (vjp,))

    x = Tensor(np.ones(1000), requires_grad=True)
    y = x
    for _ in range(20):
        y = spy(y)
    grad(y.sum(), x)
    assert max(alive_when_called) <= 1  # at most the previous op's gradient, never a pile


def test_poisoned_gradients_are_freed_too():
    gc.collect()
    gc.disable()
    try:
        x = Tensor(np.ones(3), requires_grad=True)
        hidden = first_order_cube(ops.tanh(x))
        g = grad(hidden.sum(), x, create_graph=True)
        refs = [weakref.ref(hidden), weakref.ref(g)]
        del x, hidden, g
        assert [r() for r in refs] == [None, None]
    finally:
        gc.enable()


def test_grad_of_a_loss_computed_under_no_grad_raises():
    w = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        loss = (w * w).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        grad(loss, w)


# ---------------------------------------------------------------- the first-order fast path

def doubled_with_spies(x, calls):
    """2x as a custom op with both backward paths, each logging its use."""
    def vjp(out, g):
        calls.append("tensor rule")
        return g * 2

    def on_arrays(out, g):
        calls.append("array rule")
        assert type(g) is np.ndarray
        return (g * 2,)
    return make_op("doubled", x.data * 2, (x,), (vjp,), first_order=on_arrays)


def test_first_order_rule_runs_only_when_nothing_is_recorded():
    x, calls = Tensor(np.arange(3.0), requires_grad=True), []
    np.testing.assert_array_equal(grad(doubled_with_spies(x, calls).sum(), x).data, [2, 2, 2])
    assert calls == ["array rule"]
    calls.clear()
    g = grad(doubled_with_spies(x, calls).sum(), x, create_graph=True)
    assert calls == ["tensor rule"]
    np.testing.assert_array_equal(g.data, [2, 2, 2])


def test_a_rule_that_leaves_out_a_needed_gradient_is_an_error():
    x = Tensor(np.ones(2), requires_grad=True)
    y = make_op("forgetful", x.data * 2, (x,), lambda out, g: (None,))
    with pytest.raises(RuntimeError, match="forgetful: backward returned no gradient for an input that needs one"):
        grad(y.sum(), x)


def test_cycle_collector_paused_restores_the_collector():
    from mnist1d_np.tensor import cycle_collector_paused
    assert gc.isenabled()
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()

    @cycle_collector_paused()
    def inside():
        return gc.isenabled()
    assert inside() is False and gc.isenabled()
    gc.disable()
    try:
        with cycle_collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_recording_is_per_thread():
    """A dask worker runs tasks in threads: one thread inside no_grad (an evaluation)
    must not stop another thread's graph (a training step) from being recorded."""
    import threading
    inside, done, results = threading.Event(), threading.Event(), {}

    def evaluating():
        with no_grad():
            inside.set()
            done.wait(timeout=30)

    def training():
        inside.wait(timeout=30)
        try:
            w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
            results["grad"] = grad((w * w).sum(), w).data
        finally:
            done.set()
    threads = [threading.Thread(target=evaluating), threading.Thread(target=training)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    np.testing.assert_array_equal(results["grad"], [2.0, 4.0])
