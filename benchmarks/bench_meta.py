"""Benchmark one outer step of the metalearning chapters, with their default settings.

    python benchmarks/bench_meta.py --workload meta_lr  --outer-steps 5 [--json]
    python benchmarks/bench_meta.py --workload meta_act --outer-steps 3 [--json]
    python benchmarks/bench_meta.py --workload meta_act --busy-core   (another process spins on a core)

meta_lr: chapter 04, 200 unrolled SGD steps of a tanh MLP plus the
hypergradient with respect to the learning rate. PyTorch on this CPU (2
threads): 0.278 s; the target is <= 0.5x, 0.139 s.
meta_act: chapter 05, 301 unrolled RMSProp steps of an MLP whose activation
is a small network, plus the meta-gradient. PyTorch (2 threads, float32):
19.3 s; the target is <= 0.25x, 4.8 s, and peak memory <= 4 GiB.

Measured 2026-11-26 (machine loaded by other jobs, load average 9-11 on
2 cores, so every run had busy cores around it), meta_act, old code
(e8dd3c0: two threads always) vs new (fastmath.ThreadChooser) vs old with
NUMBA_NUM_THREADS=1, run alternately: 19.2 / 3.3 / 3.3 s per outer step
(medians of 2; new/old 0.16 and 0.19); with --busy-core on top,
44.8 / 10.9 / 8.6 (new/old 0.20 and 0.28). The chooser follows the better
fixed choice, and uses both threads whenever they are faster (an idle
machine); its unloaded time was not measurable that day.

One warm-up outer step (numba compilation or cache loading) is run first
and not counted. --busy-core starts a process that keeps one core busy (a
Python loop) before the warm-up and stops it at the end: a laptop with a
browser running, reproducibly (issue 11: the parallel kernels must not
collapse then). Prints the median over --outer-steps steps and, with
--json, a JSON object as the last line.
"""
import argparse
import importlib.util
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np

from mnist1d_np import data, experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTORCH_SECONDS = {"meta_lr": 0.278, "meta_act": 19.3}


def load_chapter(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "chapters", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meta_lr_step():
    ch = load_chapter("04_meta_learning_rate")
    dataset, init = data.make_dataset(), ch.initial_parameters()
    return lambda step: ch.hypergradient(0.5, init, dataset, ch.Settings())


def meta_act_step():
    ch = load_chapter("05_meta_activation")
    settings = ch.Settings()
    dataset = ch.make_data(settings)
    theta = ch.init_meta_params(settings, np.random.default_rng(0))
    return lambda step: ch.meta_step(theta, settings, dataset, 0, step)


@contextlib.contextmanager
def busy_core(enabled):
    """While active, a child process spins on one core (if enabled)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def time_steps(step, outer_steps):
    """(warm-up seconds, [seconds of each counted outer step])."""
    start = time.perf_counter()
    step(0)
    warmup = time.perf_counter() - start
    times = []
    for i in range(outer_steps):
        start = time.perf_counter()
        step(i + 1)
        times.append(time.perf_counter() - start)
    return warmup, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["meta_lr", "meta_act"], required=True)
    parser.add_argument("--outer-steps", type=int, default=3)
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process while timing")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if ns.outer_steps < 1:
        parser.error("--outer-steps must be >= 1")
    step = meta_lr_step() if ns.workload == "meta_lr" else meta_act_step()
    with busy_core(ns.busy_core):
        warmup, times = time_steps(step, ns.outer_steps)
    median = float(np.median(times))
    ratio = median / PYTORCH_SECONDS[ns.workload]
    print(f"{ns.workload}: {median:.3f} s per outer step (median of {ns.outer_steps}: "
          f"{', '.join(f'{t:.3f}' for t in sorted(times))}); {ratio:.2f}x PyTorch's "
          f"{PYTORCH_SECONDS[ns.workload]} s; warm-up step {warmup:.2f} s; "
          f"peak memory {experiment.peak_rss_mb():.0f} MiB" + ("; one core kept busy" if ns.busy_core else ""))
    if ns.json:
        print(json.dumps({"workload": ns.workload, "outer_steps": ns.outer_steps,
                          "seconds_per_outer_step": median, "runs_seconds": times,
                          "ratio_to_pytorch": ratio, "warmup_seconds": warmup,
                          "peak_rss_mb": experiment.peak_rss_mb(), "busy_core": ns.busy_core}))


if __name__ == "__main__":
    main()
