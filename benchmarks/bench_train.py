"""Benchmark training loops (evaluation included): the paper's models, and those later chapters train.

    python benchmarks/bench_train.py --model mlp cnn [--steps 1000] [--repeats 3] [--json]

Workloads (batch 100 each):
  logistic, mlp, cnn, gru  the paper's loop (train.train: Adam lr 1e-2, fixed-order
                           batches, evaluation of train and test sets every 250 steps)
  lottery_mlp              chapter 03: residual MLP 40-500-500-10, the same loop with
                           Adam lr 2e-2 and evaluation every 100 steps
  dd_mlp47, dd_mlp300      chapter 06 (double descent): MLP 40-h-h-10 as nn.Sequential
  dd_cnn18, dd_cnn100      and nn.ConvNet with 18 or 100 channels; SGD lr 0.01 with
                           momentum 0.9, evaluation of all 16000 examples every epoch
                           (40 steps of the 4000 training examples)
  mlp_by_hand              the floor for `mlp`: the same model, loop, Adam and evaluations
                           with no autodiff engine, the step written out in NumPy here
                           (by_hand_run)
Prints the median seconds per 1000 steps over --repeats runs (after one short
warm-up run that compiles the numba kernels), and with --json a last line
holding a JSON object. The script uses only library calls that predate issue
11, so `PYTHONPATH=<old checkout> python benchmarks/bench_train.py` measures
old code on the same workloads (run old and new alternately: see README).

Where the time goes (issue 11; 2026-11-26, machine heavily loaded, so CPU time)
-------------------------------------------------------------------------------
cProfile with the CPU-time clock, float32, 1000 steps of train.train without
evaluation; shares are of the profiled total (profiling inflates Python calls,
so they overweight per-op overhead a little). Unprofiled CPU seconds per
1000 such steps are given too.

MLP before (e8dd3c0): 10 graph nodes per forward (matmul, add, relu per
layer, the residual add, cross_entropy), and a backward that ran every Tensor
rule unrecorded: 8 matmul calls per step for 3 real products plus 5
transposes and 3 sum_to ops, each through the op machinery. The walk
(_backward's own work and the gradient additions) and building nodes
(_record, _node_for, Tensor) ~25 %, _relevant_order 12 %, the matmul op
(checks and dispatch around np.matmul) 17 %, Adam's dozen NumPy passes 9 %.
About 0.38 CPU s; a hand-written NumPy step of the same arithmetic, 0.20 s.

MLP after: 5 nodes per forward (ops.linear with its relu, the residual add,
cross_entropy); the first-order walk carries arrays and calls each fused
op's `first_order` rule, which is the arithmetic and nothing else. The
linear forward and backward (mostly their matmuls) ~30 %, cross_entropy
~17 %, _relevant_order 10 %, Adam 11 % (of which the numba pass itself 1 %:
the rest is the Python around it). About 0.31 CPU s (-20 %).

CNN before: the conv kernels 22 % of the profile (~0.7 of 1.2 CPU s
unprofiled: most of the step); around them relu and its mask as separate
ops, sum_to of the bias gradients, Tensor wrappers, the walk. After: conv1d
with relu=True is one node whose first-order rule calls the kernels
directly; the kernels are now ~30 % of the profile and ~65 % of the
unprofiled step, so what is left to gain is in the kernels (issue 11 notes).

Measured side by side (2026-11-26, 00:06-00:32 UTC, old and new code run
alternately, 4 rounds each; the machine was heavily loaded by other jobs, so
process CPU time, which load barely moves for these single-threaded loops,
not wall time, which varied 4x between neighbouring runs): per 1000 steps of
the paper's loop with evaluation, MLP 0.410 -> 0.328 CPU s (pairwise
new/old 0.74-0.82, median 0.79), CNN 1.156 -> 1.103 (0.90-1.00, median
0.97; an earlier round 0.91), chapter 04's outer step 0.127 -> 0.102 (0.76-0.84,
median 0.81). The new workloads (wall time, 3 rounds): lottery_mlp 0.81x,
the double-descent ones 0.94-1.10x, within the noise: their epochs are
dominated by the evaluation of 16000 examples and by arithmetic
(CPU time of dd_mlp300's steps 0.95x, of its evaluation 0.97x).
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np import Tensor, blas, data, grad, nn, ops, optim, train

PAPER_MODELS = ("logistic", "mlp", "cnn", "gru")
DOUBLE_DESCENT = {"dd_mlp47": ("mlp", 47), "dd_mlp300": ("mlp", 300), "dd_cnn18": ("cnn", 18),
                  "dd_cnn100": ("cnn", 100)}
WORKLOADS = PAPER_MODELS + ("mlp_by_hand", "lottery_mlp") + tuple(DOUBLE_DESCENT)


def make_model(name, rng, dtype):
    if name in PAPER_MODELS:
        return nn.make_model(name, rng, dtype=dtype)
    if name == "mlp_by_hand":
        return nn.MLP(rng, dtype=dtype)
    if name == "lottery_mlp":
        return nn.MLP(rng, hidden=500, dtype=dtype)
    kind, width = DOUBLE_DESCENT[name]
    if kind == "cnn":
        return nn.ConvNet(rng, channels=width, dtype=dtype)
    return nn.Sequential(nn.Linear(40, width, rng, dtype=dtype), ops.relu,
                         nn.Linear(width, width, rng, dtype=dtype), ops.relu, nn.Linear(width, 10, rng, dtype=dtype))


def sgd_momentum_run(model, dataset, steps, batch_size=100, epoch_steps=40):
    """Chapter 06's loop: SGD + momentum on the flat parameters, evaluation every epoch."""
    x, y = dataset["x"].astype(model_dtype(model)), dataset["y"]
    params = list(model.parameters().values())
    flat = nn.flatten_parameters(model)
    rule = optim.sgd(0.01, momentum=0.9)
    state = rule.init([flat])
    for step in range(steps):
        start = (step * batch_size) % len(y)
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        grads = grad(ops.cross_entropy(model(Tensor(xb)), yb), params)
        rule.update([flat], [np.concatenate([g.data.ravel() for g in grads])], state)
        if (step + 1) % epoch_steps == 0:
            train.evaluate(model, dataset["x"], y)
            train.evaluate(model, dataset["x_test"], dataset["y_test"])
    return train.evaluate(model, dataset["x_test"], dataset["y_test"])[1]


def by_hand_run(model, dataset, steps, batch_size=100, eval_every=250):
    """The paper's MLP loop without the engine: forward and backward of the residual
    MLP written out in NumPy, Adam on its six arrays, the same evaluations."""
    dtype = model_dtype(model)
    params = [p.data for p in model.parameters().values()]
    rule = optim.adam(1e-2)
    state = rule.init(params)
    x, y = dataset["x"].astype(dtype), dataset["y"]
    for step in range(steps):
        start = (step * batch_size) % len(y)
        rule.update(params, by_hand_grads(params, x[start:start + batch_size], y[start:start + batch_size]), state)
        if step % eval_every == 0 or step == steps - 1:
            by_hand_accuracy(params, x, y)
            accuracy = by_hand_accuracy(params, dataset["x_test"].astype(dtype), dataset["y_test"])
    return accuracy


def by_hand_forward(params, x):
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2 + b2
    h2 = h1 + np.maximum(z2, 0)
    return z1, h1, z2, h2, h2 @ w3 + b3


def by_hand_grads(params, x, y):
    z1, h1, z2, h2, logits = by_hand_forward(params, x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    d_logits = np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
    d_logits[np.arange(len(y)), y] -= 1
    d_logits /= len(y)
    d_h2 = d_logits @ params[4].T
    d_z2 = d_h2 * (z2 > 0)
    d_z1 = (d_h2 + d_z2 @ params[2].T) * (z1 > 0)
    return [x.T @ d_z1, d_z1.sum(0), h1.T @ d_z2, d_z2.sum(0), h2.T @ d_logits, d_logits.sum(0)]


def by_hand_accuracy(params, x, y, chunk=1000):
    correct = sum(int((by_hand_forward(params, x[i:i + chunk])[-1].argmax(axis=1) == y[i:i + chunk]).sum())
                  for i in range(0, len(y), chunk))
    return correct / len(y)


def model_dtype(model):
    return next(iter(model.parameters().values())).dtype


def timed_run(name, datasets, steps, seed, dtype):
    """(seconds, final test accuracy) of one run of workload `name`."""
    model = make_model(name, np.random.default_rng(seed), dtype)
    start = time.perf_counter()
    if name in DOUBLE_DESCENT:
        accuracy = sgd_momentum_run(model, datasets["double_descent"], steps)
    elif name == "mlp_by_hand":
        accuracy = by_hand_run(model, datasets["paper"], steps)
    else:
        lottery = name == "lottery_mlp"
        config = train.TrainConfig(steps=steps, lr=2e-2 if lottery else 1e-2, eval_every=100 if lottery else 250)
        accuracy = train.train(model, datasets["paper"], config)["final_test_acc"]
    return time.perf_counter() - start, accuracy


def bench(name, datasets, steps, repeats, dtype):
    warmup_seconds, _ = timed_run(name, datasets, 10, 0, dtype)  # includes numba compile/cache load
    runs = [timed_run(name, datasets, steps, i, dtype) for i in range(repeats)]
    per_1000 = sorted(1000 * seconds / steps for seconds, _ in runs)
    result = {"seconds_per_1000_steps": float(np.median(per_1000)), "runs_seconds_per_1000_steps": per_1000,
              "final_test_acc": runs[0][1], "warmup_seconds": warmup_seconds}
    print(f"{name}: {result['seconds_per_1000_steps']:.3f} s per 1000 steps (median of {repeats}: "
          f"{', '.join(f'{s:.3f}' for s in per_1000)}); final test acc {runs[0][1]:.3f}; "
          f"warm-up run of 10 steps {warmup_seconds:.2f} s", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=WORKLOADS, nargs="+", required=True, metavar="WORKLOAD",
                        help=f"one or more of {', '.join(WORKLOADS)}")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="float32 is what PyTorch uses by default")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if ns.steps < 1 or ns.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    datasets = {"paper": data.make_dataset()}
    if any(name in DOUBLE_DESCENT for name in ns.model):
        datasets["double_descent"] = data.make_dataset(data.get_dataset_args(num_samples=16000, train_split=0.25))
    results = {name: bench(name, datasets, ns.steps, ns.repeats, np.dtype(ns.dtype)) for name in ns.model}
    if ns.json:
        print(json.dumps({"dtype": ns.dtype, "steps": ns.steps, "repeats": ns.repeats,
                          "blas_threads": blas.get_num_threads(), "workloads": results}))


if __name__ == "__main__":
    main()
