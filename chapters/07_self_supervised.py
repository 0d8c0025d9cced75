"""Chapter 07 — self-supervised contrastive learning (SimCLR) on MNIST-1D.

Question: without a single label, can a network learn a representation in
which the digits are linearly separable? And where in the network is that
representation best?

Setup (the paper's notebook, Figure 7): two random views of every example
(remove its mean and slope, shift it circularly by 0-9 positions, add a
random line; see mnist1d_np/augment.py) go through a small CNN encoder
(conv 1->25 k5 s2, conv 25->25 k3 s2, conv 25->25 k3 s2, ReLU after each,
125 features) and a projection head (125 -> 125, ReLU, -> 16). The InfoNCE
loss (mnist1d_np/contrastive.py, tau = 0.5) pulls the two views of an
example together and pushes the other examples' views away. Adam, lr 0.01,
batch 100, 200 epochs over the 4000 training examples, float32. Labels are
used only to *measure* the representation: a linear probe (standardised
logistic regression) and a kNN classifier (k = 10, cosine) trained on the
training set's features and scored on the test set.

The paper's answer: "82 % linear classification accuracy", with the peak in
the middle of the network, before the projection head. The notebook's
linear accuracy per layer (input / conv1 / conv2 / conv3 / projector hidden /
projector output): 32.8 / 75.1 / 80.9 / 82.1 / 76.1 / 75.0 %. Without the
projector the peak was 82.2 % at conv1; with a deeper one, 82.4 % at conv2.

Where this differs from the notebook:
- The linear probe is converged (L-BFGS to a gradient of 1e-6 on
  scikit-learn's C = 1 objective, mnist1d_np/probes.py); the notebook
  stopped scikit-learn at tol = 1e-2. On pixels both give 32.8 %; on
  learned features an early stop moves the numbers by several points, so
  single layers can differ.
- The augmentation's slope multiplies the centred position index
  i - 19.5 (our reading of "slope times centred position").
- Our own random generators, not the notebook's PyTorch stream: one run
  matches the notebook's single run only up to the spread over seeds.
- The paper's text trains on train + test, the notebook on the training set
  only; we follow the notebook (`--set train_on=train+test` for the text's).

Run: python chapters/07_self_supervised.py               (200 epochs + probes + t-SNE)
     python chapters/07_self_supervised.py --quick       (20 epochs, t-SNE of 500 points)
     python chapters/07_self_supervised.py --ablations   (the runs of ABLATIONS: projection heads of 0-3
                                                          layers, five losses, tau in {0.1, 0.5, 1}, train+test)
Training saves a checkpoint (parameters, Adam state, the random generator)
at every evaluation (every eval_every_epochs epochs): Ctrl-C, then the same command
continues, and the numbers are identical to an uninterrupted run. The
ablation runs are a sweep (--workers local processes, or a dask cluster with
--scheduler; see the README's *Sweeps*), each saved when done.
--seed S: the initialisation, the batch orders and the views come from S
(SeedSequence(S).spawn(2)); two seeds share no initialisation. The ablation
runs start from the main run's seed.

Try it:
- `--ablations`, then look at ablations.png: with no head the last encoder
  layer is trained directly by the loss and loses most of what the probe
  needs. Add `--set projector_hidden=32`: does a narrow head still protect
  the encoder?
- `--set max_shift=1` (no shifts): what does the network learn to ignore
  now, and what happens to the linear accuracy?
- `--set tau=0.05`: the loss then cares only about the hardest negatives.
  Watch the kNN accuracy during training (training.png).
"""
import dataclasses
import functools

import numpy as np

from mnist1d_np import (Tensor, augment, contrastive, data, experiment, nn, no_grad, ops, optim, plotting, probes,
                        train, tsne)
from mnist1d_np.claims import Claim
from mnist1d_np.progress import progress


# %% Settings (the notebook's)
ABLATIONS = {"projector_layers": (0, 1, 2, 3), "loss": ("info_nce", "nt_xent", "triplet", "vicreg", "negative_free"),
             "tau": (0.1, 0.5, 1.0), "train_on": ("train", "train+test")}  # --ablations: one run for each value


@dataclasses.dataclass(frozen=True)
class Training:
    """What a training run reads: with its seed (Trial), its identity."""
    epochs: int = 200
    batch_size: int = 100
    lr: float = 0.01
    loss: str = "info_nce"            # one of ABLATIONS["loss"]
    tau: float = 0.5                  # temperature of info_nce and nt_xent
    channels: int = 25
    projector_layers: int = 2         # linear layers after the encoder: 0 to 3
    projector_hidden: int = 125
    embedding_dim: int = 16
    predictor_hidden: int = 64        # only for the negative-free loss
    max_shift: int = 10               # circular shifts in [0, max_shift)
    slope_sd: float = 0.04
    offset_sd: float = 0.3
    train_on: str = "train"           # "train" (the notebook) or "train+test" (the paper's text)
    eval_every_epochs: int = 10       # epochs between kNN / linear-probe evaluations (and checkpoints)
    knn_k: int = 10
    dtype: str = "float32"            # as PyTorch's default

    def __post_init__(self):  # the choices (ABLATIONS' values); numbers are checked where they are used
        bad = [f"{name}={getattr(self, name)!r} (one of {ABLATIONS[name]})"
               for name in ("loss", "projector_layers", "train_on") if getattr(self, name) not in ABLATIONS[name]]
        if bad:
            raise ValueError(f"invalid {', '.join(bad)}")


@dataclasses.dataclass(frozen=True)
class Settings(Training):
    tsne_points: int = 1000           # the first test examples, embedded by t-SNE
    tsne_iterations: int = 750


@dataclasses.dataclass(frozen=True)
class Trial(Training):
    """One training run (the main run, or one of the ablations' sweep)."""
    seed: int = 0


def trial(settings, seed):
    """The training run of settings (the t-SNE settings are not part of it) from seed."""
    return read(Trial(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(Training)},
                      seed=seed))


def read(run):
    """The run with the settings its loss does not read set to None: its identity is what it reads."""
    return dataclasses.replace(run, tau=run.tau if run.loss in ("info_nce", "nt_xent") else None,
                               predictor_hidden=run.predictor_hidden if run.loss == "negative_free" else None)


QUICK = dict(epochs=20, eval_every_epochs=10, tsne_points=500, tsne_iterations=300)
LAYER_LABELS = {"input": "input pixels", "conv1": "conv1", "conv2": "conv2", "conv3": "conv3 (encoder)",
                "hidden1": "projector hidden", "hidden2": "projector hidden 2", "output": "projector output"}
NOTEBOOK_LAYERS = {"input": 32.8, "conv1": 75.1, "conv2": 80.9, "conv3": 82.1, "hidden1": 76.1, "output": 75.0}
NOTEBOOK_PEAKS = {0: "82.2 at conv1", 2: "82.1 at conv3", 3: "82.4 at conv2"}  # best layer by projector layers
PAPER = {**{f"linear probe, {LAYER_LABELS[name]} (%)": value for name, value in NOTEBOOK_LAYERS.items()},
         "best layer (linear, %)": NOTEBOOK_PEAKS[2], "encoder, linear probe (the paper's text)":
         "82 % linear classification accuracy", "run time (wall)": "about 1 min (text) / 5 min (caption), CPU",
         **{f"projector {n} layers: best layer (linear, %)": peak for n, peak in NOTEBOOK_PEAKS.items()}}


# %% The network: an encoder and a projection head, every layer's output kept
class SimCLRNet(nn.Module):
    """x (N, 40) -> {layer name: (N, features)}; PyTorch-default initialisation.

    Layers: input, conv1, conv2, conv3 (125 features), then the projection
    head: hidden1, ... (ReLU) and output (16 features, no ReLU). Without a
    head, conv3 is the output.
    """

    def __init__(self, config, rng):
        super().__init__()
        c, n, dtype = config.channels, config.projector_layers, np.dtype(config.dtype)
        self.conv1 = nn.Conv1d(1, c, 5, rng, stride=2, padding=1, dtype=dtype)
        self.conv2 = nn.Conv1d(c, c, 3, rng, stride=2, padding=1, dtype=dtype)
        self.conv3 = nn.Conv1d(c, c, 3, rng, stride=2, padding=1, dtype=dtype)
        # The head's widths: 125 (c channels at 40 -> 19 -> 10 -> 5 positions) -> hidden ... -> embedding_dim.
        sizes = [c * 5] + [config.projector_hidden] * (n - 1) + [config.embedding_dim] if n else [c * 5]
        # A container of the head's n linear layers (layers() puts the ReLUs between them).
        self.head = nn.Sequential(*[nn.Linear(a, b, rng, dtype=dtype) for a, b in zip(sizes, sizes[1:])])
        if config.loss == "negative_free":  # a predictor on top of the output, as in BYOL and SimSiam
            self.predictor = nn.Sequential(nn.Linear(sizes[-1], config.predictor_hidden, rng, dtype=dtype), ops.relu,
                                           nn.Linear(config.predictor_hidden, sizes[-1], rng, dtype=dtype))

    def layers(self, x):
        outputs, h = {"input": x}, x.reshape(len(x), 1, -1)
        for name in ("conv1", "conv2", "conv3"):
            h = ops.relu(getattr(self, name)(h))
            outputs[name] = h.reshape(len(x), -1)
        h = outputs["conv3"]
        for i, layer in enumerate(self.head.layers, 1):
            last = i == len(self.head.layers)
            h = outputs["output" if last else f"hidden{i}"] = layer(h) if last else ops.relu(layer(h))
        return outputs

    def forward(self, x):
        return list(self.layers(x).values())[-1]


def build(config):
    """(network, generator for the batch orders and views) from config.seed."""
    init_seed, train_seed = np.random.SeedSequence(config.seed).spawn(2)
    return SimCLRNet(config, np.random.default_rng(init_seed)), np.random.default_rng(train_seed)


# %% Training: the contrastive loss of two random views of every batch
def two_views(x, rng, config):
    """Both views of a batch x (B, 40), stacked: (2B, 40)."""
    views = [augment.augment(x, rng, config.max_shift, config.slope_sd, config.offset_sd) for _ in range(2)]
    return np.concatenate(views).astype(config.dtype)


def views_loss(config, rng):
    """train.fit's loss: (net, batch x (B, 40), no labels) -> the contrastive loss of two views of x,
    drawn from rng (the generator that shuffles the batches: its permutation, then each batch's views)."""
    def loss(net, x, labels):
        z = net(Tensor(two_views(x, rng, config)))
        z1, z2 = z[:len(x)], z[len(x):]
        if config.loss == "negative_free":  # no negatives: each view's prediction is pulled to the other view
            return contrastive.negative_cosine(net.predictor(z1), net.predictor(z2), z1, z2)
        tau = (config.tau,) if config.loss in ("info_nce", "nt_xent") else ()
        return contrastive.LOSSES[config.loss](z1, z2, *tau)
    return loss


def train_simclr(config, dataset, checkpoint=None):
    """Train a network from config.seed (resuming from `checkpoint`): (net, its history: 'epoch_losses' (the mean
    loss of every epoch) and 'epoch', 'knn', 'linear': the evaluations of the untrained net (epoch 0), then every
    eval_every_epochs epochs and after the last one)."""
    net, rng = build(config)
    untrained = evaluate(net, dataset, config)  # before fit: fit puts a checkpoint's parameters into net
    x = np.concatenate([dataset["x"], dataset["x_test"]]) if config.train_on == "train+test" else dataset["x"]
    batches = train.Shuffled(x.astype(config.dtype), None, config.batch_size, rng)
    per_epoch = batches.steps_per_epoch  # steps
    probe_data = train.digest(dataset["x"], dataset["y"], dataset["x_test"], dataset["y_test"])  # what evaluate reads
    curves = train.fit(net, batches, optim.adam(config.lr), config.epochs * per_epoch, loss=views_loss(config, rng),
                       evaluate=lambda model: evaluate(model, dataset, config), label="SimCLR steps",
                       eval_steps=train.epoch_ends(per_epoch, config.epochs, every=config.eval_every_epochs),
                       checkpoint=checkpoint, identity={"trial": dataclasses.asdict(config), "probe_data": probe_data})
    return net, {"epoch_losses": [float(np.mean(row)) for row in np.reshape(curves["train_losses"], (-1, per_epoch))],
                 "epoch": [0] + [(step + 1) // per_epoch for step in curves["eval_steps"]],
                 **{name: [untrained[name]] + curves[name] for name in ("knn", "linear")}}


# %% Evaluation: what a label-free representation knows about the labels
def embed(net, x, dtype, batch=1000):
    """{layer: (N, features) float64 array} for x (N, 40), without gradients."""
    with no_grad():
        parts = [net.layers(Tensor(x[i:i + batch].astype(dtype))) for i in range(0, len(x), batch)]
    return {name: np.concatenate([p[name].data for p in parts]).astype(np.float64) for name in parts[0]}


def evaluate(net, dataset, config):
    """kNN (cosine) on the output and the linear probe on the encoder's 125 features, test accuracy."""
    train_x, test_x = embed(net, dataset["x"], config.dtype), embed(net, dataset["x_test"], config.dtype)
    out = list(train_x)[-1]  # the output layer
    knn = probes.knn_accuracy(train_x[out], dataset["y"], test_x[out], dataset["y_test"], config.knn_k, "cosine")
    linear = probes.linear_probe(train_x["conv3"], dataset["y"], test_x["conv3"], dataset["y_test"])
    return {"knn": knn, "linear": linear["accuracy"]}


def train_and_probe(config, dataset, checkpoint):
    """(trained net, JSON-able result: the config, the history, every layer's linear probe and the best layer)."""
    net, history = train_simclr(config, dataset, checkpoint)
    train_x, test_x = embed(net, dataset["x"], config.dtype), embed(net, dataset["x_test"], config.dtype)
    layers = {name: probes.linear_probe(train_x[name], dataset["y"], test_x[name], dataset["y_test"])["accuracy"]
              for name in progress(list(train_x), "linear probe per layer")}
    return net, {"config": dataclasses.asdict(config), "history": history, "layers": layers,
                 "best_layer": max(layers, key=layers.get)}


def tsne_before_after(net, dataset, settings, main):
    """2-D t-SNE of the output vectors of the first tsne_points test examples, untrained and trained, cosine
    metric (the loss sees only their directions): ({label: embedding (N, 2)}, {'points', 'iterations' (the
    t-SNE settings), and for each label its 'kl', 'trustworthiness'})."""
    maps, numbers = {}, {"points": settings.tsne_points, "iterations": settings.tsne_iterations}
    for label, model in progress({"before training": build(main)[0], "after training": net}.items(), "t-SNE"):
        z = list(embed(model, dataset["x_test"][:settings.tsne_points], settings.dtype).values())[-1]
        maps[label], kl = tsne.tsne(z, n_iter=settings.tsne_iterations, metric="cosine")
        numbers[label] = {"kl": float(kl), "trustworthiness": probes.trustworthiness(z, maps[label], 10, "cosine")}
    return maps, numbers


# %% The ablations: a sweep of training runs, each changing one setting to one value of ABLATIONS
@functools.lru_cache(maxsize=None)
def load_dataset():
    """The paper's MNIST-1D (regenerated from seed 42: equal to the frozen set), made once per process."""
    return data.make_dataset(data.get_dataset_args())


def ablation_task(config, context):
    """A sweep task: one training run and its probes."""
    return train_and_probe(config, load_dataset(), context.checkpoint_path)[1]


def run_ablations(run):
    """{label: result} of the ablation runs, a sweep (each run saved when done): each run changes one setting
    of the main run to one value of ABLATIONS (the value the main run has is the main run)."""
    s = run.settings
    trials = {f"{name} {value}": trial(dataclasses.replace(s, **{name: value}), run.args.seed)
              for name, values in ABLATIONS.items() for value in values if value != getattr(s, name)}
    return dict(zip(trials, run.sweep(ablation_task, list(trials.values()), label="ablation runs", folder="ablations")))


def by_depth(main, ablations):
    """{projector layers: result} of the main run and the ablations of the projector's depth."""
    return {n: ablations.get(f"projector_layers {n}", main) for n in ABLATIONS["projector_layers"]}


def same_projector(main, ablations):
    """{label: result} of the main run and the ablations that keep its projector."""
    return {f"{main['config']['loss']} (default)": main, **{k: r for k, r in ablations.items() if "projector" not in k}}


def measured(main, ablations, seconds):
    """The table's rows; None (the row left out) for a layer the network does not have, and for the
    ablations' rows when they were not run."""
    best = {f"projector {n} layers: best layer (linear, %)": r for n, r in by_depth(main, ablations).items()}
    same = {f"{label}: linear (encoder) / kNN (output) (%)": r for label, r in same_projector(main, ablations).items()}
    rows = {**{q: f"{100 * r['layers'][r['best_layer']]:.1f} at {r['best_layer']}" for q, r in best.items()},
            **{q: experiment.each([r["layers"]["conv3"], r["history"]["knn"][-1]], scale=100) for q, r in same.items()}}
    layers, peak = main["layers"], main["best_layer"]
    return {**{f"linear probe, {LAYER_LABELS[name]} (%)": f"{100 * layers[name]:.1f}" if name in layers else None
               for name in LAYER_LABELS}, "best layer (linear, %)": f"{100 * layers[peak]:.1f} at {peak}",
            "encoder, linear probe (the paper's text)": f"{100 * layers['conv3']:.1f} %",
            "run time (wall)": f"{seconds:.0f} s", "kNN (k=10, cosine) on the output (%)":
            f"{100 * main['history']['knn'][-1]:.1f}", **(rows if ablations else dict.fromkeys(rows))}


# %% The paper's claims, judged on the saved linear probes of the main run
ENCODER, PROJECTOR = ("conv1", "conv2", "conv3"), ("hidden1", "hidden2", "output")


def best_of(percent, names):
    """The highest accuracy (%) among the layers `names` that `percent` has (None: it has none)."""
    present = [percent[name] for name in names if name in percent]
    return max(present) if present else None


def linear_probes(results):
    """The main run's linear-probe accuracy of every layer (%)."""
    return {name: 100 * acc for name, acc in results["main"]["layers"].items()}


def encoder_lead(results):
    """The best encoder layer's linear probe minus the best projector layer's (points)."""
    percent = linear_probes(results)
    projector = best_of(percent, PROJECTOR)
    return None if projector is None else best_of(percent, ENCODER) - projector


CLAIMS = [
    Claim("the best linear probe is in the encoder, before the projection head", "Figure 7 and its text",
          "best encoder layer minus best projector layer, linear probe (points)", encoder_lead, ">", 0,
          paper=best_of(NOTEBOOK_LAYERS, ENCODER) - best_of(NOTEBOOK_LAYERS, PROJECTOR)),
    Claim("the encoder's features reach about 82 % linear accuracy", "the paper's text, Figure 7",
          "linear probe on conv3, the encoder's output (%)", lambda results: linear_probes(results)["conv3"], ">=", 77,
          paper=NOTEBOOK_LAYERS["conv3"], reading="'about 82 %' read as at least 77 %, 5 points below"),
    Claim("label-free features are far more linearly readable than the pixels", "Figure 7",
          "linear probe, encoder minus input pixels (points)",
          lambda results: linear_probes(results)["conv3"] - linear_probes(results)["input"], ">", 30,
          paper=NOTEBOOK_LAYERS["conv3"] - NOTEBOOK_LAYERS["input"], reading="'far more' read as over 30 points"),
]


# %% Figures
def plot_views(dataset, config, seed, per_row=5):
    """The first example of five classes (black) and two random views of each."""
    rng = np.random.default_rng(seed)
    fig, axes = plotting.figure(1, per_row, width=1.5, height=2.4)
    for digit, ax in enumerate(axes):
        x = dataset["x"][dataset["y"] == digit][:1]
        plotting.plot_signal(ax, x[0], color="k", lw=1.5, label="example")
        for i, view in enumerate(two_views(x, rng, config)):
            plotting.plot_signal(ax, view, color=f"C{i}", lw=1, label=f"view {i + 1}")
        ax.set_title(f"digit {digit}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7)
    return fig


def plot_tsne(maps, labels):
    """The t-SNE maps {title: (N, 2)} side by side, coloured by class, each class's median labelled."""
    fig, axes = plotting.figure(1, 2, width=3.6, height=3.6)
    for ax, (title, points) in zip(axes, maps.items()):
        plotting.class_map(ax, points, labels, title)
    return fig


def plot_per_layer(ax, runs, formats, title=None):
    """Linear-probe test accuracy (%) per layer, a line (of formats) for each {label: {layer: accuracy}}."""
    names = [name for name in LAYER_LABELS if any(name in layers for layers in runs.values())]  # in network order
    for (label, layers), fmt in zip(runs.items(), formats):  # (a sweep's results come back with sorted keys)
        x = [i for i, name in enumerate(names) if name in layers]
        ax.plot(x, [100 * layers[names[i]] for i in x], fmt, label=label)
    ax.set_xticks(range(len(names)), [LAYER_LABELS[name].replace(" ", "\n", 1) for name in names], fontsize=7)
    ax.set(ylabel="linear probe, test accuracy (%)", title=title)
    ax.legend(fontsize=7)


def plot_layers(layers, notebook):
    fig, ax = plotting.figure(1, 1, width=5.0, height=3.2)
    plot_per_layer(ax, {"this run": layers, "the notebook": {k: v / 100 for k, v in notebook.items()}}, ("o-", "s--"))
    return fig


def plot_training(history):
    fig, axes = plotting.figure(1, 2, width=3.6, height=2.8)
    axes[0].plot(range(1, len(history["epoch_losses"]) + 1), history["epoch_losses"], color="k")
    axes[0].set(xlabel="epoch", title="contrastive loss (mean over the epoch)")
    for name, label in (("linear", "linear probe, encoder"), ("knn", "kNN (cosine), output")):
        axes[1].plot(history["epoch"], 100 * np.array(history[name]), "o-", label=label)
    axes[1].set(xlabel="epoch", title="test accuracy (%)")
    axes[1].legend(fontsize=7)
    return fig


def plot_ablations(main, ablations):
    fig, axes = plotting.figure(1, 2, width=4.6, height=3.4)
    depths = {f"{n} projector layers": r["layers"] for n, r in by_depth(main, ablations).items()}
    plot_per_layer(axes[0], depths, ["o-"] * len(depths), title="accuracy per layer")
    bars = same_projector(main, ablations)
    x = np.arange(len(bars))
    axes[1].bar(x - 0.2, [100 * r["layers"]["conv3"] for r in bars.values()], 0.4, label="linear, encoder")
    axes[1].bar(x + 0.2, [100 * r["history"]["knn"][-1] for r in bars.values()], 0.4, label="kNN, output")
    axes[1].set_xticks(x, list(bars), rotation=45, ha="right", fontsize=7)
    axes[1].set(ylabel="test accuracy (%)", ylim=(0, 100))
    axes[1].legend(fontsize=7)
    return fig


# %% Main
def main():
    run = experiment.start("07_self_supervised", __doc__, Settings, QUICK, sweeps=True,
                           ablations="also train the ablation runs (projector depth, losses, tau, train+test)")
    settings, dataset, main_trial = run.settings, load_dataset(), trial(run.settings, run.args.seed)
    net, result = train_and_probe(main_trial, dataset, run.path("checkpoint.npz"))
    ablations = run_ablations(run) if run.args.ablations else {}
    maps, tsne_numbers = tsne_before_after(net, dataset, settings, main_trial)
    run.save_figure(plot_views(dataset, settings, run.args.seed), "views")
    run.save_figure(plot_tsne(maps, dataset["y_test"][:settings.tsne_points]), "tsne")
    run.save_figure(plot_layers(result["layers"], NOTEBOOK_LAYERS), "layers")
    run.save_figure(plot_training(result["history"]), "training")
    if ablations:
        run.save_figure(plot_ablations(result, ablations), "ablations")
    run.finish({"main": result, "ablations": ablations, "tsne": tsne_numbers, "paper": NOTEBOOK_LAYERS}, PAPER,
               measured(result, ablations, run.total_elapsed()),
               title=f"Linear probe and kNN, test accuracy, {settings.epochs} epochs", claims=CLAIMS,
               curve=experiment.main_curve("Test accuracy during training", "epoch", "test accuracy (%)", {
                   label: (result["history"]["epoch"], 100 * np.array(result["history"][probe]))
                   for probe, label in (("linear", "linear probe, encoder"), ("knn", "kNN (cosine), output"))}))


if __name__ == "__main__":
    experiment.run_chapter_main(main, saved="the last evaluation's checkpoint and the finished ablation runs in --out")
