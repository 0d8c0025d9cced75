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

Run: python chapters/01_dataset.py          (generation timed 5 times)
     python chapters/01_dataset.py --quick  (the same, with one timing run)
In a notebook (VS Code, or Jupyter with jupytext) the `# %%` cells run one by one.
--seed S: the random transforms of the digit followed through the pipeline
come from seed S (the dataset itself is always the paper's, seed 42); two
seeds share no draws.

Try it:
- `--seed 7`: follow another example of the same digit through the pipeline.
  Which stage moves it most?
- `--set example_label=8`: the digit 8 through the pipeline. After which
  stage would you no longer tell it from a 3?
- Set DATASET_ARGS to `data.get_dataset_args(corr_noise_scale=0,
  iid_noise_scale=0)`: without noise, how different do two examples of one
  class still look (translation and scaling alone)? The frozen-dataset row
  then says NO, as it should.
"""
import dataclasses
import timeit

import numpy as np

from mnist1d_np import data, experiment, plotting
from mnist1d_np.claims import Claim

# %% Settings (the paper's)
@dataclasses.dataclass(frozen=True)
class Settings:
    example_label: int = 3      # the digit we follow through the pipeline: 0 to 9
    examples_per_class: int = 6
    timing_repeats: int = 5     # generation time: the median of this many runs

    def __post_init__(self):
        if self.example_label not in range(10) or self.examples_per_class < 1 or self.timing_repeats < 1:
            raise ValueError(f"example_label must be a digit 0-9, examples_per_class and timing_repeats >= 1; "
                             f"got {self.example_label}, {self.examples_per_class}, {self.timing_repeats}")


QUICK = dict(timing_repeats=1)
DATASET_ARGS = data.get_dataset_args()  # the paper's defaults: 5000 examples, seed 42
PIPELINE = ["template", "pad", "pad+dilate", "scale", "translate", "noise", "shear", "subsample"]
PAPER = {"train / test examples": (4000, 1000), "length": 40, "train examples per class": "~400", "mean / std": (0, 1),
         "equals the frozen dataset (1e-12)": "yes", "generation time (5000 examples)": "2.4 s (original, SciPy)"}


# %% One digit through the pipeline
def follow_one_digit(args, label, seed):
    """Every stage of the pipeline for one example of `label`: ({stage: signal}, its draws)."""
    one = dataclasses.replace(args, seed=seed)
    draws = data.draw_randomness(one, 1)
    template = data.get_templates()["x"][label][None]
    steps = {k: v[0] for k, v in data.transform_steps(template, one, draws).items()}
    pad_len = data.pad_lengths(one, draws)[0]
    steps["pad"] = np.concatenate([template[0], np.zeros(pad_len)])
    return steps, {"pad_length": int(pad_len), "shift": int(draws["shift"][0])}


# %% The dataset: its statistics, the frozen check, the generation time
def dataset_statistics(dataset):
    """Sizes, class balance and moments of the standardised signals."""
    x_all = np.concatenate([dataset["x"], dataset["x_test"]])
    return {"n_train": len(dataset["y"]), "n_test": len(dataset["y_test"]),
            "length": dataset["x"].shape[1],
            "train_per_class": np.bincount(dataset["y"], minlength=10).tolist(),
            "test_per_class": np.bincount(dataset["y_test"], minlength=10).tolist(),
            "mean": float(x_all.mean()), "std": float(x_all.std()),
            "min": float(x_all.min()), "max": float(x_all.max())}


def frozen_mismatches(dataset):
    """The fingerprint entries in which dataset differs from the paper's frozen set by more than 1e-12."""
    return data.fingerprint_mismatches(data.fingerprint(dataset), data.FROZEN_FINGERPRINT)


def examine(settings, seed):
    """(dataset, one digit's pipeline stages, the chapter's numbers, with the median time
    of settings.timing_repeats generations). The paper's DATASET_ARGS must give the
    paper's frozen dataset: if not, the generator is broken; stop."""
    dataset = data.make_dataset(DATASET_ARGS)
    mismatches = frozen_mismatches(dataset)
    if mismatches and DATASET_ARGS == data.get_dataset_args():
        raise SystemExit(f"the generated dataset differs from the frozen one in {mismatches}")
    steps, info = follow_one_digit(DATASET_ARGS, settings.example_label, seed)
    seconds = timeit.repeat(lambda: data.make_dataset(DATASET_ARGS), number=1, repeat=settings.timing_repeats)
    return dataset, steps, {"dataset_args": DATASET_ARGS.as_dict(), "statistics": dataset_statistics(dataset),
                            "pipeline_example": info, "matches_frozen": not mismatches, "mismatched_fields": mismatches,
                            "generation_seconds_median": float(np.median(seconds))}


def measured(results):
    stats, mismatches = results["statistics"], results["mismatched_fields"]
    return {"train / test examples": (stats["n_train"], stats["n_test"]), "length": stats["length"],
            "train examples per class": f"{min(stats['train_per_class'])}–{max(stats['train_per_class'])}",
            "mean / std": f"{stats['mean']:.2g} / {stats['std']:.6f}",
            "equals the frozen dataset (1e-12)": f"NO: {mismatches}" if mismatches else "yes",
            "generation time (5000 examples)": f"{results['generation_seconds_median']:.3f} s"}


# %% The claim, judged on the saved check
CLAIMS = [Claim("the SciPy-free generator makes the paper's frozen dataset", "the frozen mnist1d_data.pkl",
                "1 if every array matches the frozen dataset (to 1e-12), else 0",
                lambda results: float(results["matches_frozen"]), ">=", 1, paper=1)]


# %% Figures
def plot_templates(templates):
    """The ten templates, each read top to bottom."""
    fig, axes = plotting.figure(1, 10, width=0.9, height=1.8)
    for label, ax in enumerate(axes):
        plotting.plot_signal(ax, templates["x"][label], templates["t"], color=f"C{label}", lw=2)
        ax.set_title(str(label))
    return fig


def plot_pipeline(steps, info):
    """One digit, stage by stage (the paper's Figure 1)."""
    fig, axes = plotting.figure(1, len(PIPELINE), width=1.2, height=2.2)
    for ax, name in zip(axes, PIPELINE):
        plotting.plot_signal(ax, steps[name], color="C3", lw=1.5)
        ax.set_title(name, fontsize=8)
    fig.suptitle(f"pad length {info['pad_length']}, shift {info['shift']}", fontsize=8)
    return fig


# %% Main
def main():
    run = experiment.start("01_dataset", __doc__, Settings, QUICK)
    dataset, steps, results = examine(run.settings, run.args.seed)
    run.save_figure(plot_templates(dataset["templates"]), "templates")
    run.save_figure(plot_pipeline(steps, results["pipeline_example"]), "pipeline")
    run.save_figure(plotting.plot_examples(dataset, run.settings.examples_per_class), "examples")
    run.finish(results, PAPER, measured(results), title="MNIST-1D: paper vs this run", claims=CLAIMS)


if __name__ == "__main__":
    experiment.run_chapter_main(main, resumable=False)
