"""Pruning: masks, magnitude and random pruning, pruned layers, adjacency.

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
- prune(model, masks): a model with its pruned weights at exactly zero,
  trained by the ordinary loop (train.fit with the masks it returns: the
  gradient of every pruned weight is masked to zero, so Adam's moments of
  it stay zero, and so does its update, 0 / (0 + eps)). From `SPARSE_FROM`
  sparsity on, its Linear layers become SparseLinear layers, which hold and
  multiply only the kept weights (sparse_linear's kernels), so Adam updates
  only them.
- adjacency(mask, k): how often k neighbouring inputs of a hidden unit are
  all kept: the local-connectivity statistic of the paper's Figure 4.
"""
import base64
import zlib

import numpy as np

from . import sparse_linear
from .nn import Linear, Module, Sequential
from .tensor import Tensor

SCOPES = ("layer", "global")
# The kept-weights kernels win from between 0.7 and 0.8 sparsity on (benchmarks/bench_lottery.py
# measures the crossover). A fixed number, not a timing taken at run time, so that results
# never depend on the machine's load: the two paths sum in different orders.
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
    """ValueError unless masks has params' names (in any order), with matching shapes."""
    if set(masks) != set(params):
        raise ValueError(f"masks must name the parameters {list(params)}, got {list(masks)}")
    for name, p in params.items():
        if np.shape(masks[name]) != np.shape(_array(p)):
            raise ValueError(f"masks[{name!r}] has shape {np.shape(masks[name])}, "
                             f"the parameter {np.shape(_array(p))}")


def sparsity_of(masks):
    """The fraction of all entries that the masks drop."""
    total = sum(m.size for m in masks.values())
    return 1 - sum(int(m.sum()) for m in masks.values()) / total


def masks_to_json(masks):
    """{name: {'shape', 'bits'}}: each mask bit-packed, zlib-compressed, base64
    (a 500x500 mask: 42 kB at most, a few kB at high sparsity)."""
    return {name: {"shape": list(m.shape), "bits": base64.b64encode(zlib.compress(np.packbits(m), 9)).decode()}
            for name, m in masks.items()}


def masks_from_json(packed):
    """The inverse of masks_to_json."""
    masks = {}
    for name, entry in packed.items():
        bits = np.frombuffer(zlib.decompress(base64.b64decode(entry["bits"])), dtype=np.uint8)
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


# ---------------------------------------------------------------- pruned layers

class SparseLinear(Module):
    """A pruned Linear layer that holds and multiplies only its kept weights.

    weight: (in, out) and bias: (out,) arrays, mask: (in, out) bool. The
    parameter `weight` is the (nnz,) vector of kept values (row-major order,
    see sparse_linear), so an optimizer updates only those.
    """

    def __init__(self, weight, bias, mask):
        super().__init__()
        self.pattern = sparse_linear.pattern(mask)
        self.weight = Tensor(np.ascontiguousarray(weight[self.pattern.rows, self.pattern.cols]), requires_grad=True)
        self.bias = Tensor(np.array(bias), requires_grad=True)

    def forward(self, x, relu=False):
        return sparse_linear.linear(x, self.pattern, self.weight, self.bias, relu)

    def dense_weight(self, values=None):
        """The (in, out) weight matrix, zero where pruned, of `values` (default: the current ones)."""
        values = self.weight.data if values is None else values
        weight = np.zeros(sparse_linear.shape_of(self.pattern), dtype=values.dtype)
        weight[self.pattern.rows, self.pattern.cols] = values
        return weight


def prune(model, masks, sparse=None):
    """Hold the pruned weights of model's Linear layers at exactly zero.

    masks: {parameter name: bool array} for every parameter (as
    magnitude_masks gives them); only the weights and biases of Linear
    layers (with a bias) can be pruned: another parameter's mask must keep
    every entry, or ValueError. Kept weights keep their values, so pruning
    a freshly initialised network rewinds a ticket. sparse: replace every
    Linear by a SparseLinear (default: when sparsity_of(masks) >= SPARSE_FROM),
    otherwise multiply the pruned entries by 0 in place. The model changes in
    place. Returns the masks of its parameters now, for train.fit(masks=...),
    which zeroes the pruned entries' gradients: Adam's moments of a pruned
    weight then stay 0, and so does its update, 0 / (0 + eps).
    """
    check_masks(model.parameters(), masks)
    linear = dict(_linear_layers(model, ""))
    prunable = {f"{path}.{kind}" for path in linear for kind in ("weight", "bias")}
    stuck = [name for name in masks if name not in prunable and not np.all(masks[name])]
    if stuck:
        raise ValueError(f"prune: only Linear layers with a bias can be pruned; the masks drop entries of {stuck}")
    sparse = sparsity_of(masks) >= SPARSE_FROM if sparse is None else sparse
    for path, (parent, name, layer) in linear.items():
        weight_mask, bias_mask = masks[f"{path}.weight"], masks[f"{path}.bias"]
        if sparse:
            bias = layer.bias.data * np.asarray(bias_mask, dtype=layer.bias.dtype)
            setattr(parent, name, SparseLinear(layer.weight.data, bias, weight_mask))
        else:
            layer.weight.data *= np.asarray(weight_mask, dtype=layer.weight.dtype)
            layer.bias.data *= np.asarray(bias_mask, dtype=layer.bias.dtype)
    return {name: np.ones(p.shape, dtype=bool) if sparse and name.endswith(".weight") and name in prunable
            else np.asarray(masks[name]) for name, p in model.parameters().items()}


def _linear_layers(module, prefix):
    """(path, (parent module, attribute name, layer)) of every Linear with a bias, depth first."""
    if isinstance(module, Sequential):
        raise TypeError("prune: a Sequential's layers cannot be swapped; build the model from attributes (nn.MLP)")
    for name, child in module._children.items():
        if isinstance(child, Linear) and child.bias is not None:
            yield f"{prefix}{name}", (module, name, child)
        elif isinstance(child, Module):
            yield from _linear_layers(child, f"{prefix}{name}.")


def dense_parameters(model, values=None):
    """{name: array} of model's parameters as dense arrays (a SparseLinear's
    weight as its (in, out) matrix), copies. values: {name: array} to read
    instead of the current parameters (train.fit's parameters_at)."""
    out = {name: np.array(p.data if values is None else values[name]) for name, p in model.parameters().items()}
    for name, layer in _sparse_layers(model, ""):
        out[f"{name}.weight"] = layer.dense_weight(None if values is None else values[f"{name}.weight"])
    return out


def _sparse_layers(module, prefix):
    for name, child in module._children.items():
        if isinstance(child, SparseLinear):
            yield f"{prefix}{name}", child
        elif isinstance(child, Module):
            yield from _sparse_layers(child, f"{prefix}{name}.")
