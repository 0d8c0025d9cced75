"""Chapter 03 — lottery tickets: sparse subnetworks that train better, and what they learn.

Question: inside a dense MLP, is there a sparse subnetwork (a "winning
lottery ticket", Frankle & Carbin 2018) that, trained from the network's own
initial weights, does as well as the dense network or better? And what does
such a ticket know about the data?

Setup (the paper's Figure 4 and its notebook `lottery_tickets.ipynb`): the
residual MLP 40-500-500-10, h = relu(l1(x)); h = h + relu(l2(h)); logits =
l3(h), PyTorch's default initialisation (trial t starts from the numbers of
`torch.manual_seed(42 + t)`, replayed by nn.TorchGenerator). Each round:
Adam lr 2e-2, batch 100, batches in a fixed order, evaluation every 100
steps. 100 rounds at sparsity linspace(0, 1, 100): before each round, drop
the smallest-|w| weights of each layer (weights and bias ranked together)
from the previous round's weights, and rewind the kept ones to their initial
values. Random tickets: a fresh random mask at each round's sparsity, from
the same initial weights. 2 trials.

Steps: the notebook's loop ran steps 0..1501 inclusive (1502 updates) and
evaluated at 0, 100, ..., 1500. We run steps 0..1500 (1501 updates) with the
same 16 evaluations; the last evaluation is of the final weights.

The paper's answer: lottery tickets beat random tickets at high sparsity
(the notebook, at 92 %: final test accuracy 75.6 / 74.4 against 60.6 / 61.8
in its two trials), stay above the dense network beyond 95 % sparsity, and
carry a local-connectivity prior: their first-layer masks keep runs of
neighbouring inputs, and on a new dataset (seed 43) the 92 % ticket,
retrained with its mask, beats the dense net and the random ticket (panel
c: dense 64.2 / 64.2, lottery 64.9 / 66.8, random 61.5 / 58.4). The edge
survives flipping the input positions, but not shuffling them. Every
accuracy in the table is a run's final one, as the notebook printed them
(its `last_acc`, and the step-6000 accuracy of the panels).

Panels: a, b: final test loss (log scale) and accuracy against sparsity,
lottery vs random vs dense (round 0), mean ± standard error over trials.
c-f: the tickets of the round nearest 92 % sparsity (round 91, 91.9 %),
retrained for 6000 steps of batch 500 on a new dataset (seed 43), each from
its trial's initial weights with the ticket's mask, against the dense net
and the random ticket of the same round: c on that dataset, then on it with
its positions d flipped, e shuffled (one fixed permutation), f
chunk-swapped (the 40 positions cut into four chunks of 10, put in reverse
order; the notebook's order was 3, 4, 1, 2: either keeps the structure
inside chunks), and f' ("reinit") with other initial weights (torch seed
142 + t), which is what the notebook's panels did (trap 3). g: the
probability that 2, 3, 4 neighbouring first-layer weights are all kept,
lottery vs random, and the masks pictured, hidden units sorted by that
probability for k = 2.

Three traps of the notebook, fixed here:
1. It pruned from its step-1000 checkpoint (`results['checkpoints'][-1]`
   with checkpoint_every=1000), not from the final weights. We prune from the
   final weights; `--notebook-checkpoint` prunes from the weights after step
   1000 instead, to measure how much that matters.
2. Its 4-adjacency of the lottery ticket multiplied in the random ticket's
   mask (`w1_lott_nonzero[...] * w1_rand_nonzero[k, 3:]`). pruning.adjacency
   uses one mask throughout (tests/test_pruning.py has a case where the two
   formulas differ).
3. Its `set_seed(seed + t)` (from the mnist1d package it pip-installs from
   master: an early version also seeded torch, the current one does not)
   seeds Python's and NumPy's generators but not torch's, so every network
   it built drew other weights from torch's running generator. The evidence is
   in its printouts: at sparsity 0 the random and the lottery search of a
   trial train the same dense network, so they would agree if they started
   from the same weights; they do not (trial 2: final accuracy 61.4 against
   64.8). So its panels c-f retrained each ticket's mask with *new*
   weights, not the ticket's own: our "reinit" variant. Our panels rewind
   the ticket to its own initial weights, as the notebook meant to; the
   table also compares our "reinit" runs with the notebook's panel c.

Ablations (`--ablations`, one trial each; figures and JSON rows):
1. Pruning rate: the notebook's linear schedule vs Frankle and Carbin's
   iterative 20 % of the remaining weights per round vs one-shot pruning from
   the dense round straight to each target, at the same final sparsities;
   accuracy against sparsity and against the training steps spent.
2. Fixed pattern, new weights: the 92 % ticket with its rewound weights,
   with fresh initial weights, and with its mask shuffled within each hidden
   unit's inputs (same counts); plus global magnitude pruning (all layers
   ranked together) against the notebook's layer-wise pruning.
3. Data order: a ticket searched on the shuffled dataset, retrained on
   shuffled and on normal data, and its adjacency statistics.

Run: python chapters/03_lottery_tickets.py              (full: 2 trials x 2 methods x 100 rounds + panels)
     python chapters/03_lottery_tickets.py --quick      (hidden 100, 10 rounds, 300 steps; ~15 s of CPU)
     python chapters/03_lottery_tickets.py --ablations  (+ the ablations)
     --notebook-checkpoint, --workers N, --seed N (trial t starts from torch seed 42 + N + t).
Every finished round is saved: after Ctrl-C or a kill, rerun the same command
to continue, with identical results.

Cost, measured on two idle cores (2026-11-26, two runs from scratch, each in
one invocation): the search 12.6-12.9 min, the panels 8.8-8.9 min (ten
dense 6000-step runs of batch 500 dominate), 21.5-21.7 min in all;
--ablations adds 6.9-7.4 min. A dense round is about 290 GFLOP; from 70 %
sparsity on, rounds use the kept-weights kernels and get cheaper with the
sparsity (see benchmarks/bench_lottery.py).

Try it:
- Set `ticket_sparsity=0.97` in Settings: does the lottery ticket still beat
  the dense network on the new dataset, or only the random ticket?
- Run with `--notebook-checkpoint`: pruning from step 1000 instead of the
  final weights: does the curve of panel b move beyond its trial-to-trial spread?
- Set `hidden=100`: is there still a range of sparsities where the pruned
  network beats the dense one, or does a small network have nothing to spare?
"""
# %% Imports
import dataclasses
import sys

import numpy as np

from mnist1d_np import data, experiment, fileio, nn, pruning, runmany


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    hidden_size: int = 500
    learning_rate: float = 2e-2
    batch_size: int = 100
    total_steps: int = 1501            # steps 0..1500 (the notebook: 0..1501)
    eval_every: int = 100
    num_retrains: int = 100            # rounds at sparsity linspace(0, 1, num_retrains)
    num_trials: int = 2
    seed: int = 42                     # trial t: torch.manual_seed(seed + t)
    checkpoint_step: int = 1000        # --notebook-checkpoint prunes from the weights after this step
    ticket_sparsity: float = 0.92      # panels c-g use the round nearest to it
    panel_steps: int = 6000
    panel_batch_size: int = 500
    panel_eval_every: int = 250
    panel_data_seed: int = 43          # the new dataset: get_dataset_args(seed=43)
    reinit_seed: int = 142             # panel "reinit": torch.manual_seed(reinit_seed + t)
    permutation_seed: int = 0          # the one fixed permutation of "shuffled"
    iterative_rate: float = 0.2        # ablation 1: Frankle & Carbin's rate per round


QUICK = dict(hidden_size=100, num_retrains=10, total_steps=300, checkpoint_step=200, panel_steps=300)

# The notebook's numbers (final test accuracy, %, trials 1 / 2): its last_acc of round 92 of
# the search, and its step-6000 accuracy in panel c.
PAPER = {"lottery_92": (75.6, 74.4), "random_92": (60.6, 61.8),
         "panel_c_dense": (64.2, 64.2), "panel_c_lottery": (64.9, 66.8), "panel_c_random": (61.5, 58.4)}
METHODS = ("lottery", "random")
TICKETS = ("dense", "lottery", "random")
VARIANTS = ("new data", "flipped", "shuffled", "chunks", "reinit")


# %% Data and networks
def positions(variant, permutation_seed, length=40):
    """The order in which a dataset variant presents the input positions."""
    order = np.arange(length)
    if variant == "flipped":
        return order[::-1]
    if variant == "shuffled":
        return np.random.default_rng(permutation_seed).permutation(length)
    if variant == "chunks":
        return order.reshape(4, length // 4)[::-1].ravel()
    return order


def make_data(data_seed, variant="new data", permutation_seed=0):
    """MNIST-1D with data seed `data_seed` (42: the paper's), positions reordered."""
    dataset = data.make_dataset(data.get_dataset_args(seed=data_seed))
    order = positions(variant, permutation_seed)
    return {"x": np.ascontiguousarray(dataset["x"][:, order]), "y": dataset["y"],
            "x_test": np.ascontiguousarray(dataset["x_test"][:, order]), "y_test": dataset["y_test"]}


def initial_parameters(hidden_size, torch_seed):
    """The residual MLP as torch.manual_seed(torch_seed) initialises it: {name: (in, out) arrays}."""
    model = nn.MLP(nn.TorchGenerator(torch_seed), hidden=hidden_size, dtype=np.float32)
    return {name: p.data for name, p in model.parameters().items()}


def round_config(settings, panel=False):
    if panel:
        return pruning.RoundConfig(settings["panel_steps"], settings["panel_batch_size"],
                                   settings["learning_rate"], settings["panel_eval_every"])
    return pruning.RoundConfig(settings["total_steps"], settings["batch_size"],
                               settings["learning_rate"], settings["eval_every"])


def ticket_round(settings):
    schedule = np.linspace(0, 1, settings["num_retrains"])
    return int(np.argmin(np.abs(schedule - settings["ticket_sparsity"])))


# %% The search: one trial of one method, every round saved
def search_task(config, context):
    """Prune-and-retrain rounds over config['schedule'] (a runmany task).

    method 'lottery': magnitude masks from the previous round's weights
    (one-shot: always from round 0's); 'random': fresh random masks. Every
    round starts from the initial weights. Returns {'rounds', 'ticket_masks'}.
    """
    settings, schedule = config["settings"], config["schedule"]
    dataset = make_data(config["data_seed"], config["data_variant"], settings["permutation_seed"])
    init = initial_parameters(settings["hidden_size"], config["torch_seed"])
    rounds, ticket, prune_from = _resume(context.checkpoint_path, config, init)
    bar = experiment.Progress(len(schedule), config["label"], stream=_LineStream(), log_every=30)
    bar.update(len(rounds))
    for index in range(len(rounds), len(schedule)):
        masks = _masks(config, index, schedule[index], prune_from, init)
        snapshot_step = settings["checkpoint_step"] if config["notebook_checkpoint"] else None
        final, curves, snapshot = pruning.train_masked(init, masks, dataset, round_config(settings),
                                                       snapshot_step=snapshot_step)
        rounds.append(_summary(index, schedule[index], masks, curves))
        if index == config["ticket_round"]:
            ticket = pruning.masks_to_json(masks)
        if not (config["one_shot"] and index > 0):
            prune_from = snapshot if snapshot is not None else final
        fileio.save_checkpoint(context.checkpoint_path, prune_from,
                               {"config": config, "rounds": rounds, "ticket": ticket})
        bar.update(1, sparsity=schedule[index], acc=rounds[-1]["final_test_acc"])
        if context.should_stop():
            raise KeyboardInterrupt
    return {"rounds": rounds, "ticket_masks": ticket}


def _masks(config, index, sparsity, prune_from, init):
    if config["method"] == "random":
        rng = np.random.default_rng([config["mask_seed"], config["trial"], index])
        return pruning.random_masks({n: p.shape for n, p in init.items()}, sparsity, rng)
    return pruning.magnitude_masks(prune_from, sparsity, scope=config["scope"])


def _summary(index, sparsity, masks, curves):
    """One round's numbers for the JSON."""
    return {"round": index, "sparsity": sparsity, "measured_sparsity": pruning.sparsity_of(masks),
            "final_test_acc": curves["test_acc"][-1], "best_test_acc": max(curves["test_acc"]),
            "final_test_loss": curves["test_loss"][-1], "best_test_loss": min(curves["test_loss"]),
            "final_train_loss": curves["train_loss"][-1], "test_acc": curves["test_acc"],
            "test_loss": curves["test_loss"]}


def _resume(path, config, init):
    """(rounds, ticket, weights to prune from) of a checkpoint of this very config, or a fresh start."""
    loaded = fileio.load_checkpoint(path)
    if loaded is None or loaded[1].get("config") != config:
        return [], None, init
    arrays, meta = loaded
    return meta["rounds"], meta["ticket"], {name: arrays[name] for name in init}


class _LineStream:
    """stderr, seen as a log: worker processes print whole lines, never redraw one."""

    def isatty(self):
        return False

    def write(self, text):
        sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()


# %% Retraining a fixed mask (panels c-f, ablations 2 and 3)
def retrain_task(config, context):
    """Train from torch seed config['torch_seed'] with config['masks'] (None: dense) (a runmany task)."""
    settings = config["settings"]
    dataset = make_data(config["data_seed"], config["data_variant"], settings["permutation_seed"])
    init = initial_parameters(settings["hidden_size"], config["torch_seed"])
    masks = (pruning.masks_from_json(config["masks"]) if config["masks"] is not None
             else {n: np.ones(p.shape, bool) for n, p in init.items()})
    _, curves, _ = pruning.train_masked(init, masks, dataset, round_config(settings, config["panel"]))
    return {"eval_steps": curves["eval_steps"], "test_acc": curves["test_acc"], "test_loss": curves["test_loss"],
            "final_test_acc": curves["test_acc"][-1], "best_test_acc": max(curves["test_acc"])}


# %% The experiment
def search_config(settings, args, trial, method, schedule=None, **changes):
    settings_dict = dataclasses.asdict(settings)
    schedule = [float(s) for s in (np.linspace(0, 1, settings.num_retrains) if schedule is None else schedule)]
    config = {"kind": "search", "settings": settings_dict, "trial": trial, "method": method,
              "torch_seed": settings.seed + args.seed + trial, "mask_seed": args.seed, "schedule": schedule,
              "scope": "layer", "one_shot": False, "data_seed": 42, "data_variant": "new data",
              # random masks ignore the weights, so a random search is the same run either way (and reused)
              "notebook_checkpoint": args.notebook_checkpoint and method == "lottery",
              "ticket_round": ticket_round(settings_dict),
              "label": f"trial {trial + 1} {method}"}
    config.update(changes)
    return config


def run_search(settings, args, run):
    """Both methods, every trial: {method: [trial results]}."""
    configs = [search_config(settings, args, t, m) for t in range(settings.num_trials) for m in METHODS]
    results = runmany.run_many(search_task, configs, run.path("runs"), workers=args.workers,
                               scheduler=args.scheduler, label="searches")
    return {m: [r for c, r in zip(configs, results) if c["method"] == m] for m in METHODS}


def panel_configs(settings, args, search):
    """Panels c-f: every variant x trial x ticket (dense, lottery, random)."""
    configs = []
    for variant in VARIANTS:
        for trial in range(settings.num_trials):
            base = settings.reinit_seed if variant == "reinit" else settings.seed
            for ticket in TICKETS:
                masks = None if ticket == "dense" else search[ticket][trial]["ticket_masks"]
                configs.append({"kind": "retrain", "settings": dataclasses.asdict(settings), "panel": True,
                                "variant": variant, "trial": trial, "ticket": ticket, "masks": masks,
                                "torch_seed": base + args.seed + trial, "data_seed": settings.panel_data_seed,
                                "data_variant": "new data" if variant == "reinit" else variant})
    return configs


def run_panels(settings, args, run, search):
    """{variant: {ticket: [per-trial curves]}} of panels c-f."""
    configs = panel_configs(settings, args, search)
    results = runmany.run_many(retrain_task, configs, run.path("runs"), workers=args.workers,
                               scheduler=args.scheduler, label="panels")
    panels = {v: {t: [] for t in TICKETS} for v in VARIANTS}
    for config, result in zip(configs, results):
        panels[config["variant"]][config["ticket"]].append(result)
    return panels


def adjacency_stats(search, ks=(2, 3, 4)):
    """Panel g: mean over hidden units of pruning.adjacency, per method, k and trial."""
    out = {}
    for method in METHODS:
        masks = [pruning.masks_from_json(r["ticket_masks"])["linear1.weight"] for r in search[method]]
        out[method] = {k: [float(pruning.adjacency(m, k).mean()) for m in masks] for k in ks}
    return out


# %% Ablations
def iterative_schedule(rate, final=0.99):
    """Frankle & Carbin: drop `rate` of the remaining weights per round: 1 - (1 - rate)^k, k = 0, 1, ..."""
    schedule = [0.0]
    while schedule[-1] < final:
        schedule.append(1 - (1 - rate) ** len(schedule))
    return schedule


def ablation_configs(settings, args):
    """Ablation searches (1, 2-global, 3) and retrains (2, 3), trial 1 only."""
    iterative = iterative_schedule(settings.iterative_rate)
    return {
        "linear": search_config(settings, args, 0, "lottery"),
        "iterative": search_config(settings, args, 0, "lottery", schedule=iterative, ticket_round=-1),
        "one-shot": search_config(settings, args, 0, "lottery", schedule=iterative, one_shot=True, ticket_round=-1),
        "global": search_config(settings, args, 0, "lottery", scope="global"),
        "found on shuffled": search_config(settings, args, 0, "lottery", data_variant="shuffled"),
    }


def mask_shuffled_per_unit(masks, rng):
    """Each hidden unit's incoming kept weights moved to random inputs (same count per unit)."""
    out = {}
    for name, mask in masks.items():
        if mask.ndim == 2:
            mask = np.stack([rng.permutation(column) for column in mask.T], axis=1)
        out[name] = mask
    return out


def retrain_config(settings, args, name, masks, torch_seed, data_variant="new data"):
    return {"kind": "retrain", "settings": dataclasses.asdict(settings), "panel": False, "name": name,
            "masks": masks, "torch_seed": torch_seed, "data_seed": 42, "data_variant": data_variant}


def run_ablations(settings, args, run, search):
    """Every ablation's runs: {'searches': {name: result}, 'retrains': {name: result}}."""
    searches = ablation_configs(settings, args)
    names = [n for n in searches if n != "linear"]
    found = runmany.run_many(search_task, [searches[n] for n in names], run.path("runs"),
                             workers=args.workers, scheduler=args.scheduler, label="ablation searches")
    results = dict(zip(names, found), linear=search["lottery"][0])
    ticket = results["linear"]["ticket_masks"]
    shuffled_ticket = results["found on shuffled"]["ticket_masks"]
    per_unit = pruning.masks_to_json(mask_shuffled_per_unit(pruning.masks_from_json(ticket),
                                                            np.random.default_rng([args.seed, 3])))
    seed = settings.seed + args.seed
    retrains = {"rewound weights": retrain_config(settings, args, "rewound", ticket, seed),
                "new weights": retrain_config(settings, args, "new weights", ticket, settings.reinit_seed + args.seed),
                "mask shuffled per unit": retrain_config(settings, args, "per unit", per_unit, seed),
                "shuffled ticket on shuffled data": retrain_config(settings, args, "sh/sh", shuffled_ticket, seed,
                                                                   "shuffled"),
                "shuffled ticket on normal data": retrain_config(settings, args, "sh/normal", shuffled_ticket, seed)}
    done = runmany.run_many(retrain_task, list(retrains.values()), run.path("runs"), workers=args.workers,
                            scheduler=args.scheduler, label="ablation retrains")
    adjacency = {name: {k: float(pruning.adjacency(pruning.masks_from_json(m)["linear1.weight"], k).mean())
                        for k in (2, 3, 4)}
                 for name, m in (("lottery", ticket), ("found on shuffled", shuffled_ticket),
                                 ("random", search["random"][0]["ticket_masks"]))}
    return {"searches": results, "retrains": dict(zip(retrains, done)), "adjacency": adjacency}


# %% Figures
def mean_se(values):
    """Mean and standard error over the first axis (trials)."""
    values = np.asarray(values, dtype=float)
    se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0), se


def plot_search(search):
    """Panels a and b: final test loss and accuracy against sparsity."""
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, 2, width=4.2, height=3.2)
    sparsity = np.array([r["sparsity"] for r in search["lottery"][0]["rounds"]])
    panels = ((axes[0], "final_test_loss", "a: test loss"), (axes[1], "final_test_acc", "b: test accuracy"))
    for ax, key, title in panels:
        dense = np.mean([t["rounds"][0][key] for m in METHODS for t in search[m]])  # round 0: nothing pruned
        for method, color in zip(METHODS, ("C0", "C3")):
            mean, se = mean_se([[r[key] for r in t["rounds"]] for t in search[method]])
            ax.plot(sparsity, mean, color=color, label=f"{method} ticket")
            ax.fill_between(sparsity, mean - se, mean + se, color=color, alpha=0.2)
        ax.axhline(dense, color="k", ls="--", lw=0.8, label="dense")
        ax.set(title=title, xlabel="sparsity")
    axes[0].set_yscale("log")
    axes[1].legend()
    return fig


def plot_panels(panels):
    """Panels c-f: test accuracy against step for each dataset variant."""
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, len(VARIANTS), width=3.0, height=2.8, sharey=True)
    for ax, variant, letter in zip(axes, VARIANTS, "cdeff"):
        for ticket, color in zip(TICKETS, ("k", "C0", "C3")):
            steps = panels[variant][ticket][0]["eval_steps"]
            mean, se = mean_se([run["test_acc"] for run in panels[variant][ticket]])
            ax.plot(steps, 100 * mean, color=color, label=ticket)
            ax.fill_between(steps, 100 * (mean - se), 100 * (mean + se), color=color, alpha=0.2)
        ax.set(title=f"{letter}{chr(39) if variant == 'reinit' else ''}: {variant}", xlabel="step")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend()
    return fig


def plot_adjacency(search, stats):
    """Panel g: p(k adjacent kept weights) and the first-layer masks sorted by adjacency."""
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, 3, width=3.4, height=3.0)
    ks = sorted(stats["lottery"])
    for offset, (method, color) in enumerate(zip(METHODS, ("C0", "C3"))):
        mean, se = mean_se([[stats[method][k][t] for k in ks] for t in range(len(stats[method][ks[0]]))])
        axes[0].bar(np.arange(len(ks)) + 0.4 * offset, mean, 0.4, yerr=se, color=color, label=method)
    axes[0].set(xticks=np.arange(len(ks)) + 0.2, xticklabels=[str(k) for k in ks],
                xlabel="k adjacent kept weights", ylabel="probability", title="g: local connectivity")
    axes[0].legend()
    for ax, method in zip(axes[1:], METHODS):
        mask = pruning.masks_from_json(search[method][0]["ticket_masks"])["linear1.weight"]
        ax.imshow(mask[:, pruning.sort_by_adjacency(mask, 2)].T, aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set(title=f"{method} ticket, layer 1", xlabel="input position", ylabel="hidden unit (sorted)")
        ax.grid(False)
    return fig


def plot_ablations(ablations, settings):
    """Ablation 1: accuracy against sparsity and against steps spent; 2 and 3 as bars."""
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, 3, width=4.2, height=3.2)
    for name in ("linear", "iterative", "one-shot", "global"):
        rounds = ablations["searches"][name]["rounds"]
        acc = [100 * r["final_test_acc"] for r in rounds]
        # Steps spent to reach a round: every earlier round, or (one-shot) the dense round and this one.
        rounds_spent = np.arange(1, len(rounds) + 1)
        steps = settings.total_steps * (np.minimum(rounds_spent, 2) if name == "one-shot" else rounds_spent)
        style = "o" if name == "one-shot" else ".-"
        axes[0].plot([r["sparsity"] for r in rounds], acc, style, label=name, ms=3)
        if name != "global":
            axes[1].plot(steps / 1000, acc, style, label=name, ms=3)
    axes[0].set(xlabel="sparsity", ylabel="final test accuracy (%)", title="1: pruning schedules (2: global)")
    axes[1].set(xlabel="training steps spent (thousands)", title="1: accuracy against cost")
    axes[0].legend(fontsize=7)
    names = list(ablations["retrains"])
    axes[2].barh(range(len(names)), [100 * ablations["retrains"][n]["final_test_acc"] for n in names])
    axes[2].set(yticks=range(len(names)), yticklabels=[SHORT[n] for n in names],
                xlabel="final test accuracy (%)", title="2, 3: the 92 % ticket retrained")
    return fig


SHORT = {"rewound weights": "rewound", "new weights": "new init", "mask shuffled per unit": "shuffled per unit",
         "shuffled ticket on shuffled data": "shuffled-data ticket,\nshuffled data",
         "shuffled ticket on normal data": "shuffled-data ticket,\nnormal data"}


def ablation_rows(ablations, index, target):
    """The ablations' numbers for the table (trial 1), schedules compared near sparsity `target`."""
    searches, retrains = ablations["searches"], ablations["retrains"]
    rows = []
    for name in ("linear", "iterative", "one-shot"):
        nearest = min(searches[name]["rounds"], key=lambda r: abs(r["sparsity"] - target))
        rows.append((f"{name} schedule: final acc at {100 * nearest['sparsity']:.1f} %", "—",
                     f"{100 * nearest['final_test_acc']:.1f}"))
    linear = searches["linear"]["rounds"]
    rows.append((f"global vs layer pruning, acc at {100 * linear[index]['sparsity']:.1f} %", "—",
                 f"{100 * searches['global']['rounds'][index]['final_test_acc']:.1f} vs "
                 f"{100 * linear[index]['final_test_acc']:.1f}"))
    rows += [(f"92 % ticket: {name}", "—", f"{100 * r['final_test_acc']:.1f}") for name, r in retrains.items()]
    adjacency = ablations["adjacency"]
    for k in (2, 3, 4):
        rows.append((f"p({k} adjacent): lottery / shuffled-data ticket / random", "—",
                     " / ".join(f"{adjacency[n][k]:.4f}" for n in ("lottery", "found on shuffled", "random"))))
    return rows


# %% The table
def _paper(key):
    return " / ".join(str(v) for v in np.atleast_1d(PAPER[key]))


def _percent(values):
    return " / ".join(f"{100 * v:.1f}" for v in values)


def table_rows(search, panels, stats, index, minutes):
    """quantity | notebook/paper | this run (final test accuracy of a run, per trial)."""
    sparsity = search["lottery"][0]["rounds"][index]["sparsity"]
    final = {m: _percent(t["rounds"][index]["final_test_acc"] for t in search[m]) for m in METHODS}
    rows = [(f"final test acc at {100 * sparsity:.1f} % sparsity, lottery (trials)", _paper("lottery_92"),
             final["lottery"]),
            ("  same, random ticket", _paper("random_92"), final["random"])]
    for variant, label in (("new data", "panel c"), ("reinit", "panel c with new weights (trap 3)")):
        runs = {t: _percent(run["final_test_acc"] for run in panels[variant][t]) for t in TICKETS}
        rows += [(f"{label}: {ticket}{' on seed-43 data' if ticket == 'dense' else ' ticket'}",
                  _paper(f"panel_c_{ticket}"), runs[ticket]) for ticket in TICKETS]
    rows += claim_rows(search, panels, stats)
    rows.append(("runtime of search and panels (minutes, every invocation of this run)",
                 "~30 (Colab CPU), notebook ~60", f"{minutes:.1f}"))
    return rows


def claim_rows(search, panels, stats):
    """The paper's qualitative claims, measured."""
    acc = {m: mean_se([[r["final_test_acc"] for r in t["rounds"]] for t in search[m]])[0] for m in METHODS}
    sparsity = np.array([r["sparsity"] for r in search["lottery"][0]["rounds"]])
    dense = acc["lottery"][0]
    high = (sparsity >= 0.9) & (sparsity < 1)
    beyond = (sparsity > 0.95) & (sparsity < 1)
    gap = {v: np.mean([l["final_test_acc"] - r["final_test_acc"] for l, r in
                       zip(panels[v]["lottery"], panels[v]["random"])]) for v in VARIANTS}
    return [("rounds at 90-99 % where lottery > random (final acc)", "all",
             f"{int((acc['lottery'][high] > acc['random'][high]).sum())} of {int(high.sum())}"),
            ("rounds beyond 95 % where lottery > dense", "lottery above dense",
             f"{int((acc['lottery'][beyond] > dense).sum())} of {int(beyond.sum())}"),
            *[(f"p({k} adjacent kept), lottery vs random", "lottery higher",
               f"{np.mean(stats['lottery'][k]):.4f} vs {np.mean(stats['random'][k]):.4f}") for k in (2, 3, 4)],
            ("lottery - random, flipped / shuffled (pts)", "kept / lost",
             f"{100 * gap['flipped']:+.1f} / {100 * gap['shuffled']:+.1f}")]


# %% Main
def parse():
    parser = experiment.chapter_parser("03_lottery_tickets", __doc__)
    parser.add_argument("--ablations", action="store_true", help="also run the ablations")
    parser.add_argument("--notebook-checkpoint", action="store_true",
                        help="prune from the weights after step 1000, as the notebook did")
    runmany.add_arguments(parser)
    return experiment.parse_args(parser)


def main():
    args = parse()
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run("03_lottery_tickets", args, settings)
    with run.stage("search and panels"):  # its time over every invocation, for the table
        search = run_search(settings, args, run)
        panels = run_panels(settings, args, run, search)
    stats = adjacency_stats(search)
    index = ticket_round(dataclasses.asdict(settings))
    results = {"search": {m: [r["rounds"] for r in search[m]] for m in METHODS}, "ticket_round": index,
               "panels": panels, "adjacency": stats, "notebook_checkpoint": args.notebook_checkpoint,
               "paper": PAPER}
    run.save_figure(plot_search(search), "panels_ab")
    run.save_figure(plot_panels(panels), "panels_cf")
    run.save_figure(plot_adjacency(search, stats), "panel_g")
    rows = table_rows(search, panels, stats, index, run.stage_seconds("search and panels") / 60)
    if args.ablations:
        results["ablations"] = run_ablations(settings, args, run, search)
        run.save_figure(plot_ablations(results["ablations"], settings), "ablations")
        rows += ablation_rows(results["ablations"], index, settings.ticket_sparsity)
    experiment.print_table(rows, headers=("quantity", "notebook / paper", "this run"),
                           title="Lottery tickets: notebook vs this run")
    run.save_results("results", results, rows)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
