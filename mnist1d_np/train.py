"""Training loops: one core, `fit`, and the two loops the paper's experiments use.

`fit(model, batches, rule, steps, ...)` is the loop every chapter trains with:

    for step in range(steps):                   # resumable: see resumable.py
        xb, yb = batches(step)                  # FixedOrder (the paper's) or Shuffled (new order each epoch)
        loss = loss_fn(model, xb, yb)           # default: cross-entropy of model(xb)
        g = grad(loss, parameters)              # the autodiff engine; pruned weights' gradients masked to 0
        rule.update(parameters, g)              # any optimizer of optim.py
        if step in eval_steps:                  # evaluate(model) -> numbers, appended to the curves,
            ...                                 # and a checkpoint every `save_every` evaluations

The parameters live in one flat vector (nn.flatten_parameters), so an
update is a single pass of the optimizer over one array.

On top of it:
- `train(model, dataset, config)`: the paper's loop. Adam (lr 1e-2), batch
  100, 6000 steps, batches in a fixed order, and after step 0, 250, 500, ...
  and the last step, the loss and accuracy on the whole train and test
  sets. `early_stopped(curves)` picks the evaluation with the best test
  accuracy, the selection the paper's Table 1 reports.
- `train_epochs(model, dataset, epochs, rng)`: SGD with momentum over
  epochs in a new order each, and the error (%) and loss on both sets after
  every epoch (chapter 06's deep double descent).
"""
import dataclasses

import numpy as np

from . import ops
from .fileio import digest  # noqa: F401  (train.digest: the data fingerprint the loops key on)
from .nn import describe, flatten_parameters
from .optim import adam, sgd
from .pruning import check_masks
from .resumable import Resumable
from .tensor import Tensor, grad, no_grad


# ---------------------------------------------------------------- batches

class FixedOrder:
    """The paper's batches: batch `step` is examples [start, start + batch_size)
    with start = step * batch_size mod N. No shuffling; a batch that would run
    past the end is cut short there. x: (N, ...), y: (N,)."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, _positive("batch_size", batch_size)
        self.state = {}  # nothing changes as it runs
        self.identity = {"order": "fixed", "batch_size": batch_size, "data": digest(x, y)}

    def __call__(self, step):
        start = (step * self.batch_size) % len(self.x)
        return self.x[start:start + self.batch_size], _rows(self.y, start, start + self.batch_size)

    @staticmethod
    def examples_seen(n, steps, batch_size):
        """How many examples `steps` of these batches over n examples hold (a cut batch counts
        what it holds): what a run trains on, for counting its cost."""
        starts = (np.arange(steps) * batch_size) % n
        return int(np.minimum(batch_size, n - starts).sum())


class Shuffled:
    """Epochs over x: (N, ...) (and y: (N,), or None) in a new order each,
    rng.permutation(N) drawn at an epoch's first step, in batches of
    batch_size (the last one smaller if N is not a multiple), as PyTorch's
    DataLoader(shuffle=True). rng: a numpy Generator; its state is part of
    the loop's checkpoints."""

    def __init__(self, x, y, batch_size, rng):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.x, self.y, self.batch_size = x, y, _positive("batch_size", batch_size)
        self.steps_per_epoch = -(-len(x) // batch_size)
        self.state = {"rng": rng, "order": np.arange(len(x))}
        self.identity = {"order": "shuffled", "batch_size": batch_size, "data": digest(x, y),
                         "rng": rng.bit_generator.state}

    def __call__(self, step):
        position = step % self.steps_per_epoch
        order = self.state["order"]
        if position == 0:
            order[...] = self.state["rng"].permutation(len(order))
        rows = order[position * self.batch_size:(position + 1) * self.batch_size]
        return self.x[rows], None if self.y is None else self.y[rows]


def _rows(y, start, end):
    return None if y is None else y[start:end]


def paper_eval_steps(steps, eval_every):
    """Evaluate after step 0, eval_every, 2 eval_every, ... and after the last one, as the paper's code."""
    return sorted(set(range(0, steps, _positive("eval_every", eval_every))) | {steps - 1})


def epoch_ends(steps_per_epoch, epochs, every=1):
    """The last step of every `every`-th epoch, and of the last epoch."""
    ends = {epoch * steps_per_epoch - 1 for epoch in range(every, epochs + 1, _positive("every", every))}
    return sorted(ends | {epochs * steps_per_epoch - 1})


# ---------------------------------------------------------------- the loop

def fit(model, batches, rule, steps, loss=None, evaluate=None, eval_steps=(), masks=None,
        checkpoint=None, identity=None, save_every=1, label=None, keep_parameters_at=()):
    """Train model's parameters for `steps` updates; returns the curves.

    batches: FixedOrder or Shuffled; rule: an optim rule (adam(...), sgd(...)).
    loss(model, xb, yb) -> scalar Tensor; default: cross-entropy of model(xb).
    evaluate(model) -> {name: number}, called after each step in eval_steps.
    masks: {parameter name: bool array} for every parameter: the gradient of
    an entry that is False is zeroed, so a pruned weight that starts at 0
    stays exactly 0 (Adam's update of it is 0 / (0 + eps)).
    checkpoint: a path (see resumable.py): the loop is saved at every
    `save_every`-th evaluation and at the end, and resumes from there. Its
    identity: `identity` (what the caller's loss and evaluation read), the
    model (nn.describe), the rule, the schedule, the data, the initial
    parameters and the masks.
    keep_parameters_at: steps after which a copy of the parameters is kept.
    Returns {'train_losses': per step, 'eval_steps', every evaluated name:
    per evaluation, and 'parameters_at': {step: {name: array}} if kept}.
    """
    steps, save_every = _count("steps", steps, 0), _count("save_every", save_every, 1)
    params = list(model.parameters().values())
    flat = flatten_parameters(model)
    flat_grad = np.empty_like(flat)  # reused every step
    views = [flat_grad[start:start + p.size].reshape(p.shape) for start, p in zip(_offsets(params), params)]
    mask = None if masks is None else _flat_mask(model, masks, flat.dtype)
    eval_steps, keep = _steps("eval_steps", eval_steps, steps), _steps("keep_parameters_at", keep_parameters_at, steps)
    state = {"parameters": flat, "optimizer": rule.init([flat]), "batches": batches.state,
             "train_losses": np.full(steps, np.nan), "curves": {"eval_steps": []}, "kept": {}}
    loop = Resumable(checkpoint, {"caller": identity, "model": describe(model), "rule": _describe(rule), "steps": steps,
                                  "eval_steps": eval_steps, "keep": sorted(keep), "batches": batches.identity,
                                  "initial_parameters": digest(flat), "masks": None if mask is None else digest(mask)},
                     state, steps, label)
    loss = _cross_entropy if loss is None else loss
    evaluate_after, keep = set(eval_steps), set(keep)
    evaluations, last_evaluation = len(state["curves"]["eval_steps"]), eval_steps[-1] if eval_steps else None
    for step in loop:
        xb, yb = batches(step)
        value = loss(model, xb, yb)
        for view, g in zip(views, grad(value, params)):
            view[...] = g.data
        if mask is not None:
            flat_grad *= mask
        rule.update([flat], [flat_grad], state["optimizer"])
        state["train_losses"][step] = value.item()
        loop.show(loss=state["train_losses"][step])
        if step in keep:
            state["kept"][str(step)] = flat.copy()
        if step in evaluate_after:
            _record(state["curves"], step, {} if evaluate is None else evaluate(model))
            evaluations += 1
            if evaluations % save_every == 0 or step == last_evaluation:
                loop.checkpoint()
    curves = {"train_losses": state["train_losses"].tolist(), **state["curves"]}
    if keep:
        curves["parameters_at"] = {int(s): _split(flat, model) for s, flat in state["kept"].items()}
    return curves


def _cross_entropy(model, xb, yb):
    return ops.cross_entropy(model(Tensor(xb)), yb)


def _record(curves, step, values):
    curves["eval_steps"].append(step)
    for name, value in values.items():
        curves.setdefault(name, []).append(value)


def _steps(name, steps, total):
    steps = sorted({int(s) for s in steps})
    if steps and not 0 <= steps[0] <= steps[-1] < total:
        raise ValueError(f"{name} must lie in [0, {total - 1}], got {steps[0]}..{steps[-1]}")
    return steps


def _flat_mask(model, masks, dtype):
    """The masks of every parameter (named in any order), in the flat vector's order, as 0/1 numbers."""
    params = model.parameters()
    check_masks(params, masks)
    return np.concatenate([np.asarray(masks[name], dtype=bool).ravel() for name in params]).astype(dtype)


def _split(flat, model):
    """{name: array} of a flat parameter vector, in the model's shapes."""
    params, out = model.parameters(), {}
    for (name, p), start in zip(params.items(), _offsets(list(params.values()))):
        out[name] = flat[start:start + p.size].reshape(p.shape)
    return out


def _describe(rule):
    return {"rule": type(rule).__name__, **vars(rule)}


def _offsets(params):
    """Where each parameter starts in the flat vector (nn.flatten_parameters' order)."""
    return np.cumsum([0] + [p.size for p in params[:-1]])


def _count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(name, value):
    return _count(name, value, 1)


# ---------------------------------------------------------------- evaluation

def evaluate(model, x, y, batch_size=1000):
    """(mean cross-entropy loss, accuracy) of model on x: (N, 40), y: (N,)."""
    x = x.astype(_dtype(model), copy=False)
    losses, correct = 0.0, 0
    with no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(Tensor(x[start:start + batch_size])).data
            yb = y[start:start + batch_size]
            losses += ops.cross_entropy(Tensor(logits), yb).item() * len(yb)
            correct += int((logits.argmax(axis=1) == yb).sum())
    return losses / len(y), correct / len(y)


def losses_and_accuracies(model, dataset):
    """{'train_loss', 'test_loss', 'train_acc', 'test_acc'} on the whole train and test sets."""
    train_loss, train_acc = evaluate(model, dataset["x"], dataset["y"])
    test_loss, test_acc = evaluate(model, dataset["x_test"], dataset["y_test"])
    return {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc, "test_acc": test_acc}


EPOCH_CURVES = ("train_error", "test_error", "train_loss", "test_loss")


def errors(model, dataset):
    """{name: value} for EPOCH_CURVES: error (%) and mean loss on the train and test sets."""
    out = {}
    for split, (x, y) in (("train", (dataset["x"], dataset["y"])), ("test", (dataset["x_test"], dataset["y_test"]))):
        loss, accuracy = evaluate(model, x, y)
        wrong = len(y) - round(accuracy * len(y))  # a count: 30.1 %, not 30.100000000000005
        out[f"{split}_error"], out[f"{split}_loss"] = 100.0 * wrong / len(y), loss
    return {name: out[name] for name in EPOCH_CURVES}


def _dtype(model):
    return next(iter(model.parameters().values())).dtype


# ---------------------------------------------------------------- the paper's loop

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The paper's loop: Adam, `steps` updates of batch_size examples in a
    fixed order, evaluation after every eval_every-th step. Its defaults are the paper's."""
    steps: int = 6000
    batch_size: int = 100
    lr: float = 1e-2
    weight_decay: float = 0.0
    eval_every: int = 250

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            _positive(name, getattr(self, name))
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")


def train(model, dataset, config=TrainConfig(), checkpoint=None, label=None, masks=None, keep_parameters_at=()):
    """Train `model` on dataset {'x', 'y', 'x_test', 'y_test'} with the paper's loop.

    The evaluation happens after the update of every step with
    step % eval_every == 0 and after the last one, as in the paper's code.
    checkpoint, label, masks, keep_parameters_at: as for fit.
    Returns fit's curves ('train_losses', 'eval_steps', 'train_loss',
    'test_loss', 'train_acc', 'test_acc') plus 'final_test_acc'.
    """
    x = dataset["x"].astype(_dtype(model), copy=False)
    rule = adam(config.lr, weight_decay=config.weight_decay)
    curves = fit(model, FixedOrder(x, dataset["y"], config.batch_size), rule, config.steps,
                 evaluate=lambda m: losses_and_accuracies(m, dataset),
                 eval_steps=paper_eval_steps(config.steps, config.eval_every), masks=masks, checkpoint=checkpoint,
                 identity={"test_data": digest(dataset["x_test"], dataset["y_test"])}, label=label,
                 keep_parameters_at=keep_parameters_at)
    curves["final_test_acc"] = curves["test_acc"][-1]
    return curves


def early_stopped(curves):
    """The evaluation with the highest test accuracy: {'step', 'test_acc', 'train_acc'}."""
    best = int(np.argmax(curves["test_acc"]))
    return {"step": curves["eval_steps"][best], "test_acc": curves["test_acc"][best],
            "train_acc": curves["train_acc"][best]}


# ---------------------------------------------------------------- epoch-wise SGD (deep double descent)

def train_epochs(model, dataset, epochs, rng, lr=0.01, momentum=0.9, batch_size=100, checkpoint=None,
                 save_every=25, label=None):
    """Train `model` with SGD + momentum (torch.optim.SGD's form) for `epochs` epochs
    of Shuffled batches (rng: a numpy Generator) on dataset {'x', 'y', 'x_test', 'y_test'}.

    After every epoch the error (%) and mean loss on the whole train and test
    sets are recorded; a checkpoint is saved every `save_every` epochs.
    Returns {name: list over epochs} for the names in EPOCH_CURVES.
    """
    x = dataset["x"].astype(_dtype(model), copy=False)
    batches = Shuffled(x, dataset["y"], batch_size, rng)
    curves = fit(model, batches, sgd(lr, momentum), epochs * batches.steps_per_epoch,
                 evaluate=lambda m: errors(m, dataset), eval_steps=epoch_ends(batches.steps_per_epoch, epochs),
                 checkpoint=checkpoint, identity={"test_data": digest(dataset["x_test"], dataset["y_test"])},
                 save_every=save_every, label=label)
    return {name: curves[name] for name in EPOCH_CURVES}
