"""Differentiable primitives with NumPy-like names.

Every op runs its forward on raw arrays and records one backward rule per
input, ``vjp(out, g) -> gradient``, written with the ops of this module, so
backward passes can themselves be differentiated (see ``tensor.py``). The
ops that dominate training and unrolled graphs (add, sub, mul, matmul,
transpose, tanh, linear, cross_entropy) also give a first-order rule: the
same arithmetic on plain arrays, which a walk with create_graph=False calls
instead (no wrappers, no op dispatch).

Importing this module gives ``Tensor`` its operators and methods (``+``,
``@``, ``.sum()``, ``.T``, indexing, ...; see the end of the file), so the
engine in ``tensor.py`` never imports the op library.

Conventions:
- Inputs may be Tensors, ndarrays or Python scalars; non-Tensors are wrapped
  as constants. A constant combined with a floating Tensor takes that
  Tensor's dtype, so ``x * 0.5`` stays float32 when ``x`` is float32.
- Binary elementwise ops broadcast like NumPy. Broadcasting is undone in one
  place: each input's gradient goes through ``sum_to``, whose backward is
  ``broadcast_to`` and vice versa.
- Shape errors name the op and the shapes involved.
"""
import numpy as np

from .tensor import Tensor, _record


# ---------------------------------------------------------------- wrapping

def as_tensor(x, dtype=None):
    """x as a Tensor (itself if it already is one; else a constant, no copy)."""
    if type(x) is Tensor and dtype is None:
        return x
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == dtype else astype(x, dtype)
    return Tensor(np.asarray(x, dtype=dtype))


def _float_dtype(x):
    """The dtype of x if x is a floating Tensor, else None."""
    return x.data.dtype if isinstance(x, Tensor) and x.data.dtype.kind == "f" else None


def _constant(x, dtype):
    return Tensor(np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype))


def _pair(a, b):
    """a and b as Tensors; a constant takes the float dtype of the other side."""
    if type(a) is Tensor and type(b) is Tensor and a.data.dtype == b.data.dtype:
        return a, b
    dtype_a, dtype_b = _float_dtype(a), _float_dtype(b)
    if dtype_a is not None and dtype_b is None:
        return a, _constant(b, dtype_a)
    if dtype_b is not None and dtype_a is None:
        return _constant(a, dtype_b), b
    return as_tensor(a), as_tensor(b)


def _unbroadcast(g, x):
    """The gradient g of a broadcast result, reduced to x's shape and dtype."""
    if g.data.shape != x.data.shape:
        g = sum_to(g, x.data.shape)
    if g.data.dtype != x.data.dtype:
        g = astype(g, x.data.dtype)
    return g


def _unbroadcast_array(g, x):
    """_unbroadcast on arrays: the same arithmetic, for first-order rules."""
    g = _sum_to_array(g, x.data.shape)
    return g if g.dtype == x.data.dtype else g.astype(x.data.dtype)


def _pair_on_arrays(a, b, grad_a, grad_b):
    """The first-order rule of a broadcasting binary op: grad_a(g) and grad_b(g)
    on arrays, unbroadcast, each only if its input requires a gradient."""
    def rule(out, g):
        return (_unbroadcast_array(grad_a(g), a) if a.requires_grad else None,
                _unbroadcast_array(grad_b(g), b) if b.requires_grad else None)
    return rule


def _same(g):
    return g


def _broadcasting(name, ufunc, a, b):
    """ufunc(a, b) on the arrays, with a shape error that names the op."""
    try:
        return ufunc(a.data, b.data)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast") from None


# ---------------------------------------------------------------- broadcasting pair

def broadcast_to(x, shape):
    """x broadcast to ``shape`` (NumPy rules). Backward: ``sum_to``."""
    x, shape = as_tensor(x), tuple(shape)
    if x.shape == shape:
        return x
    try:
        data = np.broadcast_to(x.data, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: shape {x.shape} cannot be broadcast to {shape}") from None
    return _record("broadcast_to", data, (x,), (lambda out, g: sum_to(g, x.shape),))


def sum_to(x, shape):
    """Sum x down to ``shape``, undoing broadcasting. Backward: ``broadcast_to``."""
    x, shape = as_tensor(x), tuple(shape)
    if x.data.shape == shape:
        return x
    return _record("sum_to", _sum_to_array(x.data, shape), (x,), (lambda out, g: broadcast_to(g, x.shape),))


def _sum_to_array(data, shape):
    """The ndarray data summed down to shape (the arithmetic of sum_to)."""
    if data.shape == shape:
        return data
    axes = _broadcast_axes(data.shape, shape)
    if len(axes) > 1:  # einsum beats ndarray.sum ~4x on e.g. a conv bias, axes (0, 2)
        kept = [i for i in range(data.ndim) if i not in axes]
        return np.einsum(data, list(range(data.ndim)), kept).reshape(shape)
    return data.sum(axis=axes, keepdims=True).reshape(shape)


def _broadcast_axes(big, small):
    """Axes of ``big`` that broadcasting ``small`` to ``big`` created or stretched."""
    lead = len(big) - len(small)
    if lead < 0:
        raise ValueError(f"sum_to: shape {big} cannot be summed to {small}")
    axes = list(range(lead))
    for i, n in enumerate(small):
        if n != big[lead + i]:
            if n != 1:
                raise ValueError(f"sum_to: shape {big} cannot be summed to {small}")
            axes.append(lead + i)
    return tuple(axes)


# ---------------------------------------------------------------- arithmetic

def add(a, b):
    """a + b elementwise; shapes broadcast like NumPy."""
    a, b = _pair(a, b)
    return _record("add", _broadcasting("add", np.add, a, b), (a, b),
                   (lambda out, g: _unbroadcast(g, a), lambda out, g: _unbroadcast(g, b)),
                   _pair_on_arrays(a, b, _same, _same))


def sub(a, b):
    """a - b elementwise; shapes broadcast like NumPy."""
    a, b = _pair(a, b)
    return _record("sub", _broadcasting("sub", np.subtract, a, b), (a, b),
                   (lambda out, g: _unbroadcast(g, a), lambda out, g: _unbroadcast(-g, b)),
                   _pair_on_arrays(a, b, _same, np.negative))


def mul(a, b):
    """a * b elementwise; shapes broadcast like NumPy."""
    a, b = _pair(a, b)
    return _record("mul", _broadcasting("mul", np.multiply, a, b), (a, b),
                   (lambda out, g: _unbroadcast(g * b, a), lambda out, g: _unbroadcast(g * a, b)),
                   _pair_on_arrays(a, b, lambda g: g * b.data, lambda g: g * a.data))


def div(a, b):
    """a / b elementwise; shapes broadcast like NumPy."""
    a, b = _pair(a, b)
    return _record("div", _broadcasting("div", np.true_divide, a, b), (a, b),
                   (lambda out, g: _unbroadcast(g / b, a),
                    lambda out, g: _unbroadcast(-(g * out) / b, b)))


def power(a, b):
    """a ** b elementwise; the gradient for b needs a > 0."""
    a, b = _pair(a, b)
    return _record("power", _broadcasting("power", np.power, a, b), (a, b),
                   (lambda out, g: _unbroadcast(g * b * a ** (b - 1), a),
                    lambda out, g: _unbroadcast(g * out * log(a), b)))


def neg(x):
    """-x, same shape."""
    x = as_tensor(x)
    return _record("neg", np.negative(x.data), (x,), (_neg_vjp,))


def _neg_vjp(out, g):
    return -g


def square(x):
    """x * x elementwise, same shape."""
    x = as_tensor(x)
    return _record("square", np.square(x.data), (x,), (lambda out, g: g * (2 * x),))


def matmul(a, b):
    """a @ b like NumPy: (..., n, k) @ (..., k, m) -> (..., n, m); 1-D operands allowed."""
    a, b = _pair(a, b)
    a_shape, b_shape = a.data.shape, b.data.shape
    if not a_shape or not b_shape:
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape}: scalar operands are not allowed")
    if a_shape[-1] != b_shape[-2 if len(b_shape) > 1 else 0]:
        raise ValueError(f"matmul: shapes {a_shape} and {b_shape} are not aligned")
    if len(a_shape) == 1 or len(b_shape) == 1:
        return _matmul_vectors(a, b)
    try:
        data = np.matmul(a.data, b.data)
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} "
                         "cannot be broadcast") from None
    return _record("matmul", data, (a, b),
                   (lambda out, g: _unbroadcast(matmul(g, _swap_last(b)), a),
                    lambda out, g: _unbroadcast(matmul(_swap_last(a), g), b)),
                   _pair_on_arrays(a, b, lambda g: g @ np.swapaxes(b.data, -1, -2),
                                   lambda g: np.swapaxes(a.data, -1, -2) @ g))


def _matmul_vectors(a, b):
    """matmul with a 1-D operand: promote it to a matrix (so that one backward rule
    covers every case), then drop the axis that was added."""
    a_vector, b_vector = a.data.ndim == 1, b.data.ndim == 1
    out = matmul(reshape(a, (1,) + a.shape) if a_vector else a,
                 reshape(b, b.shape + (1,)) if b_vector else b)
    added = {out.ndim - 2} if a_vector else set()
    added |= {out.ndim - 1} if b_vector else set()
    return reshape(out, tuple(n for i, n in enumerate(out.shape) if i not in added))


def _swap_last(x):
    ndim = x.data.ndim
    return transpose(x, tuple(range(ndim - 2)) + (ndim - 1, ndim - 2))


def linear(x, w, b=None, relu=False):
    """A dense layer as one op: x @ w + b, then max(., 0) if relu.

    x: (batch, n_in), w: (n_in, n_out), b: None or (n_out,), all of one
    float dtype -> (batch, n_out). The same numbers as the composition
    ``relu(x @ w + b)``, with one graph node instead of three; its backward
    (written with ops, so it differentiates again) and its first-order rule
    on arrays skip the gradients of inputs that need none.
    """
    x, w = _pair(x, w)
    b = None if b is None else _pair(b, w)[0]
    _check_linear(x, w, b)
    y = x.data @ w.data
    if b is not None:
        y += b.data
    if relu:
        np.maximum(y, 0, out=y)
    inputs = (x, w) if b is None else (x, w, b)

    def vjp(out, g):
        if relu:
            g = g * (out.data > 0)  # relu's slope: a constant mask (relu'' = 0)
        return (matmul(g, w.T) if x.requires_grad else None,
                matmul(x.T, g) if w.requires_grad else None,
                sum(g, axis=0) if b is not None and b.requires_grad else None)[:len(inputs)]

    def on_arrays(out, g):
        if relu:
            g = g * (out > 0)
        return (g @ w.data.T if x.requires_grad else None,
                x.data.T @ g if w.requires_grad else None,
                g.sum(axis=0) if b is not None and b.requires_grad else None)[:len(inputs)]
    return _record("linear", y, inputs, vjp, on_arrays)


def _check_linear(x, w, b):
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"linear: x {x.shape} and w {w.shape} must be (batch, n_in) and (n_in, n_out)")
    if b is not None and b.shape != w.shape[1:]:
        raise ValueError(f"linear: b must have shape ({w.shape[1]},), got {b.shape}")
    if x.dtype != w.dtype or (b is not None and b.dtype != w.dtype) or w.dtype.kind != "f":
        raise TypeError(f"linear: x, w and b must share one float dtype, got {x.dtype}, {w.dtype}"
                        f"{'' if b is None else ', ' + str(b.dtype)}")


# ---------------------------------------------------------------- elementwise functions
# Rules that only need the output are module-level functions (no closure per call).

def exp(x):
    """e^x elementwise, same shape."""
    x = as_tensor(x)
    return _record("exp", np.exp(x.data), (x,), (_exp_vjp,))


def _exp_vjp(out, g):
    return g * out


def log(x):
    """Natural log elementwise (x > 0), same shape."""
    x = as_tensor(x)
    return _record("log", np.log(x.data), (x,), (lambda out, g: g / x,))


def sqrt(x):
    """Square root elementwise (x > 0 for a finite gradient), same shape."""
    x = as_tensor(x)
    return _record("sqrt", np.sqrt(x.data), (x,), (_sqrt_vjp,))


def _sqrt_vjp(out, g):
    return g * 0.5 / out


def tanh(x):
    """Hyperbolic tangent elementwise, same shape."""
    x = as_tensor(x)
    return _record("tanh", np.tanh(x.data), (x,), (_tanh_vjp,), _tanh_on_arrays)


def _tanh_vjp(out, g):
    return g * (1 - out * out)


def _tanh_on_arrays(out, g):
    return (g * (1 - out * out),)


def sigmoid(x):
    """1 / (1 + e^-x) elementwise, same shape."""
    x = as_tensor(x)
    # Written via tanh: no overflow for any x, unlike 1 / (1 + exp(-x)).
    data = 0.5 * np.tanh(0.5 * x.data) + 0.5
    return _record("sigmoid", data, (x,), (_sigmoid_vjp,))


def _sigmoid_vjp(out, g):
    return g * out * (1 - out)


def relu(x):
    """max(x, 0) elementwise, same shape; the gradient at 0 is 0."""
    x = as_tensor(x)
    return _record("relu", np.maximum(x.data, 0), (x,), (_relu_vjp,))


def _relu_vjp(out, g):
    # A multiply by the 0/1 mask: ~10x faster than np.where with a scalar here.
    return g * (out.data > 0)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    x = as_tensor(x)
    data = np.where(x.data > 0, x.data, alpha * np.expm1(np.minimum(x.data, 0)))
    # For x <= 0 the slope alpha * exp(x) equals out + alpha.
    return _record("elu", data, (x,),
                   (lambda out, g: where(out.data > 0, g, g * (out + alpha)),))


def softplus(x):
    """log(1 + exp(x)), computed without overflow."""
    x = as_tensor(x)
    return _record("softplus", np.logaddexp(0, x.data), (x,),
                   (lambda out, g: g * sigmoid(x),))


def swish(x):
    """x * sigmoid(x) (also called SiLU)."""
    return mul(x, sigmoid(x))


def abs(x):
    """|x| elementwise, same shape; the gradient at 0 is 0."""
    x = as_tensor(x)
    return _record("abs", np.abs(x.data), (x,), (lambda out, g: g * np.sign(x.data),))


def maximum(a, b):
    """Elementwise max; at ties the gradient goes to a."""
    a, b = _pair(a, b)
    return _record("maximum", _broadcasting("maximum", np.maximum, a, b), (a, b),
                   (lambda out, g: _unbroadcast(where(a.data >= b.data, g, 0), a),
                    lambda out, g: _unbroadcast(where(a.data >= b.data, 0, g), b)))


def minimum(a, b):
    """Elementwise min; at ties the gradient goes to a."""
    a, b = _pair(a, b)
    return _record("minimum", _broadcasting("minimum", np.minimum, a, b), (a, b),
                   (lambda out, g: _unbroadcast(where(a.data <= b.data, g, 0), a),
                    lambda out, g: _unbroadcast(where(a.data <= b.data, 0, g), b)))


def where(cond, a, b):
    """a where cond else b; cond is a bool array (not differentiated)."""
    cond = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    a, b = _pair(a, b)
    try:
        data = np.where(cond, a.data, b.data)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {a.shape} and {b.shape} "
                         "cannot be broadcast") from None
    return _record("where", data, (a, b),
                   (lambda out, g: _unbroadcast(where(cond, g, 0), a),
                    lambda out, g: _unbroadcast(where(cond, 0, g), b)))


def clip(x, lo, hi):
    """x limited to [lo, hi]; either bound may be None."""
    x = as_tensor(x)
    if lo is not None:
        x = maximum(x, lo)
    return x if hi is None else minimum(x, hi)


# ---------------------------------------------------------------- reductions

def sum(x, axis=None, keepdims=False):
    """Sum over axis (int, tuple or None for all), like ``np.sum``."""
    x = as_tensor(x)
    return _record("sum", x.data.sum(axis=axis, keepdims=keepdims), (x,),
                   (lambda out, g: _spread(g, x, axis, keepdims),))


def mean(x, axis=None, keepdims=False):
    """Mean over axis (int, tuple or None for all), like ``np.mean``."""
    x = as_tensor(x)
    data = x.data.mean(axis=axis, keepdims=keepdims)
    scale = data.size / x.size if x.size else 0.0
    return _record("mean", data, (x,), (lambda out, g: _spread(g, x, axis, keepdims) * scale,))


def max(x, axis=None, keepdims=False):
    """Largest entries; tied maxima share the gradient equally."""
    x = as_tensor(x)
    return _record("max", x.data.max(axis=axis, keepdims=keepdims), (x,),
                   (lambda out, g: _spread(g, x, axis, keepdims)
                    * _argmax_share(x.data, out.data, axis, keepdims),))


def _argmax_share(x, peak, axis, keepdims):
    """Weights (shape of x) spreading the gradient over the maxima: 1/ties at each."""
    hits = x == (peak if keepdims else _keep_reduced_array(peak, x.shape, axis))
    return np.divide(hits, hits.sum(axis=axis, keepdims=True), dtype=x.dtype)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x), axis)), computed without overflow."""
    x = as_tensor(x)
    data = _logsumexp_keepdims(x.data, axis)
    if not keepdims:
        data = np.squeeze(data, axis=axis)
    return _record("logsumexp", data, (x,),
                   (lambda out, g: _spread(g, x, axis, keepdims)
                    * exp(x - _keep_reduced(out, x.shape, axis, keepdims)),))


def _logsumexp_keepdims(x, axis):
    peak = x.max(axis=axis, keepdims=True)
    if not np.isfinite(peak).all():  # a row of -inf gives -inf, not nan
        peak = np.where(np.isfinite(peak), peak, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer there
        return np.log(np.exp(x - peak).sum(axis=axis, keepdims=True)) + peak


def _reduced_shape_keepdims(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(g, x, axis, keepdims):
    """The gradient g of a reduction of x, broadcast back over x's shape."""
    return broadcast_to(_keep_reduced(g, x.shape, axis, keepdims), x.shape)


def _keep_reduced(t, shape, axis, keepdims):
    """A reduced Tensor with its reduced axes put back as size 1 (ready to broadcast)."""
    if keepdims or axis is None:  # a scalar broadcasts as it is
        return t
    return reshape(t, _reduced_shape_keepdims(shape, axis))


def _keep_reduced_array(a, shape, axis):
    return a.reshape(_reduced_shape_keepdims(shape, axis))


# ---------------------------------------------------------------- shapes

def reshape(x, shape):
    """x with a new shape (one entry may be -1), like ``np.reshape``."""
    x = as_tensor(x)
    try:
        data = x.data.reshape(shape)
    except ValueError:
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        raise ValueError(f"reshape: cannot reshape {x.shape} into {shape}") from None
    return _record("reshape", data, (x,), (lambda out, g: reshape(g, x.shape),))


def transpose(x, axes=None):
    """x with its axes permuted (reversed when axes is None)."""
    x = as_tensor(x)
    ndim = x.data.ndim
    axes = tuple(range(ndim))[::-1] if axes is None else tuple(a % ndim for a in axes)
    return _record("transpose", x.data.transpose(axes), (x,),
                   (lambda out, g: transpose(g, _inverse_permutation(axes)),),
                   lambda out, g: (g.transpose(_inverse_permutation(axes)),))


def _inverse_permutation(axes):
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


def astype(x, dtype):
    """x cast to dtype; gradients are cast back. Casting to a non-float type cuts the graph."""
    x, dtype = as_tensor(x), np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype.kind != "f":
        return Tensor(x.data.astype(dtype))
    return _record("astype", x.data.astype(dtype), (x,), (lambda out, g: astype(g, x.dtype),))


def getitem(x, index):
    """x[index] with NumPy basic and integer-array indexing. Backward: ``scatter_add``."""
    x, index = as_tensor(x), _plain_index(index)
    return _record("getitem", x.data[index], (x,),
                   (lambda out, g: scatter_add(g, index, x.shape),))


def scatter_add(x, index, shape):
    """zeros(shape) with x added at ``index``; repeated indices accumulate
    (``np.add.at`` semantics). Backward: ``getitem``."""
    x, index = as_tensor(x), _plain_index(index)
    data = np.zeros(shape, dtype=x.dtype)
    if _may_repeat(index):
        np.add.at(data, index, x.data)
    else:
        data[index] = x.data  # no index repeats: assignment is much faster than add.at
    return _record("scatter_add", data, (x,), (lambda out, g: getitem(g, index),))


def _plain_index(index):
    """An index NumPy understands: Tensors and lists become arrays."""
    if isinstance(index, tuple):
        return tuple(_plain_index_part(part) for part in index)
    return _plain_index_part(index)


def _plain_index_part(part):
    if isinstance(part, Tensor):
        return part.data
    return np.asarray(part) if isinstance(part, list) else part


def _may_repeat(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts)


def concatenate(seq, axis=0):
    """Join Tensors along an existing axis."""
    tensors = _common_dtype(seq)
    try:
        data = np.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"concatenate: shapes {[t.shape for t in tensors]} cannot be "
                         f"joined along axis {axis}") from None
    axis = axis % data.ndim
    ends = np.cumsum([t.shape[axis] for t in tensors])
    vjps = [_slice_vjp(axis, end - t.shape[axis], end) for t, end in zip(tensors, ends)]
    return _record("concatenate", data, tensors, vjps)


def _slice_vjp(axis, start, stop):
    index = (slice(None),) * axis + (slice(int(start), int(stop)),)
    return lambda out, g: getitem(g, index)


def stack(seq, axis=0):
    """Join Tensors of one shape along a new axis."""
    tensors = _common_dtype(seq)
    try:
        data = np.stack([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"stack: shapes {[t.shape for t in tensors]} differ") from None
    axis = axis % data.ndim
    vjps = [_take_vjp((slice(None),) * axis + (i,)) for i in range(len(tensors))]
    return _record("stack", data, tensors, vjps)


def _take_vjp(index):
    return lambda out, g: getitem(g, index)


def _common_dtype(seq):
    """Tensors of seq; constants take the float dtype of the first floating Tensor."""
    dtypes = [_float_dtype(x) for x in seq if _float_dtype(x) is not None]
    if not dtypes:
        return tuple(as_tensor(x) for x in seq)
    return tuple(x if _float_dtype(x) is not None else _constant(x, dtypes[0]) for x in seq)


def roll(x, shift, axis=None):
    """``np.roll``: entries shifted cyclically along axis (flattened if None)."""
    x = as_tensor(x)
    back = tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift
    return _record("roll", np.roll(x.data, shift, axis), (x,),
                   (lambda out, g: roll(g, back, axis),))


# ---------------------------------------------------------------- neural-network functions

def log_softmax(x, axis=-1):
    """x - logsumexp(x) along axis, computed stably."""
    x = as_tensor(x)
    return _record("log_softmax", x.data - _logsumexp_keepdims(x.data, axis), (x,),
                   (lambda out, g: g - exp(out) * sum(g, axis, keepdims=True),))


def softmax(x, axis=-1):
    """exp(x) normalised to sum 1 along axis."""
    x = as_tensor(x)
    data = np.exp(x.data - _logsumexp_keepdims(x.data, axis))
    return _record("softmax", data, (x,),
                   (lambda out, g: out * (g - sum(g * out, axis, keepdims=True)),))


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of integer labels.

    logits: (batch, classes) float Tensor. labels: (batch,) int array.
    Returns a scalar Tensor.
    """
    logits = as_tensor(logits)
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    _check_labels(logits, labels)
    rows = np.arange(len(labels))
    log_probs = logits.data - _logsumexp_keepdims(logits.data, 1)
    data = -log_probs[rows, labels].mean()

    def vjp(out, g):
        # d loss / d logits = (softmax - onehot) / batch, with softmax a graph
        # op so that its own derivative counts in a recorded backward.
        onehot = np.zeros_like(log_probs)
        onehot[rows, labels] = 1
        return (softmax(logits, 1) - onehot) * (g / len(labels))

    def on_arrays(out, g):
        # The same, reusing the forward's log-probabilities.
        residual = np.exp(log_probs)
        residual[rows, labels] -= 1
        return (residual * (g / len(labels)),)
    return _record("cross_entropy", data, (logits,), (vjp,), on_arrays)


def _check_labels(logits, labels):
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy: logits {logits.shape} and labels {labels.shape}; "
                         "expected (batch, classes) and (batch,)")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got {labels.dtype}")
    if not labels.size:
        raise ValueError("cross_entropy: empty batch (the mean of no losses is undefined)")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: labels must be in [0, {logits.shape[1] - 1}], "
                         f"got values from {labels.min()} to {labels.max()}")


def normalize(x, axis=-1, eps=1e-12):
    """x / max(||x||_2, eps) along axis (like torch.nn.functional.normalize)."""
    x = as_tensor(x)
    # Clamping the squared norm (not the norm) keeps the gradient finite at x = 0.
    squared_norm = sum(square(x), axis, keepdims=True)
    return x / sqrt(maximum(squared_norm, eps * eps))


# ---------------------------------------------------------------- Tensor's operators
# Attached here, so that tensor.py (the engine) never imports this module.

def _varargs(args):
    """``f(2, 3)`` and ``f((2, 3))`` both mean the tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


def _attach_operators():
    methods = {
        "__add__": add, "__radd__": lambda self, other: add(other, self),
        "__sub__": sub, "__rsub__": lambda self, other: sub(other, self),
        "__mul__": mul, "__rmul__": lambda self, other: mul(other, self),
        "__truediv__": div, "__rtruediv__": lambda self, other: div(other, self),
        "__pow__": power, "__rpow__": lambda self, other: power(other, self),
        "__matmul__": matmul, "__rmatmul__": lambda self, other: matmul(other, self),
        "__neg__": neg, "__abs__": abs, "__getitem__": getitem, "astype": astype,
        "sum": sum, "mean": mean, "max": max,
        "reshape": lambda self, *shape: reshape(self, _varargs(shape)),
        "transpose": lambda self, *axes: transpose(self, _varargs(axes) or None),
        "T": property(lambda self: transpose(self)),
    }
    for name, method in methods.items():
        setattr(Tensor, name, method)


_attach_operators()
