"""Chapter 01 — how MNIST-1D is built.

Question: how can a dataset be as small as 40 numbers per example and still
separate models the way MNIST does not?

The paper's answer (Greydanus & Kobak, ICML 2024, Figure 1): start from ten
hand-made 12-point "digits" and push each through random transforms that
real signals suffer: padding, dilation, scaling, translation, correlated and
i.i.d. noise, shear, and subsampling to 40 points. Translation makes spatial
structure matter; noise makes memorising hard. The frozen dataset has 4000
train and 1000 test examples.

This chapter draws the ten templates, follows one digit through the pipeline
step by step, shows a grid of examples per class, prints the dataset's
statistics, and checks that our SciPy-free generator reproduces the paper's
frozen dataset (to ~1e-12).

Run: python chapters/01_dataset.py          (a few seconds)
     python chapters/01_dataset.py --quick  (the same, with one timing run)
In a notebook (VS Code, or Jupyter with jupytext) the `# %%` cells run one by one.

Try it
------
- Compare `data.make_dataset(data.get_dataset_args(shuffle_seq=True))` with
  the default: the same examples, positions permuted. Which of the figures
  would still look like digits?
- `data.get_dataset_args(corr_noise_scale=0, iid_noise_scale=0)`: without
  noise, how different do two examples of one class still look? (Translation
  and scaling alone.)
- `--seed 7`: follow another example of digit 3 through the pipeline.
"""
import dataclasses
import time

import numpy as np

from mnist1d_np import data, experiment, plotting

# %% Settings (the paper's)
DATASET_ARGS = data.get_dataset_args()  # the paper's defaults: 5000 examples, seed 42


@dataclasses.dataclass(frozen=True)
class Settings:
    example_label: int = 3      # the digit we follow through the pipeline
    examples_per_class: int = 6
    timing_repeats: int = 5     # generation time: the median of this many runs


QUICK = dict(timing_repeats=1)  # --quick
PIPELINE = ["template", "pad", "pad+dilate", "scale", "translate", "noise", "shear", "subsample"]


# %% The figures

def plot_templates(templates):
    """Figure: the ten templates, each read top to bottom."""
    fig, axes = plotting.figure(1, 10, width=0.9, height=1.8)
    for label, ax in enumerate(axes):
        plotting.plot_signal(ax, templates["x"][label], templates["t"], color=f"C{label}", lw=2)
        ax.set_title(str(label))
    return fig


def follow_one_digit(args, label, seed):
    """Every stage of the pipeline for one example of `label`; returns {stage: signal}."""
    one = data.get_dataset_args(**{**args.as_dict(), "seed": seed})
    draws = data.draw_randomness(one, 1)
    template = data.get_templates()["x"][label][None]
    steps = {k: v[0] for k, v in data.transform_steps(template, one, draws).items()}
    pad_len = data.pad_lengths(one, draws)[0]
    steps["pad"] = np.concatenate([template[0], np.zeros(pad_len)])
    return steps, {"pad_length": int(pad_len), "shift": int(draws["shift"][0])}


def plot_pipeline(steps, info):
    """Figure: one digit, stage by stage (the paper's Figure 1)."""
    fig, axes = plotting.figure(1, len(PIPELINE), width=1.2, height=2.2)
    for ax, name in zip(axes, PIPELINE):
        plotting.plot_signal(ax, steps[name], color="C3", lw=1.5)
        ax.set_title(name, fontsize=8)
    fig.suptitle(f"pad length {info['pad_length']}, shift {info['shift']}", fontsize=8)
    return fig


# %% The checks

def dataset_statistics(dataset):
    """Sizes, class balance and moments of the standardised signals."""
    x_all = np.concatenate([dataset["x"], dataset["x_test"]])
    return {"n_train": len(dataset["y"]), "n_test": len(dataset["y_test"]),
            "length": dataset["x"].shape[1],
            "train_per_class": np.bincount(dataset["y"], minlength=10).tolist(),
            "test_per_class": np.bincount(dataset["y_test"], minlength=10).tolist(),
            "mean": float(x_all.mean()), "std": float(x_all.std()),
            "min": float(x_all.min()), "max": float(x_all.max())}


def time_generation(args, repeats):
    """Median wall time of make_dataset(args) over `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        data.make_dataset(args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def paper_vs_run(stats, mismatches, seconds):
    """Rows of the *quantity | paper | this run* table."""
    return [
        ("train / test examples", "4000 / 1000", f"{stats['n_train']} / {stats['n_test']}"),
        ("length", 40, stats["length"]),
        ("train examples per class", "~400", f"{min(stats['train_per_class'])}–{max(stats['train_per_class'])}"),
        ("mean / std", "0 / 1", f"{stats['mean']:.2g} / {stats['std']:.6f}"),
        ("equals the frozen dataset (1e-12)", "yes", "yes" if not mismatches else f"NO: {mismatches}"),
        ("generation time (5000 examples)", "2.4 s (original, SciPy)", f"{seconds:.3f} s"),
    ]


# %% Main

def main():
    parser = experiment.chapter_parser("01_dataset", __doc__)
    args = experiment.parse_args(parser)
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run("01_dataset", args, {"dataset": DATASET_ARGS.as_dict(), **dataclasses.asdict(settings)})

    dataset = data.make_dataset(DATASET_ARGS)
    mismatches = data.fingerprint_mismatches(data.fingerprint(dataset), data.FROZEN_FINGERPRINT)
    stats = dataset_statistics(dataset)
    seconds = time_generation(DATASET_ARGS, settings.timing_repeats)
    table = paper_vs_run(stats, mismatches, seconds)
    experiment.print_table(table, title="MNIST-1D: paper vs this run")

    run.save_figure(plot_templates(dataset["templates"]), "templates")
    steps, info = follow_one_digit(DATASET_ARGS, settings.example_label, args.seed)
    run.save_figure(plot_pipeline(steps, info), "pipeline")
    run.save_figure(plotting.plot_examples(dataset, settings.examples_per_class), "examples")
    run.save_results("results", {"statistics": stats, "pipeline_example": info,
                                 "matches_frozen": not mismatches, "mismatched_fields": mismatches,
                                 "generation_seconds_median": seconds}, table)
    if mismatches:
        raise SystemExit(f"the generated dataset differs from the frozen one in {mismatches}")


if __name__ == "__main__":
    experiment.run_chapter_main(main, resumable=False)
