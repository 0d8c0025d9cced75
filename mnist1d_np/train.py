"""The paper's training loop.

Adam (lr 1e-2), batch 100, 6000 steps, batches taken in a fixed order
(`fixed_order_batch`), and every 250 steps the loss and accuracy on
the full train and test sets. The parameters live in one flat vector (see
nn.flatten_parameters), so each Adam step is a handful of NumPy calls.

`train` returns the curves; `early_stopped(results)` picks the evaluation
with the best test accuracy, the selection the paper's Table 1 reports.
"""
import dataclasses
import hashlib
import os

import numpy as np

from . import ops
from .fileio import checkpoint_path as identity_path, load_checkpoint, save_checkpoint
from .nn import flatten_parameters
from .optim import adam
from .tensor import Tensor, grad, no_grad


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The paper's defaults."""
    steps: int = 6000
    batch_size: int = 100
    lr: float = 1e-2
    weight_decay: float = 0.0
    eval_every: int = 250

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")


def fixed_order_batch(x, y, step, batch_size):
    """The paper's batch for `step`: examples [start, start + batch_size) with
    start = step * batch_size mod N. No shuffling; a batch that would run past
    the end is cut short there. x: (N, ...), y: (N,) -> (xb, yb)."""
    batch_start = (step * batch_size) % len(y)
    batch_end = batch_start + batch_size
    return x[batch_start:batch_end], y[batch_start:batch_end]


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


def _new_results():
    return {"train_losses": [], "eval_steps": [], "train_loss": [], "test_loss": [],
            "train_acc": [], "test_acc": []}


def _record_eval(results, model, dataset, step):
    train_loss, train_acc = evaluate(model, dataset["x"], dataset["y"])
    test_loss, test_acc = evaluate(model, dataset["x_test"], dataset["y_test"])
    for key, value in (("eval_steps", step), ("train_loss", train_loss), ("test_loss", test_loss),
                       ("train_acc", train_acc), ("test_acc", test_acc)):
        results[key].append(value)


def train(model, dataset, config=TrainConfig(), checkpoint_path=None, progress=None, should_stop=None):
    """Train `model` on dataset {'x', 'y', 'x_test', 'y_test'} with the paper's loop.

    The evaluation happens after the update of every step with
    step % eval_every == 0, as in the paper's code. With checkpoint_path, the
    run saves its state at every evaluation and resumes from it if restarted.
    The file is checkpoint_path with a hash of the run's identity (the
    config, the initial parameters and the data) put before ".ckpt.npz", so a
    run resumes only its own checkpoint and never overwrites another's.
    progress: an optional object with update(n, **info) (experiment.Progress).
    should_stop: an optional function polled after each checkpoint; when it
    returns True, training stops there by raising KeyboardInterrupt (a rerun
    resumes from that checkpoint).
    Returns the curves (see _new_results) plus 'final_test_acc'.
    """
    x, y = dataset["x"].astype(_dtype(model), copy=False), dataset["y"]
    params = list(model.parameters().values())
    flat = flatten_parameters(model)
    flat_grad = np.empty_like(flat)  # reused every step
    grad_views = [flat_grad[start:start + p.size].reshape(p.shape) for start, p in zip(_offsets(params), params)]
    rule = adam(config.lr, weight_decay=config.weight_decay)
    state, results, start = rule.init([flat]), _new_results(), 0
    if checkpoint_path is not None:
        checkpoint_path, identity = _own_checkpoint(checkpoint_path, flat, dataset, config)
        start, results = _resume(checkpoint_path, identity, flat, state, results)
    if progress is not None and start:
        progress.update(start)
    for step in range(start, config.steps):
        xb, yb = fixed_order_batch(x, y, step, config.batch_size)
        loss = ops.cross_entropy(model(Tensor(xb)), yb)
        for view, g in zip(grad_views, grad(loss, params)):
            view[...] = g.data
        rule.update([flat], [flat_grad], state)
        results["train_losses"].append(loss.item())
        if step % config.eval_every == 0 or step == config.steps - 1:
            _record_eval(results, model, dataset, step)
            if checkpoint_path is not None:
                _save(checkpoint_path, identity, flat, state, results, step + 1)
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
        if progress is not None:
            progress.update(1, loss=results["train_losses"][-1])
    results["final_test_acc"] = results["test_acc"][-1]
    return results


def early_stopped(results):
    """The evaluation with the highest test accuracy: {'step', 'test_acc', 'train_acc'}."""
    best = int(np.argmax(results["test_acc"]))
    return {"step": results["eval_steps"][best], "test_acc": results["test_acc"][best],
            "train_acc": results["train_acc"][best]}


def _offsets(params):
    """Where each parameter starts in the flat vector (nn.flatten_parameters' order)."""
    return np.cumsum([0] + [p.size for p in params[:-1]])


def _dtype(model):
    return next(iter(model.parameters().values())).dtype


def _own_checkpoint(path, flat, dataset, config):
    """(this run's checkpoint file, its identity). The identity pins everything
    the run depends on: the loop's settings, the starting weights, the data."""
    identity = {"train": dataclasses.asdict(config), "dtype": str(flat.dtype),
                "initial_parameters": _digest(flat), "data": _digest(dataset["x"], dataset["y"])}
    folder, name = os.path.split(os.fspath(path))
    stem = name[:-len(".ckpt.npz")] if name.endswith(".ckpt.npz") else os.path.splitext(name)[0]
    return identity_path(folder or ".", stem, identity), identity


def _digest(*arrays):
    """A short hash of the arrays' bytes."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:12]


def _save(path, identity, flat, state, results, next_step):
    arrays = {"flat": flat, "m": state["m"][0], "v": state["v"][0]}
    meta = {"next_step": next_step, "adam_step": state["step"], "results": results}
    save_checkpoint(path, arrays, meta, identity)


def _resume(path, identity, flat, state, results):
    """Continue from this run's checkpoint, if there is one."""
    loaded = load_checkpoint(path, identity)
    if loaded is None:
        return 0, results
    arrays, meta = loaded
    flat[...] = arrays["flat"]
    state["m"][0][...], state["v"][0][...] = arrays["m"], arrays["v"]
    state["step"] = meta["adam_step"]
    return meta["next_step"], meta["results"]
