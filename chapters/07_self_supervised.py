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
batch 100, 200 epochs over the 4000 training examples. Labels are used only
to *measure* the representation: a linear probe (standardised logistic
regression) and a kNN classifier (k = 10, cosine) trained on the training
set's features and scored on the test set.

The paper's answer: "82 % linear classification accuracy", with the peak in
the middle of the network, before the projection head. The notebook's
linear accuracy per layer (input / conv1 / conv2 / conv3 / projector hidden /
projector output): 32.8 / 75.1 / 80.9 / 82.1 / 76.1 / 75.0 %. Without the
projector the peak was 82.2 % at conv1; with a deeper one, 82.4 % at conv2.

What this chapter measures (seed 0, float32, 2026-11-26): linear accuracy
per layer 32.8 / 81.0 / 79.9 / 81.4 / 74.7 / 73.4 %, so the encoder gives
81.4 % (the paper's 82 %) and the accuracy falls after it, in the head, as
in the notebook. conv1 is higher than the notebook's 75.1 %. kNN on the
16-d output: 70.2 %. Without a head the peak moves to conv1 (77.7 %; the
notebook: 82.2 % at conv1) and the last layer, trained directly by the loss,
is barely better than the pixels (33.5 %); with a 3-layer head the peak is
at conv2 (85.9 %; the notebook: 82.4 % at conv2). See the README for the
other ablations and the run times.

Where this differs from the notebook:
- The linear probe is converged (L-BFGS to a gradient of 1e-6 on
  scikit-learn's C = 1 objective, mnist1d_np/probes.py); the notebook
  stopped scikit-learn at tol = 1e-2. On pixels both give 32.8 %; on
  learned features an early stop moves the numbers by several points
  (conv3: 74.7 % at tol 1e-2 in our probe), so single layers can differ.
- The augmentation's slope multiplies the centred position index
  i - 19.5 (our reading of "slope times centred position").
- Our own generators, not the notebook's PyTorch stream, and the spread
  over seeds is about 2 points: seeds 0, 1, 2 give conv3 81.4 / 78.8 /
  84.0 % (81.4 +- 2.1) and peaks at conv3 / conv2 / conv2, always before
  the head; so the notebook's single run (82.1 at conv3) is inside it.
- Training on train + test (the paper's text) gives 85.0 % at conv3 and
  78.1 % kNN (seed 0); train only (the notebook) gives 81.4 %, the closer
  match to the table's 82.1 %.

Run: python chapters/07_self_supervised.py               (200 epochs + probes + t-SNE; README for the time)
     python chapters/07_self_supervised.py --quick       (20 epochs, < 1 min)
     python chapters/07_self_supervised.py --ablations   (projection heads of 0-3 layers, five losses,
                                                          tau in {0.1, 0.5, 1}, train+test; each run
                                                          is saved when done)
Training saves a checkpoint (parameters, Adam state, the random generator)
after every epoch: Ctrl-C, then the same command continues, and the numbers
are identical to an uninterrupted run.

Try it
- `--ablations`, then look at ablations.png: with no head the last encoder
  layer is trained directly by the loss and loses most of what the probe
  needs. Set `projector_hidden=32` with 2 layers: does a narrow head still
  protect the encoder?
- Set `max_shift=1` in Settings (no shifts): what does the network learn
  to ignore now, and what happens to the linear accuracy?
- Set `tau=0.05`: the loss then cares only about the hardest negatives.
  Watch the kNN accuracy during training.
"""
import dataclasses
import sys
import time

import numpy as np

from mnist1d_np import (Tensor, augment, contrastive, data, experiment, fileio, grad, nn, no_grad, ops, optim,
                        probes, runmany)

# %% Settings (the notebook's)
DTYPE = np.float32  # as PyTorch's default
LOSS_NAMES = ("info_nce", "nt_xent", "triplet", "vicreg", "negative_free")


@dataclasses.dataclass(frozen=True)
class Settings:
    epochs: int = 200
    batch_size: int = 100
    lr: float = 0.01
    loss: str = "info_nce"            # one of LOSS_NAMES
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
    eval_every: int = 10              # epochs between kNN / linear-probe evaluations
    knn_k: int = 10
    tsne_points: int = 1000           # the first test examples, embedded by t-SNE
    tsne_iterations: int = 750

    def __post_init__(self):
        _require(self.loss in LOSS_NAMES, f"loss must be one of {LOSS_NAMES}, got {self.loss!r}")
        _require(self.train_on in ("train", "train+test"),
                 f"train_on must be 'train' or 'train+test', got {self.train_on!r}")
        _require(0 <= self.projector_layers <= 3, f"projector_layers must be in [0, 3], got {self.projector_layers}")
        for name in ("epochs", "batch_size", "channels", "projector_hidden", "embedding_dim",
                     "predictor_hidden", "max_shift", "eval_every", "knn_k", "tsne_points", "tsne_iterations"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.lr > 0 and self.tau > 0, f"lr and tau must be > 0, got {self.lr}, {self.tau}")


def _require(ok, message):
    if not ok:
        raise ValueError(message)


QUICK = dict(epochs=20, eval_every=10, tsne_points=500, tsne_iterations=300)
PAPER = {"input": 32.8, "conv1": 75.1, "conv2": 80.9, "conv3": 82.1, "hidden1": 76.1, "output": 75.0}
PAPER_TEXT = "82 % linear classification accuracy"
PAPER_ABLATIONS = {0: "82.2 at conv1", 3: "82.4 at conv2"}  # projector layers: the notebook's peak
LAYER_LABELS = {"input": "input pixels", "conv1": "conv1", "conv2": "conv2", "conv3": "conv3 (encoder)",
                "hidden1": "projector hidden", "hidden2": "projector hidden 2", "output": "projector output"}


# %% The network: an encoder and a projection head, every layer's output kept

class SimCLRNet(nn.Module):
    """x (N, 40) -> {layer name: (N, features)}; PyTorch-default initialisation.

    Layers: input, conv1, conv2, conv3 (125 features), then the projection
    head: hidden1, ... (ReLU) and output (16 features, no ReLU). Without a
    head, conv3 is the output.
    """

    def __init__(self, settings, rng, length=40):
        super().__init__()
        c = settings.channels
        self.conv1 = nn.Conv1d(1, c, 5, rng, stride=2, padding=1, dtype=DTYPE)
        self.conv2 = nn.Conv1d(c, c, 3, rng, stride=2, padding=1, dtype=DTYPE)
        self.conv3 = nn.Conv1d(c, c, 3, rng, stride=2, padding=1, dtype=DTYPE)
        encoded = c * _conv_length(_conv_length(_conv_length(length, 5), 3), 3)
        sizes = projector_sizes(settings, encoded)
        self.head = [nn.Linear(a, b, rng, dtype=DTYPE) for a, b in zip(sizes[:-1], sizes[1:])]
        for i, layer in enumerate(self.head):
            setattr(self, f"head{i}", layer)
        if settings.loss == "negative_free":
            dim, hidden = sizes[-1], settings.predictor_hidden
            self.predictor = nn.Sequential(nn.Linear(dim, hidden, rng, dtype=DTYPE), ops.relu,
                                           nn.Linear(hidden, dim, rng, dtype=DTYPE))

    def layers(self, x):
        n = x.shape[0]
        outputs, h = {"input": x}, x.reshape(n, 1, -1)
        for name in ("conv1", "conv2", "conv3"):
            h = ops.relu(getattr(self, name)(h))
            outputs[name] = h.reshape(n, -1)
        h = outputs["conv3"]
        for i, layer in enumerate(self.head):
            last = i == len(self.head) - 1
            h = layer(h) if last else ops.relu(layer(h))
            outputs["output" if last else f"hidden{i + 1}"] = h
        return outputs

    def forward(self, x):
        return list(self.layers(x).values())[-1]


def _conv_length(length, kernel, stride=2, padding=1):
    return (length + 2 * padding - kernel) // stride + 1


def projector_sizes(settings, encoded):
    """Widths through the head: [125, 16] for 1 layer, [125, 125, 16] for 2, ..."""
    if settings.projector_layers == 0:
        return [encoded]
    return [encoded] + [settings.projector_hidden] * (settings.projector_layers - 1) + [settings.embedding_dim]


def output_layer(net):
    return "output" if net.head else "conv3"


# %% Training: one epoch of contrastive steps

def contrastive_loss(net, z1, z2, settings):
    if settings.loss == "negative_free":
        return contrastive.negative_cosine(net.predictor(z1), net.predictor(z2), z1, z2)
    if settings.loss in ("info_nce", "nt_xent"):
        return contrastive.LOSSES[settings.loss](z1, z2, settings.tau)
    return contrastive.LOSSES[settings.loss](z1, z2)


def two_views(x, rng, settings):
    """Both views of a batch x (B, 40), stacked: (2B, 40) float32."""
    views = [augment.augment(x, rng, settings.max_shift, settings.slope_sd, settings.offset_sd)
             for _ in range(2)]
    return np.concatenate(views).astype(DTYPE)


def train_step(net, params, flat, adam, state, x, rng, settings):
    """One Adam step on the contrastive loss of a batch x (B, 40); returns the loss."""
    z = net(Tensor(two_views(x, rng, settings)))
    loss = contrastive_loss(net, z[:len(x)], z[len(x):], settings)
    grads = grad(loss, params)
    adam.update([flat], [np.concatenate([g.data.ravel() for g in grads])], state)
    return loss.item()


def train_epoch(net, params, flat, adam, state, x, rng, settings):
    """A reshuffled pass over x (N, 40) in batches; returns the mean loss."""
    order = rng.permutation(len(x))
    losses = [train_step(net, params, flat, adam, state, x[order[start:start + settings.batch_size]], rng, settings)
              for start in range(0, len(x), settings.batch_size)]
    return float(np.mean(losses))


# %% Evaluation: what a label-free representation knows about the labels

def embed(net, x, batch=1000):
    """{layer: (N, features) float64 array} for x (N, 40), without gradients."""
    with no_grad():
        parts = [net.layers(Tensor(x[i:i + batch].astype(DTYPE))) for i in range(0, len(x), batch)]
    return {name: np.concatenate([p[name].data for p in parts]).astype(np.float64) for name in parts[0]}


def evaluate(net, dataset, settings):
    """kNN (cosine) on the output and the linear probe on the encoder's 125 features, test accuracy."""
    train, test = embed(net, dataset["x"]), embed(net, dataset["x_test"])
    out = output_layer(net)
    knn = probes.knn_accuracy(train[out], dataset["y"], test[out], dataset["y_test"], settings.knn_k, "cosine")
    linear = probes.linear_probe(train["conv3"], dataset["y"], test["conv3"], dataset["y_test"])
    return {"knn": knn, "linear": linear["accuracy"]}


def probe_every_layer(net, dataset, progress=False):
    """{layer: linear-probe test accuracy} for every layer of the network."""
    train, test = embed(net, dataset["x"]), embed(net, dataset["x_test"])
    names = experiment.progress(list(train), "linear probe per layer") if progress else train
    return {name: probes.linear_probe(train[name], dataset["y"], test[name], dataset["y_test"])["accuracy"]
            for name in names}


# %% The experiment: a resumable training run

def training_inputs(dataset, settings):
    if settings.train_on == "train+test":
        return np.concatenate([dataset["x"], dataset["x_test"]])
    return dataset["x"]


def build(settings, seed):
    """(network, generator for shuffles and views) from one seed; the init is the same on every resume."""
    init_seed, train_seed = np.random.SeedSequence(seed).spawn(2)
    return SimCLRNet(settings, np.random.default_rng(init_seed)), np.random.default_rng(train_seed)


def train(settings, seed, dataset, checkpoint_path, progress=None, should_stop=lambda: False):
    """Train from seed, resuming from checkpoint_path; returns (net, history).

    history: 'epoch_losses' (the mean loss of every epoch) and 'epoch', 'knn',
    'linear': the evaluations of the untrained net (epoch 0), then every
    eval_every epochs and after the last one.
    """
    net, rng = build(settings, seed)
    params = list(net.parameters().values())
    flat = nn.flatten_parameters(net)
    adam = optim.adam(settings.lr)
    state = adam.init([flat])
    start, history = (_resume(checkpoint_path, flat, state, rng, settings, seed)
                      or (0, _fresh_history(net, dataset, settings)))
    if progress is not None:
        progress.update(start)
    x = training_inputs(dataset, settings).astype(DTYPE)
    for epoch in range(start + 1, settings.epochs + 1):
        loss = train_epoch(net, params, flat, adam, state, x, rng, settings)
        history["epoch_losses"].append(loss)
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            _record(history, epoch, evaluate(net, dataset, settings))
        _save(checkpoint_path, flat, state, rng, epoch, history, settings, seed)
        if progress is not None:
            progress.update(1, loss=loss, **{k: history[k][-1] for k in ("knn", "linear")})
        if should_stop():
            raise KeyboardInterrupt
    return net, history


def _fresh_history(net, dataset, settings):
    return {"epoch_losses": [], "epoch": [0], **{k: [v] for k, v in evaluate(net, dataset, settings).items()}}


def _record(history, epoch, scores):
    for key, value in (("epoch", epoch), *scores.items()):
        history[key].append(value)


def _save(path, flat, state, rng, epoch, history, settings, seed):
    arrays = {"flat": flat, "m": state["m"][0], "v": state["v"][0]}
    meta = {"epoch": epoch, "adam_step": state["step"], "rng": rng.bit_generator.state,
            "history": history, "settings": dataclasses.asdict(settings), "seed": seed}
    fileio.save_checkpoint(path, arrays, meta)


def _training_fields(settings_dict):
    """The settings that shape training (the t-SNE ones do not: changing them keeps a checkpoint)."""
    return {k: v for k, v in settings_dict.items() if not k.startswith("tsne_")}


def _resume(path, flat, state, rng, settings, seed):
    """(epoch, history) from a checkpoint of this very run, restoring parameters,
    Adam's moments and the generator in place; None if there is none."""
    loaded = fileio.load_checkpoint(path)
    if loaded is None:
        return None
    arrays, meta = loaded
    if _training_fields(meta.get("settings", {})) != _training_fields(dataclasses.asdict(settings)) \
            or meta.get("seed") != seed:
        print(f"note: {path} belongs to other settings; starting afresh", file=sys.stderr)
        return None
    flat[...] = arrays["flat"]
    state["m"][0][...], state["v"][0][...] = arrays["m"], arrays["v"]
    state["step"] = meta["adam_step"]
    rng.bit_generator.state = meta["rng"]
    return meta["epoch"], meta["history"]


def train_and_probe(settings, seed, dataset, checkpoint_path, progress=None, should_stop=lambda: False):
    """(trained net, JSON-able result: the config, the history and every layer's probe)."""
    net, history = train(settings, seed, dataset, checkpoint_path, progress, should_stop)
    result = {"config": {"seed": seed, **dataclasses.asdict(settings)}, "history": history,
              "layers": probe_every_layer(net, dataset, progress is not None),
              "output_layer": output_layer(net)}
    return net, result


def run_config(config, dataset, checkpoint_path, should_stop=lambda: False):
    """The result for one configuration {'seed', **Settings fields}."""
    settings = Settings(**{k: v for k, v in config.items() if k != "seed"})
    return train_and_probe(settings, config["seed"], dataset, checkpoint_path, should_stop=should_stop)[1]


# %% t-SNE of the output, before and after training

def tsne_of_output(net, dataset, settings):
    """2-D t-SNE of the first tsne_points test examples' output vectors, cosine metric
    (the loss sees only their directions). Returns {'embedding': (N, 2), 'kl', 'trustworthiness'}."""
    from mnist1d_np import tsne
    z = embed(net, dataset["x_test"][:settings.tsne_points])[output_layer(net)]
    embedding, kl = tsne.tsne(z, n_iter=settings.tsne_iterations, metric="cosine")
    return {"embedding": embedding, "kl": float(kl),
            "trustworthiness": probes.trustworthiness(z, embedding, k=10, metric="cosine")}


# %% The ablations (run-many sweep: each run is a pure function of its config)

def ablation_variants(settings):
    """{label: settings} for every ablation run but the default (the main run)."""
    change = lambda **kw: dataclasses.replace(settings, **kw)
    variants = {f"projector {n} layers": change(projector_layers=n) for n in (0, 1, 3)}
    variants.update({f"loss {name}": change(loss=name) for name in LOSS_NAMES[1:]})
    variants.update({f"tau {tau}": change(tau=tau) for tau in (0.1, 1.0)})
    variants["train+test"] = change(train_on="train+test")
    return variants


_DATASET = {}


def load_dataset():
    """The paper's MNIST-1D (regenerated from seed 42: equal to the frozen set)."""
    if "data" not in _DATASET:
        _DATASET["data"] = data.make_dataset(data.get_dataset_args())
    return _DATASET["data"]


def ablation_task(config, context):
    """run_many task: one training run and its probes, checkpointed every epoch."""
    return run_config(config, load_dataset(), context.checkpoint_path, should_stop=context.should_stop)


def run_ablations(run, settings, seed, workers, scheduler):
    variants = ablation_variants(settings)
    configs = [{"seed": seed, **dataclasses.asdict(s)} for s in variants.values()]
    results = runmany.run_many(ablation_task, configs, run.path("ablations"), workers=workers,
                               scheduler=scheduler, label="ablation runs")
    return dict(zip(variants, results))


# %% Tables

def peak(layers):
    name = max(layers, key=layers.get)
    return f"{100 * layers[name]:.1f} at {name}"


def main_rows(result):
    layers = result["layers"]
    rows = [(f"linear probe, {LAYER_LABELS[name]} (%)", PAPER.get(name, "—"), f"{100 * acc:.1f}")
            for name, acc in layers.items()]
    rows.append(("best layer (linear, %)", "82.1 at conv3", peak(layers)))
    rows.append(("encoder, linear probe (the paper's text)", PAPER_TEXT, f"{100 * layers['conv3']:.1f} %"))
    rows.append(("kNN (k=10, cosine) on the output (%)", "—", f"{100 * result['history']['knn'][-1]:.1f}"))
    return rows


def ablation_rows(main, ablations):
    rows = []
    for n in (0, 1, 2, 3):
        result = main if n == 2 else ablations[f"projector {n} layers"]
        rows.append((f"projector {n} layers: best layer (linear, %)",
                     PAPER_ABLATIONS.get(n, "82.1 at conv3" if n == 2 else "—"), peak(result["layers"])))
    for label, result in [("loss info_nce, tau 0.5", main)] + [
            (k, v) for k, v in ablations.items() if not k.startswith("projector")]:
        rows.append((f"{label}: linear (encoder) / kNN (output) (%)", "—",
                     f"{100 * result['layers']['conv3']:.1f} / {100 * result['history']['knn'][-1]:.1f}"))
    return rows


# %% Figures

def plot_views(dataset, settings, seed, per_row=5):
    """The first example of five classes (black) and two random views of each."""
    from mnist1d_np import plotting
    rng = np.random.default_rng(seed)
    fig, axes = plotting.figure(1, per_row, width=1.5, height=2.4)
    for ax, label in zip(axes, range(per_row)):
        x = dataset["x"][np.flatnonzero(dataset["y"] == label)[:1]]
        plotting.plot_signal(ax, x[0], color="k", lw=1.5, label="example")
        for i, view in enumerate(two_views(x, rng, settings)):
            plotting.plot_signal(ax, view, color=f"C{i}", lw=1, label=f"view {i + 1}")
        ax.set_title(f"digit {label}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7)
    fig.subplots_adjust(bottom=0.12)
    return fig


def plot_tsne(panels, labels):
    """t-SNE panels {title: (N, 2)} coloured by class, each class's median labelled."""
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, len(panels), width=3.6, height=3.6, squeeze=False)
    for ax, (title, points) in zip(axes[0], panels.items()):
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
        for digit in range(10):
            median = np.median(points[labels == digit], axis=0)
            ax.text(*median, str(digit), fontsize=12, weight="bold", ha="center", va="center",
                    bbox=dict(boxstyle="circle,pad=0.1", fc="white", alpha=0.7, lw=0))
        ax.set(title=title, xticks=[], yticks=[])
    return fig


def plot_layers(curves, paper=None):
    """Linear-probe accuracy per layer: curves {label: {layer: accuracy}}."""
    from mnist1d_np import plotting
    fig, ax = plotting.figure(1, 1, width=5.0, height=3.2)
    names = _layer_axis(list(curves.values()))
    for i, (label, layers) in enumerate(curves.items()):
        xs = [names.index(name) for name in layers]
        ax.plot(xs, [100 * a for a in layers.values()], "o-", color=f"C{i}", label=label)
    if paper:
        ax.plot([names.index(n) for n in paper], list(paper.values()), "s--", color="gray",
                label="the notebook", ms=4)
    ax.set_xticks(range(len(names)), [LAYER_LABELS[n].replace(" ", "\n", 1) for n in names], fontsize=7)
    ax.set(ylabel="linear probe, test accuracy (%)")
    ax.legend(fontsize=7)
    return fig


def _layer_axis(layer_dicts):
    """The layer names any of the dicts holds, in network order."""
    return [name for name in LAYER_LABELS if any(name in layers for layers in layer_dicts)]


def plot_training(history):
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, 2, width=3.6, height=2.8)
    epochs = np.arange(1, len(history["epoch_losses"]) + 1)
    axes[0].plot(epochs, history["epoch_losses"], color="k")
    axes[0].set(xlabel="epoch", title="contrastive loss (mean over the epoch)")
    axes[1].plot(history["epoch"], 100 * np.array(history["linear"]), "o-", label="linear probe, encoder")
    axes[1].plot(history["epoch"], 100 * np.array(history["knn"]), "o-", label="kNN (cosine), output")
    axes[1].set(xlabel="epoch", title="test accuracy (%)")
    axes[1].legend(fontsize=7)
    return fig


def plot_ablations(main, ablations):
    from mnist1d_np import plotting
    fig, axes = plotting.figure(1, 2, width=4.6, height=3.4)
    others = [(label, r) for label, r in ablations.items() if not label.startswith("projector")]
    bars = [("info_nce (default)", main)] + others
    x = np.arange(len(bars))
    axes[1].bar(x - 0.2, [100 * r["layers"]["conv3"] for _, r in bars], 0.4, label="linear, encoder")
    axes[1].bar(x + 0.2, [100 * r["history"]["knn"][-1] for _, r in bars], 0.4, label="kNN, output")
    axes[1].set_xticks(x, [label for label, _ in bars], rotation=45, ha="right", fontsize=7)
    axes[1].set(ylabel="test accuracy (%)", ylim=(0, 100))
    axes[1].legend(fontsize=7)
    depths = {n: (main if n == 2 else ablations[f"projector {n} layers"])["layers"] for n in (0, 1, 2, 3)}
    names = _layer_axis(list(depths.values()))
    for n, layers in depths.items():
        axes[0].plot([names.index(k) for k in layers], [100 * a for a in layers.values()], "o-",
                     label=f"{n} projector layers")
    axes[0].set_xticks(range(len(names)), [n.replace("hidden", "hid.") for n in names], fontsize=7)
    axes[0].set(ylabel="linear probe, test accuracy (%)", title="accuracy per layer")
    axes[0].legend(fontsize=7)
    return fig


# %% Main

NAME = "07_self_supervised"


def main():
    parser = runmany.add_arguments(experiment.chapter_parser(NAME, __doc__))
    parser.add_argument("--ablations", action="store_true",
                        help="also train the ablation runs (projector depth, losses, tau, train+test)")
    args = experiment.parse_args(parser)
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run(NAME, args, settings)
    run_chapter(run, settings, args)


def run_chapter(run, settings, args):
    """Run, tabulate, plot."""
    dataset = load_dataset()
    result, net, seconds = main_run(run, settings, args.seed, dataset)
    ablations = run_ablations(run, settings, args.seed, args.workers, args.scheduler) if args.ablations else {}
    tsne = tsne_before_after(net, dataset, settings, args.seed)
    save_figures(run, dataset, settings, args.seed, result, tsne, ablations)
    rows = main_rows(result) + (ablation_rows(result, ablations) if ablations else [])
    rows.append(("run time (wall, all invocations / CPU of the last)", "about 1 min (text) / 5 min (caption), CPU",
                 f"{run.total_elapsed():.0f} s / {time.process_time():.0f} s (training + evaluations: {seconds:.0f} s wall)"))
    experiment.print_table(rows, title=f"Linear probe and kNN, test accuracy, {settings.epochs} epochs")
    run.save_results("results", {"main": result, "training_seconds": seconds, "cpu_seconds": time.process_time(),
                                 "tsne": {k: {"kl": v["kl"], "trustworthiness": v["trustworthiness"]}
                                          for k, v in tsne.items()},
                                 "ablations": ablations, "paper": PAPER}, rows)


def main_run(run, settings, seed, dataset):
    """The notebook's run: (result, trained net, seconds spent in this call)."""
    clock = time.perf_counter()
    bar = experiment.Progress(settings.epochs, "epochs")
    net, result = train_and_probe(settings, seed, dataset, run.path("checkpoint.npz"), bar)
    return result, net, time.perf_counter() - clock


def tsne_before_after(net, dataset, settings, seed):
    untrained, _ = build(settings, seed)
    nets = {"before training": untrained, "after training": net}
    return {label: tsne_of_output(nets[label], dataset, settings) for label in experiment.progress(nets, "t-SNE")}


def save_figures(run, dataset, settings, seed, result, tsne, ablations):
    run.save_figure(plot_views(dataset, settings, seed), "views")
    labels = dataset["y_test"][:settings.tsne_points]
    run.save_figure(plot_tsne({k: v["embedding"] for k, v in tsne.items()}, labels), "tsne")
    run.save_figure(plot_layers({"this run": result["layers"]}, PAPER), "layers")
    run.save_figure(plot_training(result["history"]), "training")
    if ablations:
        run.save_figure(plot_ablations(result, ablations), "ablations")


if __name__ == "__main__":
    experiment.run_chapter_main(main, saved="the last finished epoch in --out")
