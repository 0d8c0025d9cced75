"""Functional optimizers: ``update(params, grads, state) -> (params, state)``.

Each rule (``sgd``, ``adam``, ``rmsprop``) is a small object with

- ``init(params) -> state``: step counter and zeroed (or initial) buffers,
- ``update(params, grads, state) -> (params, state)``.

``params`` and ``grads`` are matching lists or dicts. Two paths, one API:

- **Arrays** (ndarrays, hyperparameters plain numbers): the fast path for
  everyday training. Parameters and buffers are updated *in place* and the
  same containers are returned.
- **Tensors** (any parameter, gradient or hyperparameter is a Tensor): purely
  functional. New Tensors are returned, nothing is mutated, so the update can
  be unrolled inside a differentiable loop. Hyperparameters such as ``lr``
  may themselves be Tensors, which gives hypergradients d(loss)/d(lr)::

      rule = sgd(lr=Tensor(0.1, requires_grad=True), momentum=0.9)
      state = rule.init(params)
      for x, y in batches:
          grads = grad(loss(params, x, y), params, create_graph=True)
          params, state = rule.update(params, grads, state)

``Optimizer(rule, params)`` wraps the array path for Tensor parameters:
``opt.step(grads)`` updates the parameters' arrays in place. Use it (or
arrays) for ordinary training: the Tensor path records every update, so
steps would chain into one ever-growing graph.
"""
import numpy as np

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


def _zeros(params):
    return _map(lambda p: np.zeros_like(_array(p)), params)


# ---------------------------------------------------------------- SGD

class SGD:
    """p <- p - lr * buf with buf <- momentum * buf + g (torch.optim.SGD; buf starts at g)."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum = lr, momentum

    def init(self, params):
        state = {"step": 0}
        if _nonzero(self.momentum):
            state["buf"] = _zeros(params)  # 0 * momentum + g: the first buf is g
        return state

    def update(self, params, grads, state):
        lr, momentum = self.lr, self.momentum
        if "buf" not in state:
            return self._plain(params, grads, state)
        if _on_arrays(params, grads, (lr, momentum)):
            for k in _keys(params):
                buf = state["buf"][k]
                buf *= momentum
                buf += grads[k]
                params[k] -= lr * buf
            state["step"] += 1
            return params, state
        bufs = [momentum * state["buf"][k] + grads[k] for k in _keys(params)]
        new = [params[k] - lr * b for k, b in zip(_keys(params), bufs)]
        return _like(params, new), {"step": state["step"] + 1, "buf": _like(params, bufs)}

    def _plain(self, params, grads, state):
        lr = self.lr
        if _on_arrays(params, grads, (lr,)):
            for k in _keys(params):
                params[k] -= lr * grads[k]
            state["step"] += 1
            return params, state
        new = [params[k] - lr * grads[k] for k in _keys(params)]
        return _like(params, new), {"step": state["step"] + 1}


def _nonzero(hyperparameter):
    """A Tensor hyperparameter counts as nonzero: its gradient may be wanted."""
    return isinstance(hyperparameter, Tensor) or hyperparameter != 0


def sgd(lr, momentum=0.0):
    """Stochastic gradient descent, with optional (torch-style) momentum."""
    return SGD(lr, momentum)


# ---------------------------------------------------------------- Adam

class Adam:
    """torch.optim.Adam: bias-corrected moments, weight decay added to the gradient."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, (self.beta1, self.beta2) = lr, betas
        self.eps, self.weight_decay = eps, weight_decay

    def init(self, params):
        return {"step": 0, "m": _zeros(params), "v": _zeros(params)}

    def update(self, params, grads, state):
        step = state["step"] + 1
        hyper = (self.lr, self.beta1, self.beta2, self.eps, self.weight_decay)
        if _on_arrays(params, grads, hyper):
            for k in _keys(params):
                self._step_array(params[k], grads[k], state["m"][k], state["v"][k], step)
            state["step"] = step
            return params, state
        moved = [self._step_tensor(params[k], grads[k], state["m"][k], state["v"][k], step)
                 for k in _keys(params)]
        new, m, v = zip(*moved) if moved else ((), (), ())
        return _like(params, new), {"step": step, "m": _like(params, m), "v": _like(params, v)}

    def _step_array(self, p, g, m, v, step):
        b1, b2 = self.beta1, self.beta2
        if self.weight_decay:
            g = g + self.weight_decay * p
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        # Same operation order as torch: sqrt(v) / sqrt(bc2) + eps, step lr / bc1.
        denom = np.sqrt(v)
        denom /= (1 - b2 ** step) ** 0.5
        denom += self.eps
        p -= (self.lr / (1 - b1 ** step)) * (m / denom)

    def _step_tensor(self, p, g, m, v, step):
        b1, b2 = self.beta1, self.beta2
        if _nonzero(self.weight_decay):
            g = g + self.weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        denom = ops.sqrt(v) / (1 - b2 ** step) ** 0.5 + self.eps
        return p - (self.lr / (1 - b1 ** step)) * (m / denom), m, v


def adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam exactly as torch.optim.Adam (non-amsgrad)."""
    return Adam(lr, betas, eps, weight_decay)


# ---------------------------------------------------------------- RMSProp

class RMSProp:
    """avg_sq <- mu avg_sq + (1 - mu) g^2;  p <- p - lr g / (sqrt(avg_sq) + eps).

    As in the MNIST-1D paper's activation-function metalearning: avg_sq
    starts at ``init_avg_sq`` (ones), not zeros, and there is no bias correction.
    """

    def __init__(self, lr, mu, eps=1e-8, init_avg_sq=1.0):
        self.lr, self.mu, self.eps, self.init_avg_sq = lr, mu, eps, init_avg_sq

    def init(self, params):
        return {"step": 0, "avg_sq": _map(lambda p: np.full_like(_array(p), self.init_avg_sq),
                                          params)}

    def update(self, params, grads, state):
        lr, mu, eps = self.lr, self.mu, self.eps
        if _on_arrays(params, grads, (lr, mu, eps)):
            for k in _keys(params):
                avg_sq, g = state["avg_sq"][k], grads[k]
                avg_sq *= mu
                avg_sq += (1 - mu) * (g * g)
                params[k] -= lr * (g / (np.sqrt(avg_sq) + eps))
            state["step"] += 1
            return params, state
        avg = [mu * state["avg_sq"][k] + (1 - mu) * (grads[k] * grads[k]) for k in _keys(params)]
        new = [params[k] - lr * (grads[k] / (ops.sqrt(a) + eps))
               for k, a in zip(_keys(params), avg)]
        return _like(params, new), {"step": state["step"] + 1, "avg_sq": _like(params, avg)}


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
