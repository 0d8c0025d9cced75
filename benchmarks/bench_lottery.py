"""Benchmark one prune-and-retrain round of the lottery-ticket chapter.

    python benchmarks/bench_lottery.py [--sparsities 0 0.5 0.92] [--repeats 3] [--json]

A round, as chapter 03 trains it: the residual MLP 40-500-500-10 (float32,
PyTorch's init) pruned by magnitude masks at the given sparsity
(pruning.prune), then the paper's loop through the autodiff engine
(train.train with the masks): 1501 Adam steps of batch 100, evaluation
(4000 train + 1000 test examples) every 100 steps. Each sparsity is timed
on the dense path (masked matrix products) and on the sparse path (kernels
over the kept weights); the median of --repeats runs each, after one short
warm-up that loads or compiles the numba kernels. The timed part is the
pruning and the training, not building the network. With PYTHONPATH set to
a checkout from before chapter 03 trained through the engine, the same
rounds are timed on that code's own loop (pruning.train_masked): run the
two alternately to compare them.

The crossover is the smallest measured sparsity from which the sparse path
takes less CPU time at every measured sparsity (CPU time of this process:
less disturbed than wall time when other processes share the cores). pruning.SPARSE_FROM is set from it by
hand: a fixed threshold, so that results never depend on timing noise.

PyTorch 2.13 (2 threads) took 7.11 s per dense round on 2026-11-25. With
--old-reference the ratios printed are against that time scaled to today
(see pytorch_day.py); without it, against 7.11 s unscaled. Targets: dense
<= 0.8x, sparsity >= 92 % <= 0.25x PyTorch's dense round.
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np import data, nn, pruning, train
from pytorch_day import add_old_reference, speed_scale

PYTORCH_SECONDS_PER_ROUND = 7.11


def network():
    return nn.MLP(nn.TorchGenerator(42), hidden=500, dtype=np.float32)


# The code before chapter 03 trained through the engine had its own loop: with PYTHONPATH set to
# such a checkout, this script times that code on the same rounds (the README's side by side).
OLD_API = hasattr(pruning, "train_masked")


def round_seconds(masks, dataset, steps, sparse):
    """(wall seconds, CPU seconds of this process, final test accuracy) of one round."""
    model = network()
    wall, cpu = time.perf_counter(), time.process_time()
    if OLD_API:
        params = {name: p.data for name, p in model.parameters().items()}
        curves = pruning.train_masked(params, masks, dataset, pruning.RoundConfig(steps=steps), sparse=sparse)[1]
    else:
        config = train.TrainConfig(steps, 100, 2e-2, eval_every=100)
        curves = train.train(model, dataset, config, masks=pruning.prune(model, masks, sparse=sparse))
    return time.perf_counter() - wall, time.process_time() - cpu, curves["test_acc"][-1]


def median_seconds(masks, dataset, steps, sparse, repeats):
    """Median wall and CPU seconds over `repeats` rounds, and the first run's accuracy."""
    runs = np.array([round_seconds(masks, dataset, steps, sparse) for _ in range(repeats)])
    return float(np.median(runs[:, 0])), float(np.median(runs[:, 1])), float(runs[0, 2])


def crossover(rows):
    """Smallest sparsity from which the sparse path wins at every larger measured one."""
    winning = None
    for row in sorted(rows, key=lambda r: -r["sparsity"]):
        if row["sparse_cpu_s"] >= row["dense_cpu_s"]:
            break
        winning = row["sparsity"]
    return winning


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 0.92, 0.97])
    parser.add_argument("--steps", type=int, default=1501)
    parser.add_argument("--repeats", type=int, default=3)
    add_old_reference(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if ns.steps < 1 or ns.repeats < 1 or not all(0 <= s <= 1 for s in ns.sparsities):
        parser.error("--steps and --repeats must be >= 1, --sparsities in [0, 1]")
    pytorch = PYTORCH_SECONDS_PER_ROUND * (speed_scale(ns.old_reference) if ns.old_reference else 1)
    dataset = data.make_dataset()
    params = {name: p.data for name, p in network().parameters().items()}
    for sparse in (False, True):  # warm-up: numba's kernels compiled or loaded
        round_seconds(pruning.magnitude_masks(params, 0.5), dataset, 2, sparse)
    rows = []
    for sparsity in ns.sparsities:
        masks = pruning.magnitude_masks(params, sparsity)
        dense_s, dense_cpu_s, dense_acc = median_seconds(masks, dataset, ns.steps, False, ns.repeats)
        sparse_s, sparse_cpu_s, sparse_acc = median_seconds(masks, dataset, ns.steps, True, ns.repeats)
        rows.append({"sparsity": sparsity, "dense_s": dense_s, "sparse_s": sparse_s,
                     "dense_cpu_s": dense_cpu_s, "sparse_cpu_s": sparse_cpu_s,
                     "dense_vs_pytorch": dense_s / pytorch, "sparse_vs_pytorch": sparse_s / pytorch,
                     "dense_final_test_acc": dense_acc, "sparse_final_test_acc": sparse_acc})
        print(f"sparsity {sparsity:.2f}: dense {dense_s:.2f} s wall, {dense_cpu_s:.2f} s CPU "
              f"({rows[-1]['dense_vs_pytorch']:.2f}x PyTorch); sparse {sparse_s:.2f} s wall, "
              f"{sparse_cpu_s:.2f} s CPU ({rows[-1]['sparse_vs_pytorch']:.2f}x); "
              f"final test acc {dense_acc:.3f} / {sparse_acc:.3f}", flush=True)
    cross = crossover(rows)
    print(f"crossover: sparse path faster from sparsity {cross} on (pruning.SPARSE_FROM = {pruning.SPARSE_FROM})")
    if ns.json:
        print(json.dumps({"steps": ns.steps, "repeats": ns.repeats, "rows": rows, "crossover": cross,
                          "sparse_from": pruning.SPARSE_FROM,
                          "pytorch_seconds_per_round": PYTORCH_SECONDS_PER_ROUND,
                          "old_reference": ns.old_reference, "pytorch_seconds_scaled": pytorch}))


if __name__ == "__main__":
    main()
