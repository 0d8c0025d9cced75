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
from .optim import adam, sgd
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


# ---------------------------------------------------------------- epoch-wise SGD (deep double descent)

EPOCH_CURVES = ("train_error", "test_error", "train_loss", "test_loss")


def train_epochs(model, dataset, epochs, rng, lr=0.01, momentum=0.9, batch_size=100,
                 checkpoint_path=None, checkpoint_every=25, should_stop=None, progress=None):
    """Train `model` with SGD + momentum (torch.optim.SGD's form) for `epochs` epochs.

    Every epoch visits the training set in a new order, rng.permutation(N),
    in batches of batch_size (the last one smaller if N is not a multiple), as
    PyTorch's DataLoader(shuffle=True) does; rng: a numpy Generator. After
    every epoch the error (%) and mean loss on the whole train and test sets
    are recorded. dataset: {'x': (N, 40), 'y': (N,), 'x_test', 'y_test'}.

    With checkpoint_path, parameters, momentum, rng state and curves are saved
    every `checkpoint_every` epochs (and at the end); a restarted run resumes
    from there and gives the same numbers. As for `train`, the file name gets
    a hash of the run's identity (settings, initial parameters, data, the
    rng's initial state), so a run resumes only its own checkpoint.
    `should_stop()` is polled at those epochs: when it returns True the state
    is saved and KeyboardInterrupt raised.
    progress: an optional object with update(n, **info), one unit per epoch.
    Returns {name: list over epochs} for the names in EPOCH_CURVES.
    """
    x, y = dataset["x"].astype(_dtype(model), copy=False), dataset["y"]
    flat, rule = flatten_parameters(model), sgd(lr, momentum)
    state, results, start = rule.init([flat]), {name: [] for name in EPOCH_CURVES}, 0
    config = {"epochs": epochs, "lr": lr, "momentum": momentum, "batch_size": batch_size}
    if checkpoint_path is not None:
        checkpoint_path, identity = _own_epochs_checkpoint(checkpoint_path, flat, dataset, config, rng)
        start, results = _resume_epochs(checkpoint_path, identity, flat, state, rng, results)
    for epoch in range(start, epochs):
        order = rng.permutation(len(y))
        sgd_epoch(model, flat, rule, state, x[order], y[order], batch_size)
        _record_errors(results, model, dataset)
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
            if checkpoint_path is not None:
                _save_epochs(checkpoint_path, identity, flat, state, rng, results)
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
        if progress is not None:
            progress.update(1, test_error=results["test_error"][-1])
    return results


def sgd_epoch(model, flat, rule, state, x, y, batch_size=100):
    """One pass over x: (N, 40), y: (N,) in their order, in consecutive batches.

    flat: the model's parameter vector (nn.flatten_parameters), which
    `rule` (an optim rule, e.g. sgd) updates in place with its `state`.
    """
    params = list(model.parameters().values())
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        grads = grad(ops.cross_entropy(model(Tensor(xb)), yb), params)
        rule.update([flat], [np.concatenate([g.data.ravel() for g in grads])], state)


def _record_errors(results, model, dataset):
    for split, (x, y) in (("train", (dataset["x"], dataset["y"])),
                          ("test", (dataset["x_test"], dataset["y_test"]))):
        loss, accuracy = evaluate(model, x, y)
        wrong = len(y) - round(accuracy * len(y))  # a count: 30.1 %, not 30.100000000000005
        results[f"{split}_error"].append(100.0 * wrong / len(y))
        results[f"{split}_loss"].append(loss)


def _own_epochs_checkpoint(path, flat, dataset, config, rng):
    """(this run's checkpoint file, its identity), named as _own_checkpoint does."""
    identity = {"train_epochs": config, "dtype": str(flat.dtype), "initial_parameters": _digest(flat),
                "data": _digest(dataset["x"], dataset["y"]), "rng": rng.bit_generator.state}
    folder, name = os.path.split(os.fspath(path))
    stem = name[:-len(".ckpt.npz")] if name.endswith(".ckpt.npz") else os.path.splitext(name)[0]
    return identity_path(folder or ".", stem, identity), identity


def _save_epochs(path, identity, flat, state, rng, results):
    arrays = {"flat": flat, **({"buf": state["buf"][0]} if "buf" in state else {})}
    meta = {"sgd_step": state["step"], "rng_state": rng.bit_generator.state, "results": results}
    save_checkpoint(path, arrays, meta, identity)


def _resume_epochs(path, identity, flat, state, rng, results):
    """(first epoch to run, curves so far) from this run's checkpoint, if there is one."""
    loaded = load_checkpoint(path, identity)
    if loaded is None:
        return 0, results
    arrays, meta = loaded
    flat[...] = arrays["flat"]
    if "buf" in state:
        state["buf"][0][...] = arrays["buf"]
    state["step"], rng.bit_generator.state = meta["sgd_step"], meta["rng_state"]
    return len(meta["results"]["test_error"]), meta["results"]
