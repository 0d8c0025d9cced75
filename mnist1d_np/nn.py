"""Layers and the paper's four models.

A `Module` keeps its parameters (Tensors) and sub-modules in insertion
order, as attributes, like PyTorch; `parameters()` lists them by dotted name.
Initialisers draw from PyTorch's default distributions, from an explicit
`rng`, because the paper's hyperparameters were tuned with those:

- Linear, Conv1d, Conv2d: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- GRU: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).

`rng` is a numpy Generator, or a `TorchGenerator`, which replays
PyTorch's own random stream: `nn.Linear(40, 50, TorchGenerator(0))` holds
the numbers `torch.manual_seed(0); torch.nn.Linear(40, 50)` does. Layers
draw their parameters in PyTorch's order for that reason.

Layout differs from PyTorch in one place: Linear stores its weight as
(in, out), so the forward is a single `x @ W + b`.

The models take x: (batch, 40) and return logits (batch, 10). Their
image versions (`make_model(name, rng, input_shape=(28, 28))`, for MNIST
and Fashion-MNIST) take images row by row, x: (batch, 28 * 28), and
reshape them as they need: the same four families with one more axis.

`flops_per_example(model, input_shape)` counts the floating-point
operations of a model's matrix products in one training step, per example.
"""
import hashlib
import threading

import numpy as np

from . import ops
from .tensor import Tensor, _recording
from .conv1d import conv1d
from .conv2d import conv2d, output_size
from .gru import gru

__all__ = ["TorchGenerator", "Module", "Linear", "Conv1d", "Conv2d", "GRU", "MaxPool1d", "MaxPool2d",
           "AvgPool1d", "LPPool1d", "Flatten", "Sequential", "LogisticRegression", "MLP", "ConvNet", "GRUNet",
           "ConvNet2d", "RowGRUNet", "make_model", "MODELS", "IMAGE_MODELS", "flatten_parameters",
           "count_parameters", "describe", "flops_per_example"]


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
        out = self.forward(*args, **kwargs)
        calls = getattr(_traced, "calls", None)
        if calls is not None:           # flops_per_example is watching
            calls.append((self, args[0], out))
        return out


_traced = threading.local()   # .calls: the (module, input, output) of each call, while flops_per_example runs


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
    """[(layer, relu)]: each Linear, Conv1d or Conv2d that ops.relu follows takes the relu in."""
    plan = []
    for layer in layers:
        if layer is ops.relu and plan and isinstance(plan[-1][0], (Linear, Conv1d, Conv2d)) and not plan[-1][1]:
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

    def flops(self, x_shape, y_shape, input_gradient):
        """(forward, backward) FLOPs of a call on x_shape (see flops_per_example)."""
        return _product_flops(int(np.prod(x_shape)) * y_shape[-1], input_gradient)


def _product_flops(multiply_adds, input_gradient):
    """(forward, backward) FLOPs of a layer that is one matrix product: 2 per multiply-add;
    the backward gives the weight gradient (as many), and the input gradient (as many) if asked."""
    return 2 * multiply_adds, 2 * multiply_adds * (2 if input_gradient else 1)


def _convolution_flops(layer, y_shape, input_gradient):
    """A convolution's products: each output entry is a dot product over C_in x the kernel's taps."""
    weight = layer.weight.shape
    return _product_flops(int(np.prod(y_shape)) * int(np.prod(weight[1:])), input_gradient)


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

    def flops(self, x_shape, y_shape, input_gradient):
        """(forward, backward) FLOPs of a call on x_shape (see flops_per_example)."""
        return _convolution_flops(self, y_shape, input_gradient)


class Conv2d(Module):
    """Cross-correlation as torch.nn.Conv2d, square kernel, the same stride and
    padding on both axes. x: (B, C_in, H, W) -> (B, C_out, H_out, W_out).

    Weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C_in *
    kernel_size**2, drawn in PyTorch's order. Arbitrarily differentiable
    (conv2d.py); its outputs are views of batch-last arrays (see there).
    """

    def __init__(self, in_channels, out_channels, kernel_size, rng, stride=1, padding=0,
                 dtype=np.float64):
        super().__init__()
        rng = _check_rng(rng)
        bound = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.weight = uniform(rng, (out_channels, in_channels, kernel_size, kernel_size), bound, dtype)
        self.bias = uniform(rng, (out_channels, 1, 1), bound, dtype)

    def forward(self, x, relu=False):
        return conv2d(x, self.weight, self.stride, self.padding, self.bias, relu)

    def flops(self, x_shape, y_shape, input_gradient):
        """(forward, backward) FLOPs of a call on x_shape (see flops_per_example)."""
        return _convolution_flops(self, y_shape, input_gradient)


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

    def flops(self, x_shape, y_shape, input_gradient):
        """(forward, backward) FLOPs of a call on x_shape (B, T, I) (see flops_per_example).

        Per step and direction, the products W_ih x (3H x I) and W_hh h (3H x H);
        the backward gives both weight gradients, the gradient of the previous
        state (W_hh^T, always needed), and that of x (W_ih^T) if asked. (The
        fused kernel computes x's gradient even when nobody asked: that work,
        the size of W_ih x's, is done but not counted.)
        """
        B, T, inputs = x_shape
        hidden = self.W_hh.shape[1]
        steps = B * T * (1 + self.bidirectional)
        from_input, recurrent = steps * 3 * hidden * inputs, steps * 3 * hidden * hidden
        forward, backward = _product_flops(from_input, input_gradient)
        return forward + 2 * recurrent, backward + 4 * recurrent


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
        return _largest(self.window_entries(x))


def _largest(entries):
    """The elementwise maximum of the window entries, by ops.where: the earliest maximum wins."""
    largest = entries[0]
    for entry in entries[1:]:
        # strictly larger: on a tie the earlier entry keeps the gradient
        later_wins = (entry.data > largest.data) | np.isnan(entry.data)
        largest = ops.where(later_wins, entry, largest)
    return largest


class MaxPool2d(Module):
    """Largest entry of each k x k window, as torch.nn.MaxPool2d (no padding):
    x: (B, C, H, W) -> (B, C, (H - k) // s + 1, (W - k) // s + 1), stride s
    defaulting to k. The 1-D layers' trick with one more axis: entry (u, v)
    of every window is the slice x[..., u::s, v::s], and the k*k slices are
    combined as MaxPool1d's. Ties: the first maximum in row-major order of
    the window gets the gradient, as PyTorch's max_pool2d; a nan wins.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = _check_window("MaxPool2d", kernel_size, stride)

    def window_entries(self, x):
        """x: (B, C, H, W) -> kernel_size**2 Tensors (B, C, H_out, W_out), entry (u, v) of every window, row by row."""
        k, s = self.kernel_size, self.stride
        if x.ndim != 4 or k > min(x.shape[-2:]):
            raise ValueError(f"MaxPool2d: input must be (B, C, H, W) with kernel_size in [1, min(H, W)], "
                             f"got shape {x.shape} and kernel_size {k}")
        height, width = (s * ((n - k) // s) + 1 for n in x.shape[-2:])  # first to last start
        return [x[..., u:u + height:s, v:v + width:s] for u in range(k) for v in range(k)]

    def forward(self, x):
        return _largest(self.window_entries(x))


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
    """inputs -> 10 linear: 410 parameters on MNIST-1D's 40 inputs, 7850 on 28 x 28 pixels."""

    def __init__(self, rng, inputs=40, dtype=np.float64):
        super().__init__()
        self.linear = Linear(inputs, 10, rng, dtype=dtype)

    def forward(self, x):
        return self.linear(x)


class MLP(Module):
    """h = relu(W1 x); h = h + relu(W2 h); out = W3 h. 40-100-100-10: 15210 parameters
    (inputs=784, the pixels of a 28 x 28 image: 89610)."""

    def __init__(self, rng, hidden=100, inputs=40, dtype=np.float64):
        super().__init__()
        self.linear1 = Linear(inputs, hidden, rng, dtype=dtype)
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


# ---------------------------------------------------------------- the same models for images
# Images arrive row by row, x: (batch, H * W) with pixels in [0, 1] as the
# loader gives them (no standardisation here); each model reshapes them.
# Logistic regression and the MLP read the H * W pixels as they are.

class ConvNet2d(Module):
    """The paper's CNN with one more axis: Conv2d 1->25 (5x5, s2, p1), 25->25
    (3x3, s2, p1) twice, relu after each, flatten -> 10. On 28 x 28 images:
    sizes 28 -> 13 -> 7 -> 4, 25 x 4 x 4 = 400 features, 15960 parameters.
    x: (batch, H * W) -> logits (batch, 10)."""

    def __init__(self, rng, image_shape=(28, 28), channels=25, dtype=np.float64):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        self.conv1 = Conv2d(1, channels, 5, rng, stride=2, padding=1, dtype=dtype)
        self.conv2 = Conv2d(channels, channels, 3, rng, stride=2, padding=1, dtype=dtype)
        self.conv3 = Conv2d(channels, channels, 3, rng, stride=2, padding=1, dtype=dtype)
        size = output_size(self.image_shape, (5, 5), 2, 1)
        for _ in range(2):
            size = output_size(size, (3, 3), 2, 1)
        if min(size) < 1:
            raise ValueError(f"ConvNet2d: image_shape must be at least (3, 3), got {self.image_shape}")
        self.linear = Linear(channels * size[0] * size[1], 10, rng, dtype=dtype)

    def forward(self, x):
        return self.linear(self.features(x))

    def features(self, x):
        """The last hidden layer, which the linear layer reads: x (batch, H * W) -> (batch, 400) on 28 x 28."""
        h = x.reshape(x.shape[0], 1, *self.image_shape)
        h = self.conv1(h, relu=True)
        h = self.conv2(h, relu=True)
        h = self.conv3(h, relu=True)
        return h.reshape(h.shape[0], -1)


class RowGRUNet(Module):
    """The paper's GRU reading an image's H rows as H steps of W pixels: a
    bidirectional GRU, hidden 6, all H x 12 outputs flattened -> 10. On
    28 x 28 images: 4666 parameters. x: (batch, H * W) -> logits (batch, 10)."""

    def __init__(self, rng, image_shape=(28, 28), hidden=6, dtype=np.float64):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        rows, width = self.image_shape
        self.gru = GRU(width, hidden, rng, bidirectional=True, dtype=dtype)
        self.linear = Linear(rows * 2 * hidden, 10, rng, dtype=dtype)

    def forward(self, x):
        h = self.gru(x.reshape(x.shape[0], *self.image_shape))
        return self.linear(h.reshape(h.shape[0], -1))


def _check_image_shape(image_shape):
    shape = tuple(image_shape)
    if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"image_shape must be (height, width), two integers >= 1, got {image_shape!r}")
    return tuple(int(n) for n in shape)


MODELS = {"logistic": LogisticRegression, "mlp": MLP, "cnn": ConvNet, "gru": GRUNet}
IMAGE_MODELS = {"logistic": lambda rng, image_shape, dtype: LogisticRegression(rng, inputs=np.prod(image_shape),
                                                                               dtype=dtype),
                "mlp": lambda rng, image_shape, dtype: MLP(rng, inputs=np.prod(image_shape), dtype=dtype),
                "cnn": ConvNet2d, "gru": RowGRUNet}


def make_model(name, rng, dtype=np.float64, image_shape=None):
    """One of the paper's models by name: 'logistic', 'mlp', 'cnn' or 'gru'.

    image_shape: None for MNIST-1D's (inputs (batch, 40)), or (H, W), e.g.
    (28, 28) for MNIST, for the same family's image version, which reads
    images row by row, x: (batch, H * W): logistic regression and the MLP on
    the pixels, ConvNet2d, RowGRUNet.
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")
    if image_shape is None:
        return MODELS[name](rng, dtype=dtype)
    return IMAGE_MODELS[name](rng, image_shape=_check_image_shape(image_shape), dtype=dtype)


# ---------------------------------------------------------------- what a training step costs

def flops_per_example(model, example_shape=(40,)):
    """Floating-point operations of a model's matrix products in one training
    step, per example: {'forward': n, 'backward': n} (evaluation costs the forward).

    Counted from the shapes each layer sees in a forward pass of one zero
    example of `example_shape` ((40,) for MNIST-1D, (784,) for 28 x 28
    images): 2 per multiply-add of each Linear, Conv1d, Conv2d and GRU
    product. The backward pass computes every weight gradient (as many
    FLOPs as the forward) and the gradient of each layer's input where that
    input needs one: not for a layer that reads the data (the GRU's
    recurrent gradient is needed all the same). Not counted: the elementwise
    work (biases, ReLU, pooling, the GRU's gates, the loss, the optimizer),
    which grows with the activations, not with the products; for a GRU of
    hidden size 6 it is of the same order as the products. A layer with
    parameters and no `flops` rule raises NotImplementedError rather than
    being left out.
    """
    params = list(model.parameters().values())
    x = Tensor(np.zeros((1,) + tuple(example_shape), params[0].dtype if params else np.float64))
    _traced.calls = []
    try:
        with _recording(True):   # so that requires_grad tells which inputs need a gradient
            model(x)
        calls = _traced.calls
    finally:
        _traced.calls = None
    forward = backward = 0
    for layer, x_in, y in calls:
        if not layer._params:
            continue                  # containers, pooling, Flatten: their layers were called too
        if not hasattr(layer, "flops"):
            raise NotImplementedError(f"flops_per_example: {type(layer).__name__} has parameters "
                                      "but no flops(x_shape, y_shape, input_gradient) rule")
        f, b = layer.flops(x_in.shape, y.shape, bool(getattr(x_in, "requires_grad", False)))
        forward, backward = forward + f, backward + b
    return {"forward": int(forward), "backward": int(backward)}
