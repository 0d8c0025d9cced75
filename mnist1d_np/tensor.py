"""The autodiff engine: ``Tensor``, the graph, ``grad`` and ``no_grad``.

A ``Tensor`` is an ndarray (``.data``) plus the node of the op that made it.
The node holds the op's name, the inputs that need gradients and their
backward rules (vector-Jacobian products, "vjps"). ``grad`` walks the graph
iteratively from the outputs back to the inputs and returns gradients; it
never stores them on the tensors.

Backward rules are written with Tensor ops, so when ``create_graph=True`` the
backward pass is itself recorded and can be differentiated again, to any
order. With ``create_graph=False`` (ordinary training) nothing is recorded
and the walk carries plain ndarrays: an op may give a ``first_order`` rule
on arrays (the hot ops do: ``ops.linear``, ``conv1d``, ``cross_entropy``,
and add, mul, matmul, ...), and the others' Tensor rules run unrecorded on
thin wrappers.

This module knows nothing of the op library: ``ops`` builds on ``Tensor`` and,
when imported, gives it its operators (``+``, ``@``, ``.sum()``, ...). New ops
are made with ``make_op`` (see its docstring).

Memory: a node refers to its inputs, never to its own output, so graphs hold
no reference cycles and are freed by reference counting alone.
"""
import contextlib
import gc
import itertools
import operator
import threading

import numpy as np

__all__ = ["Tensor", "grad", "no_grad", "is_grad_enabled", "make_op", "cycle_collector_paused"]


class _GradMode(threading.local):
    """Whether ops record graph nodes (off inside ``no_grad`` and first-order backward),
    one flag per thread: two threads (a dask worker's, say) train independently."""

    def __init__(self):
        self.enabled = True


_mode = _GradMode()


def is_grad_enabled():
    """True when ops record graph nodes."""
    return _mode.enabled


@contextlib.contextmanager
def _recording(enabled):
    previous = _mode.enabled
    _mode.enabled = enabled
    try:
        yield
    finally:
        _mode.enabled = previous


def no_grad():
    """Context manager (or ``@no_grad()`` decorator) that stops graph recording."""
    return _recording(False)


@contextlib.contextmanager
def cycle_collector_paused():
    """Context manager or decorator: Python's cyclic garbage collector is off inside.

    For building a large graph, such as an unrolled training run. The engine
    makes no reference cycles, so reference counting alone frees its graphs;
    the cyclic collector only costs time there, since each of its full passes
    visits every live object, and 200 unrolled steps keep ~10^5 alive
    (chapter 04: ~20 % of an outer step). Used as a decorator of the function
    that builds and drops the graph, it also frees the graph before the
    collector resumes (else the collector's first pass would visit all of
    it). The previous state is restored. The collector is one per process:
    in threads, pause it around the whole work, not in each thread.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Node:
    """How a Tensor was made: op name, inputs needing gradients, either one
    vjp each (a tuple) or one joint vjp for all of them (a callable), and
    optionally a joint rule on raw arrays for first-order walks."""
    __slots__ = ("op", "inputs", "vjps", "first_order")

    def __init__(self, op, inputs, vjps, first_order=None):
        self.op = op
        self.inputs = inputs
        self.vjps = vjps
        self.first_order = first_order


_next_seq = itertools.count().__next__


class Tensor:
    """An ndarray that remembers how it was computed.

    ``Tensor(array, requires_grad=False)``: ``array`` is anything
    ``np.asarray`` accepts (no copy is made). Only floating tensors can
    require gradients. Operators and methods mirror NumPy; comparisons
    return plain bool ndarrays and are not differentiable.
    """
    __slots__ = ("data", "requires_grad", "_node", "_seq", "__weakref__")
    # ndarray (op) Tensor must defer to Tensor's reflected operators rather
    # than broadcast the Tensor as an opaque object.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False):
        if type(data) is not np.ndarray:
            data = data.data if isinstance(data, Tensor) else np.asarray(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self._node = None
        self._seq = _next_seq()  # creation order: inputs always precede outputs

    # ---- array attributes
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, prefix="Tensor(", separator=", ")
        if self._node is not None:
            return f"Tensor({body}, op={self._node.op})"
        return f"Tensor({body}, requires_grad=True)" if self.requires_grad else f"Tensor({body})"

    def numpy(self):
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self):
        return self.data.item()

    def __float__(self):
        return float(self.data.item())

    def __bool__(self):
        return bool(self.data)

    def detach(self):
        """A leaf Tensor sharing this one's data, cut from the graph."""
        return Tensor(self.data)

    # ---- comparisons: plain bool arrays, no gradient
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    def __eq__(self, other):
        return self.data == _raw(other)

    def __ne__(self, other):
        return self.data != _raw(other)

    # Elementwise == would otherwise make Tensors unhashable; hash by identity.
    __hash__ = object.__hash__


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


# ---------------------------------------------------------------- recording

def _record(name, out_data, inputs, vjps, first_order=None):
    """The Tensor ``out_data`` as the output of op ``name``.

    Keeps only the inputs that require gradients (and their vjps), so the
    backward pass never computes gradients nobody asked for.
    """
    out = Tensor(out_data)
    if _mode.enabled:
        for x in inputs:
            if x.requires_grad:
                out._node = _node_for(name, inputs, vjps, first_order)
                out.requires_grad = out._node is not None
                break
    return out


def _node_for(name, inputs, vjps, first_order):
    """The graph node of an op's output, or None if no input needs a gradient."""
    if callable(vjps) or first_order is not None:  # joint rules see all inputs: keep them all
        return _Node(name, tuple(inputs), vjps, first_order)
    if len(inputs) == 1:  # the common case; its input is known to require grad
        return None if vjps[0] is None else _Node(name, inputs, vjps)
    needs_grad = [i for i, x in enumerate(inputs) if x.requires_grad and vjps[i] is not None]
    if len(needs_grad) == len(inputs):
        return _Node(name, tuple(inputs), tuple(vjps))
    if needs_grad:
        return _Node(name, tuple(inputs[i] for i in needs_grad), tuple(vjps[i] for i in needs_grad))
    return None


def make_op(name, out_data, inputs, vjps, differentiable_backward=True, first_order=None):
    """Record a custom op and return its output Tensor.

    name: used in error messages. out_data: the forward result (ndarray).
    inputs: Tensors (wrap arrays with ``ops.as_tensor``). vjps: the backward,
    either one rule per input (``None`` for an input that gets no gradient,
    an index say), or one *joint* rule that returns a gradient for every
    input at once (for a fused kernel whose single backward pass yields them
    all). Every gradient has its input's shape and dtype.

    (a) Differentiable (the default): the rules are written with Tensor ops
    and called as ``vjp(out, g)`` with the output Tensor and the upstream
    gradient Tensor. Close over the *inputs* you need, never over the output
    (it is passed in): that would make a reference cycle. Higher-order
    gradients then work through the op::

        def cube(x):
            x = ops.as_tensor(x)
            return make_op("cube", x.data ** 3, (x,), (lambda out, g: g * 3 * x * x,))

    A rule may call other custom ops (conv1d's input gradient is a transposed
    convolution, an op with its own backward, and so on).

    (b) First-order only, ``differentiable_backward=False``: the rules take
    and return ndarrays, ``vjp(out_data, g_data)``, e.g. a numba kernel's
    backward. First-order gradients through it are exact. With
    ``create_graph=True`` its gradients hang on a node that raises
    ``NotImplementedError("NAME: backward is not differentiable ...")`` if
    anything differentiates through them: nothing is ever silently treated
    as a constant.

    (c) Optionally, a fast path for first-order walks (``create_graph=False``,
    ordinary training): ``first_order(out_data, g_data)`` returns one ndarray
    per input, or None for an input that does not require a gradient. It is
    used instead of ``vjps`` whenever the backward is not recorded, so it
    must compute the same gradients (test it against them).

    A joint rule may also return None for an input that does not require a
    gradient. A rule that returns the wrong shape or dtype raises a
    RuntimeError naming the op. Inside a rule, ``is_grad_enabled()`` says
    whether the backward pass is being recorded. Gradients may share memory with each other and
    with ``grad_outputs``: treat them as read-only.
    """
    inputs = tuple(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input {i} is a {type(x).__name__}, not a Tensor")
    if callable(vjps):
        if not differentiable_backward:
            vjps = _first_order_only_joint(name, vjps, inputs)
    else:
        vjps = tuple(vjps)
        if len(inputs) != len(vjps):
            raise ValueError(f"{name}: got {len(inputs)} inputs but {len(vjps)} backward rules")
        if not differentiable_backward:
            vjps = tuple(None if v is None else _first_order_only(name, v, inputs) for v in vjps)
    return _record(name, np.asarray(out_data), inputs, vjps, first_order)


def _first_order_only(name, raw_vjp, inputs):
    """Wrap a raw-array backward rule; poison its result when create_graph=True."""
    def vjp(out, g):
        return _first_order_result(name, raw_vjp(out.data, g.data), inputs, g)
    return vjp


def _first_order_only_joint(name, raw_joint_vjp, inputs):
    def joint_vjp(out, g):
        return tuple(_first_order_result(name, grad_data, inputs, g)
                     for grad_data in raw_joint_vjp(out.data, g.data))
    return joint_vjp


def _first_order_result(name, grad_data, inputs, g):
    if not _mode.enabled:
        return Tensor(grad_data)
    # The true gradient depends on the op's inputs and on g, but we cannot
    # differentiate it: hang it on a node that refuses if ever walked.
    refuse = _refusal(name)
    return _record(name + ".backward", grad_data, inputs + (g,), (refuse,) * (len(inputs) + 1))


def _refusal(name):
    def refuse(out, g):
        raise NotImplementedError(
            f"{name}: backward is not differentiable (first-order only); "
            f"a higher-order gradient through {name} is not available")
    return refuse


# ---------------------------------------------------------------- the walk

def grad(outputs, inputs, grad_outputs=None, create_graph=False):
    """Gradients of ``outputs`` with respect to ``inputs``.

    outputs: a Tensor or a list of Tensors (their gradients add up).
    inputs: a Tensor, or a list, tuple or dict of Tensors.
    grad_outputs: the upstream gradient for each output (same shapes);
      required when an output has more than one element.
    create_graph: record the backward pass so the result can be
      differentiated again.
    Returns one gradient Tensor per input, in the same structure. An input
    the outputs do not depend on gets zeros of its shape and dtype.
    """
    flat_inputs, rebuild = _flatten_inputs(inputs)
    outputs, seeds = _seed(outputs, grad_outputs, create_graph)
    previous, _mode.enabled = _mode.enabled, create_graph
    try:
        if create_graph:
            found = _backward(outputs, seeds, flat_inputs, _tensor_vjps)
        else:  # nothing is recorded: the walk carries raw arrays
            found = _backward(outputs, [s.data for s in seeds], flat_inputs, _array_vjps)
    finally:
        _mode.enabled = previous
    return rebuild([_result(found.get(x), x) for x in flat_inputs])


def _result(g, x):
    if g is None:
        return Tensor(np.zeros_like(x.data))
    return g if isinstance(g, Tensor) else Tensor(g)


def _flatten_inputs(inputs):
    """A flat list of input Tensors and a function restoring the structure."""
    if isinstance(inputs, Tensor):
        return [inputs], lambda grads: grads[0]
    if isinstance(inputs, dict):
        keys = list(inputs)
        flat = [inputs[k] for k in keys]
        rebuild = lambda grads: dict(zip(keys, grads))
    elif isinstance(inputs, (list, tuple)):
        flat = list(inputs)
        rebuild = tuple if isinstance(inputs, tuple) else list
    else:
        raise TypeError(f"grad: inputs must be a Tensor or a list, tuple or dict of Tensors, "
                        f"got {type(inputs).__name__}")
    for x in flat:
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: every input must be a Tensor, got {type(x).__name__}")
    return flat, rebuild


def _seed(outputs, grad_outputs, create_graph):
    """Outputs as a list, with one upstream gradient Tensor each."""
    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    if not any(y.requires_grad for y in outputs):
        raise RuntimeError("grad: no output requires a gradient: was it computed under no_grad(), "
                           "or from inputs that do not require gradients?")
    if grad_outputs is None:
        for y in outputs:
            if y.size != 1:
                raise ValueError(f"grad: output of shape {y.shape} is not a scalar; "
                                 "pass grad_outputs")
        return outputs, [Tensor(np.ones_like(y.data)) for y in outputs]
    seeds = [grad_outputs] if single else list(grad_outputs)
    if len(seeds) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(seeds)} grad_outputs")
    seeds = [_as_seed(s, y, create_graph) for s, y in zip(seeds, outputs)]
    return outputs, seeds


def _as_seed(seed, output, create_graph):
    seed = seed if isinstance(seed, Tensor) and create_graph else Tensor(_raw(seed))
    if seed.shape != output.shape:
        raise ValueError(f"grad: grad_outputs shape {seed.shape} does not match "
                         f"output shape {output.shape}")
    return seed.astype(output.dtype) if seed.dtype != output.dtype else seed


def _backward(outputs, seeds, inputs, input_gradients):
    """Walk the graph from outputs to inputs; return {input: gradient}.

    input_gradients(node, t, g, relevant) gives the gradients of a node's
    inputs: ``_tensor_vjps`` (recorded walks) or ``_array_vjps`` (first order).
    Tensors key the walk's dicts and sets directly: they hash by identity,
    which is faster than calling id() on every visit.
    """
    wanted = set(inputs)
    order, relevant = _relevant_order(outputs, wanted)
    pending = {}
    for y, seed in zip(outputs, seeds):
        if y in relevant:
            pending[y] = pending[y] + seed if y in pending else seed
    found = {}
    for t in reversed(order):
        g = pending.pop(t, None)  # dropped as soon as it is consumed
        if g is None:
            continue
        if t in wanted:
            found[t] = g
        node = t._node
        if node is not None:
            for x, gx in zip(node.inputs, input_gradients(node, t, g, relevant)):
                if x in relevant:
                    _add_gradient(pending, node, x, gx)
    return found


def _tensor_vjps(node, t, g, relevant):
    """The gradients (Tensors; None where not needed) of node's inputs, by its Tensor rules."""
    if callable(node.vjps):  # a joint rule: every input's gradient from one call
        return node.vjps(t, g)
    return [vjp(t, g) if vjp is not None and x in relevant else None
            for x, vjp in zip(node.inputs, node.vjps)]


def _array_vjps(node, t, g, relevant):
    """The same on raw arrays: the op's first_order rule, or its Tensor rules
    run unrecorded on a thin wrapper."""
    if node.first_order is not None:
        return node.first_order(t.data, g)
    return [None if gx is None else gx.data for gx in _tensor_vjps(node, t, Tensor(g), relevant)]


def _add_gradient(pending, node, x, gx):
    if gx is None or gx.shape != x.data.shape or gx.dtype != x.data.dtype:
        _wrong_gradient(node.op, gx, x)
    previous = pending.get(x)
    pending[x] = gx if previous is None else previous + gx


def _wrong_gradient(op, g, x):
    if g is None:
        raise RuntimeError(f"{op}: backward returned no gradient for an input that needs one")
    raise RuntimeError(f"{op}: backward returned a {g.dtype} gradient of shape {g.shape} "
                       f"for a {x.dtype} input of shape {x.shape}")


def _relevant_order(outputs, wanted):
    """The tensors that lie on a path from a wanted input to an output, as a
    list in topological order (inputs before the tensors computed from them)
    and as a set.

    Two passes, no recursion (a recursive search overflows on the 10^5-deep
    graphs of unrolled training loops). First, every tensor the outputs
    reach, by an explicit stack. Then those in creation order, which is a
    topological order (an op's inputs exist before its output): a tensor is
    relevant if it is wanted or one of its inputs is relevant, and its
    inputs have been decided by then. Sorting by creation number is one C
    call; it replaces the bookkeeping of a post-order search.

    A tensor created before every wanted input cannot depend on any of them,
    so the search does not go behind it. This keeps each step of an unrolled
    loop from re-walking the whole history (which made it quadratic).
    """
    oldest = min((x._seq for x in wanted), default=0)
    reached, stack = set(), [y for y in outputs if y.requires_grad]
    while stack:
        t = stack.pop()
        if t not in reached:
            reached.add(t)
            if t._node is not None and t._seq > oldest:
                stack.extend(t._node.inputs)
    order, relevant = [], set()
    for t in sorted(reached, key=_creation_number):
        if t in wanted or _any_relevant(t._node, relevant):
            relevant.add(t)
            order.append(t)
    return order, relevant


_creation_number = operator.attrgetter("_seq")


def _any_relevant(node, relevant):
    if node is not None:
        for x in node.inputs:
            if x in relevant:
                return True
    return False

