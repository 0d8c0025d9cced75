"""The autodiff engine: ``Tensor``, the graph, ``grad`` and ``no_grad``.

A ``Tensor`` is an ndarray (``.data``) plus the node of the op that made it.
The node holds the op's name, the inputs that need gradients and one backward
rule (a vector-Jacobian product, "vjp") per such input. ``grad`` walks the
graph iteratively from the outputs back to the inputs and returns gradients;
it never stores them on the tensors.

Backward rules are written with Tensor ops, so when ``create_graph=True`` the
backward pass is itself recorded and can be differentiated again, to any
order. With ``create_graph=False`` the rules run with recording switched off:
no nodes are built, only thin Tensor wrappers around NumPy arrays.

Memory: a node refers to its inputs, never to its own output, so graphs hold
no reference cycles and are freed by reference counting alone.

Defining your own op
--------------------
Both ways go through ``make_op(name, out_data, inputs, vjps,
differentiable_backward=True)``. ``inputs`` are Tensors (wrap arrays with
``ops.as_tensor``); ``vjps[i]`` maps the upstream gradient to the gradient of
``inputs[i]`` (same shape and dtype as ``inputs[i]``), or is ``None`` for an
input that gets no gradient (an index, say).

(a) A differentiable op: the forward runs on raw arrays, the backward rules
are written with Tensor ops. Each rule is called as ``vjp(out, g)`` with the
op's output Tensor ``out`` and the upstream gradient Tensor ``g``. Close over
the *inputs* you need, never over the output: it is passed in. Higher-order
gradients then work through the op::

    def cube(x):
        x = ops.as_tensor(x)
        return make_op("cube", x.data ** 3, (x,),
                       (lambda out, g: g * 3 * x * x,))

A backward rule may itself call other custom ops (conv1d's input gradient is
a transposed convolution, which is an op with its own backward, and so on).

(b) A first-order-only op, from raw-array functions (a fused numba kernel
whose backward is not itself differentiable). Pass
``differentiable_backward=False``; each rule is then called as
``vjp(out_data, g_data)`` on ndarrays and returns an ndarray::

    def fused(x, w):
        y = kernel_forward(x.data, w.data)
        return make_op("fused", y, (x, w),
                       (lambda y, g: kernel_grad_x(g, w.data),
                        lambda y, g: kernel_grad_w(g, x.data)),
                       differentiable_backward=False)

First-order gradients through such an op are exact. With
``create_graph=True`` the gradients flowing out of it hang on a node that
raises ``NotImplementedError("fused: backward is not differentiable
(first-order only) ...")`` if anything later differentiates through them.
Nothing is ever silently treated as a constant.

A rule that returns the wrong shape or dtype raises a RuntimeError naming
the op. Inside a rule, ``is_grad_enabled()`` says whether the backward pass
is being recorded; ``ops.cross_entropy`` uses it to reuse forward arrays on
the first-order path. Gradients may share memory with each other and with
``grad_outputs``: treat them as read-only.
"""
import contextlib
import itertools

import numpy as np

__all__ = ["Tensor", "grad", "no_grad", "is_grad_enabled", "make_op"]


class _GradMode:
    """Whether ops record graph nodes (off inside ``no_grad`` and first-order backward)."""
    __slots__ = ("enabled",)

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


class _Node:
    """How a Tensor was made: op name, inputs needing gradients, one vjp each."""
    __slots__ = ("op", "inputs", "vjps")

    def __init__(self, op, inputs, vjps):
        self.op = op
        self.inputs = inputs
        self.vjps = vjps


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
    T = property(lambda self: ops.transpose(self))

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

    # ---- arithmetic
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(other, self)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.power(self, other)

    def __rpow__(self, other):
        return ops.power(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __abs__(self):
        return ops.abs(self)

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

    # ---- reductions and shapes
    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def reshape(self, *shape):
        return ops.reshape(self, _varargs(shape))

    def transpose(self, *axes):
        return ops.transpose(self, _varargs(axes) or None)

    def astype(self, dtype):
        return ops.astype(self, dtype)

    def __getitem__(self, index):
        return ops.getitem(self, index)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _varargs(args):
    """``f(2, 3)`` and ``f((2, 3))`` both mean the tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


# ---------------------------------------------------------------- recording

def _record(name, out_data, inputs, vjps):
    """The Tensor ``out_data`` as the output of op ``name``.

    Keeps only the inputs that require gradients (and their vjps), so the
    backward pass never computes gradients nobody asked for.
    """
    out = Tensor(out_data)
    if _mode.enabled:
        for x in inputs:
            if x.requires_grad:
                out._node = _node(name, inputs, vjps)
                out.requires_grad = out._node is not None
                break
    return out


def _node(name, inputs, vjps):
    if len(inputs) == 1:  # the common case; its input is known to require grad
        return None if vjps[0] is None else _Node(name, inputs, vjps)
    needy = [i for i, x in enumerate(inputs) if x.requires_grad and vjps[i] is not None]
    if len(needy) == len(inputs):
        return _Node(name, tuple(inputs), tuple(vjps))
    if needy:
        return _Node(name, tuple(inputs[i] for i in needy), tuple(vjps[i] for i in needy))
    return None


def make_op(name, out_data, inputs, vjps, differentiable_backward=True):
    """Record a custom op; see the module docstring for both kinds.

    name: op name used in error messages. out_data: the forward result
    (ndarray). inputs: sequence of Tensors. vjps: one backward rule (or None)
    per input. Returns the output Tensor.
    """
    inputs, vjps = tuple(inputs), tuple(vjps)
    if len(inputs) != len(vjps):
        raise ValueError(f"{name}: got {len(inputs)} inputs but {len(vjps)} backward rules")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input {i} is a {type(x).__name__}, not a Tensor")
    if not differentiable_backward:
        vjps = tuple(None if v is None else _first_order_only(name, v, inputs) for v in vjps)
    return _record(name, np.asarray(out_data), inputs, vjps)


def _first_order_only(name, raw_vjp, inputs):
    """Wrap a raw-array backward rule; poison its result when create_graph=True."""
    def vjp(out, g):
        grad_data = raw_vjp(out.data, g.data)
        if not _mode.enabled:
            return Tensor(grad_data)
        # The true gradient depends on the op's inputs and on g, but we cannot
        # differentiate it: hang it on a node that refuses if ever walked.
        refuse = _refusal(name)
        return _record(name + ".backward", grad_data, inputs + (g,), (refuse,) * (len(inputs) + 1))
    return vjp


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
    # Without create_graph the rules run unrecorded: no nodes, only arrays in thin wrappers.
    previous, _mode.enabled = _mode.enabled, create_graph
    try:
        found = _backward(outputs, seeds, flat_inputs)
    finally:
        _mode.enabled = previous
    return rebuild([_result(found.get(x), x, create_graph) for x in flat_inputs])


def _result(g, x, create_graph):
    if g is None:
        return Tensor(np.zeros_like(x.data))
    return g if create_graph or not g.requires_grad else g.detach()


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


def _backward(outputs, seeds, inputs):
    """Walk the graph from outputs to inputs; return {input: gradient}.

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
        if node is None:
            continue
        for x, vjp in zip(node.inputs, node.vjps):
            if x in relevant:
                gx = vjp(t, g)
                if gx.data.shape != x.data.shape or gx.data.dtype != x.data.dtype:
                    _wrong_gradient(node.op, gx, x)
                previous = pending.get(x)
                pending[x] = gx if previous is None else previous + gx
    return found


def _wrong_gradient(op, g, x):
    raise RuntimeError(f"{op}: backward returned a {g.dtype} gradient of shape {g.shape} "
                       f"for a {x.dtype} input of shape {x.shape}")


def _relevant_order(outputs, wanted):
    """The tensors that lie on a path from a wanted input to an output, as a
    list in topological order (inputs before the tensors computed from them)
    and as a set.

    Iterative depth-first search with an explicit stack: a recursive one
    overflows on the 10^5-deep graphs of unrolled training loops. A tensor is
    relevant if it is wanted or one of its inputs is relevant; when a tensor
    is finished, all its inputs are, so this is decided on the way out.

    A tensor created before every wanted input cannot depend on any of them,
    so the search does not go behind it. This keeps each step of an unrolled
    loop from re-walking the whole history (which made it quadratic).
    """
    order, visited, relevant = [], set(), set()
    oldest = min((x._seq for x in wanted), default=0)
    stack = [(y, False) for y in outputs if y.requires_grad]
    while stack:
        t, inputs_done = stack.pop()
        node = t._node
        if inputs_done:
            if t in wanted or _any_relevant(node, relevant):
                relevant.add(t)
                order.append(t)
        elif t not in visited:
            visited.add(t)
            stack.append((t, True))
            if node is not None and t._seq > oldest:
                for x in node.inputs:
                    if x not in visited:
                        stack.append((x, False))
    return order, relevant


def _any_relevant(node, relevant):
    if node is not None:
        for x in node.inputs:
            if x in relevant:
                return True
    return False


# Imported last: ops builds on Tensor, and Tensor's operators call ops.
from . import ops  # noqa: E402
