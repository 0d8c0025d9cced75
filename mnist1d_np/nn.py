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
import numpy as np

from . import ops
from .tensor import Tensor
from .conv1d import conv1d
from .gru import gru

__all__ = ["TorchGenerator", "Module", "Linear", "Conv1d", "GRU", "MaxPool1d", "AvgPool1d", "LPPool1d",
           "Flatten", "Sequential", "LogisticRegression", "MLP", "ConvNet", "GRUNet",
           "make_model", "MODELS", "flatten_parameters", "count_parameters"]


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


def _windows(x, kernel_size, stride):
    """x: (B, C, L) -> (B, C, L_out, kernel_size) sliding windows (differentiable)."""
    length = x.shape[-1]
    if not 1 <= kernel_size <= length:
        raise ValueError(f"pooling: kernel_size must be in [1, {length}], got {kernel_size}")
    starts = np.arange(0, length - kernel_size + 1, stride)
    return x[..., starts[:, None] + np.arange(kernel_size)]


class MaxPool1d(Module):
    """Max over windows. x: (B, C, L) -> (B, C, (L - k) // s + 1); stride defaults to k."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride or kernel_size

    def forward(self, x):
        return _windows(x, self.kernel_size, self.stride).max(axis=-1)


class AvgPool1d(MaxPool1d):
    """Mean over windows; shapes as MaxPool1d."""

    def forward(self, x):
        return _windows(x, self.kernel_size, self.stride).mean(axis=-1)


class LPPool1d(MaxPool1d):
    """Power-average pooling as torch.nn.LPPool1d: (sum over window of x^p)^(1/p).

    Only p = 2 is provided: sqrt(sum x^2).
    """

    def __init__(self, kernel_size, stride=None, p=2):
        if p != 2:
            raise ValueError(f"LPPool1d: only p=2 is supported, got p={p}")
        super().__init__(kernel_size, stride)

    def forward(self, x):
        return ops.sqrt(ops.square(_windows(x, self.kernel_size, self.stride)).sum(axis=-1))


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
