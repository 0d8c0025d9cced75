"""Benchmark one SimCLR epoch of chapter 07: 40 contrastive steps of batch 100.

    python benchmarks/bench_simclr.py [--epochs 1] [--repeats 5] [--loss info_nce] [--json]

Each step augments two views of the batch (200 signals), runs the encoder
and projection head forward, the InfoNCE loss, the backward pass and an
Adam update: the chapter's training, train.fit with its loss (views_loss)
and Shuffled batches; evaluations are not included. Prints the median seconds per
epoch over --repeats runs, after a warm-up epoch that loads (or compiles)
the numba kernels, and with --json a last line holding a JSON object.

The paper reports about 1 minute (text) / 5 minutes (caption) for the whole
notebook on a CPU; chapter 07's target is 200 epochs plus evaluations and
t-SNE within 3 minutes on 2 cores, i.e. well under 0.9 s per epoch.
"""
import argparse
import json
import time

import numpy as np

from mnist1d_np import data, optim, train
from bench_meta import load_chapter as load_chapter_named



def load_chapter():
    return load_chapter_named("07_self_supervised")


def timed_epochs(chapter, config, x, epochs):
    """(wall seconds, CPU seconds of this process) for `epochs` epochs from a fresh
    network (config: the chapter's Trial), and the last epoch's mean loss. On a
    shared machine the CPU time is the steadier of the two."""
    net, rng = chapter.build(config)
    batches = train.Shuffled(x, None, config.batch_size, rng)
    start, cpu_start = time.perf_counter(), time.process_time()
    curves = train.fit(net, batches, optim.adam(config.lr), epochs * batches.steps_per_epoch,
                       loss=chapter.views_loss(config, rng))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds, cpu_seconds, float(np.mean(curves["train_losses"][-batches.steps_per_epoch:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loss", default="info_nce", help="a chapter 07 loss name")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    if ns.epochs < 1 or ns.repeats < 1:
        parser.error("--epochs and --repeats must be >= 1")
    chapter = load_chapter()
    try:
        configs = [chapter.Trial(loss=ns.loss, seed=seed) for seed in range(ns.repeats + 1)]
    except ValueError as err:
        parser.error(str(err))
    settings = configs[0]
    x = data.make_dataset(data.get_dataset_args())["x"].astype(settings.dtype)
    warmup_seconds = timed_epochs(chapter, configs[0], x, 1)[0]
    runs = [timed_epochs(chapter, config, x, ns.epochs) for config in configs[1:]]
    per_epoch = sorted(wall / ns.epochs for wall, _, _ in runs)
    median = float(np.median(per_epoch))
    cpu_median = float(np.median([cpu / ns.epochs for _, cpu, _ in runs]))
    print(f"SimCLR ({ns.loss}): {median:.3f} s per epoch of {len(x) // settings.batch_size} steps "
          f"(median of {ns.repeats}: {', '.join(f'{s:.3f}' for s in per_epoch)}; CPU {cpu_median:.3f} s); "
          f"200 epochs ~ {200 * median:.0f} s; warm-up epoch {warmup_seconds:.2f} s")
    if ns.json:
        print(json.dumps({"loss": ns.loss, "epochs": ns.epochs, "repeats": ns.repeats,
                          "seconds_per_epoch": median, "cpu_seconds_per_epoch": cpu_median,
                          "runs_seconds_per_epoch": per_epoch, "final_loss": runs[0][2],
                          "warmup_seconds": warmup_seconds}))


if __name__ == "__main__":
    main()
