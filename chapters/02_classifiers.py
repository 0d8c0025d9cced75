"""Chapter 02 — the classification benchmark: spatial inductive biases matter.

Question: do the usual architectures rank on MNIST-1D the way they do on
real data, and is that because of their spatial priors?

Setup (the paper's Table 1 and Figure 3): logistic regression, an MLP, a
CNN and a GRU, each trained with the same loop (Adam, lr 1e-2, batch 100,
6000 steps, batches in a fixed order, float32 like PyTorch) from 3
initialisations, on MNIST-1D and on the same dataset with its 40
positions shuffled by one fixed permutation. The table reports the
early-stopped test accuracy: the best of the evaluations every 250 steps.

The paper's answer: yes. Test accuracies (%, mean ± SD over 3 runs):

    model       MNIST-1D   shuffled positions
    logistic    32 ± 1     32 ± 1
    MLP         68 ± 2     68 ± 2
    CNN         94 ± 2     56 ± 2
    GRU         91 ± 2     57 ± 2
    human       96 ± 1     ~30 ± 10

Shuffling the positions changes nothing for the models without a notion of
position (logistic, MLP) and hurts the CNN and GRU, whose weight sharing
assumes that neighbours are related.

The human row: 96 ± 1 is one author's five quizzes of 100 test examples
(the notebook's 96, 96, 96, 97 and 94: 95.8 ± 0.44); ~30 ± 10 on shuffled
positions is a guess, with no quiz behind it. Take the quiz yourself,
`python -m mnist1d_np.quiz` (add --shuffled for the other number), and this
chapter's table and figure show your measured accuracy instead: it reads
the quiz files in results/quiz/, or the ones --human names. Without quiz
files the human row says "not measured" and the figure draws the notebook's
95.8.

Run: python chapters/02_classifiers.py          (24 runs of 6000 steps)
     python chapters/02_classifiers.py --quick  (one run per model and dataset, 300 steps)
--seed S: the runs of each model start from the initialisations 3S, 3S + 1
and 3S + 2, so two seeds share none. The runs are a sweep (--workers local
processes, or a dask cluster with --scheduler; see the README's *Sweeps*),
each saved as it finishes; Ctrl-C, then the same command, continues.

Try it:
- `--seed 10`: three other initialisations per model. Does the ranking hold,
  and does shuffling still cost the CNN and GRU more than 30 points?
- `--set steps=1000`: which models are close to their final accuracy
  already, and which gain most from the long run?
- Take `python -m mnist1d_np.quiz --shuffled`, then rerun with `--human`
  and your quiz files: do you beat the shuffled CNN, or the paper's guess?
- Add `"noisy": {"iid_noise_scale": 0.2}` to DATASETS: which model's spatial
  prior helps most against noise?
"""
import dataclasses
import functools
import glob
import itertools
import os

import numpy as np

from mnist1d_np import data, experiment, nn, plotting, quiz, train
from mnist1d_np.claims import Claim
from mnist1d_np.experiment import MeanSD


# %% Settings (the paper's)
@dataclasses.dataclass(frozen=True)
class Settings:
    steps: int = 6000          # Adam updates per run
    batch_size: int = 100
    lr: float = 1e-2
    eval_every: int = 250      # evaluate (and checkpoint) after every this many steps
    seeds: int = 3             # runs per model and dataset, each from its own initialisation
    models: tuple = ("logistic", "mlp", "cnn", "gru")
    dtype: str = "float32"     # as PyTorch's default


QUICK = dict(steps=300, eval_every=100, seeds=1)
DATASETS = {"mnist1d": {}, "shuffled": data.shuffled_positions()}  # get_dataset_args overrides; seed 42
HUMAN_ACCURACY = 95.8  # the notebook's five quizzes of 100 test examples (quiz.NOTEBOOK_SCORES)
HUMAN_ROW = "human, mnist1d / shuffled (%)"
HUMAN_DATASETS = ("mnist1d", "shuffled")  # the quiz's two modes (python -m mnist1d_np.quiz [--shuffled])
TABLE_1 = {  # early-stopped test accuracy (%), mean ± SD over 3 runs: (mnist1d, shuffled)
    "logistic": (MeanSD(32, 1), MeanSD(32, 1)), "mlp": (MeanSD(68, 2), MeanSD(68, 2)),
    "cnn": (MeanSD(94, 2), MeanSD(56, 2)), "gru": (MeanSD(91, 2), MeanSD(57, 2))}
PAPER = {**{f"{model} test acc., {dataset} (%)": accuracies[i] for i, dataset in enumerate(("mnist1d", "shuffled"))
            for model, accuracies in TABLE_1.items()},
         HUMAN_ROW: "96 ± 1 / ~30 ± 10"}


# %% The paper's claims, judged on the early-stopped accuracies (mean over seeds)
def accuracy(results, model, dataset):
    """A model's mean early-stopped test accuracy (%) on a dataset, or None if it was not trained."""
    entry = results["summary"].get(f"{model}/{dataset}")
    return None if entry is None else entry["early_stopped_mean"]


def lead(model, other, dataset="mnist1d"):
    """Claim value: model's accuracy minus other's (points)."""
    return lambda results: minus(accuracy(results, model, dataset), accuracy(results, other, dataset))


def shuffling_cost(model, absolute=False):
    """Claim value: what shuffling the positions costs the model (points; its size if absolute)."""
    def cost(results):
        value = minus(accuracy(results, model, "mnist1d"), accuracy(results, model, "shuffled"))
        return abs(value) if absolute and value is not None else value
    return cost


def minus(a, b):
    return None if a is None or b is None else a - b


def paper_accuracy(model, dataset="mnist1d"):
    return TABLE_1[model][("mnist1d", "shuffled").index(dataset)].mean


CLAIMS = [
    Claim("the CNN beats the MLP by more than 15 points", "Table 1", "CNN minus MLP, MNIST-1D (points)",
          lead("cnn", "mlp"), ">", 15, paper=paper_accuracy("cnn") - paper_accuracy("mlp")),
    Claim("the GRU beats the MLP by more than 15 points", "Table 1", "GRU minus MLP, MNIST-1D (points)",
          lead("gru", "mlp"), ">", 15, paper=paper_accuracy("gru") - paper_accuracy("mlp")),
    *[Claim(f"shuffling the positions costs the {model.upper()} more than 20 points", "Table 1",
            f"{model.upper()}, MNIST-1D minus shuffled (points)", shuffling_cost(model), ">", 20,
            paper=paper_accuracy(model) - paper_accuracy(model, "shuffled")) for model in ("cnn", "gru")],
    *[Claim(f"shuffling the positions changes the {name} by less than 3 points", "Table 1",
            f"|{name}, MNIST-1D minus shuffled| (points)", shuffling_cost(model, absolute=True), "<", 3,
            paper=abs(paper_accuracy(model) - paper_accuracy(model, "shuffled")),
            reading="'changes nothing' read as under 3 points, about the SD of three runs")
      for model, name in (("mlp", "MLP"), ("logistic", "logistic regression"))],
]


# %% The experiment: one training run per (dataset, model, seed)
# One run of the sweep: the settings it reads and what differs between runs, exactly (its identity).
Training = experiment.task_config("Training", Settings, ("steps", "batch_size", "lr", "eval_every", "dtype"),
                                  data=dict, model=str, seed=int)


def sweep(settings, seed):
    """Every run, in table order: ((model, dataset name), its config)."""
    return [((model, name), Training.of(settings, data=overrides, model=model, seed=init_seed))
            for name, overrides in DATASETS.items() for model in settings.models
            for init_seed in experiment.seeds(seed, settings.seeds)]


def train_one(config, context):
    """Train config.model from config.seed on its dataset with the paper's loop:
    its curves and its early-stopped evaluation."""
    dataset = make_data(tuple(sorted(config.data.items())))
    model = nn.make_model(config.model, np.random.default_rng(config.seed), dtype=np.dtype(config.dtype))
    loop = train.TrainConfig(config.steps, config.batch_size, config.lr, eval_every=config.eval_every)
    curves = train.train(model, dataset, loop, context.checkpoint_path)
    return {**curves, "early_stopped": train.early_stopped(curves)}


@functools.lru_cache(maxsize=None)
def make_data(overrides):
    """The dataset of get_dataset_args(**dict(overrides)), made once per process."""
    return data.make_dataset(data.get_dataset_args(**dict(overrides)))


def group(planned, results):
    """{(model, dataset): [result of each seed]}."""
    runs = {}
    for (key, _), result in zip(planned, results):
        runs.setdefault(key, []).append(result)
    return runs


def summarise(runs):
    """Per 'model/dataset': the early-stopped and final test accuracies (%) of its seeds, and the
    early-stopped ones' mean and SD (population SD, as the paper's table)."""
    summary = {}
    for (model, dataset), results in runs.items():
        best = [100 * r["early_stopped"]["test_acc"] for r in results]
        final = [100 * r["final_test_acc"] for r in results]
        summary[f"{model}/{dataset}"] = {"early_stopped_test_acc": best, "final_test_acc": final,
                                         "early_stopped_mean": float(np.mean(best)),
                                         "early_stopped_sd": float(np.std(best))}
    return summary


# %% The human baseline: the quizzes taken with python -m mnist1d_np.quiz
def read_human(paths):
    """{dataset: quiz.summarise entry} of the quiz files in `paths` (None: results/quiz/*.json);
    a quiz on another dataset than chapter 02's is refused."""
    if paths is None:
        paths = sorted(glob.glob(os.path.join(glob.escape(quiz.FOLDER), "*.json")))
    expected = {name: quiz.dataset_args(False, **DATASETS[name]) for name in HUMAN_DATASETS}
    try:
        return quiz.summarise(quiz.read_results(paths, expected))
    except quiz.QuizError as err:
        raise experiment.UsageError(f"--human: {err}") from None


def human_cell(human):
    """The human row's "this run": each dataset's measured accuracy, or "not measured"."""
    if not human:
        return "not measured"
    return " / ".join(quiz.describe(human[name]) if name in human else "not measured" for name in HUMAN_DATASETS)


# %% Figures
def plot_curves(runs, models, human=None):
    """Train (left) and test (right) accuracy over steps, averaged over seeds; one line style per dataset.
    The human lines: the measured accuracy of each dataset in `human` (read_human), else the notebook's."""
    fig, axes = plotting.figure(1, 2, width=4.5, height=3.2)
    styles = dict(zip(DATASETS, itertools.cycle(("-", "--", ":", "-."))))
    for split, ax in zip(("train_acc", "test_acc"), axes):
        for color, model in enumerate(models):
            for dataset, style in styles.items():
                curves = runs[(model, dataset)]
                mean = 100 * np.mean([r[split] for r in curves], axis=0)
                ax.plot(curves[0]["eval_steps"], mean, style, color=f"C{color}",
                        label=model if dataset == "mnist1d" else None)
        for dataset, style in styles.items():
            if dataset in (human or {}):
                n = len(human[dataset]["quizzes"])
                ax.axhline(human[dataset]["mean"], color="k", lw=0.8, ls=style,
                           label=f"human, {dataset}: measured ({n} quiz{'zes' if n > 1 else ''})")
        if "mnist1d" not in (human or {}):
            ax.axhline(HUMAN_ACCURACY, color="k", lw=0.8, ls=":", label="human (the notebook's quizzes)")
        ax.set(xlabel="step", ylabel=f"{split.split('_')[0]} accuracy (%)", ylim=(0, 102))
    axes[1].legend(title=", ".join(f"{s!r}: {d}" for d, s in styles.items()), fontsize=7, title_fontsize=7)
    return fig


def main_curve(runs, models):
    """Test accuracy (%) against step on MNIST-1D, mean over seeds: the curve the multi-seed report overlays."""
    return experiment.main_curve("Test accuracy on MNIST-1D", "step", "test accuracy (%)", {
        model: (runs[(model, "mnist1d")][0]["eval_steps"],
                100 * np.mean([r["test_acc"] for r in runs[(model, "mnist1d")]], axis=0)) for model in models})


# %% Main
def flags(parser):
    parser.add_argument("--human", nargs="+", metavar="FILE",
                        help=f"quiz files (python -m mnist1d_np.quiz) for the human row "
                             f"(default: {os.path.join(quiz.FOLDER, '*.json')})")


def main():
    run = experiment.start("02_classifiers", __doc__, Settings, QUICK, sweeps=True, flags=flags)
    human = read_human(run.args.human)
    planned = sweep(run.settings, run.args.seed)
    runs = group(planned, run.sweep(train_one, [config for _, config in planned], label="training runs"))
    summary = summarise(runs)
    measured = {f"{key.replace('/', ' test acc., ')} (%)": MeanSD(s["early_stopped_mean"], s["early_stopped_sd"], 1)
                for key, s in summary.items()}
    run.save_figure(plot_curves(runs, run.settings.models, human), "accuracy")
    saved = {"summary": summary, "curves": {f"{m}/{d}": results for (m, d), results in runs.items()}}
    run.finish({**saved, "human": human} if human else saved,
               PAPER, {**dict.fromkeys(PAPER), **measured, HUMAN_ROW: human_cell(human)},
               title=f"Early-stopped test accuracy, mean ± SD over {run.settings.seeds} seed(s)",
               claims=CLAIMS, curve=main_curve(runs, run.settings.models))


if __name__ == "__main__":
    experiment.run_chapter_main(main)
