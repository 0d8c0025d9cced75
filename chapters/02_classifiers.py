"""Chapter 02 — the classification benchmark: spatial inductive biases matter.

Question: do the usual architectures rank on MNIST-1D the way they do on
real data, and is that because of their spatial priors?

The paper's answer (Greydanus & Kobak, Table 1 and Figure 3): yes. Trained
with the same loop (Adam, lr 1e-2, batch 100, 6000 steps), the test
accuracies (early-stopped, mean ± SD over 3 runs) are

    model       MNIST-1D   shuffled positions
    logistic    32 ± 1     32 ± 1
    MLP         68 ± 2     68 ± 2
    CNN         94 ± 2     56 ± 2
    GRU         91 ± 2     57 ± 2
    human       96 ± 1     ~30 ± 10

Shuffling the 40 positions (one fixed permutation) changes nothing for the
models without a notion of position (logistic, MLP) and hurts the CNN and
GRU, whose weight sharing assumes neighbours are related.

Run: python chapters/02_classifiers.py          (24 runs of 6000 steps; see the README for the time)
     python chapters/02_classifiers.py --quick  (1 seed, 300 steps, < 1 min)
Runs train in parallel processes (--workers, default: one per core), in
float32 like PyTorch. Finished runs are saved as they complete, and a run
that was interrupted resumes from its last checkpoint.
"""
import concurrent.futures
import dataclasses
import os

import numpy as np

from mnist1d_np import data, experiment, fileio, nn, plotting, train

# ---------------------------------------------------------------- settings (the paper's)
MODELS = ["logistic", "mlp", "cnn", "gru"]
DATASETS = {"mnist1d": {}, "shuffled": {"shuffle_seq": True}}  # both from seed 42
SEEDS = [0, 1, 2]
FULL = train.TrainConfig(steps=6000, batch_size=100, lr=1e-2, eval_every=250)
QUICK = train.TrainConfig(steps=300, batch_size=100, lr=1e-2, eval_every=100)
DTYPE = np.float32  # as PyTorch's default
HUMAN_ACCURACY = 95.8
PAPER = {  # early-stopped test accuracy, %, mean ± SD over 3 runs
    ("logistic", "mnist1d"): "32 ± 1", ("mlp", "mnist1d"): "68 ± 2",
    ("cnn", "mnist1d"): "94 ± 2", ("gru", "mnist1d"): "91 ± 2",
    ("logistic", "shuffled"): "32 ± 1", ("mlp", "shuffled"): "68 ± 2",
    ("cnn", "shuffled"): "56 ± 2", ("gru", "shuffled"): "57 ± 2",
}


def run_one(model_name, dataset, seed, config, run_dir, bar=None):
    """Train one model from seed; reuse the saved result if this run finished before."""
    key = f"{model_name}_{dataset['name']}_seed{seed}"
    done_path = os.path.join(run_dir, key + ".json")
    if os.path.exists(done_path):
        done = fileio.read_json(done_path)
        if done.get("config") == dataclasses.asdict(config):  # not, e.g., a --quick run's
            return done
    model = nn.make_model(model_name, np.random.default_rng(seed), dtype=DTYPE)
    result = train.train(model, dataset, config, os.path.join(run_dir, key + ".ckpt.npz"), bar)
    result["early_stopped"] = train.early_stopped(result)
    result["config"] = dataclasses.asdict(config)
    fileio.write_json(done_path, result)
    return result


def run_all(jobs, config, run_dir, workers):
    """Run every (model, dataset, seed) job, `workers` processes at a time.

    Each run is independent and single-threaded, so 2 workers use 2 cores
    fully; the results do not depend on the number of workers.
    """
    bar = experiment.Progress(len(jobs) * config.steps, "training")
    if workers == 1:
        return [run_one(*job, config, run_dir, bar) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(run_one, *job, config, run_dir) for job in jobs]
        for future in concurrent.futures.as_completed(futures):
            future.result()
            bar.update(config.steps)
        return [future.result() for future in futures]


def plot_curves(runs, models):
    """Train (left) and test (right) accuracy over steps, averaged over seeds."""
    fig, axes = plotting.figure(1, 2, width=4.5, height=3.2)
    for split, ax in zip(("train_acc", "test_acc"), axes):
        for color, name in enumerate(models):
            for dataset, style in (("mnist1d", "-"), ("shuffled", "--")):
                curves = runs[(name, dataset)]
                mean = 100 * np.mean([r[split] for r in curves], axis=0)
                ax.plot(curves[0]["eval_steps"], mean, style, color=f"C{color}",
                        label=name if dataset == "mnist1d" else None)
        ax.axhline(HUMAN_ACCURACY, color="k", lw=0.8, ls=":", label="human")
        ax.set(xlabel="step", ylabel=f"{split.split('_')[0]} accuracy (%)", ylim=(0, 102))
    axes[1].legend(title="solid: MNIST-1D, dashed: shuffled", fontsize=7, title_fontsize=7)
    return fig


def summarise(runs):
    """Early-stopped and final test accuracies (%), per (model, dataset)."""
    summary = {}
    for (name, dataset), results in runs.items():
        best = [100 * r["early_stopped"]["test_acc"] for r in results]
        final = [100 * r["final_test_acc"] for r in results]
        summary[f"{name}/{dataset}"] = {
            "early_stopped_test_acc": best, "final_test_acc": final,
            "early_stopped_mean": float(np.mean(best)), "early_stopped_sd": float(np.std(best))}
    return summary


def main():
    parser = experiment.chapter_parser("02_classifiers", __doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="training runs in parallel processes (1: all in this process)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    config, seeds = (QUICK, SEEDS[:1]) if args.quick else (FULL, SEEDS)
    run = experiment.Run("02_classifiers", args, settings={
        "config": dataclasses.asdict(config), "seeds": seeds, "models": MODELS})
    datasets = {name: {"name": name, **data.make_dataset(data.get_dataset_args(**overrides))}
                for name, overrides in DATASETS.items()}
    run_dir = run.path("runs")
    os.makedirs(run_dir, exist_ok=True)

    keys = [(name, ds) for ds in datasets for name in MODELS]
    jobs = [(name, datasets[ds], args.seed + seed) for name, ds in keys for seed in seeds]
    results = iter(run_all(jobs, config, run_dir, args.workers))
    runs = {key: [next(results) for _ in seeds] for key in keys}

    summary = summarise(runs)
    run.save_figure(plot_curves(runs, MODELS), "accuracy")
    rows = [(f"{name} test acc., {ds} (%)", PAPER[(name, ds)],
             experiment.mean_sd(summary[f"{name}/{ds}"]["early_stopped_test_acc"]))
            for ds in datasets for name in MODELS]
    rows.append(("human, mnist1d / shuffled (%)", "96 ± 1 / ~30 ± 10", "not measured"))
    experiment.print_table(rows, title=f"Early-stopped test accuracy, mean ± SD over {len(seeds)} "
                                       f"seed(s), {config.steps} steps")
    run.save_results("results", {"summary": summary, "curves": {
        f"{name}/{ds}": results for (name, ds), results in runs.items()}})


if __name__ == "__main__":
    main()
