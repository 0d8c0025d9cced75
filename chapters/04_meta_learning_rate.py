"""Chapter 04 — metalearning a learning rate by differentiating through SGD.

Question: can we learn a hyperparameter with gradient descent, by
backpropagating through the whole inner training run?

Setup (the paper's, Section 4 "metalearning a learning rate"): a tanh MLP
40-50-10 on the frozen MNIST-1D trains for 200 plain SGD steps of batch 50,
batches in a fixed order. The meta-objective is the mean training loss over
those 200 steps. Its derivative with respect to the learning rate (the
hypergradient) comes from reverse-mode autodiff through all 200 unrolled
updates (create_graph=True). The outer loop does SGD on the learning rate
itself: lr 0.3, 50 steps.

The paper's answer: from 1.5 and from 0.15, both trials converge to a
learning rate of 0.62 (its notebook prints 0.6243 and 0.6203 after outer
step 48, its last printout).

The starting network matters: over other initialisations the grid's best
learning rate moves (see --ablations). The notebook built its network with
`torch.manual_seed(0)` and two `torch.nn.Linear` layers;
`nn.TorchGenerator(0)` replays that random stream, so this chapter starts
from the notebook's very network, and the losses and learning rates the
notebook printed every third outer step come out to the digits it printed
(a test checks outer step 3).

A grid search of the meta-objective over learning rates 0.05-2.0 checks
whether the hypergradient finds the grid's minimum. Ablations (not in the
paper; the proposal asks to "disturb" the result): the inner horizon (50,
100, 200, 400 steps), the inner batch size (25, 50, 100), and the grid
optimum for six initialisations of the inner network (PyTorch seeds 0-5).

Run: python chapters/04_meta_learning_rate.py               (both trials and the grid)
     python chapters/04_meta_learning_rate.py --ablations   (+ the ablations)
     python chapters/04_meta_learning_rate.py --quick       (10 outer steps)
--seed S: the networks of torch.manual_seed(6S), ..., torch.manual_seed(6S + 5):
both trials start from the first (--seed 0: the notebook's), the ablations'
grid search takes all six, and two seeds share none. Nothing is saved on the
way: an interrupted run starts over.

Try it:
- `--seed 3`: another starting network. Do both trials still meet, and
  where? Compare with the grid's minimum for that seed.
- `--set steps=50`: a shorter horizon favours larger learning rates (greedy
  progress), a longer one smaller. Which way does the metalearned rate move?
- `--set batch_size=100`: does the learning rate scale with the batch size,
  as the rule of thumb "lr proportional to batch" says?
"""
import dataclasses
import time

import numpy as np

from mnist1d_np import Tensor, data, experiment, grad, nn, ops, plotting, tensor, train
from mnist1d_np.claims import Claim
from mnist1d_np.progress import progress


# %% Settings (the paper's)
@dataclasses.dataclass(frozen=True)
class Settings:
    hidden_size: int = 50              # the inner MLP: 40 -> hidden_size (tanh) -> 10
    steps: int = 200                   # inner SGD updates; the meta-objective is their mean loss
    batch_size: int = 50
    outer_lr: float = 0.3
    outer_steps: int = 50
    initial_lrs: tuple = (1.5, 0.15)   # one trial from each


QUICK = dict(outer_steps=10)
# The paper's text, and the notebook's last printout (outer step 48)
PAPER = {"lr after outer step 48, each trial (notebook)": (0.6243, 0.6203), "final lr, each trial": 0.62,
         "seconds per outer step": "0.278 (PyTorch CPU)"}
PAPER_LR = PAPER["final lr, each trial"]
GRID = np.round(np.linspace(0.05, 2.0, 40), 4)         # learning rates of the grid search
# Ablations: metalearn from ABLATION_START with each of these settings; the grid optima of NETWORKS networks
ABLATION_START = 0.15
ABLATIONS = {"steps": (50, 100, 200, 400), "batch_size": (25, 50, 100)}
NETWORKS = 6                                            # --seed S: torch seeds 6S, ..., 6S + 5
FINE_GRID = np.round(np.arange(0.40, 0.95, 0.02), 4)


# %% The inner run and its hypergradient
def initial_parameters(seed=0, hidden_size=Settings.hidden_size):
    """The inner model's starting point (its parameter Tensors): Linear 40-hidden_size, tanh,
    Linear hidden_size-10, as `torch.manual_seed(seed)` and PyTorch's default initialisation
    make it (seed 0: the notebook's network)."""
    rng = nn.TorchGenerator(seed)
    model = nn.Sequential(nn.Linear(40, hidden_size, rng), ops.tanh, nn.Linear(hidden_size, 10, rng))
    return list(model.parameters().values())


def inner_losses(lr, params, dataset, settings):
    """The training loss of the tanh MLP at each of settings.steps SGD steps
    (batches of settings.batch_size, learning rate `lr`), from the parameters `params`.

    With lr a Tensor (that requires grad), every update is recorded
    (create_graph=True) and the losses are Tensors, so they can be
    differentiated with respect to lr through the whole run; with lr a
    number, they are floats.
    """
    batches = train.FixedOrder(dataset["x"], dataset["y"], settings.batch_size)
    differentiable, losses = isinstance(lr, Tensor), []
    for step in range(settings.steps):
        xb, yb = batches(step)
        w1, b1, w2, b2 = params  # the tanh MLP; ops.linear(x, w, b) = x @ w + b, one op
        loss = ops.cross_entropy(ops.linear(ops.tanh(ops.linear(xb, w1, b1)), w2, b2), yb)
        grads = grad(loss, params, create_graph=differentiable)
        params = [p - lr * g for p, g in zip(params, grads)]
        losses.append(loss if differentiable else loss.item())  # a float: frees the step's graph
    return losses


@tensor.cycle_collector_paused()  # a big graph and no cycles: the collector would only cost time
def hypergradient(lr_value, init, dataset, settings):
    """At lr_value: (meta-objective, final inner loss, d meta-objective / d lr)."""
    lr = Tensor(np.float64(lr_value), requires_grad=True)
    losses = inner_losses(lr, init, dataset, settings)
    objective = ops.stack(losses).mean()
    return objective.item(), losses[-1].item(), grad(objective, lr).item()


# %% The outer loop, and the grid search that checks it
def metalearn(initial_lr, init, dataset, settings):
    """Outer SGD on the learning rate, from initial_lr. Returns the trial's history (and its wall time)."""
    start = time.perf_counter()
    lrs, outer = [initial_lr], []  # outer: (meta-objective, final inner loss, hypergradient) of each step
    for _ in progress(range(settings.outer_steps), f"outer steps from lr {initial_lr}"):
        outer.append(hypergradient(lrs[-1], init, dataset, settings))
        lrs.append(lrs[-1] - settings.outer_lr * outer[-1][2])
    return {"init_lr": initial_lr, "final_lr": lrs[-1], "lr_history": lrs, "seconds": time.perf_counter() - start,
            "outer_losses": [o[0] for o in outer], "final_inner_losses": [o[1] for o in outer]}


def grid_search(init, dataset, settings, lrs=GRID):
    """The meta-objective at each learning rate of lrs (plain training, no hypergradient), and the best of lrs."""
    objective = [float(np.mean(inner_losses(float(lr), init, dataset, settings))) for lr in lrs]
    return {"lrs": lrs, "objective": objective, "best_lr": float(lrs[np.argmin(objective)])}


def run_ablations(init, dataset, settings, seeds):
    """A trial from ABLATION_START with each setting of ABLATIONS; the grid optimum
    of the network of each torch seed of `seeds`."""
    runs = {f"{name}={value}": metalearn(ABLATION_START, init, dataset, dataclasses.replace(settings, **{name: value}))
            for name, values in ABLATIONS.items() for value in values}
    optima = [grid_search(initial_parameters(seed, settings.hidden_size), dataset, settings, FINE_GRID)["best_lr"]
              for seed in seeds]
    return {"trials": runs, "grid_optimum_per_init_seed": optima}


def run_experiment(settings, seed, ablations):
    """Both trials, the grid search and (optionally) the ablations, on the frozen dataset."""
    seeds = experiment.seeds(seed, NETWORKS)
    dataset, init = data.make_dataset(), initial_parameters(seeds[0], settings.hidden_size)
    trials = [metalearn(lr, init, dataset, settings) for lr in settings.initial_lrs]
    results = {"trials": trials, "grid": grid_search(init, dataset, settings)}
    return {**results, "ablations": run_ablations(init, dataset, settings, seeds)} if ablations else results


def measured(results):
    """The table's values; None (not measured in this run: fewer outer steps, no --ablations) leaves a row out."""
    trials, ablations = results["trials"], results.get("ablations", {})
    at_48 = [t["lr_history"][49] for t in trials if len(t["lr_history"]) > 49]  # the lr after outer step 48
    return {"lr after outer step 48, each trial (notebook)": experiment.each(at_48, digits=4) or None,
            "final lr, each trial": experiment.each([t["final_lr"] for t in trials], digits=4),
            "grid-search minimum (step 0.05)": f"{results['grid']['best_lr']:.3f}",
            "seconds per outer step": f"{np.mean([t['seconds'] / len(t['outer_losses']) for t in trials]):.3f}",
            **{f"final lr, {key}": f"{trial['final_lr']:.4f}" for key, trial in ablations.get("trials", {}).items()},
            f"grid optimum of {NETWORKS} networks (step 0.02)":
                experiment.each(ablations.get("grid_optimum_per_init_seed", []), digits=2) or None}


# %% The paper's claims, judged on the saved results
def farthest_from_paper(results):
    """The largest distance of a trial's final learning rate from the paper's 0.62."""
    return max(abs(t["final_lr"] - PAPER_LR) for t in results["trials"])


def distance_to_grid(results):
    """|mean final learning rate of the trials - the grid search's minimum|."""
    return abs(np.mean([t["final_lr"] for t in results["trials"]]) - results["grid"]["best_lr"])


CLAIMS = [
    Claim("from 1.5 and from 0.15, the metalearned learning rate converges to 0.62", "Section 4",
          "largest |final lr - 0.62| of the trials", farthest_from_paper, "<", 0.05,
          paper=max(abs(lr - PAPER_LR) for lr in PAPER["lr after outer step 48, each trial (notebook)"]),
          reading="'converges to 0.62' read as within 0.05 of it, from both starts"),
    Claim("the hypergradient finds the grid search's best learning rate", "Section 4 (the grid: this chapter's check)",
          "|mean final lr - the grid's minimum|", distance_to_grid, "<=", 0.05,
          reading="within one step (0.05) of the grid"),
]


# %% Figures
def plot_trials(trials):
    """Three panels against the outer step: objective, final inner loss, learning rate."""
    fig, axes = plotting.figure(1, 3, width=3.4, height=2.8)
    panels = {"outer_losses": "meta-objective (mean inner loss)", "final_inner_losses": "final inner loss",
              "lr_history": "learning rate"}
    for ax, (key, title) in zip(axes, panels.items()):
        for i, trial in enumerate(trials):
            ax.plot(trial[key], color=f"C{i}", label=f"start {trial['init_lr']}")
        ax.set(title=title, xlabel="outer step")
    axes[2].axhline(PAPER_LR, color="k", ls=":", lw=0.8, label=f"paper: {PAPER_LR}")
    axes[2].legend()
    return fig


def plot_grid(grid, trials):
    """The grid's meta-objective against the learning rate, and where the trials ended."""
    fig, ax = plotting.figure(1, 1, width=4.5, height=3.0)
    ax.plot(grid["lrs"], grid["objective"], "k.-", label="grid search")
    for i, trial in enumerate(trials):
        ax.axvline(trial["final_lr"], color=f"C{i}", ls="--", label=f"metalearned from {trial['init_lr']}")
    ax.axvline(PAPER_LR, color="k", ls=":", lw=0.8, label=f"paper: {PAPER_LR}")
    ax.set(xlabel="learning rate", ylabel="mean inner training loss")
    ax.legend()
    return fig


# %% Main
def main():
    run = experiment.start("04_meta_learning_rate", __doc__, Settings, QUICK,
                           ablations="also metalearn with other horizons and batch sizes; grid-search 6 initial "
                                     "networks, the trials' own among them")
    results = run_experiment(run.settings, run.args.seed, run.args.ablations)
    run.save_figure(plot_trials(results["trials"]), "trials")
    run.save_figure(plot_grid(results["grid"], results["trials"]), "grid_search")
    run.finish(results, PAPER, measured(results), title=f"Metalearned learning rate, {run.settings.outer_steps} "
               f"outer steps from {experiment.cell(run.settings.initial_lrs)}: paper vs this run", claims=CLAIMS,
               curve=experiment.main_curve("The learning rate over the outer steps", "outer step", "learning rate",
                                           {f"from {t['init_lr']:g}": (range(len(t["lr_history"])), t["lr_history"])
                                            for t in results["trials"]}))


if __name__ == "__main__":
    experiment.run_chapter_main(main, resumable=False)
