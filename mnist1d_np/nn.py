"""Layers and the paper's four models.

A `Module` keeps its parameters (Tensors) and sub-modules in insertion
order, as attributes, like PyTorch; `parameters()` lists them by dotted name.
Initialisers draw from PyTorch's default distributions, from an explicit
`rng`, because the paper's hyperparameters were tuned with those:

- Linear, Conv1d: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- GRU: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).

`rng` is a numpy Generator, or a `TorchGenerator`, which replays
PyTorch's own random stream: `nn.Linear(40, 50, TorchGenerator(0))` holds
the numbers `torch.manual_seed(0); torch.nn.Linear(40, 50)` does. Layers
draw their parameters in PyTorch's order for that reason.

Layout differs from PyTorch in one place: Linear stores its weight as
(in, out), so the forward is a single `x @ W + b`.

The models take x: (batch, 40) and return logits (batch, 10).
"""
import hashlib

import numpy as np

from . import ops
from .tensor import Tensor
from .conv1d import conv1d
from .gru import gru

__all__ = ["TorchGenerator", "Module", "Linear", "Conv1d", "GRU", "MaxPool1d", "AvgPool1d", "LPPool1d",
           "Flatten", "Sequential", "LogisticRegression", "MLP", "ConvNet", "GRUNet",
           "make_model", "MODELS", "flatten_parameters", "count_parameters", "describe"]


def uniform(rng, shape, bound, dtype):
    """A trainable Tensor of `shape` drawn from U(-bound, bound)."""
    return Tensor(rng.uniform(-bound, bound, size=shape).astype(dtype), requires_grad=True)


class TorchGenerator:
    """PyTorch's CPU random stream after `torch.manual_seed(seed)`, for uniform draws.

    PyTorch's CPU generator is a standard MT19937 seeded like NumPy's legacy
    RandomState, and `tensor.uniform_(low, high)` on a float32 tensor
    (PyTorch's default dtype) turns each 32-bit output u into
    (u mod 2**24) / 2**24 * (high - low) + low, in float32 arithmetic.
    Replaying that rebuilds PyTorch-initialised networks from the numbers
    alone, with no torch installed.
    seed: an integer in [0, 2**32 - 1].
    """

    def __init__(self, seed):
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
            raise ValueError(f"TorchGenerator: seed must be an integer in [0, 2**32 - 1], got {seed!r}")
        self._mt19937 = np.random.RandomState(int(seed))

    def uniform(self, low, high, size):
        """float32 array of shape `size`, the next draws of `uniform_(low, high)`."""
        low, high = np.float32(low), np.float32(high)
        # Over the full uint32 range, RandomState.randint returns the raw outputs.
        raw = self._mt19937.randint(0, 2 ** 32, size=size, dtype=np.uint32)
        unit = (raw & 0xFFFFFF).astype(np.float32) * np.float32(2.0 ** -24)
        return unit * (high - low) + low


def _check_rng(rng):
    if not isinstance(rng, (np.random.Generator, TorchGenerator)):
        raise TypeError(f"rng must be a numpy.random.Generator or an nn.TorchGenerator, "
                        f"got {type(rng).__name__}")
    return rng


# ---------------------------------------------------------------- containers

class Module:
    """Base class: Tensor attributes that require gradients are parameters,
    Module attributes are sub-modules; both keep their insertion order."""

    def __init__(self):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})

    def __setattr__(self, name, value):
        if isinstance(value, Tensor) and value.requires_grad:
            self._params[name] = value
        elif isinstance(value, Module):
            self._children[name] = value
        object.__setattr__(self, name, value)

    def parameters(self):
        """{dotted name: Tensor}, in the order the layers were built."""
        params = dict(self._params)
        for child_name, child in self._children.items():
            for name, p in child.parameters().items():
                params[f"{child_name}.{name}"] = p
        return params

    def load_parameters(self, values):
        """Set every parameter's data from {name: array} (same names and shapes)."""
        params = self.parameters()
        if set(values) != set(params):
            raise ValueError(f"load_parameters: names differ: expected {list(params)}, got {list(values)}")
        for name, p in params.items():
            value = np.asarray(values[name], dtype=p.dtype)
            if value.shape != p.shape:
                raise ValueError(f"load_parameters: {name} has shape {p.shape}, got {value.shape}")
            p.data[...] = value

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class Sequential(Module):
    """Apply modules (or plain functions like ops.relu) one after the other.

    A Linear or Conv1d directly followed by ops.relu runs as one fused op
    (``layer(x, relu=True)``): the same numbers, one graph node fewer.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)
        for i, layer in enumerate(layers):
            if isinstance(layer, Module):
                setattr(self, str(i), layer)
        self._plan = _fuse_relus(self.layers)

    def forward(self, x):
        for layer, relu in self._plan:
            x = layer(x, relu=True) if relu else layer(x)
        return x


def _fuse_relus(layers):
    """[(layer, relu)]: each Linear or Conv1d that ops.relu follows takes the relu in."""
    plan = []
    for layer in layers:
        if layer is ops.relu and plan and isinstance(plan[-1][0], (Linear, Conv1d)) and not plan[-1][1]:
            plan[-1] = (plan[-1][0], True)
        else:
            plan.append((layer, False))
    return plan


def describe(module):
    """What a module computes besides its parameters' values, as JSON-able data: its
    class, settings (numbers, strings), sub-modules and the functions it applies, in
    order; arrays (a pruned layer's pattern) by a hash. Part of a training run's
    identity: a ReLU and a tanh network with equal weights differ here."""
    return {"class": type(module).__qualname__,
            **{name: _describe(value) for name, value in vars(module).items()
               if not name.startswith("_") and not isinstance(value, Tensor)}}


def _describe(value):
    if isinstance(value, Module):
        return describe(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return [_describe(v) for v in value]
    if isinstance(value, (bool, int, float, str, type(None), np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    if callable(value):
        return getattr(value, "__qualname__", type(value).__qualname__)
    arrays = value if hasattr(value, "_fields") else [value]   # a namedtuple of arrays, or an array
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:12]


def count_parameters(module):
    return sum(p.size for p in module.parameters().values())


def flatten_parameters(module):
    """Move all parameters into one contiguous vector and return it.

    Afterwards each parameter's .data is a view into the vector, so updating
    the vector in place (an optimizer, a pruning mask) updates the model.
    Order: module.parameters().
    """
    params = list(module.parameters().values())
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"flatten_parameters: parameters have mixed dtypes {sorted(map(str, dtypes))}")
    flat = np.concatenate([p.data.ravel() for p in params])
    start = 0
    for p in params:
        p.data = flat[start:start + p.size].reshape(p.shape)
        start += p.size
    return flat


# ---------------------------------------------------------------- layers

class Linear(Module):
    """y = x @ weight + bias (then max(y, 0) with relu=True), as one op (ops.linear).
    x: (..., in_features) -> (..., out_features)."""

    def __init__(self, in_features, out_features, rng, bias=True, dtype=np.float64):
        super().__init__()
        bound = 1 / np.sqrt(in_features)
        rng = _check_rng(rng)
        weight = rng.uniform(-bound, bound, size=(out_features, in_features))  # PyTorch's order
        self.weight = Tensor(np.ascontiguousarray(weight.T, dtype=dtype), requires_grad=True)
        self.bias = uniform(rng, (out_features,), bound, dtype) if bias else None

    def forward(self, x, relu=False):
        if x.ndim == 2:
            return ops.linear(x, self.weight, self.bias, relu)
        batch_shape = x.shape[:-1]
        y = ops.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias, relu)
        return y.reshape(*batch_shape, y.shape[-1])


class Conv1d(Module):
    """Cross-correlation as torch.nn.Conv1d. x: (B, C_in, L) -> (B, C_out, L_out).

    Twice (indeed arbitrarily) differentiable: see conv1d.py.
    """

    def __init__(self, in_channels, out_channels, kernel_size, rng, stride=1, padding=0,
                 dtype=np.float64):
        super().__init__()
        rng = _check_rng(rng)
        bound = 1 / np.sqrt(in_channels * kernel_size)
        self.stride, self.padding = stride, padding
        self.weight = uniform(rng, (out_channels, in_channels, kernel_size), bound, dtype)
        self.bias = uniform(rng, (out_channels, 1), bound, dtype)

    def forward(self, x, relu=False):
        return conv1d(x, self.weight, self.stride, self.padding, self.bias, relu)


class GRU(Module):
    """torch.nn.GRU with batch_first=True, one layer, h0 = 0.

    x: (B, T, input_size) -> every hidden state, (B, T, D * hidden_size),
    D = 2 if bidirectional ([forward, reverse] on the last axis). Backed by
    a fused numba kernel: first-order gradients only (see gru.py).
    """

    def __init__(self, input_size, hidden_size, rng, bidirectional=False, dtype=np.float64):
        super().__init__()
        rng = _check_rng(rng)
        bound = 1 / np.sqrt(hidden_size)
        shapes = {"W_ih": (3 * hidden_size, input_size), "W_hh": (3 * hidden_size, hidden_size),
                  "b_ih": (3 * hidden_size,), "b_hh": (3 * hidden_size,)}
        for suffix in ("", "_reverse")[:1 + bidirectional]:
            for name, shape in shapes.items():
                setattr(self, name + suffix, uniform(rng, shape, bound, dtype))
        self.bidirectional = bidirectional

    def direction_parameters(self, suffix):
        return tuple(getattr(self, name + suffix) for name in ("W_ih", "W_hh", "b_ih", "b_hh"))

    def forward(self, x):
        reverse = self.direction_parameters("_reverse") if self.bidirectional else None
        return gru(x, self.direction_parameters(""), reverse)


# ---------------------------------------------------------------- pooling
# Each pooling layer reduces every window of k neighbours to one number:
# x: (B, C, L) -> (B, C, L_out), L_out = (L - k) // s + 1, windows starting at
# 0, s, 2s, ... (no padding, as PyTorch's defaults). The stride s defaults to k
# (windows side by side).
#
# The trick: entry j of every window is one strided slice, x[..., j::s]. A
# pooling layer combines its k slices elementwise (k - 1 adds, or maxima)
# instead of reducing over a length-k axis, which NumPy does slowly for small
# k. Slices, adds and `where` are differentiable ops, so the layers are
# differentiable to any order, and a slice's backward writes into zeros
# without a scatter-add.

def _check_window(name, kernel_size, stride):
    """(kernel_size, stride), stride defaulting to kernel_size; ValueError if not integers >= 1."""
    stride = kernel_size if stride is None else stride
    for arg, value in (("kernel_size", kernel_size), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {arg} must be an integer >= 1, got {value!r}")
    return int(kernel_size), int(stride)


class _Pool1d(Module):
    """What the pooling layers share: kernel_size, stride and the window entries."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = _check_window(type(self).__name__, kernel_size, stride)

    def window_entries(self, x):
        """x: (B, C, L) -> kernel_size Tensors (B, C, L_out): entry j of every window."""
        length = x.shape[-1]
        if self.kernel_size > length:
            raise ValueError(f"{type(self).__name__}: kernel_size must be in [1, {length}] "
                             f"(the input length), got {self.kernel_size}")
        span = self.stride * ((length - self.kernel_size) // self.stride) + 1  # first to last start
        return [x[..., j:j + span:self.stride] for j in range(self.kernel_size)]


class MaxPool1d(_Pool1d):
    """Largest entry of each window, as torch.nn.MaxPool1d (shapes above).

    Ties: the whole gradient goes to the first maximum of the window (the
    lowest index), as PyTorch's max_pool1d does; ops.max would share it
    among the tied entries. A nan wins, as in PyTorch. The gradient is a
    0/1 selection, so the second derivative is zero (away from ties).
    """

    def forward(self, x):
        entries = self.window_entries(x)
        largest = entries[0]
        for entry in entries[1:]:
            # strictly larger: on a tie the earlier entry keeps the gradient
            later_wins = (entry.data > largest.data) | np.isnan(entry.data)
            largest = ops.where(later_wins, entry, largest)
        return largest


class AvgPool1d(_Pool1d):
    """Mean of each window, as torch.nn.AvgPool1d (shapes above)."""

    def forward(self, x):
        entries = self.window_entries(x)
        return _add_all(entries) * (1.0 / self.kernel_size)


class LPPool1d(_Pool1d):
    """Power-average pooling as torch.nn.LPPool1d with p = 2 (shapes above):
    sqrt(sum of x^2 over the window), the window's Euclidean norm.

    An all-zero window (common after a ReLU) gives 0 with a zero gradient,
    as PyTorch, whose lp_pool1d passes the sum through a relu (gradient 0
    at 0); sqrt's own gradient there, 0 * inf, would be nan.
    """

    def __init__(self, kernel_size, stride=None, p=2):
        if p != 2:
            raise ValueError(f"LPPool1d: only p=2 is supported, got p={p}")
        super().__init__(kernel_size, stride)

    def forward(self, x):
        sum_of_squares = _add_all([ops.square(entry) for entry in self.window_entries(x)])
        nonzero = sum_of_squares.data > 0
        # sqrt sees 1 in place of 0, so no inf is ever made; where then puts the 0 back.
        norm = ops.sqrt(ops.where(nonzero, sum_of_squares, 1.0))
        return ops.where(nonzero, norm, 0.0)


def _add_all(tensors):
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


class Flatten(Module):
    """(B, ...) -> (B, prod(...))."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------- the paper's models

class LogisticRegression(Module):
    """40 -> 10 linear: 410 parameters."""

    def __init__(self, rng, dtype=np.float64):
        super().__init__()
        self.linear = Linear(40, 10, rng, dtype=dtype)

    def forward(self, x):
        return self.linear(x)


class MLP(Module):
    """h = relu(W1 x); h = h + relu(W2 h); out = W3 h. 40-100-100-10: 15210 parameters."""

    def __init__(self, rng, hidden=100, dtype=np.float64):
        super().__init__()
        self.linear1 = Linear(40, hidden, rng, dtype=dtype)
        self.linear2 = Linear(hidden, hidden, rng, dtype=dtype)
        self.linear3 = Linear(hidden, 10, rng, dtype=dtype)

    def forward(self, x):
        h = self.linear1(x, relu=True)
        h = h + self.linear2(h, relu=True)
        return self.linear3(h)


class ConvNet(Module):
    """Conv 1->25 (k5, s2, p1), 25->25 (k3, s2, p1) twice, relu after each,
    flatten 125 -> 10: 5210 parameters. Lengths 40 -> 19 -> 10 -> 5."""

    def __init__(self, rng, channels=25, dtype=np.float64):
        super().__init__()
        self.conv1 = Conv1d(1, channels, 5, rng, stride=2, padding=1, dtype=dtype)
        self.conv2 = Conv1d(channels, channels, 3, rng, stride=2, padding=1, dtype=dtype)
        self.conv3 = Conv1d(channels, channels, 3, rng, stride=2, padding=1, dtype=dtype)
        self.linear = Linear(channels * 5, 10, rng, dtype=dtype)

    def forward(self, x):
        return self.linear(self.features(x))

    def features(self, x):
        """The last hidden layer, which the linear layer reads:
        x (batch, 40) -> (batch, 125), so forward(x) = linear(features(x))."""
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = self.conv1(h, relu=True)
        h = self.conv2(h, relu=True)
        h = self.conv3(h, relu=True)
        return h.reshape(h.shape[0], -1)


class GRUNet(Module):
    """Bidirectional GRU, hidden 6, over the 40 positions; all 40 x 12 outputs
    flattened -> 10: 5134 parameters."""

    def __init__(self, rng, hidden=6, dtype=np.float64):
        super().__init__()
        self.gru = GRU(1, hidden, rng, bidirectional=True, dtype=dtype)
        self.linear = Linear(40 * 2 * hidden, 10, rng, dtype=dtype)

    def forward(self, x):
        h = self.gru(x.reshape(x.shape[0], x.shape[-1], 1))
        return self.linear(h.reshape(h.shape[0], -1))


MODELS = {"logistic": LogisticRegression, "mlp": MLP, "cnn": ConvNet, "gru": GRUNet}


def make_model(name, rng, dtype=np.float64):
    """One of the paper's models by name: 'logistic', 'mlp', 'cnn' or 'gru'."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")
    return MODELS[name](rng, dtype=dtype)
