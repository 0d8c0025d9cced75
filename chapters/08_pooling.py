"""Chapter 08 — pooling and striding against training-set size.

Question: a convolutional network can shrink its feature maps by pooling
neighbours (max, average, L2) or by striding its convolutions. Does that
prior help, and does the answer depend on how much data there is?

Setup (the paper's Figure 8, the notebook benchmark_pooling.ipynb):
- model ConvPooling: conv 1->20 (k3, p1, stride s), ReLU, pool; conv 20->20
  (k3, p1, stride s), ReLU, pool; flatten; linear to 10. Five variants:
  no pooling (stride 1, linear input 800), stride 2 without pooling, and
  max, average and L2 pooling with window 2 (linear input 200);
- every model starts from `torch.manual_seed(0)`'s numbers, as the
  notebook's: `nn.TorchGenerator(0)` replays PyTorch's random stream;
- MNIST-1D regenerated with num_samples 2000, 3000, 6000, 11000, 21000,
  51000 and train_split = 1 - 1000 / num_samples: 1k to 50k training
  examples, always the same 1000-example test set size;
- the paper's loop: Adam lr 1e-2, batch 100, batches in a fixed order,
  float32; the notebook's `for step in range(6000 + 1)` makes 6001 updates
  (steps=6001), evaluating after every 100th (steps 0, 100, ..., 6000) the
  test loss and accuracy and the accuracy on the whole training set (50k
  examples at the largest size: as much work as the training itself). We
  do the same. The final test accuracy is the one at step 6000.

The paper's answer: "pooling was helpful in low-data regimes but hindered
performance in high-data regimes". The notebook's final test accuracies
(%, no pool / stride 2 / max / avg / L2):

    1k:  59.2 / 57.4 / 78.2 / 78.0 / 77.2
    50k: 96.3 / 95.4 / 98.1 / 97.3 / 97.1

So in the notebook's own numbers pooling still leads at 50k, by 0.8-1.8
points instead of 18-19: the benefit shrinks, it does not turn into harm.
Gaps of a point are of the order of one run's noise: an accuracy measured
on 1000 test examples has a binomial SD of about 0.5 points (a row of the
table), and another initialisation moves a run further (--ablations
measures that at 1k and 5k). The table also gives the pooling gap averaged
over the last 10 evaluations, less noisy than the final one.

Run: python chapters/08_pooling.py              (30 runs of 6001 steps)
     python chapters/08_pooling.py --quick      (1k and 5k, 601 steps)
     python chapters/08_pooling.py --ablations  (+ ablation 9 at 1k and 5k: window 4, stride 2 with
                                                 pooling, one pooling layer only, 3 initialisations each)
--seed S: the initialisations of torch.manual_seed(3S), 3S + 1 and 3S + 2:
the main runs start every network from the first (--seed 0: the notebook's),
the ablations take all three, and two seeds share none. The runs are a sweep (--workers local
processes, or a dask cluster with --scheduler; see the README's *Sweeps*),
each saved as it finishes and checkpointed at every evaluation; Ctrl-C,
then the same command, continues with identical numbers.

Try it:
- `--seed 1`: other initial networks. Does the 20-point gap at 1k survive,
  and how much do the no-pooling numbers move? (--ablations measures the
  spread over three initialisations.)
- Change the poolings' `window=2` to 4 in VARIANTS: the linear layer then
  reads 40 values instead of 200 (800 without pooling). Does the stronger
  prior help more at 1k, and cost at 50k? (--ablations tries it at 1k and
  5k.)
- `--set dataset_sizes=2000 --set steps=1001`: at 1k, does every variant
  fit its training set within 1000 steps, and does the test accuracy
  still move after that? If not, what decides the gap: optimisation or the
  prior?
"""
# %% Imports
import dataclasses
import functools

import numpy as np

from mnist1d_np import data, experiment, nn, ops, plotting, train
from mnist1d_np.claims import Claim

NAME = "08_pooling"


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    dataset_sizes: tuple = (2000, 3000, 6000, 11000, 21000, 51000)  # num_samples
    test_examples: int = 1000      # train_split = 1 - test_examples / num_samples
    steps: int = 6001              # Adam updates: the notebook's range(6000 + 1)
    eval_every: int = 100
    batch_size: int = 100
    lr: float = 1e-2
    channels: int = 20
    dtype: str = "float32"         # as PyTorch's default
    ablation_sizes: tuple = (2000, 6000)   # 1k and 5k training examples
    seeds: int = 3                 # --ablations: initialisations of each variant


QUICK = dict(dataset_sizes=(2000, 6000), steps=601)

# Each variant: conv stride, pooling (a key of POOLS, or None), its window
# (stride = window), and after which convs it pools (default: both).
POOLS = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d, "l2": nn.LPPool1d}
VARIANTS = {"no_pool": dict(stride=1, pool=None), "stride_2": dict(stride=2, pool=None),
            **{f"{p}_pool": dict(stride=1, pool=p, window=2) for p in POOLS}}
POOLED = ("max_pool", "avg_pool", "l2_pool")
ABLATION_VARIANTS = {  # ablation 9 (not in the paper), for each pooling kind
    **{f"{p}_pool_window_4": dict(stride=1, pool=p, window=4) for p in POOLS},
    **{f"stride_2_{p}_pool": dict(stride=2, pool=p, window=2) for p in POOLS},
    **{f"{p}_pool_after_conv{i}": dict(stride=1, pool=p, window=2, pool_after=(i,)) for i in (1, 2) for p in POOLS}}
LATE_EVALUATIONS = 10  # the last 1000 steps: an average less noisy than the final evaluation
NOTEBOOK_FINAL = {  # the notebook's printed final test accuracy (%), step 6000, in VARIANTS' order
    1000: (59.2, 57.4, 78.2, 78.0, 77.2), 2000: (82.0, 81.7, 89.2, 90.0, 89.9), 5000: (91.9, 89.9, 94.5, 94.0, 95.3),
    10000: (94.3, 91.3, 97.0, 96.0, 96.6), 20000: (94.4, 92.2, 96.8, 96.2, 97.8), 50000: (96.3, 95.4, 98.1, 97.3, 97.1)}
NOTEBOOK = {(n, name): [acc] for n, accs in NOTEBOOK_FINAL.items() for name, acc in zip(VARIANTS, accs)}


# %% The model
class ConvPooling(nn.Module):
    """The notebook's model. x: (B, 40) -> logits (B, 10).

    conv 1->C (k3, p1, stride), ReLU, pool; conv C->C (k3, p1, stride),
    ReLU, pool; flatten; linear. `pool` None skips pooling; pool_after
    picks the convs followed by a pooling layer. The parameters are drawn
    in PyTorch's order (conv1, conv2, linear) from `rng`.
    """

    def __init__(self, rng, dtype, stride=1, pool=None, window=2, pool_after=(1, 2), channels=20, length=40):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 3, rng, stride=stride, padding=1, dtype=dtype)
        self.conv2 = nn.Conv1d(channels, channels, 3, rng, stride=stride, padding=1, dtype=dtype)
        self.pools = [POOLS[pool](window) if pool and i in pool_after else None for i in (1, 2)]
        for pooling in self.pools:  # the feature maps' length: a conv (k3, p1) divides it by stride, a pool by window
            length = ((length - 1) // stride + 1) // (window if pooling is not None else 1)
        self.linear = nn.Linear(channels * length, 10, rng, dtype=dtype)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        for conv, pool in zip((self.conv1, self.conv2), self.pools):
            h = ops.relu(conv(h))
            h = h if pool is None else pool(h)
        return self.linear(h.reshape(h.shape[0], -1))


# %% The experiment: one training run per (variant, dataset size, seed)
# One run of the sweep: the settings it reads and what differs between runs (its identity).
Training = experiment.task_config("Training", Settings, ("test_examples", "channels", "steps", "eval_every",
                                                         "batch_size", "lr", "dtype"),
                                  architecture=dict, num_samples=int, seed=int)  # seed: torch's


def sweep(settings, variants, sizes, seeds):
    """One run per (size, variant, seed), sizes outermost: (variant names, configs)."""
    planned = [(name, Training.of(settings, architecture=variants[name], num_samples=n, seed=seed))
               for n in sizes for seed in seeds for name in variants]
    return [name for name, _ in planned], [config for _, config in planned]


@functools.lru_cache(maxsize=1)  # a worker trains all variants of one size in a row
def load_dataset(num_samples, test_examples):
    """MNIST-1D (the paper's seed) with `test_examples` test examples; train.train casts x to the model's dtype."""
    args = data.get_dataset_args(num_samples=num_samples, train_split=1 - test_examples / num_samples)
    return data.make_dataset(args)


def train_one(config, context):
    """The sweep task: train one ConvPooling as the notebook does; its curves and final numbers."""
    dataset = load_dataset(config.num_samples, config.test_examples)
    model = ConvPooling(nn.TorchGenerator(config.seed), config.dtype, channels=config.channels, **config.architecture)
    loop = train.TrainConfig(config.steps, config.batch_size, config.lr, eval_every=config.eval_every)
    curves = train.train(model, dataset, loop, context.checkpoint_path)
    return {"train_examples": len(dataset["y"]), "final_train_acc": curves["train_acc"][-1],
            "mean_batch_loss": float(np.mean(curves.pop("train_losses"))), **curves}


def final_accuracies(names, results, last=1):
    """{(train examples, variant): [test accuracy (%) per seed]}: the final one, or
    with last > 1 the mean of the last `last` evaluations (less noisy)."""
    accuracy = {}
    for name, r in zip(names, results):
        accuracy.setdefault((r["train_examples"], name), []).append(100 * float(np.mean(r["test_acc"][-last:])))
    return accuracy


def ablations(settings, seed):
    """Ablation 9: every variant at the ablation sizes, from experiment.seeds(seed, settings.seeds)."""
    seeds = experiment.seeds(seed, settings.seeds)
    return sweep(settings, {**VARIANTS, **ABLATION_VARIANTS}, settings.ablation_sizes, seeds), seeds


# %% The paper's claim, read from accuracies {(train examples, variant): [per seed]}
def pooling_gap(accuracy, n):
    """Mean over the three pooling variants minus no pooling (points), at n training examples."""
    return np.mean([np.mean(accuracy[(n, name)]) for name in POOLED]) - np.mean(accuracy[(n, "no_pool")])


def claim_rows(accuracy, read=""):
    """The paper's claim at the smallest and the largest training set, and the scale of chance there: the
    binomial SD sqrt(p (1 - p) / 1000) of one accuracy on 1000 test examples, p the five variants' mean.
    `read` ends every quantity's name (how the accuracies were read)."""
    small, large = min(n for n, _ in accuracy), max(n for n, _ in accuracy)
    scarce, plentiful = pooling_gap(accuracy, small), pooling_gap(accuracy, large)
    final = {name: np.mean(accuracy[(large, name)]) for name in VARIANTS}
    p = np.mean(list(final.values())) / 100
    return {f"pooling minus no pooling, {small // 1000}k (points){read}": f"{scarce:+.1f}",
            f"pooling minus no pooling, {large // 1000}k (points){read}": f"{plentiful:+.1f}",
            f"max / avg / L2 pool minus no pooling, {large // 1000}k (points){read}":
                tuple(f"{final[name] - final['no_pool']:+.1f}" for name in POOLED),
            f"pooling helps at {small // 1000}k / hinders at {large // 1000}k / benefit shrinks?{read}":
                tuple("yes" if claim else "no" for claim in (scarce > 0, plentiful < 0, plentiful < scarce)),
            f"binomial SD of one test accuracy at {large // 1000}k (points){read}":
                f"{100 * np.sqrt(p * (1 - p) / 1000):.1f}"}


def final_quantities(accuracy):
    """{'max_pool, 1k train: final test acc. (%)': the mean over seeds} per (size, variant)."""
    return {f"{name}, {n // 1000}k train: final test acc. (%)": f"{np.mean(accs):.1f}"
            for (n, name), accs in accuracy.items()}


def ablation_rows(accuracy):
    """Ablation 9's rows, at each size: every variant's mean ± SD over the seeds, the pooling gap, the largest SD."""
    sizes = sorted({n for n, _ in accuracy})
    at = " / ".join(f"{n // 1000}k" for n in sizes)
    rows = {f"ablation, {name}: final test acc. at {at} (%)":
            tuple(experiment.mean_sd(accuracy[(n, name)]) for n in sizes) for name in {**VARIANTS, **ABLATION_VARIANTS}}
    rows[f"ablation: pooling minus no pooling at {at} (points)"] = experiment.each(
        [pooling_gap(accuracy, n) for n in sizes])
    rows[f"ablation: the five variants' largest SD over seeds at {at} (points)"] = experiment.each(
        largest_sd(accuracy).values())
    return rows


def largest_sd(accuracy):
    """{size: the largest SD over seeds of the five variants' final test accuracies (points)}."""
    return {n: max(np.std(accuracy[(n, name)]) for name in VARIANTS) for n in sorted({n for n, _ in accuracy})}


PAPER = {**final_quantities(NOTEBOOK), **claim_rows(NOTEBOOK)}  # the notebook's column


# %% The paper's claims, judged on the saved pooling gaps (mean of max/avg/L2 pooling minus no pooling)
def gap_at(n, read="final"):
    """Claim value: the saved pooling gap at n training examples (points); None if n was not run.
    read: "final" (the step-6000 accuracies) or "late" (the mean of the last LATE_EVALUATIONS)."""
    return lambda results: results[read]["pooling_gap"].get(str(n))


SMALL, LARGE = min(NOTEBOOK_FINAL), max(NOTEBOOK_FINAL)
SHRINKS = ("the notebook's own numbers do not show harm at 50k (pooling still leads by 1.2 points), so we "
           "also test the weaker reading: the benefit shrinks below 2 points, about 4 binomial SDs of one accuracy")
CLAIMS = [
    Claim("pooling helps by more than 10 points with 1k training examples", "Figure 8",
          "pooling minus no pooling at 1k (points)", gap_at(SMALL), ">", 10, paper=pooling_gap(NOTEBOOK, SMALL)),
    Claim("pooling hinders performance with 50k training examples", "Figure 8 and its text",
          "pooling minus no pooling at 50k (points)", gap_at(LARGE), "<", 0, paper=pooling_gap(NOTEBOOK, LARGE),
          reading="the text's words, 'hindered performance in high-data regimes', read literally"),
    Claim("pooling's benefit shrinks below 2 points at 50k", "Figure 8", "pooling minus no pooling at 50k (points)",
          gap_at(LARGE), "<", 2, paper=pooling_gap(NOTEBOOK, LARGE), reading=SHRINKS),
    Claim("pooling's benefit shrinks below 2 points at 50k, read less noisily", "Figure 8",
          f"the same, accuracies averaged over the last {LATE_EVALUATIONS} evaluations (points)",
          gap_at(LARGE, "late"), "<", 2, reading=SHRINKS),
]


# %% Figures
STYLES = {"no_pool": "k-", "stride_2": "k--", "max_pool": "r-", "avg_pool": "g-", "l2_pool": "b-"}
PANEL_YLIM = {1000: (30, 85), 5000: (80, 100), 50000: (90, 100)}  # the notebook's


def plot_curves(names, results):
    """Test accuracy against step for 1k / 5k / 50k (the paper's panels; without them, every size run),
    smoothed as the notebook."""
    runs = {(r["train_examples"], name): r for name, r in zip(names, results)}
    shown = [n for n in PANEL_YLIM if (n, "no_pool") in runs] or sorted({n for n, _ in runs})
    fig, axes = plotting.figure(1, len(shown), width=3.2, height=2.6, squeeze=False)
    for ax, n in zip(axes[0], shown):
        for name, style in STYLES.items():
            smooth = data.gaussian_filter_rows(100 * np.array([runs[(n, name)]["test_acc"]]), sigma=1)[0]
            ax.plot(runs[(n, name)]["eval_steps"], smooth, style, lw=1, label=name)
        ax.set(title=f"{n} training examples", xlabel="train step", ylim=PANEL_YLIM.get(n))
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    return fig


def plot_final(accuracy):
    """Final test accuracy against training-set size (log x); the notebook's as faint dots."""
    fig, ax = plotting.figure(width=4.5, height=3.2)
    sizes = sorted({n for n, _ in accuracy})
    for name, style in STYLES.items():
        ax.plot(sizes, [np.mean(accuracy[(n, name)]) for n in sizes], style, marker="o", ms=3, lw=1, label=name)
        noted = [n for n in sizes if n in NOTEBOOK_FINAL]  # the sizes the notebook ran
        ax.plot(noted, [NOTEBOOK[(n, name)][0] for n in noted], style[0] + ":", marker=".", alpha=0.4, lw=0.8)
    ax.set(xscale="log", xticks=sizes, xticklabels=[f"{n // 1000}k" for n in sizes], xlabel="training examples",
           ylabel="final test accuracy (%)", title="solid: this run, dotted: the notebook")
    ax.minorticks_off()
    ax.legend(fontsize=7)
    return fig


def main_curve(accuracy):
    """Final test accuracy (%) against training-set size, per variant: the curve the multi-seed report overlays."""
    sizes = sorted({n for n, _ in accuracy})
    return experiment.main_curve("Final test accuracy against training-set size", "training examples",
                                 "final test accuracy (%)", {name: (sizes, [np.mean(accuracy[(n, name)]) for n in sizes])
                                                             for name in VARIANTS}, "log")


# %% Main
def by_key(accuracy):
    """{'max_pool/1000': [per seed]} and the pooling gap per size, for the JSON."""
    return {"test_acc": {f"{name}/{n}": accs for (n, name), accs in accuracy.items()},
            "pooling_gap": {n: pooling_gap(accuracy, n) for n in sorted({n for n, _ in accuracy})}}


def main():
    run = experiment.start(NAME, __doc__, Settings, QUICK, sweeps=True, ablations="also ablation 9 at 1k and "
                           "5k: window 4, stride 2 with pooling, one pooling layer; 3 initialisations each")
    first = experiment.seeds(run.args.seed, run.settings.seeds)[:1]
    names, configs = sweep(run.settings, VARIANTS, run.settings.dataset_sizes, first)
    results = run.sweep(train_one, configs, label="training runs")
    accuracy, late = final_accuracies(names, results), final_accuracies(names, results, LATE_EVALUATIONS)
    run.save_figure(plot_curves(names, results), "accuracy_vs_step")
    run.save_figure(plot_final(accuracy), "accuracy_vs_training_set_size")
    measured = {**dict.fromkeys(PAPER), **final_quantities(accuracy), **claim_rows(accuracy),
                **claim_rows(late, f", mean of the last {LATE_EVALUATIONS} evaluations")}
    output = {"runs": [{"variant": name, "seed": c.seed, **r} for name, c, r in zip(names, configs, results)],
              "final": by_key(accuracy), "late": by_key(late)}
    curve = main_curve(accuracy)
    if run.args.ablations:
        (names, configs), seeds = ablations(run.settings, run.args.seed)
        accuracy = final_accuracies(names, run.sweep(train_one, configs, label="ablation runs"))
        measured.update(ablation_rows(accuracy))
        output["ablations"] = {"seeds": seeds, "largest_seed_sd": largest_sd(accuracy), **by_key(accuracy)}
    run.finish(output, PAPER, measured, headers=("quantity", "notebook", "this run"),
               title=f"Final test accuracy after {run.settings.steps} steps, torch seed {first[0]}", claims=CLAIMS,
               curve=curve)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
