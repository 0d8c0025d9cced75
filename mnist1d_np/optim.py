"""Functional optimizers: ``update(params, grads, state) -> (params, state)``.

Each rule (``sgd``, ``adam``, ``rmsprop``) is a small object with

- ``init(params) -> state``: step counter and zeroed (or initial) buffers,
- ``update(params, grads, state) -> (params, state)``.

``params`` and ``grads`` are matching lists or dicts. Two paths, one API:

- **Arrays** (ndarrays, hyperparameters plain numbers): for everyday
  training. Parameters and buffers are updated *in place* and the same
  containers are returned.
- **Tensors** (any parameter, gradient or hyperparameter is a Tensor): purely
  functional. New Tensors are returned, nothing is mutated, so the update can
  be unrolled inside a differentiable loop. Hyperparameters such as ``lr``
  may themselves be Tensors, which gives hypergradients d(loss)/d(lr)::

      rule = sgd(lr=Tensor(0.1, requires_grad=True), momentum=0.9)
      state = rule.init(params)
      for x, y in batches:
          grads = grad(loss(params, x, y), params, create_graph=True)
          params, state = rule.update(params, grads, state)

Each rule's maths is written once, in its ``step`` method, with operators that
work on arrays and Tensors alike; the two paths differ only in whether the
results are written back into the given arrays.

One fast path, clearly marked below: Adam on float arrays runs a numba
kernel, one pass over each array instead of a dozen NumPy passes, with the
same operations in the same order (``tests/test_optim.py`` checks it
against ``Adam.step``).

``Optimizer(rule, params)`` wraps the array path for Tensor parameters:
``opt.step(grads)`` updates the parameters' arrays in place. Use it (or
arrays) for ordinary training: the Tensor path records every update, so
steps would chain into one ever-growing graph.
"""
import numpy as np
from numba import njit

from . import ops
from .tensor import Tensor


# ---------------------------------------------------------------- containers

def _keys(params):
    return list(params) if isinstance(params, dict) else range(len(params))


def _like(params, values):
    """values (in _keys order) in a container of the same kind as params."""
    return dict(zip(params, values)) if isinstance(params, dict) else list(values)


def _map(fn, params):
    return _like(params, [fn(params[k]) for k in _keys(params)])


def _array(x):
    return x.data if isinstance(x, Tensor) else x


def _on_arrays(params, grads, hyperparameters):
    """True when everything is plain arrays and numbers: take the in-place path."""
    return (all(isinstance(params[k], np.ndarray) and isinstance(grads[k], np.ndarray)
                for k in _keys(params))
            and not any(isinstance(h, Tensor) for h in hyperparameters))


def _sqrt(x):
    return ops.sqrt(x) if isinstance(x, Tensor) else np.sqrt(x)


def _nonzero(hyperparameter):
    """A Tensor hyperparameter counts as nonzero: its gradient may be wanted."""
    return isinstance(hyperparameter, Tensor) or hyperparameter != 0


class _Rule:
    """An update rule written once, as ``step(p, g, *buffers, step) -> (p, *buffers)``
    with operators that work on arrays and Tensors alike. ``update`` maps it over
    the parameters; on arrays it then writes the results into the given arrays
    (in place), on Tensors it returns new ones (functional)."""
    buffers = ()

    def hyperparameters(self):
        return ()

    def init(self, params):
        state = {"step": 0}
        for name in self.buffers:
            state[name] = _map(lambda p: np.full_like(_array(p), self.buffer_start(name)), params)
        return state

    def buffer_start(self, name):
        return 0.0

    def update(self, params, grads, state):
        step, keys = state["step"] + 1, _keys(params)
        moved = [self.step(params[k], grads[k], *(state[b][k] for b in self.buffers), step)
                 for k in keys]
        if _on_arrays(params, grads, self.hyperparameters()):
            for k, results in zip(keys, moved):
                for target, value in zip((params[k],) + tuple(state[b][k] for b in self.buffers), results):
                    target[...] = value
            state["step"] = step
            return params, state
        columns = list(zip(*moved)) if moved else [()] * (1 + len(self.buffers))
        new_state = {"step": step, **{b: _like(params, c) for b, c in zip(self.buffers, columns[1:])}}
        return _like(params, columns[0]), new_state


# ---------------------------------------------------------------- the rules

class SGD(_Rule):
    """p <- p - lr * buf with buf <- momentum * buf + g (torch.optim.SGD; buf starts at g)."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum = lr, momentum
        self.buffers = ("buf",) if _nonzero(momentum) else ()

    def hyperparameters(self):
        return (self.lr, self.momentum)

    def step(self, p, g, *buf_and_step):
        if not self.buffers:
            return (p - self.lr * g,)
        buf = self.momentum * buf_and_step[0] + g  # buf starts at zeros: the first is g
        return p - self.lr * buf, buf


def sgd(lr, momentum=0.0):
    """Stochastic gradient descent, with optional (torch-style) momentum."""
    return SGD(lr, momentum)


class Adam(_Rule):
    """torch.optim.Adam: bias-corrected moments, weight decay added to the gradient."""
    buffers = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, (self.beta1, self.beta2) = lr, betas
        self.eps, self.weight_decay = eps, weight_decay

    def hyperparameters(self):
        return (self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)

    def step(self, p, g, m, v, step):
        b1, b2 = self.beta1, self.beta2
        if _nonzero(self.weight_decay):
            g = g + self.weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        # Same operation order as torch: sqrt(v) / sqrt(bc2) + eps, step lr / bc1.
        denom = _sqrt(v) / (1 - b2 ** step) ** 0.5 + self.eps
        return p - (self.lr / (1 - b1 ** step)) * (m / denom), m, v


    def update(self, params, grads, state):
        if not _kernel_ready(params, grads, state, self.hyperparameters()):
            return super().update(params, grads, state)
        state["step"] = step = state["step"] + 1
        scalars = self._kernel_scalars(step)
        for k in _keys(params):
            p, g, m, v = params[k], grads[k], state["m"][k], state["v"][k]
            adam_in_place(p, g, m, v, *(p.dtype.type(c) for c in scalars))
        return params, state

    def _kernel_scalars(self, step):
        """step's constants as ``step`` computes them (in Python floats)."""
        b1, b2 = self.beta1, self.beta2
        return (self.weight_decay, b1, 1 - b1, b2, 1 - b2, (1 - b2 ** step) ** 0.5, self.eps,
                self.lr / (1 - b1 ** step))


# ---- fast path: Adam.step in one pass, in place (~10 % of an MLP training step
# in NumPy's passes and temporaries). Each scalar arrives in the arrays' dtype,
# as NumPy casts a Python float, so the arithmetic is step's, operation by operation.

def _kernel_ready(params, grads, state, hyperparameters):
    """Arrays only, each key's four arrays C-contiguous and of one float dtype."""
    if not _on_arrays(params, grads, hyperparameters):
        return False
    for k in _keys(params):
        arrays = (params[k], grads[k], state["m"][k], state["v"][k])
        if arrays[0].dtype.kind != "f" or any(a.dtype != arrays[0].dtype or a.shape != arrays[0].shape
                                              or not a.flags.c_contiguous for a in arrays):
            return False
    return True


def adam_in_place(p, g, m, v, weight_decay, b1, one_minus_b1, b2, one_minus_b2, sqrt_bc2, eps, step_size):
    """Adam.step on flat-or-any-shape float arrays p, g, m, v, updating p, m, v in place."""
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i] if weight_decay != 0 else g[i]
        m[i] = b1 * m[i] + one_minus_b1 * gi
        v[i] = b2 * v[i] + one_minus_b2 * (gi * gi)
        p[i] = p[i] - step_size * (m[i] / (np.sqrt(v[i]) / sqrt_bc2 + eps))


# error_model="numpy": x / 0 gives inf or nan as in NumPy instead of raising, which
# removes a branch per division and lets LLVM vectorise the loop (2x here).
adam_in_place = njit(cache=True, error_model="numpy")(adam_in_place)


def adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam exactly as torch.optim.Adam (non-amsgrad)."""
    return Adam(lr, betas, eps, weight_decay)


class RMSProp(_Rule):
    """avg_sq <- mu avg_sq + (1 - mu) g^2;  p <- p - lr g / (sqrt(avg_sq) + eps).

    As in the MNIST-1D paper's activation-function metalearning: avg_sq
    starts at ``init_avg_sq`` (ones), not zeros, and there is no bias correction.
    """
    buffers = ("avg_sq",)

    def __init__(self, lr, mu, eps=1e-8, init_avg_sq=1.0):
        self.lr, self.mu, self.eps, self.init_avg_sq = lr, mu, eps, init_avg_sq

    def hyperparameters(self):
        return (self.lr, self.mu, self.eps)

    def buffer_start(self, name):
        return self.init_avg_sq

    def step(self, p, g, avg_sq, step):
        avg_sq = self.mu * avg_sq + (1 - self.mu) * (g * g)
        return p - self.lr * (g / (_sqrt(avg_sq) + self.eps)), avg_sq


def rmsprop(lr, mu, eps=1e-8, init_avg_sq=1.0):
    """RMSProp as used for the paper's metalearned activation functions."""
    return RMSProp(lr, mu, eps, init_avg_sq)


# ---------------------------------------------------------------- everyday wrapper

class Optimizer:
    """Stateful wrapper for ordinary training.

    rule: sgd(...), adam(...) or rmsprop(...). params: list or dict of Tensors
    (or arrays). ``step(grads)`` updates the parameters' arrays in place, so
    the Tensors themselves hold the new values; grads match params.
    """

    def __init__(self, rule, params):
        self.rule, self.params = rule, params
        self.state = rule.init(params)

    def step(self, grads):
        arrays = _map(_array, self.params)
        self.rule.update(arrays, _map(_array, grads), self.state)
