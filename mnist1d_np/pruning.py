"""Pruning: masks, magnitude and random pruning, masked training, adjacency.

A *mask* is an insertion-ordered dict {parameter name: bool array}, in the
model's parameter order, True where a weight is kept. A layer is the
parameters that share a name prefix ("linear1.weight" and "linear1.bias"
form layer "linear1"): as in the lottery-ticket notebook, a layer's weight
matrix and its bias are ranked together as one vector.

- magnitude_masks(params, sparsity): drop exactly int(sparsity * n) entries
  of smallest |value| per layer (scope="layer") or over all layers at once
  (scope="global"). Ties are broken stably, in parameter order, so weights
  that are already zero are dropped first.
- random_masks(shapes, sparsity, rng): the same counts per layer, positions
  drawn from an explicit numpy Generator.
- train_masked(...): the paper's loop for the residual MLP (Adam, batches
  in a fixed order, evaluation every `eval_every` steps) with pruned weights
  held at exactly zero. The gradient of every pruned weight is masked to
  zero; Adam's moments start at zero and only ever receive those zeros, so
  the update of a pruned weight is 0 / (0 + eps) = 0, exactly. Past
  `SPARSE_FROM` sparsity the loop computes with the kept weights only
  (sparse_linear), and Adam updates only them.
- adjacency(mask, k): how often k neighbouring inputs of a hidden unit are
  all kept: the local-connectivity statistic of the paper's Figure 4.
"""
import base64
import dataclasses

import numpy as np

from . import sparse_linear
from .optim import adam
from .tensor import Tensor
from .train import fixed_order_batch

SCOPES = ("layer", "global")
# From benchmarks/bench_lottery.py: the sparse path wins from about this sparsity on.
# Seconds per round (40-500-500-10, one thread), 2026-11-26 on the idle machine:
# dense 4.0 at any sparsity; sparse 12.0 at 0, 4.3 at 0.7, 3.0 at 0.8, 1.7 at 0.9,
# 1.4 at 0.92, 0.75 at 0.97: the crossover lies between 0.7 (sparse 7 % slower)
# and 0.8. (CPU times on the loaded machine of 2026-11-25 had put it at 0.7, where
# it stays: chapter 03's saved runs were computed with it.) A fixed number, not a
# timing taken at run time, so that results never depend on the machine's load.
SPARSE_FROM = 0.7


# ---------------------------------------------------------------- masks

def _array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def check_sparsity(sparsity):
    """A sparsity must be a number in [0, 1]."""
    if not isinstance(sparsity, (int, float, np.integer, np.floating)) or not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be a number in [0, 1], got {sparsity!r}")
    return float(sparsity)


def layers(names):
    """{layer name: [parameter names]}: parameters grouped by their name's prefix, in order."""
    groups = {}
    for name in names:
        groups.setdefault(name.rsplit(".", 1)[0], []).append(name)
    return groups


def _drop_smallest(scores, n_drop):
    """Keep-flags for a 1-D score vector: False at its n_drop smallest entries (stable ties)."""
    keep = np.ones(scores.size, dtype=bool)
    keep[np.argsort(scores, kind="stable")[:n_drop]] = False
    return keep


def _split(flat, names, shapes):
    """A flat vector cut back into {name: array of shapes[name]}, in order."""
    out, start = {}, 0
    for name in names:
        size = int(np.prod(shapes[name]))
        out[name] = flat[start:start + size].reshape(shapes[name])
        start += size
    return out


def magnitude_masks(params, sparsity, scope="layer"):
    """Masks that drop the int(sparsity * n) smallest-|value| entries.

    params: {name: array or Tensor}. scope "layer": n counts one layer
    (weight and bias together); "global": all parameters ranked at once.
    Returns {name: bool array of the parameter's shape}, in params' order.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    arrays = {name: _array(p) for name, p in params.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    groups = layers(arrays) if scope == "layer" else {"all": list(arrays)}
    masks = {}
    for names in groups.values():
        scores = np.concatenate([np.abs(arrays[n]).ravel() for n in names])
        masks.update(_split(_drop_smallest(scores, int(sparsity * scores.size)), names, shapes))
    return {name: masks[name] for name in arrays}


def random_masks(shapes, sparsity, rng):
    """Per layer, int(sparsity * n) dropped positions drawn from rng (numpy Generator).

    shapes: {name: shape}; layers as in magnitude_masks.
    """
    sparsity = check_sparsity(sparsity)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    masks = {}
    for names in layers(shapes).values():
        n = sum(int(np.prod(shapes[name])) for name in names)
        keep = np.ones(n, dtype=bool)
        keep[rng.permutation(n)[:int(sparsity * n)]] = False
        masks.update(_split(keep, names, shapes))
    return masks


def check_masks(params, masks):
    """ValueError unless masks has params' names, in order, with matching shapes."""
    if list(masks) != list(params):
        raise ValueError(f"masks must name the parameters {list(params)} in order, got {list(masks)}")
    for name, p in params.items():
        if np.shape(masks[name]) != np.shape(_array(p)):
            raise ValueError(f"masks[{name!r}] has shape {np.shape(masks[name])}, "
                             f"the parameter {np.shape(_array(p))}")


def sparsity_of(masks):
    """The fraction of all entries that the masks drop."""
    total = sum(m.size for m in masks.values())
    return 1 - sum(int(m.sum()) for m in masks.values()) / total


def masks_to_json(masks):
    """{name: {'shape', 'bits'}}: each mask bit-packed, base64 (a 500x500 mask: 42 kB)."""
    return {name: {"shape": list(m.shape), "bits": base64.b64encode(np.packbits(m)).decode()}
            for name, m in masks.items()}


def masks_from_json(packed):
    """The inverse of masks_to_json."""
    masks = {}
    for name, entry in packed.items():
        bits = np.frombuffer(base64.b64decode(entry["bits"]), dtype=np.uint8)
        size = int(np.prod(entry["shape"]))
        masks[name] = np.unpackbits(bits)[:size].astype(bool).reshape(entry["shape"])
    return masks


# ---------------------------------------------------------------- adjacency

def adjacency(mask, k):
    """Per hidden unit, the fraction of the in - k + 1 input positions i at
    which the k consecutive weights mask[i:i+k, unit] are all kept.

    mask: (in, hidden) bool, a first-layer weight mask (nn.Linear's layout).
    Returns (hidden,) floats in [0, 1].
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D (in, hidden) array, got shape {mask.shape}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= mask.shape[0]:
        raise ValueError(f"k must be an integer in [1, {mask.shape[0]}], got {k!r}")
    windows = np.lib.stride_tricks.sliding_window_view(mask.astype(bool), k, axis=0)
    return windows.all(axis=-1).mean(axis=0)


def sort_by_adjacency(mask, k=2):
    """Hidden-unit order, most adjacent kept weights first (stable): (hidden,) ints."""
    return np.argsort(-adjacency(mask, k), kind="stable")


# ---------------------------------------------------------------- masked training

@dataclasses.dataclass(frozen=True)
class RoundConfig:
    """One prune-and-retrain round of the notebook: Adam lr 2e-2, batch 100,
    batches in a fixed order, evaluation after the update of every step with
    step % eval_every == 0 and after the last step."""
    steps: int = 1501
    batch_size: int = 100
    lr: float = 2e-2
    eval_every: int = 100

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


MLP_NAMES = ("linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
             "linear3.weight", "linear3.bias")


class DenseLayers:
    """The residual MLP's three linear layers as masked dense arrays.
    Activations are (batch, features)."""

    def __init__(self, params, masks, dtype):
        self.masks = [np.asarray(masks[n], dtype=dtype) for n in MLP_NAMES]
        self.trainables = [np.array(params[n], dtype=dtype) * m for n, m in zip(MLP_NAMES, self.masks)]

    def inputs(self, x):
        return x

    def batch_major(self, out):
        return out

    def from_batch_major(self, grad):
        return grad

    def linear(self, layer, h):
        weight, bias = self.trainables[2 * layer:2 * layer + 2]
        return h @ weight + bias

    def linear_grads(self, layer, h, d_out, input_grad):
        """(d input or None, [d weight, d bias]), pruned entries' gradients zeroed."""
        weight = self.trainables[2 * layer]
        weight_mask, bias_mask = self.masks[2 * layer:2 * layer + 2]
        grads = [(h.T @ d_out) * weight_mask, d_out.sum(axis=0) * bias_mask]
        return (d_out @ weight.T if input_grad else None), grads

    def export(self):
        return {n: p.copy() for n, p in zip(MLP_NAMES, self.trainables)}


class SparseLayers:
    """The same layers holding only their kept weights (sparse_linear kernels).
    Activations are transposed, (features, batch); Adam sees the kept values."""

    def __init__(self, params, masks, dtype):
        self.shapes = [np.shape(params[n]) for n in MLP_NAMES[::2]]
        self.patterns = [sparse_linear.pattern(masks[n]) for n in MLP_NAMES[::2]]
        self.bias_masks = [np.asarray(masks[n], dtype=dtype) for n in MLP_NAMES[1::2]]
        self.trainables = []
        for pattern, w, b, bm in zip(self.patterns, MLP_NAMES[::2], MLP_NAMES[1::2], self.bias_masks):
            weight = np.asarray(params[w], dtype=dtype)
            self.trainables += [weight[pattern.rows, pattern.cols], np.array(params[b], dtype=dtype) * bm]

    def inputs(self, x):
        return np.ascontiguousarray(x.T)

    def batch_major(self, outT):
        return outT.T

    def from_batch_major(self, grad):
        return np.ascontiguousarray(grad.T)

    def linear(self, layer, hT):
        values, bias = self.trainables[2 * layer:2 * layer + 2]
        return sparse_linear.forward(hT, self.patterns[layer], values, bias)

    def linear_grads(self, layer, hT, d_outT, input_grad):
        values = self.trainables[2 * layer]
        d_hT, d_values = sparse_linear.backward(hT, d_outT, self.patterns[layer], values, input_grad)
        return d_hT, [d_values, d_outT.sum(axis=1) * self.bias_masks[layer]]

    def export(self):
        out = {}
        for layer, (pattern, shape) in enumerate(zip(self.patterns, self.shapes)):
            weight = np.zeros(shape, dtype=self.trainables[0].dtype)
            weight[pattern.rows, pattern.cols] = self.trainables[2 * layer]
            out[MLP_NAMES[2 * layer]], out[MLP_NAMES[2 * layer + 1]] = weight, self.trainables[2 * layer + 1].copy()
        return out


def _forward(layers, x):
    """h1 = relu(l1 x); h2 = h1 + relu(l2 h1); out = l3 h2. Returns every intermediate."""
    h0 = layers.inputs(x)
    z1 = layers.linear(0, h0)
    h1 = np.maximum(z1, 0)
    z2 = layers.linear(1, h1)
    h2 = h1 + np.maximum(z2, 0)
    return h0, z1, h1, z2, h2, layers.linear(2, h2)


def cross_entropy(logits, y):
    """Mean cross-entropy of logits: (B, C) for labels y: (B,), and its gradient."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    d_logits = np.exp(log_probs)
    d_logits[rows, y] -= 1
    return float(-log_probs[rows, y].mean()), d_logits / len(y)


def loss_and_grads(layers, x, y):
    """The batch loss and the gradients of layers.trainables (masked), by hand."""
    h0, z1, h1, z2, h2, out = _forward(layers, x)
    loss, d_logits = cross_entropy(layers.batch_major(out), y)
    d_h2, grads3 = layers.linear_grads(2, h2, layers.from_batch_major(d_logits), True)
    d_z2 = d_h2 * (z2 > 0)
    d_h1, grads2 = layers.linear_grads(1, h1, d_z2, True)
    _, grads1 = layers.linear_grads(0, h0, (d_h2 + d_h1) * (z1 > 0), False)
    return loss, grads1 + grads2 + grads3


def evaluate(layers, x, y, chunk=1000):
    """(mean loss, accuracy) on x: (N, 40), y: (N,)."""
    loss, correct = 0.0, 0
    for start in range(0, len(y), chunk):
        logits = layers.batch_major(_forward(layers, x[start:start + chunk])[-1])
        yb = y[start:start + chunk]
        loss += cross_entropy(logits, yb)[0] * len(yb)
        correct += int((logits.argmax(axis=1) == yb).sum())
    return loss / len(y), correct / len(y)


def train_masked(params, masks, dataset, config=RoundConfig(), sparse=None, snapshot_step=None,
                 dtype=np.float32):
    """Train the residual MLP {MLP_NAMES: arrays} with pruned weights held at zero.

    params: (in, out) weights and biases (nn.MLP's names); masks: bool, same
    names and shapes. sparse: use the kept-weights kernels (default: when the
    masks' sparsity >= SPARSE_FROM). Returns (final params, curves, the params
    after step `snapshot_step` or None).
    """
    params = {n: _array(params[n]) for n in MLP_NAMES}
    check_masks(params, {n: masks[n] for n in MLP_NAMES})
    if sparse is None:
        sparse = sparsity_of(masks) >= SPARSE_FROM
    layers = (SparseLayers if sparse else DenseLayers)(params, masks, dtype)
    x, y = dataset["x"].astype(dtype), dataset["y"]
    sets = {"train": (x, y), "test": (dataset["x_test"].astype(dtype), dataset["y_test"])}
    rule = adam(config.lr)
    state, curves, snapshot = rule.init(layers.trainables), _new_curves(), None
    for step in range(config.steps):
        loss, grads = loss_and_grads(layers, *fixed_order_batch(x, y, step, config.batch_size))
        rule.update(layers.trainables, grads, state)
        if step % config.eval_every == 0 or step == config.steps - 1:
            _record(curves, layers, sets, step, loss)
        if step == snapshot_step:
            snapshot = layers.export()
    return layers.export(), curves, snapshot


def _new_curves():
    return {key: [] for key in ("eval_steps", "batch_loss", "train_loss", "train_acc", "test_loss", "test_acc")}


def _record(curves, layers, sets, step, batch_loss):
    curves["eval_steps"].append(step)
    curves["batch_loss"].append(batch_loss)
    for split, (x, y) in sets.items():
        loss, acc = evaluate(layers, x, y)
        curves[f"{split}_loss"].append(loss)
        curves[f"{split}_acc"].append(acc)
