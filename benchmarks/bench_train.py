"""Benchmark the paper's training loop (evaluation included) for one model.

    python benchmarks/bench_train.py --model cnn --steps 1000 [--repeats 3] [--json]

Prints the median seconds per 1000 steps over --repeats runs (after one
short warm-up run that compiles the numba kernels), and with --json a last
line holding a JSON object.

Targets (issue #4), against PyTorch 2.x on the same 2-core CPU with 2
threads, per 1000 steps: MLP <= 0.74 s (PyTorch 1.47 s), CNN <= 1.17 s
(3.89 s), GRU <= 2.0 s (20.1 s).
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np import blas, data, nn, train

PYTORCH_SECONDS_PER_1000 = {"mlp": 1.47, "cnn": 3.89, "gru": 20.1}


def timed_run(model_name, dataset, steps, seed, dtype):
    model = nn.make_model(model_name, np.random.default_rng(seed), dtype=dtype)
    config = train.TrainConfig(steps=steps)
    start = time.perf_counter()
    results = train.train(model, dataset, config)
    return time.perf_counter() - start, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=list(nn.MODELS), required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="float32 is what PyTorch uses by default")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if ns.steps < 1 or ns.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    dataset = data.make_dataset()
    dtype = np.dtype(ns.dtype)
    warmup_seconds, _ = timed_run(ns.model, dataset, 10, 0, dtype)  # includes numba compile/cache load
    runs = [timed_run(ns.model, dataset, ns.steps, i, dtype) for i in range(ns.repeats)]
    per_1000 = sorted(1000 * seconds / ns.steps for seconds, _ in runs)
    median = float(np.median(per_1000))
    final_acc = runs[0][1]["final_test_acc"]
    print(f"{ns.model}: {median:.3f} s per 1000 steps (median of {ns.repeats}: "
          f"{', '.join(f'{s:.3f}' for s in per_1000)}); final test acc {final_acc:.3f}; "
          f"warm-up run of 10 steps {warmup_seconds:.2f} s")
    if ns.model in PYTORCH_SECONDS_PER_1000:
        ratio = median / PYTORCH_SECONDS_PER_1000[ns.model]
        print(f"  vs PyTorch {PYTORCH_SECONDS_PER_1000[ns.model]} s: {ratio:.2f}x")
    if ns.json:
        print(json.dumps({"model": ns.model, "dtype": ns.dtype, "steps": ns.steps, "repeats": ns.repeats,
                          "seconds_per_1000_steps": median, "runs_seconds_per_1000_steps": per_1000,
                          "final_test_acc": final_acc, "warmup_seconds": warmup_seconds,
                          "blas_threads": blas.get_num_threads()}))


if __name__ == "__main__":
    main()
