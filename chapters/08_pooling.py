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
  float32; the notebook's `for step in range(6000 + 1)` makes 6001 updates,
  evaluating after every 100th (steps 0, 100, ..., 6000) the test loss and
  accuracy and the accuracy on the whole training set (50k examples at the
  largest size: as much work as the training itself). We do the same. The
  final test accuracy is the one at step 6000.

The paper's answer: "pooling was helpful in low-data regimes but hindered
performance in high-data regimes". The notebook's final test accuracies
(%, no pool / stride 2 / max / avg / L2):

    1k:  59.2 / 57.4 / 78.2 / 78.0 / 77.2
    50k: 96.3 / 95.4 / 98.1 / 97.3 / 97.1

So in the notebook's own numbers pooling still leads at 50k, by 0.8-1.8
points instead of 18-19: the benefit shrinks, it does not turn into harm.

This project (seed 0, the full run of 2026-11-25), same order:

    1k:  59.0 / 57.2 / 79.6 / 78.0 / 76.2
    50k: 97.4 / 96.3 / 97.3 / 97.1 / 97.0

Every one of the 30 numbers is within 2.2 points of the notebook's (the
runs differ in float rounding: GPU vs CPU). Pooling's lead at 1k is
reproduced (+18.9 points, the notebook +18.6). At 50k no pooling comes out
0.1-0.4 points ahead of the three pools at the last evaluation (the
notebook: 0.8-1.8 behind), but that is one noisy evaluation: averaged over
the last 10 (steps 5100-6000) the pools lead by 0.6-1.0 points (+0.8 on
average, the notebook's final numbers +1.2), and the 50k panel of the
curves shows them ahead for most of training. Differences that small are
of the order of one run's noise: an accuracy measured on 1000 test examples
has a binomial SD of about 0.5 points, and another initialisation moves a
run further (--ablations measures that at 1k and 5k). So the benefit
shrinks from about 19 points to about 1; that pooling "hinders" at 50k is
shown neither by the notebook nor by this run.

Ablation 9 (--ablations, 3 initialisations, mean ± SD; 2026-11-25): at 1k
the pools lead no pooling by 18.0 points, against a largest seed SD of 3.7
among the five variants; at 5k by 2.9 against 1.6. Window 4 helps further at
1k (85.7-86.7 %, window 2: 76.8-79.6 %) and costs about a point at 5k;
stride 2 combined with pooling shrinks the maps too far (66.0-69.8 % at 1k,
85 % at 5k); one pooling layer (after conv1 or conv2) keeps about half of
the 1k benefit (65.8-71.9 %) and all of it at 5k (93.6-94.4 %).

Run: python chapters/08_pooling.py              (30 runs of 6001 steps: 6.3 min of CPU time;
                                                 24.5 min measured on a shared 2-core machine at
                                                 load ~16, so about 3-4 min on 2 idle cores)
     python chapters/08_pooling.py --quick      (1k and 5k, 600 steps: 22 s of CPU time)
     python chapters/08_pooling.py --ablations  (+ 92 runs at 1k and 5k: window 4, stride 2 with
                                                 pooling, one pooling layer only, 3 seeds each:
                                                 14.7 min of CPU time; 43 min on the loaded machine)
     --workers N runs N trainings at a time (default: one per core); --seed N starts every
     network from torch.manual_seed(N) (default 0: the notebook's).
Every run is saved when it finishes and checkpointed every 100 steps: rerun
the same command to continue after Ctrl-C (the numbers are identical, and
the same whatever the number of workers).

Try it:
- `--seed 1`: other initial networks. Does the 20-point gap at 1k survive,
  and how much do the no-pooling numbers move? (--ablations measures the
  spread over three seeds.)
- Set `window=4` in VARIANTS' max_pool: the feature maps shrink 16-fold
  instead of 4-fold. Does the stronger prior help more at 1k, and cost at
  50k?
- Set `dataset_sizes=(2000,)` and `total_steps=1000` in Settings: at 1k the
  training accuracy reaches 100 % within the first 1000 steps for every
  variant; the test accuracy does not move afterwards. What then decides
  the gap, optimisation or the prior?
"""
# %% Imports
import dataclasses
import functools

import numpy as np

from mnist1d_np import data, experiment, nn, ops, plotting, runmany, train


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    dataset_sizes: tuple = (2000, 3000, 6000, 11000, 21000, 51000)  # num_samples
    test_examples: int = 1000      # train_split = 1 - test_examples / num_samples
    total_steps: int = 6000        # the loop runs steps 0..total_steps (6001 updates)
    eval_every: int = 100
    batch_size: int = 100
    learning_rate: float = 1e-2
    channels: int = 20
    ablation_sizes: tuple = (2000, 6000)   # 1k and 5k training examples
    ablation_seeds: int = 3


QUICK = dict(dataset_sizes=(2000, 6000), total_steps=600)

# Each variant: conv stride, pooling ("max", "avg", "l2" or None), its window
# (stride = window), and after which convs it pools.
VARIANTS = {
    "no_pool": dict(stride=1, pool=None),
    "stride_2": dict(stride=2, pool=None),
    "max_pool": dict(stride=1, pool="max", window=2),
    "avg_pool": dict(stride=1, pool="avg", window=2),
    "l2_pool": dict(stride=1, pool="l2", window=2),
}
ABLATION_VARIANTS = {  # ablation 9 (not in the paper), for each pooling kind
    **{f"{p}_pool_window_4": dict(stride=1, pool=p, window=4) for p in ("max", "avg", "l2")},
    **{f"stride_2_{p}_pool": dict(stride=2, pool=p, window=2) for p in ("max", "avg", "l2")},
    **{f"{p}_pool_after_conv{i}": dict(stride=1, pool=p, window=2, pool_after=(i,))
       for i in (1, 2) for p in ("max", "avg", "l2")},
}
POOLS = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d, "l2": nn.LPPool1d}
DTYPE = np.float32  # as PyTorch's default
LATE_EVALUATIONS = 10  # the last 1000 steps: an average less noisy than the final evaluation

NOTEBOOK_FINAL = {  # the notebook's printed final test accuracy (%), step 6000, in VARIANTS' order
    1000: (59.2, 57.4, 78.2, 78.0, 77.2), 2000: (82.0, 81.7, 89.2, 90.0, 89.9),
    5000: (91.9, 89.9, 94.5, 94.0, 95.3), 10000: (94.3, 91.3, 97.0, 96.0, 96.6),
    20000: (94.4, 92.2, 96.8, 96.2, 97.8), 50000: (96.3, 95.4, 98.1, 97.3, 97.1),
}
PAPER = {(n, name): acc for n, accs in NOTEBOOK_FINAL.items() for name, acc in zip(VARIANTS, accs)}


# %% The model
class ConvPooling(nn.Module):
    """The notebook's model. x: (B, 40) -> logits (B, 10).

    conv 1->C (k3, p1, stride), ReLU, pool; conv C->C (k3, p1, stride),
    ReLU, pool; flatten; linear. `pool` None skips pooling; pool_after
    picks the convs followed by a pooling layer. The parameters are drawn
    in PyTorch's order (conv1, conv2, linear) from `rng`.
    """

    def __init__(self, rng, stride=1, pool=None, window=2, pool_after=(1, 2), channels=20,
                 length=40, dtype=DTYPE):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 3, rng, stride=stride, padding=1, dtype=dtype)
        self.conv2 = nn.Conv1d(channels, channels, 3, rng, stride=stride, padding=1, dtype=dtype)
        self.pools = [POOLS[pool](window) if pool and i in pool_after else None for i in (1, 2)]
        self.linear = nn.Linear(channels * self.features_length(length), 10, rng, dtype=dtype)

    def features_length(self, length):
        """The length of the last feature maps, for inputs of `length`."""
        for conv, pool in zip((self.conv1, self.conv2), self.pools):
            length = (length + 2 * conv.padding - conv.weight.shape[-1]) // conv.stride + 1
            if pool is not None:
                length = (length - pool.kernel_size) // pool.stride + 1
        return length

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        for conv, pool in zip((self.conv1, self.conv2), self.pools):
            h = ops.relu(conv(h))
            h = h if pool is None else pool(h)
        return self.linear(h.reshape(h.shape[0], -1))


# %% The experiment: one training run per (variant, dataset size, seed)
@functools.lru_cache(maxsize=1)  # a worker trains all variants of one size in a row
def load_dataset(num_samples, test_examples):
    """MNIST-1D (the paper's seed) with `test_examples` test examples, x in float32."""
    args = data.get_dataset_args(num_samples=num_samples, train_split=1 - test_examples / num_samples)
    dataset = data.make_dataset(args)
    return {key: dataset[key].astype(DTYPE) if key.startswith("x") else dataset[key]
            for key in ("x", "y", "x_test", "y_test")}


def make_configs(settings, variants, sizes, seeds):
    """One JSON-able config per (size, variant, seed), sizes outermost."""
    loop = {"steps": settings.total_steps + 1, "eval_every": settings.eval_every,
            "batch_size": settings.batch_size, "learning_rate": settings.learning_rate}
    return [{"variant": name, "architecture": variants[name], "num_samples": n,
             "test_examples": settings.test_examples, "channels": settings.channels,
             "init_seed": seed, **loop}
            for n in sizes for seed in seeds for name in variants]


def train_one(config, context):
    """The run-many task: train one ConvPooling as the notebook; its curves and final numbers."""
    dataset = load_dataset(config["num_samples"], config["test_examples"])
    model = ConvPooling(nn.TorchGenerator(config["init_seed"]), channels=config["channels"],
                        **config["architecture"])
    loop = train.TrainConfig(steps=config["steps"], batch_size=config["batch_size"],
                             lr=config["learning_rate"], eval_every=config["eval_every"])
    result = train.train(model, dataset, loop, checkpoint_path=context.checkpoint_path,
                         should_stop=context.should_stop)
    curves = {key: result[key] for key in ("eval_steps", "test_acc", "train_acc", "test_loss", "train_loss")}
    return {"train_examples": len(dataset["y"]), "final_test_acc": result["test_acc"][-1],
            "final_train_acc": result["train_acc"][-1],
            "mean_batch_loss": float(np.mean(result["train_losses"])), **curves}


def run_sweep(configs, run, args, label):
    """Every config through the run-many mechanism; results in config order."""
    return runmany.run_many(train_one, configs, run.path("runs"), workers=args.workers,
                            scheduler=args.scheduler, label=label)


def final_accuracies(configs, results, last=1):
    """{(train examples, variant): [test accuracy (%) per seed]}: the final one, or
    with last > 1 the mean of the last `last` evaluations (less noisy)."""
    table = {}
    for config, result in zip(configs, results):
        key = (result["train_examples"], config["variant"])
        table.setdefault(key, []).append(100 * float(np.mean(result["test_acc"][-last:])))
    return table


# %% The paper's claim
def pooling_gap(accuracy, n):
    """Mean over the three pooling variants minus no pooling (points), at n training examples."""
    pooled = np.mean([np.mean(accuracy[(n, name)]) for name in ("max_pool", "avg_pool", "l2_pool")])
    return pooled - np.mean(accuracy[(n, "no_pool")])


def claim_rows(accuracy, late_accuracy, sizes):
    """The paper's claim, checked at the smallest and the largest size, notebook vs this run.

    accuracy: the final test accuracies; late_accuracy: the means over the
    last LATE_EVALUATIONS evaluations (the notebook printed too few to
    compute them). The last row gives the scale of chance: the binomial SD
    of an accuracy measured on 1000 test examples.
    """
    smallest, largest = min(sizes), max(sizes)
    notebook = {key: [value] for key, value in PAPER.items()}
    rows = [(f"pooling minus no pooling, {n // 1000}k (points)", f"{pooling_gap(notebook, n):+.1f}",
             f"{pooling_gap(accuracy, n):+.1f}") for n in (smallest, largest)]
    rows += [(f"the same, mean of the last {LATE_EVALUATIONS} evaluations, {n // 1000}k (points)", "—",
              f"{pooling_gap(late_accuracy, n):+.1f}") for n in (smallest, largest)]
    rows.append((f"max / avg / L2 pool minus no pooling, {largest // 1000}k (points)",
                 each_pool_gap(notebook, largest), each_pool_gap(accuracy, largest)))
    rows.append((f"pooling helps at {smallest // 1000}k / hinders at {largest // 1000}k / benefit shrinks?",
                 verdict(notebook, smallest, largest), f"{verdict(accuracy, smallest, largest)} "
                 f"(last {LATE_EVALUATIONS}: {verdict(late_accuracy, smallest, largest)})"))
    rows.append((f"binomial SD of one test accuracy at {largest // 1000}k (points)",
                 f"{binomial_sd(notebook, largest):.1f}", f"{binomial_sd(accuracy, largest):.1f}"))
    return rows


def each_pool_gap(accuracy, n):
    base = np.mean(accuracy[(n, "no_pool")])
    return " / ".join(f"{np.mean(accuracy[(n, p)]) - base:+.1f}" for p in ("max_pool", "avg_pool", "l2_pool"))


def binomial_sd(accuracy, n, test_examples=1000):
    """sqrt(p (1 - p) / test_examples) in points, p the mean accuracy of the five variants."""
    p = np.mean([np.mean(accuracy[(n, name)]) for name in VARIANTS]) / 100
    return 100 * np.sqrt(p * (1 - p) / test_examples)


def verdict(accuracy, smallest, largest):
    """'yes / no / yes': pooling helps at the smallest size, hinders at the largest, the gap shrinks."""
    scarce, plentiful = pooling_gap(accuracy, smallest), pooling_gap(accuracy, largest)
    return " / ".join("yes" if flag else "no" for flag in (scarce > 0, plentiful < 0, plentiful < scarce))


def paper_table(accuracy):
    """The *quantity | notebook | this run* rows, one per (size, variant) run."""
    return [(f"{name}, {n // 1000}k train: final test acc. (%)", f"{PAPER[(n, name)]:.1f}",
             f"{np.mean(accs):.1f}") for (n, name), accs in accuracy.items()]


# %% Figures
STYLES = {"no_pool": "k-", "stride_2": "k--", "max_pool": "r-", "avg_pool": "g-", "l2_pool": "b-"}
PANEL_YLIM = {1000: (30, 85), 5000: (80, 100), 50000: (90, 100)}  # the notebook's


def plot_curves(configs, results, sizes=tuple(PANEL_YLIM)):
    """Test accuracy against step for 1k / 5k / 50k (the paper's panels), smoothed as the notebook."""
    runs = {(r["train_examples"], c["variant"]): r for c, r in zip(configs, results)}
    shown = [n for n in sizes if any(key[0] == n for key in runs)]
    fig, axes = plotting.figure(1, len(shown), width=3.2, height=2.6, squeeze=False)
    for ax, n in zip(axes[0], shown):
        for name, style in STYLES.items():
            run = runs[(n, name)]
            smooth = data.gaussian_filter_rows(100 * np.array([run["test_acc"]]), sigma=1)[0]
            ax.plot(run["eval_steps"], smooth, style, lw=1, label=name)
        ax.set(title=f"{n} training examples", xlabel="train step", ylim=PANEL_YLIM[n])
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    return fig


def plot_final(accuracy):
    """Final test accuracy against training-set size (log x); the notebook's as faint dots."""
    fig, ax = plotting.figure(width=4.5, height=3.2)
    sizes = sorted({n for n, _ in accuracy})
    for name, style in STYLES.items():
        ax.plot(sizes, [np.mean(accuracy[(n, name)]) for n in sizes], style, marker="o", ms=3,
                lw=1, label=name)
        ax.plot(sizes, [PAPER[(n, name)] for n in sizes], style[0] + ":", marker=".", alpha=0.4, lw=0.8)
    ax.set(xscale="log", xlabel="training examples", ylabel="final test accuracy (%)",
           title="solid: this run, dotted: the notebook")
    ax.set_xticks(sizes, [f"{n // 1000}k" for n in sizes])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    return fig


# %% Ablations
def run_ablations(settings, run, args):
    """Ablation 9 at 1k and 5k, `ablation_seeds` initialisations each.

    Returns the rows for the results table (mean ± SD at each size) and the JSON.
    """
    variants = {**VARIANTS, **ABLATION_VARIANTS}
    seeds = [args.seed + i for i in range(settings.ablation_seeds)]
    configs = make_configs(settings, variants, settings.ablation_sizes, seeds)
    accuracy = final_accuracies(configs, run_sweep(configs, run, args, "ablation runs"))
    sizes = sorted({n for n, _ in accuracy})
    spread = {n: max(np.std(accuracy[(n, name)]) for name in VARIANTS) for n in sizes}
    print_ablations(accuracy, variants, sizes, spread, len(seeds))
    table = [(f"ablation, {name}: final test acc. at {' / '.join(f'{n // 1000}k' for n in sizes)} (%)", "—",
              " / ".join(experiment.mean_sd(accuracy[(n, name)]) for n in sizes)) for name in variants]
    return table, {"seeds": seeds, "largest_seed_sd": spread,
                   "final_test_acc": {f"{name}/{n}": accuracy[(n, name)] for n in sizes for name in variants},
                   "pooling_gap": {n: pooling_gap(accuracy, n) for n in sizes}}


def print_ablations(accuracy, variants, sizes, spread, n_seeds):
    """Mean ± SD per variant and size; then, is the pooling gap larger than the seed spread?"""
    rows = [(name, *(experiment.mean_sd(accuracy[(n, name)]) for n in sizes)) for name in variants]
    experiment.print_table(rows, headers=("variant", *(f"{n // 1000}k: test acc. (%)" for n in sizes)),
                           title=f"Ablation 9: final test accuracy, mean ± SD over {n_seeds} seeds")
    for n in sizes:
        print(f"{n // 1000}k: pooling minus no pooling {pooling_gap(accuracy, n):+.1f} points; "
              f"largest seed SD of the five variants {spread[n]:.1f}")


# %% Main
def results_json(configs, results, accuracy, late_accuracy):
    """Every run's curves, and the final and late accuracies and pooling gaps by 'variant/size'."""
    sizes = sorted({n for n, _ in accuracy})
    return {"runs": [{"variant": c["variant"], "init_seed": c["init_seed"], **r} for c, r in zip(configs, results)],
            "final_test_acc": {f"{name}/{n}": accs[0] for (n, name), accs in accuracy.items()},
            "late_test_acc": {f"{name}/{n}": accs[0] for (n, name), accs in late_accuracy.items()},
            "pooling_gap": {n: pooling_gap(accuracy, n) for n in sizes},
            "late_pooling_gap": {n: pooling_gap(late_accuracy, n) for n in sizes}}


def main():
    parser = experiment.chapter_parser("08_pooling", __doc__)
    parser.add_argument("--ablations", action="store_true",
                        help="also ablation 9: window 4, stride 2 with pooling, one pooling layer, 3 seeds")
    runmany.add_arguments(parser)
    args = experiment.parse_args(parser)
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run("08_pooling", args, settings)

    configs = make_configs(settings, VARIANTS, settings.dataset_sizes, [args.seed])
    results = run_sweep(configs, run, args, "training runs")
    accuracy = final_accuracies(configs, results)
    late_accuracy = final_accuracies(configs, results, last=LATE_EVALUATIONS)
    run.save_figure(plot_curves(configs, results), "accuracy_vs_step")
    run.save_figure(plot_final(accuracy), "accuracy_vs_training_set_size")
    sizes = sorted({n for n, _ in accuracy})
    table = paper_table(accuracy) + claim_rows(accuracy, late_accuracy, sizes)
    experiment.print_table(table, headers=("quantity", "notebook", "this run"),
                           title=f"Final test accuracy after {settings.total_steps} steps, seed {args.seed}")
    output = results_json(configs, results, accuracy, late_accuracy)
    if args.ablations:
        ablation_table, output["ablations"] = run_ablations(settings, run, args)
        table += ablation_table
    run.save_results("results", output, table)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
