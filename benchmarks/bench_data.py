"""Benchmark the MNIST-1D generator: median wall time of make_dataset.

    python benchmarks/bench_data.py [--repeats 7] [--json]

Targets (issue #2): 5000 examples <= 0.25 s (the original SciPy generator
takes 2.4 s on the same 2-core machine) and 16000 examples <= 0.8 s.
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np.data import get_dataset_args, make_dataset

CASES = {"5000 (default)": {}, "16000 (double descent)": {"num_samples": 16000, "train_split": 0.25},
         "10000 (metalearning)": {"num_samples": 10000}}


def median_seconds(args, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make_dataset(args)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print a JSON line last")
    ns = parser.parse_args()
    make_dataset(get_dataset_args(num_samples=100))  # warm imports and caches
    results = {}
    for name, overrides in CASES.items():
        median, times = median_seconds(get_dataset_args(**overrides), ns.repeats)
        results[name] = median
        print(f"{name:24s} median {median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})")
    if ns.json:
        print(json.dumps({"median_seconds": results}))


if __name__ == "__main__":
    main()
