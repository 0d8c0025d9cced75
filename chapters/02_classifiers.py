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

Run: python chapters/02_classifiers.py          (24 runs of 6000 steps, 1-2 min on 2 cores)
     python chapters/02_classifiers.py --quick  (1 seed, 300 steps, < 1 min)
The 24 runs are a sweep (mnist1d_np.runmany), in float32 like PyTorch, on
--workers local processes (default: one per core) or on a dask cluster
(--scheduler ADDRESS, see the README's *Sweeps*); the numbers do not depend
on which. Each run is saved in OUT/runs/ as it finishes. Ctrl-C: no new run
starts, the running ones stop at their next checkpoint (every 250 steps),
and a line says how to resume (Ctrl-C again: stop now). Running the same
command again skips the finished runs and continues the others from their
last checkpoint.

Try it:
- `--seed 10`: three other initialisations per model. Does the ranking hold,
  and does shuffling still cost the CNN and GRU more than 30 points?
- In Settings, `steps=1000`: which models are close to their final accuracy
  already, and which gain most from the long run?
- Add `"noisy": {"iid_noise_scale": 0.2}` to DATASETS (and a PAPER entry
  "—" for it): which model's spatial prior helps most against noise?
"""
import dataclasses
import functools
import json

import numpy as np

from mnist1d_np import data, experiment, nn, plotting, runmany, train

# %% Settings (the paper's)


@dataclasses.dataclass(frozen=True)
class Settings:
    steps: int = 6000          # Adam steps per run
    batch_size: int = 100
    lr: float = 1e-2
    eval_every: int = 250      # evaluate (and checkpoint) every this many steps
    seeds: tuple = (0, 1, 2)   # added to --seed: the models' initialisations
    models: tuple = ("logistic", "mlp", "cnn", "gru")
    dtype: str = "float32"     # as PyTorch's default


QUICK = dict(steps=300, eval_every=100, seeds=(0,))
DATASETS = {"mnist1d": {}, "shuffled": {"shuffle_seq": True}}  # get_dataset_args overrides; seed 42
HUMAN_ACCURACY = 95.8
PAPER = {  # early-stopped test accuracy, %, mean ± SD over 3 runs
    ("logistic", "mnist1d"): "32 ± 1", ("mlp", "mnist1d"): "68 ± 2",
    ("cnn", "mnist1d"): "94 ± 2", ("gru", "mnist1d"): "91 ± 2",
    ("logistic", "shuffled"): "32 ± 1", ("mlp", "shuffled"): "68 ± 2",
    ("cnn", "shuffled"): "56 ± 2", ("gru", "shuffled"): "57 ± 2",
}

# %% The experiment


def sweep_configs(settings, seed):
    """One config per (dataset, model, seed), in table order: everything a run depends on."""
    loop = train.TrainConfig(steps=settings.steps, batch_size=settings.batch_size,
                             lr=settings.lr, eval_every=settings.eval_every)
    return [{"dataset": name, "data": overrides, "model": model, "seed": seed + offset,
             "train": dataclasses.asdict(loop), "dtype": settings.dtype}
            for name, overrides in DATASETS.items() for model in settings.models
            for offset in settings.seeds]


def train_one(config, context):
    """One run of the sweep: train config's model from its seed on its dataset.

    Returns train.train's curves and the early-stopped evaluation.
    """
    dataset = make_data(json.dumps(config["data"], sort_keys=True))
    model = nn.make_model(config["model"], np.random.default_rng(config["seed"]),
                          dtype=np.dtype(config["dtype"]))
    result = train.train(model, dataset, train.TrainConfig(**config["train"]), context.checkpoint_path,
                         should_stop=context.should_stop)
    result["early_stopped"] = train.early_stopped(result)
    return result


@functools.lru_cache(maxsize=None)
def make_data(overrides_json):
    """The dataset of get_dataset_args(**overrides), made once per process."""
    return data.make_dataset(data.get_dataset_args(**json.loads(overrides_json)))


def group_runs(configs, results):
    """{(model, dataset): [result of each seed]} from the sweep's flat lists."""
    runs = {}
    for config, result in zip(configs, results):
        runs.setdefault((config["model"], config["dataset"]), []).append(result)
    return runs


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


def table(summary, settings):
    """Rows of the *quantity | paper | this run* table."""
    rows = [(f"{name} test acc., {ds} (%)", PAPER.get((name, ds), "—"),
             experiment.mean_sd(summary[f"{name}/{ds}"]["early_stopped_test_acc"]))
            for ds in DATASETS for name in settings.models]
    rows.append(("human, mnist1d / shuffled (%)", "96 ± 1 / ~30 ± 10", "not measured"))
    return rows

# %% Figures


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

# %% Main


def main():
    parser = runmany.add_arguments(experiment.chapter_parser("02_classifiers", __doc__))
    args = experiment.parse_args(parser)
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run("02_classifiers", args, settings)

    configs = sweep_configs(settings, args.seed)
    results = runmany.run_many(train_one, configs, run.path("runs"), workers=args.workers,
                               scheduler=args.scheduler, label="training runs")
    runs = group_runs(configs, results)
    summary = summarise(runs)

    rows = table(summary, settings)
    experiment.print_table(rows, title=(
        f"Early-stopped test accuracy, mean ± SD over {len(settings.seeds)} seed(s), {settings.steps} steps"))
    run.save_figure(plot_curves(runs, settings.models), "accuracy")
    run.save_results("results", {"summary": summary, "curves": {
        f"{name}/{ds}": results for (name, ds), results in runs.items()}}, rows)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
