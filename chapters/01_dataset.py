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
"""
import time

import numpy as np

from mnist1d_np import data, experiment, plotting

# ---------------------------------------------------------------- settings
DATASET_ARGS = data.get_dataset_args()  # the paper's defaults: 5000 examples, seed 42
EXAMPLE_LABEL = 3                       # the digit we follow through the pipeline
EXAMPLES_PER_CLASS = 6
PIPELINE = ["template", "pad", "pad+dilate", "scale", "translate", "noise", "shear", "subsample"]


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


def main():
    parser = experiment.chapter_parser("01_dataset", __doc__)
    args = parser.parse_args()
    run = experiment.Run("01_dataset", args, settings=DATASET_ARGS.as_dict())

    dataset = data.make_dataset(DATASET_ARGS)
    mismatches = data.fingerprint_mismatches(data.fingerprint(dataset), data.FROZEN_FINGERPRINT)
    stats = dataset_statistics(dataset)
    seconds = time_generation(DATASET_ARGS, 1 if args.quick else 5)

    run.save_figure(plot_templates(dataset["templates"]), "templates")
    steps, info = follow_one_digit(DATASET_ARGS, EXAMPLE_LABEL, args.seed)
    run.save_figure(plot_pipeline(steps, info), "pipeline")
    run.save_figure(plotting.plot_examples(dataset, EXAMPLES_PER_CLASS), "examples")

    experiment.print_table([
        ("train / test examples", "4000 / 1000", f"{stats['n_train']} / {stats['n_test']}"),
        ("length", 40, stats["length"]),
        ("train examples per class", "~400", f"{min(stats['train_per_class'])}–{max(stats['train_per_class'])}"),
        ("mean / std", "0 / 1", f"{stats['mean']:.2g} / {stats['std']:.6f}"),
        ("equals the frozen dataset (1e-12)", "yes", "yes" if not mismatches else f"NO: {mismatches}"),
        ("generation time (5000 examples)", "2.4 s (original, SciPy)", f"{seconds:.3f} s"),
    ], title="MNIST-1D: paper vs this run")
    run.save_results("results", {"statistics": stats, "pipeline_example": info,
                                 "matches_frozen": not mismatches, "mismatched_fields": mismatches,
                                 "generation_seconds_median": seconds})
    if mismatches:
        raise SystemExit(f"the generated dataset differs from the frozen one in {mismatches}")


if __name__ == "__main__":
    main()
