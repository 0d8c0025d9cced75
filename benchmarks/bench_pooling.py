"""Benchmark chapter 08's loop: the ConvPooling variants, evaluation included.

    python benchmarks/bench_pooling.py [--variant max_pool ...] [--train-examples 1000]
                                       [--steps 1000] [--eval-every 100] [--repeats 3] [--json]

For each variant, trains the chapter's model as the chapter does (Adam,
batch 100, float32, the test set and the whole training set evaluated every
--eval-every steps) and prints the median seconds per 1000 steps over
--repeats runs, after one short warm-up run that compiles or loads the numba
kernels. With --json, a last line holds a JSON object. The evaluation's share
grows with the training set: try --train-examples 50000, the chapter's
largest, or --eval-every 1000000 for the training steps alone.
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np import nn, train
from bench_meta import load_chapter as load_chapter_named


def load_chapter():
    """chapters/08_pooling.py as a module (its name starts with a digit: no plain import)."""
    return load_chapter_named("08_pooling")


def timed_run(chapter, variant, dataset, steps, eval_every):
    model = chapter.ConvPooling(nn.TorchGenerator(0), np.dtype(chapter.Settings().dtype), **chapter.VARIANTS[variant])
    config = train.TrainConfig(steps=steps, eval_every=eval_every)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = train.train(model, dataset, config)
    return time.perf_counter() - start, time.process_time() - cpu_start, results["final_test_acc"]


def bench_variant(chapter, variant, dataset, ns):
    """{'variant', 'seconds_per_1000_steps' (median), 'runs_seconds_per_1000_steps',
    'cpu_seconds_per_1000_steps' (median), 'final_test_acc'}."""
    runs = [timed_run(chapter, variant, dataset, ns.steps, ns.eval_every) for _ in range(ns.repeats)]
    per_1000 = sorted(1000 * seconds / ns.steps for seconds, _, _ in runs)
    cpu_per_1000 = float(np.median([1000 * cpu / ns.steps for _, cpu, _ in runs]))
    return {"variant": variant, "seconds_per_1000_steps": float(np.median(per_1000)),
            "runs_seconds_per_1000_steps": per_1000, "cpu_seconds_per_1000_steps": cpu_per_1000,
            "final_test_acc": runs[0][2]}


def main():
    chapter = load_chapter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", nargs="+", choices=list(chapter.VARIANTS), default=list(chapter.VARIANTS))
    parser.add_argument("--train-examples", type=int, default=1000,
                        help="training-set size (the test set has 1000 examples)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if min(ns.train_examples, ns.steps, ns.eval_every, ns.repeats) < 1:
        parser.error("--train-examples, --steps, --eval-every and --repeats must be >= 1")
    dataset = chapter.load_dataset(ns.train_examples + 1000, 1000)
    warmup_start = time.perf_counter()
    timed_run(chapter, ns.variant[0], dataset, 10, ns.eval_every)  # numba compile or cache load
    warmup_seconds = time.perf_counter() - warmup_start
    rows = [bench_variant(chapter, variant, dataset, ns) for variant in ns.variant]
    for row in rows:
        print(f"{row['variant']}: {row['seconds_per_1000_steps']:.3f} s per 1000 steps (median of "
              f"{ns.repeats}: {', '.join(f'{s:.3f}' for s in row['runs_seconds_per_1000_steps'])}), "
              f"CPU {row['cpu_seconds_per_1000_steps']:.3f} s; final test acc {row['final_test_acc']:.3f}")
    print(f"{ns.train_examples} training examples, evaluation every {ns.eval_every} steps; "
          f"warm-up run of 10 steps {warmup_seconds:.2f} s")
    if ns.json:
        print(json.dumps({"train_examples": ns.train_examples, "steps": ns.steps, "eval_every": ns.eval_every,
                          "repeats": ns.repeats, "warmup_seconds": warmup_seconds, "variants": rows}))


if __name__ == "__main__":
    main()
