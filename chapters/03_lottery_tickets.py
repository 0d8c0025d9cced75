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

Every round trains through the course's own engine: the ticket is the
residual MLP of nn.MLP with its pruned weights held at zero (pruning.prune;
from 70 % sparsity on its layers multiply only their kept weights,
sparse_linear), trained by the paper's loop (train.train) with the pruned
weights' gradients masked to zero.

Run: python chapters/03_lottery_tickets.py              (2 trials x 2 methods x 100 rounds, then the panels)
     python chapters/03_lottery_tickets.py --quick      (hidden 100, 10 rounds, 300 steps)
     python chapters/03_lottery_tickets.py --ablations  (+ the ablations)
     --notebook-checkpoint, --workers N, --scheduler ADDRESS.
--seed S (0-49): trial t starts from torch seed 42 + S * seeds + t (the panels'
"reinit": 142 + S * seeds + t) and draws its random masks from the seed too, so two seeds
share no initialisation. Every finished round is saved: after Ctrl-C or a
kill, rerun the same command to continue, with identical results. The
searches do not depend on the panels' settings: changing ticket_sparsity or
panel_steps reuses them.

Try it:
- `--set ticket_sparsity=0.97`: does the lottery ticket still beat the dense
  network on the new dataset, or only the random ticket?
- `--notebook-checkpoint`: pruning from step 1000 instead of the final
  weights: does the curve of panel b move beyond its trial-to-trial spread?
- `--set hidden_size=100`: is there still a range of sparsities where the
  pruned network beats the dense one, or does a small network have nothing to spare?
"""
import dataclasses
import functools

import numpy as np

from mnist1d_np import data, experiment, nn, plotting, pruning, resumable, train
from mnist1d_np.claims import Claim

NAME = "03_lottery_tickets"


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    hidden_size: int = 500
    lr: float = 2e-2
    batch_size: int = 100
    steps: int = 1501                  # updates per round: steps 0..1500 (the notebook: 0..1501)
    eval_every: int = 100
    rounds: int = 100                  # prune-and-retrain rounds at sparsity linspace(0, 1, rounds)
    seeds: int = 2                     # trials, each from its own initial weights
    torch_seed: int = 42               # trial t of --seed S: torch.manual_seed(torch_seed + S * seeds + t)
    checkpoint_step: int = 1000        # --notebook-checkpoint prunes from the weights after this step
    ticket_sparsity: float = 0.92      # panels c-g use the round nearest to it
    panel_steps: int = 6000
    panel_batch_size: int = 500
    panel_eval_every: int = 250
    panel_data_seed: int = 43          # the new dataset: get_dataset_args(seed=43)
    reinit_seed: int = 142             # panel "reinit": torch.manual_seed(reinit_seed + S * seeds + t)
    permutation_seed: int = 0          # the one fixed permutation of "shuffled"
    iterative_rate: float = 0.2        # ablation 1: Frankle & Carbin's rate per round
    dtype: str = "float32"             # as PyTorch's default

    def __post_init__(self):  # the fields the shared vocabulary does not check
        rules = (("rounds", ">= 2", self.rounds >= 2), ("ticket_sparsity", "in (0, 1)", 0 < self.ticket_sparsity < 1),
                 ("iterative_rate", "in (0, 1)", 0 < self.iterative_rate < 1),
                 ("checkpoint_step", ">= 0", self.checkpoint_step >= 0),
                 *((name, ">= 1", getattr(self, name) >= 1)
                   for name in ("panel_steps", "panel_batch_size", "panel_eval_every")))
        problems = [f"{name} must be {rule}, got {getattr(self, name)!r}" for name, rule, ok in rules if not ok]
        if problems:
            raise ValueError("; ".join(problems))


QUICK = dict(hidden_size=100, rounds=10, steps=300, checkpoint_step=200, panel_steps=300)
METHODS = ("lottery", "random")
TICKETS = ("dense", "lottery", "random")
VARIANTS = ("new data", "flipped", "shuffled", "chunks", "reinit")
LABELS = {"dense": "dense on seed-43 data", "lottery": "lottery ticket", "random": "random ticket"}
# The notebook's numbers (final test accuracy, %, trials 1 / 2): its last_acc of round 92 of
# the search, and its step-6000 accuracy in panel c.
PANEL_C = {"dense": (64.2, 64.2), "lottery": (64.9, 66.8), "random": (61.5, 58.4)}
PAPER = {
    "final test acc of the ticket round, lottery (trials)": (75.6, 74.4),
    "  same, random ticket": (60.6, 61.8),
    **{f"panel c: {LABELS[t]}": v for t, v in PANEL_C.items()},
    **{f"panel c with new weights (trap 3): {LABELS[t]}": v for t, v in PANEL_C.items()},
    "rounds at 90-99 % where lottery > random (final acc)": "all",
    "rounds beyond 95 % where lottery > dense": "lottery above dense",
    **{f"p({k} adjacent kept), lottery vs random": "lottery higher" for k in (2, 3, 4)},
    "lottery - random, flipped / shuffled (pts)": "kept / lost",
    "runtime of search and panels (minutes, every invocation of this run)": "~30 (Colab CPU), notebook ~60",
}


# %% Data, networks, and training a ticket
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


@functools.lru_cache(maxsize=2)
def make_data(data_seed, variant, permutation_seed):
    """MNIST-1D with data seed `data_seed` (42: the paper's), positions reordered."""
    dataset, order = data.make_dataset(data.get_dataset_args(seed=data_seed)), positions(variant, permutation_seed)
    return {"x": np.ascontiguousarray(dataset["x"][:, order]), "y": dataset["y"],
            "x_test": np.ascontiguousarray(dataset["x_test"][:, order]), "y_test": dataset["y_test"]}


# What training one ticket reads: the settings SHARED, the initial weights (torch.manual_seed(torch_seed)),
# the loop (the search's or the panels'), and the data (its seed, and the order of its positions: see positions).
SHARED = ("hidden_size", "lr", "dtype")
TRAINING = dict(torch_seed=int, batch_size=int, steps=int, eval_every=int, data_seed=(int, 42),
                variant=(str, "new data"), permutation_seed=(int, None))  # permutation_seed: only for "shuffled"


def data_of(settings, variant, data_seed=42):
    """The fields of TRAINING that choose the data: the permutation seed only where it is read."""
    return dict(data_seed=data_seed, variant=variant,
                permutation_seed=settings.permutation_seed if variant == "shuffled" else None)


def loop(settings, panel=False):
    """The fields of TRAINING that make the search's loop, or with panel the panels' loop."""
    s = settings
    if panel:
        return dict(batch_size=s.panel_batch_size, steps=s.panel_steps, eval_every=s.panel_eval_every)
    return dict(batch_size=s.batch_size, steps=s.steps, eval_every=s.eval_every)


def network(config):
    """The residual MLP 40-h-h-10 as torch.manual_seed(config.torch_seed) initialises it."""
    return nn.MLP(nn.TorchGenerator(config.torch_seed), hidden=config.hidden_size, dtype=np.dtype(config.dtype))


def train_ticket(config, masks=None, keep_at=(), checkpoint=None):
    """Rewind to the initial weights, prune with masks (None: keep all), retrain. (model, curves)"""
    model = network(config)
    masks = masks or {name: np.ones(p.shape, bool) for name, p in model.parameters().items()}
    loop = train.TrainConfig(config.steps, config.batch_size, config.lr, eval_every=config.eval_every)
    dataset = make_data(config.data_seed, config.variant, config.permutation_seed)
    kept = pruning.prune(model, masks)
    return model, train.train(model, dataset, loop, checkpoint, masks=kept, keep_parameters_at=keep_at)


def seed_of(settings, base, seed, trial):
    """Trial `trial` of --seed `seed` starts from torch seed base + seed * trials + trial. The
    search's seeds stay below the panels' reinit seeds, so that no two networks share one."""
    seeds = experiment.seeds(seed, settings.seeds, offset=base)
    if base < settings.reinit_seed <= seeds[-1]:
        raise experiment.UsageError(f"--seed {seed}: its trials would start from torch seeds {seeds[0]}-{seeds[-1]}, "
                                    f"which reach the reinit panels' (from reinit_seed {settings.reinit_seed}): "
                                    f"--seed must be at most {(settings.reinit_seed - base) // settings.seeds - 1}")
    return seeds[trial]


# %% The search: prune, rewind, retrain, every round saved
# One trial of one method: exactly what a search reads (its identity). method "lottery": magnitude masks,
# "random": fresh random masks from default_rng([mask_seed, trial, round]); scope "global": all layers ranked
# together (ablation 2); one_shot: every round pruned from round 0's weights (ablation 1); prune_from_step:
# prune from the weights after this step, not the final ones (the notebook's trap 1).
Search = experiment.task_config("Search", Settings, SHARED, **TRAINING, method=str, trial=int, mask_seed=int,
                                sparsities=tuple, scope=(str, "layer"), one_shot=(bool, False),
                                prune_from_step=(int, None))


def search(config, context):
    """Rounds at config.sparsities (a sweep task): each prunes the last round's
    weights (lottery) or at random, rewinds to the initial weights and retrains."""
    state = {"weights": pruning.dense_parameters(network(config)), "rounds": []}
    keep = () if config.prune_from_step is None else (config.prune_from_step,)
    loop = resumable.Resumable(context.checkpoint_path, dataclasses.asdict(config), state, len(config.sparsities),
                               label=f"trial {config.trial + 1} {config.method}")
    for index in loop:
        masks = round_masks(config, index, state["weights"])
        model, curves = train_ticket(config, masks, keep)
        state["rounds"].append(summary(index, config.sparsities[index], masks, curves))
        if not (config.one_shot and index > 0):
            state["weights"] = pruning.dense_parameters(model, curves["parameters_at"][keep[0]] if keep else None)
        loop.show(sparsity=config.sparsities[index], acc=curves["final_test_acc"])
        loop.checkpoint()
    return {"rounds": state["rounds"]}


def round_masks(config, index, weights):
    sparsity = config.sparsities[index]
    if config.method == "random":
        rng = np.random.default_rng([config.mask_seed, config.trial, index])
        return pruning.random_masks({name: w.shape for name, w in weights.items()}, sparsity, rng)
    return pruning.magnitude_masks(weights, sparsity, scope=config.scope)


def summary(index, sparsity, masks, curves):
    """One round's numbers, and its masks (the ticket, if a panel picks this round)."""
    return {"round": index, "sparsity": sparsity, "measured_sparsity": pruning.sparsity_of(masks),
            "final_test_acc": curves["test_acc"][-1], "best_test_acc": max(curves["test_acc"]),
            "final_test_loss": curves["test_loss"][-1], "best_test_loss": min(curves["test_loss"]),
            "final_train_loss": curves["train_loss"][-1], "test_acc": curves["test_acc"],
            "test_loss": curves["test_loss"], "masks": pruning.masks_to_json(masks)}


def search_config(settings, seed, trial, method, notebook_checkpoint, variant="new data", **changes):
    fields = dict(method=method, trial=trial, mask_seed=seed,
                  sparsities=tuple(np.linspace(0, 1, settings.rounds).tolist()),
                  # random masks ignore the weights, so a random search is the same run either way (and reused)
                  prune_from_step=settings.checkpoint_step if notebook_checkpoint and method == "lottery" else None)
    torch_seed = seed_of(settings, settings.torch_seed, seed, trial)
    return Search.of(settings, torch_seed=torch_seed, **loop(settings), **data_of(settings, variant),
                     **{**fields, **changes})


def run_search(run):
    """Both methods, every trial: {method: [trial results]}."""
    configs = [search_config(run.settings, run.args.seed, t, m, run.args.notebook_checkpoint)
               for t in range(run.settings.seeds) for m in METHODS]
    results = run.sweep(search, configs, label="searches")
    return {m: [r for c, r in zip(configs, results) if c.method == m] for m in METHODS}


def ticket_round(settings):
    """The round nearest ticket_sparsity, short of the last (sparsity 1: nothing kept)."""
    return int(np.argmin(np.abs(np.linspace(0, 1, settings.rounds)[:-1] - settings.ticket_sparsity)))


def ticket_of(result, index):
    return pruning.masks_from_json(result["rounds"][index]["masks"])


def adjacency(masks, ks=(2, 3, 4)):
    """Panel g: {k: mean over hidden units of pruning.adjacency} of a ticket's first layer."""
    return {k: float(pruning.adjacency(masks["linear1.weight"], k).mean()) for k in ks}


# %% Retraining a fixed mask (panels c-f, ablations 2 and 3)
# One retraining of a ticket's mask (pruning.masks_to_json; None: the dense network): exactly what it reads.
Retrain = experiment.task_config("Retrain", Settings, SHARED, **TRAINING, masks=(dict, None))


def retrain(config, context):
    """Train config.masks from config.torch_seed on its data (a sweep task)."""
    masks = None if config.masks is None else pruning.masks_from_json(config.masks)
    _, curves = train_ticket(config, masks, checkpoint=context.checkpoint_path)
    return {**{k: curves[k] for k in ("eval_steps", "test_acc", "test_loss", "final_test_acc")},
            "best_test_acc": max(curves["test_acc"])}


def run_panels(run, found, index):
    """Panels c-f, every variant x trial x ticket: {variant: {ticket: [per-trial curves]}}."""
    s = run.settings
    keys = [(v, trial, t) for v in VARIANTS for trial in range(s.seeds) for t in TICKETS]
    configs = [Retrain.of(s, torch_seed=seed_of(s, s.reinit_seed if v == "reinit" else s.torch_seed, run.args.seed,
                                                trial), **loop(s, panel=True),
                          **data_of(s, "new data" if v == "reinit" else v, s.panel_data_seed),
                          masks=None if t == "dense" else found[t][trial]["rounds"][index]["masks"])
               for v, trial, t in keys]
    panels = {v: {t: [] for t in TICKETS} for v in VARIANTS}
    for (v, _, t), result in zip(keys, run.sweep(retrain, configs, label="panels")):
        panels[v][t].append(result)
    return panels


# %% Ablations
def iterative_schedule(rate, final=0.99):
    """Frankle & Carbin: drop `rate` of the remaining weights per round: 1 - (1 - rate)^k, k = 0, 1, ..."""
    schedule = [0.0]
    while schedule[-1] < final:
        schedule.append(1 - (1 - rate) ** len(schedule))
    return tuple(schedule)


def mask_shuffled_per_unit(masks, rng):
    """Each hidden unit's incoming kept weights moved to random inputs (same count per unit)."""
    return {name: np.stack([rng.permutation(column) for column in mask.T], axis=1) if mask.ndim == 2 else mask
            for name, mask in masks.items()}


def run_ablations(run, found, index):
    """Ablation searches (1, 2-global, 3) and retrains (2, 3), trial 1 only."""
    s, seed = run.settings, run.args.seed
    iterative = iterative_schedule(s.iterative_rate)
    changes = {"iterative": dict(sparsities=iterative), "one-shot": dict(sparsities=iterative, one_shot=True),
               "global": dict(scope="global"), "found on shuffled": dict(variant="shuffled")}
    configs = [search_config(s, seed, 0, "lottery", run.args.notebook_checkpoint, **c) for c in changes.values()]
    searches = {"linear": found["lottery"][0],
                **dict(zip(changes, run.sweep(search, configs, label="ablation searches")))}
    ticket, shuffled = (ticket_of(searches[n], index) for n in ("linear", "found on shuffled"))
    rewound, new = (seed_of(s, base, seed, 0) for base in (s.torch_seed, s.reinit_seed))
    retrains = {"rewound weights": (ticket, rewound, "new data"), "new weights": (ticket, new, "new data"),
                "mask shuffled per unit": (mask_shuffled_per_unit(ticket, np.random.default_rng([seed, 3])),
                                           rewound, "new data"),
                "shuffled ticket on shuffled data": (shuffled, rewound, "shuffled"),
                "shuffled ticket on normal data": (shuffled, rewound, "new data")}
    configs = [Retrain.of(s, torch_seed=torch_seed, **loop(s), **data_of(s, variant),
                          masks=pruning.masks_to_json(masks)) for masks, torch_seed, variant in retrains.values()]
    done = run.sweep(retrain, configs, label="ablation retrains")
    tickets = {"lottery": ticket, "found on shuffled": shuffled, "random": ticket_of(found["random"][0], index)}
    return {"searches": searches, "retrains": dict(zip(retrains, done)),
            "adjacency": {name: adjacency(masks) for name, masks in tickets.items()}}


# %% Figures
def plot_search(found):
    """Panels a and b: final test loss and accuracy against sparsity."""
    fig, axes = plotting.figure(1, 2, width=4.2, height=3.2)
    sparsity = np.array([r["sparsity"] for r in found["lottery"][0]["rounds"]])
    panels = ((axes[0], "final_test_loss", "a: test loss"), (axes[1], "final_test_acc", "b: test accuracy"))
    for ax, key, title in panels:
        dense = np.mean([t["rounds"][0][key] for m in METHODS for t in found[m]])  # round 0: nothing pruned
        for method, color in zip(METHODS, ("C0", "C3")):
            plotting.band(ax, sparsity, [[r[key] for r in t["rounds"]] for t in found[method]], color=color,
                          label=f"{method} ticket")
        ax.axhline(dense, color="k", ls="--", lw=0.8, label="dense")
        ax.set(title=title, xlabel="sparsity")
    axes[0].set_yscale("log")
    axes[1].legend()
    return fig


def plot_panels(panels):
    """Panels c-f: test accuracy against step for each dataset variant."""
    fig, axes = plotting.figure(1, len(VARIANTS), width=3.0, height=2.8, sharey=True)
    for ax, variant, letter in zip(axes, VARIANTS, "cdeff"):
        for ticket, color in zip(TICKETS, ("k", "C0", "C3")):
            runs = panels[variant][ticket]
            plotting.band(ax, runs[0]["eval_steps"], [run["test_acc"] for run in runs], 100, color, ticket)
        ax.set(title=f"{letter}{chr(39) if variant == 'reinit' else ''}: {variant}", xlabel="step")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend()
    return fig


def plot_adjacency(found, stats, index):
    """Panel g: p(k adjacent kept weights) and the first-layer masks sorted by adjacency."""
    fig, axes = plotting.figure(1, 3, width=3.4, height=3.0)
    ks = sorted(stats["lottery"][0])
    for offset, (method, color) in enumerate(zip(METHODS, ("C0", "C3"))):
        mean, se = plotting.mean_se([[trial[k] for k in ks] for trial in stats[method]])
        axes[0].bar(np.arange(len(ks)) + 0.4 * offset, mean, 0.4, yerr=se, color=color, label=method)
    axes[0].set(xticks=np.arange(len(ks)) + 0.2, xticklabels=[str(k) for k in ks],
                xlabel="k adjacent kept weights", ylabel="probability", title="g: local connectivity")
    axes[0].legend()
    for ax, method in zip(axes[1:], METHODS):
        mask = ticket_of(found[method][0], index)["linear1.weight"]
        ax.imshow(mask[:, pruning.sort_by_adjacency(mask, 2)].T, aspect="auto", cmap="Greys", interpolation="nearest")
        ax.set(title=f"{method} ticket, layer 1", xlabel="input position", ylabel="hidden unit (sorted)")
        ax.grid(False)
    return fig


def plot_ablations(ablations, settings):
    """Ablation 1: accuracy against sparsity and against steps spent; 2 and 3 as bars."""
    fig, axes = plotting.figure(1, 3, width=4.2, height=3.2)
    for name in ("linear", "iterative", "one-shot", "global"):
        rounds = ablations["searches"][name]["rounds"]
        acc = [100 * r["final_test_acc"] for r in rounds]
        # Steps spent to reach a round: every earlier round, or (one-shot) the dense round and this one.
        rounds_spent = np.arange(1, len(rounds) + 1)
        steps = settings.steps * (np.minimum(rounds_spent, 2) if name == "one-shot" else rounds_spent)
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


# %% The table: the notebook's numbers and claims, measured
def measured(found, panels, stats, index, minutes):
    """{quantity: this run} (final test accuracy of a run, per trial)."""
    finals = lambda runs: experiment.each([r["final_test_acc"] for r in runs], scale=100)
    acc = {m: np.mean([[r["final_test_acc"] for r in t["rounds"]] for t in found[m]], axis=0) for m in METHODS}
    sparsity = np.array([r["sparsity"] for r in found["lottery"][0]["rounds"]])
    high, beyond = (sparsity >= 0.9) & (sparsity < 1), (sparsity > 0.95) & (sparsity < 1)
    gap = {v: 100 * np.mean([l["final_test_acc"] - r["final_test_acc"]
                             for l, r in zip(panels[v]["lottery"], panels[v]["random"])]) for v in VARIANTS}
    mean = {m: {k: np.mean([trial[k] for trial in stats[m]]) for k in (2, 3, 4)} for m in METHODS}
    return {"final test acc of the ticket round, lottery (trials)":
                finals(t["rounds"][index] for t in found["lottery"]),
            "  same, random ticket": finals(t["rounds"][index] for t in found["random"]),
            "  the ticket round's sparsity (%)": f"{100 * sparsity[index]:.1f}",
            **{f"panel c: {LABELS[t]}": finals(panels["new data"][t]) for t in TICKETS},
            **{f"panel c with new weights (trap 3): {LABELS[t]}": finals(panels["reinit"][t]) for t in TICKETS},
            "rounds at 90-99 % where lottery > random (final acc)":  # None (no row) if no round is in range
                f"{(acc['lottery'][high] > acc['random'][high]).sum()} of {high.sum()}" if high.any() else None,
            "rounds beyond 95 % where lottery > dense":
                f"{(acc['lottery'][beyond] > acc['lottery'][0]).sum()} of {beyond.sum()}" if beyond.any() else None,
            **{f"p({k} adjacent kept), lottery vs random": f"{mean['lottery'][k]:.4f} vs {mean['random'][k]:.4f}"
               for k in (2, 3, 4)},
            "lottery - random, flipped / shuffled (pts)": f"{gap['flipped']:+.1f} / {gap['shuffled']:+.1f}",
            "runtime of search and panels (minutes, every invocation of this run)": f"{minutes:.1f}"}


def measured_ablations(ablations, index, target):
    """The ablations' numbers (trial 1), schedules compared near sparsity `target`."""
    searches, adjacencies, out = ablations["searches"], ablations["adjacency"], {}
    for name in ("linear", "iterative", "one-shot"):
        nearest = min(searches[name]["rounds"], key=lambda r: abs(r["sparsity"] - target))
        out[f"{name} schedule: final acc at {100 * nearest['sparsity']:.1f} %"] = \
            f"{100 * nearest['final_test_acc']:.1f}"
    ranked_globally, layer_wise = searches["global"]["rounds"][index], searches["linear"]["rounds"][index]
    out[f"global vs layer pruning, acc at {100 * layer_wise['sparsity']:.1f} %"] = experiment.each(
        [ranked_globally["final_test_acc"], layer_wise["final_test_acc"]], scale=100).replace(" / ", " vs ")
    out.update({f"92 % ticket: {name}": f"{100 * r['final_test_acc']:.1f}"
                for name, r in ablations["retrains"].items()})
    return {**out, **{f"p({k} adjacent): lottery / shuffled-data ticket / random":
                      " / ".join(f"{adjacencies[n][k]:.4f}" for n in ("lottery", "found on shuffled", "random"))
                      for k in (2, 3, 4)}}


# %% The paper's claims, judged on the saved results (final test accuracies, mean over trials)
def round_accuracy(results, method):
    """(sparsities, mean final test accuracy (%) of each round over the trials) of a search."""
    trials = results["search"][method]
    return (np.array([r["sparsity"] for r in trials[0]]),
            100 * np.mean([[r["final_test_acc"] for r in rounds] for rounds in trials], axis=0))


def smallest_lead_from_90(results):
    """The smallest lottery minus random (points) over the rounds at 90-99 % sparsity; None if none ran."""
    sparsity, lottery = round_accuracy(results, "lottery")
    high = (sparsity >= 0.9) & (sparsity < 1)
    return float(np.min(lottery[high] - round_accuracy(results, "random")[1][high])) if high.any() else None


def share_above_dense_beyond_95(results):
    """The share of the rounds at 95-99 % sparsity where the lottery ticket beats round 0 (dense)."""
    sparsity, lottery = round_accuracy(results, "lottery")
    beyond = (sparsity > 0.95) & (sparsity < 1)
    return float(np.mean(lottery[beyond] > lottery[0])) if beyond.any() else None


def search_lead(results):
    """The ticket round's lottery minus random in the search (points, mean over trials)."""
    index, found = results["ticket_round"], results["search"]
    return 100 * np.mean([l[index]["final_test_acc"] - r[index]["final_test_acc"]
                          for l, r in zip(found["lottery"], found["random"])])


def ticket_lead(variant, other="random"):
    """Claim value: the retrained ticket minus `other` on a panel's data (points, mean over trials)."""
    def lead(results):
        panel = results["panels"][variant]
        return 100 * np.mean([a["final_test_acc"] - b["final_test_acc"] for a, b in zip(panel["lottery"], panel[other])])
    return lead


def adjacency_ratio(k):
    """Claim value: p(k neighbouring first-layer weights all kept), lottery over random (means over trials)."""
    def ratio(results):
        mean = {m: np.mean([trial[str(k)] for trial in results["adjacency"][m]]) for m in METHODS}
        return mean["lottery"] / mean["random"] if mean["random"] > 0 else None
    return ratio


def trials_mean(quantity):
    return float(np.mean(PAPER[quantity]))


CLAIMS = [
    Claim("lottery tickets beat random tickets at every round from 90 % sparsity", "Figure 4 a, b",
          "smallest lottery minus random, rounds at 90-99 % (points)", smallest_lead_from_90, ">", 0,
          paper=PAPER["rounds at 90-99 % where lottery > random (final acc)"]),
    Claim("at the ticket round (92 %) the lottery ticket beats the random one by more than 5 points", "Figure 4 b",
          "lottery minus random at the ticket round (points)", search_lead, ">", 5,
          paper=trials_mean("final test acc of the ticket round, lottery (trials)") - trials_mean("  same, random ticket"),
          reading="'beats' read as more than 5 points, several SDs of one run's final accuracy"),
    Claim("beyond 95 % sparsity lottery tickets stay above the dense network", "Figure 4 b",
          "share of the rounds at 95-99 % where lottery > dense", share_above_dense_beyond_95, ">=", 1,
          paper=PAPER["rounds beyond 95 % where lottery > dense"], reading="'stay above' read as at every such round"),
    *[Claim(f"on new data (seed 43) the 92 % ticket beats the {name}", "Figure 4 c",
            f"lottery minus {name}, panel c (points)", ticket_lead("new data", other), ">", 0,
            paper=float(np.mean(PANEL_C["lottery"]) - np.mean(PANEL_C[other])))
      for other, name in (("dense", "dense network"), ("random", "random ticket"))],
    Claim("the ticket's edge over a random ticket survives flipping the positions", "Figure 4 d",
          "lottery minus random, flipped data (points)", ticket_lead("flipped"), ">", 0, paper="kept"),
    Claim("the ticket's edge over a random ticket is lost when the positions are shuffled", "Figure 4 e",
          "lottery minus random, shuffled data (points)", ticket_lead("shuffled"), "<", 2, paper="lost",
          reading="'lost' read as under 2 points, about the spread of one run's final accuracy"),
    *[Claim(f"lottery masks keep more runs of {k} neighbouring inputs than random masks", "Figure 4 g",
            f"p({k} adjacent kept), lottery over random", adjacency_ratio(k), ">", 1, paper="lottery higher")
      for k in (2, 3)],
]


# %% Main
def without_masks(result):
    return {**result, "rounds": [{k: v for k, v in r.items() if k != "masks"} for r in result["rounds"]]}


def main():
    run = experiment.start(NAME, __doc__, Settings, QUICK, ablations="also run the ablations", sweeps=True,
                           flags=lambda parser: parser.add_argument(
                               "--notebook-checkpoint", action="store_true",
                               help="prune from the weights after step checkpoint_step (1000), as the notebook did"))
    seed_of(run.settings, run.settings.torch_seed, run.args.seed, 0)  # a --seed too large ends here
    if run.args.notebook_checkpoint and not run.settings.checkpoint_step < run.settings.steps:
        raise experiment.UsageError(f"--notebook-checkpoint prunes from the weights after step checkpoint_step "
                                    f"({run.settings.checkpoint_step}): it must be below steps ({run.settings.steps})")
    index = ticket_round(run.settings)
    with run.stage("search and panels"):  # its time over every invocation, for the table
        found = run_search(run)
        panels = run_panels(run, found, index)
    stats = {m: [adjacency(ticket_of(r, index)) for r in found[m]] for m in METHODS}
    for figure, name in ((plot_search(found), "panels_ab"), (plot_panels(panels), "panels_cf"),
                         (plot_adjacency(found, stats, index), "panel_g")):
        run.save_figure(figure, name)
    results = {"search": {m: [without_masks(r)["rounds"] for r in found[m]] for m in METHODS},
               "ticket_round": index, "panels": panels, "adjacency": stats,
               "notebook_checkpoint": run.args.notebook_checkpoint, "paper": PAPER}
    numbers = measured(found, panels, stats, index, run.stage_seconds("search and panels") / 60)
    if run.args.ablations:
        ablations = run_ablations(run, found, index)
        run.save_figure(plot_ablations(ablations, run.settings), "ablations")
        numbers.update(measured_ablations(ablations, index, run.settings.ticket_sparsity))
        searches = {n: without_masks(r) for n, r in ablations["searches"].items()}
        results["ablations"] = {**ablations, "searches": searches}
    sparsity, curves = round_accuracy(results, "lottery")[0], {m: round_accuracy(results, m)[1] for m in METHODS}
    run.finish(results, PAPER, numbers, title="Lottery tickets: notebook vs this run",
               headers=("quantity", "notebook / paper", "this run"), claims=CLAIMS,
               curve=experiment.main_curve("Final test accuracy against sparsity, mean over trials", "sparsity",
                                           "final test accuracy (%)", {m: (sparsity, curves[m]) for m in METHODS}))


if __name__ == "__main__":
    experiment.run_chapter_main(main)
