"""Chapter 06 — deep double descent: test error rises, then falls, as models grow.

Question: classical statistics says a model that grows past the size where
it can fit its training data should generalise worse and worse. Is that
what happens to neural networks trained on MNIST-1D with noisy labels?

Setup (the paper's Figure 5; the notebook deep-double-descent.ipynb): MLPs
40 -> h -> h -> 10 for 19 widths h from 2 to 300, and the paper's
three-layer CNN for 2 to 100 channels, each trained for 500 epochs of SGD
(lr 0.01, momentum 0.9, batch 100, a new order every epoch) on MNIST-1D
regenerated with 16000 examples: 4000 for training and 12000 for testing
(the large test set makes the curves smooth). With label noise, 15 % of
the training labels are replaced by random ones. Every model starts from
PyTorch's default initialisation, runs in float32 and is evaluated after
every epoch on all 16000 examples, as the notebook does. Label noise is
drawn once from the seed, on a copy of the data (the clean labels are
never touched); for one width, the clean and the noisy model share their
initial weights and their batch order, so the labels are the only
difference.

The paper's answer: no. With noisy labels the test error first falls, then
climbs to a peak near the width where the network first fits every
training label (the interpolation threshold), then falls again as the
network grows further: "test error peaked around 50 neurons". The
notebook printed, after 500 epochs:

    MLP, 15 % noise   test error peaks at 54.05 % at h = 47; train error first 0 at h = 61
    MLP, clean        test error levels off near 41 % (h = 27..61): no peak
    CNN, 15 % noise   test error peaks at 33.8 % at 18 channels; train error first 0 at 24

Run: python chapters/06_double_descent.py              (67 models of 500 epochs)
     python chapters/06_double_descent.py --quick      (3 widths, 20 epochs, 1000 + 1000 examples)
     python chapters/06_double_descent.py --ablations  (+ 1 and 3 hidden layers, noise 0-30 %)
--seed S draws the label noise, and every model's initial weights and
batch order, from S: two seeds share none. The models are a sweep
(--workers local processes, or a dask cluster with --scheduler; see the
README's *Sweeps*), each saved as it finishes and checkpointed every 25
epochs; Ctrl-C, then the same command, continues.

Try it:
- `--ablations` and look at figure noise.png: does the peak disappear at
  0 % noise, and does it grow and move to wider networks as noise rises?
- `--set epochs=50`: with early stopping instead of training to zero loss,
  is there still a peak? (Figure epochwise.png, drawn with `--ablations`, hints at it.)
- `--set train_split=0.5` (8000 training examples): does the interpolation
  threshold, and with it the peak, move to wider networks?
"""
# %% Imports
import dataclasses
import functools

import numpy as np

from mnist1d_np import data, experiment, nn, ops, plotting, train
from mnist1d_np.claims import Claim

# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    num_samples: int = 16_000          # 4000 train + 12000 test
    train_split: float = 0.25
    label_noise: float = 0.15          # fraction of training labels redrawn uniformly from 0..9
    mlp_widths: tuple = tuple(int(h) for h in np.unique(np.geomspace(2, 300, 20).astype(int)))  # h
    cnn_channels: tuple = tuple(range(2, 30, 2)) + tuple(range(30, 101, 5))
    epochs: int = 500
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 100
    dtype: str = "float32"             # as PyTorch
    depths: tuple = (1, 2, 3)          # --ablations: hidden layers of the MLP
    noise_levels: tuple = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30)  # --ablations

    def __post_init__(self):  # the fields the shared vocabulary does not check
        rules = (("mlp_widths", "integers >= 1", self.mlp_widths and min(self.mlp_widths) >= 1),
                 ("cnn_channels", "integers >= 1", self.cnn_channels and min(self.cnn_channels) >= 1),
                 ("depths", "integers >= 1", self.depths and min(self.depths) >= 1),
                 ("label_noise", "in [0, 1]", 0 <= self.label_noise <= 1),
                 ("noise_levels", "in [0, 1]", self.noise_levels and 0 <= min(self.noise_levels)
                  and max(self.noise_levels) <= 1), ("train_split", "in (0, 1)", 0 < self.train_split < 1))
        problems = [f"{name} must be {rule}, got {getattr(self, name)!r}" for name, rule, ok in rules if not ok]
        if problems:
            raise ValueError("; ".join(problems))


QUICK = dict(num_samples=2000, train_split=0.5, mlp_widths=(4, 16, 64), cnn_channels=(4, 16), epochs=20)
QUANTITIES = ("peak test error (%)", "peak at width", "train error first 0 at width",
              "peak above first valley (points)", "test error of the widest (%)")  # of a curve: see reading
NOTEBOOK = {"MLP, noisy": (54.05, 47, 61, 6.81, 45.47), "CNN, noisy": (33.8, 18, 24, 14.16, 27.66),
            "MLP, clean": (41.66, 36, 47, 0.64, 37.25)}  # its printout after 500 epochs; width: h or channels
PAPER = {f"{curve}: {quantity}": value for curve, values in NOTEBOOK.items()
         for quantity, value in zip(QUANTITIES, values)}


# %% The models and one training run
# One model of a sweep: the settings its training reads and what differs between models (its identity).
Model = experiment.task_config("Model", Settings, ("num_samples", "train_split", "epochs", "lr", "momentum",
                                                   "batch_size", "dtype"),
                               kind=str, width=int, depth=int, label_noise=float, seed=int)  # kind: "mlp" or "cnn"


@functools.lru_cache(maxsize=2)
def noisy_dataset(num_samples, train_split, label_noise, seed):
    """MNIST-1D (the paper's generator seed) with label_noise of the training labels redrawn."""
    clean = data.make_dataset(data.get_dataset_args(num_samples=num_samples, train_split=train_split))
    return data.with_label_noise(clean, label_noise, np.random.default_rng([seed, 1]))  # stream 1: the noise


def initial_model(config):
    """The model ('mlp': 40 -> width (x depth hidden layers, ReLU) -> 10; 'cnn': nn.ConvNet with `width`
    channels) and its batch-order generator, both drawn from (seed, kind, width, depth): the label noise
    changes neither."""
    streams = np.random.SeedSequence([config.seed, ("mlp", "cnn").index(config.kind), config.width, config.depth])
    init, order = (np.random.default_rng(s) for s in streams.spawn(2))
    if config.kind == "cnn":
        return nn.ConvNet(init, channels=config.width, dtype=config.dtype), order
    sizes, layers = [40] + [config.width] * config.depth, []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out, init, dtype=config.dtype), ops.relu]
    return nn.Sequential(*layers, nn.Linear(config.width, 10, init, dtype=config.dtype)), order


def train_model(config, context):
    """Train one model (a sweep task): its final and per-epoch errors (%) and its size."""
    dataset = noisy_dataset(config.num_samples, config.train_split, config.label_noise, config.seed)
    model, order = initial_model(config)
    curves = train.train_epochs(model, dataset, config.epochs, order, config.lr, config.momentum,
                                config.batch_size, context.checkpoint_path)
    return {"train_error": curves["train_error"][-1], "test_error": curves["test_error"][-1],
            "parameters": nn.count_parameters(model), "curves": curves}


# %% The sweeps: families of curves (test error against width), every distinct model trained once
def families(settings):
    """{family: {label: curve (kind, depth, label noise)}}: the notebook's three curves ("main"); for
    --ablations the noisy MLP with each number of hidden layers ("depth") and the MLP at each label
    noise ("noise"). Some curves recur in two families: their models are trained once."""
    noise = settings.label_noise
    return {"main": {"MLP, clean": ("mlp", 2, 0.0), "MLP, noisy": ("mlp", 2, noise), "CNN, noisy": ("cnn", 2, noise)},
            "depth": {f"{d} hidden layer{'s' * (d > 1)}": ("mlp", d, noise) for d in settings.depths},
            "noise": {f"{100 * level:g} % noise": ("mlp", 2, level) for level in settings.noise_levels}}


def models(settings, seed, kind, depth, noise):
    """A Model per width of the curve (kind, depth, label noise)."""
    return [Model.of(settings, kind=kind, width=w, depth=depth, label_noise=noise, seed=seed)
            for w in (settings.cnn_channels if kind == "cnn" else settings.mlp_widths)]


def train_curves(run, chosen):
    """{family: {label: a row per width}}: every distinct model trained once, the narrowest first (a run
    stopped early already has the small-width side of every curve, where the peaks are)."""
    sweep = {c: models(run.settings, run.args.seed, *c) for family in chosen.values() for c in family.values()}
    order = sorted(dict.fromkeys(m for row in sweep.values() for m in row), key=lambda m: m.width)
    done = dict(zip(order, run.sweep(train_model, order, label="models", folder="models")))
    return {name: {label: [dict(width=m.width, **done[m]) for m in sweep[curve]] for label, curve in family.items()}
            for name, family in chosen.items()}


# %% Reading the curves
def find_peak(rows):
    """The double-descent peak: the highest final test error at or after the first
    valley, the lowest test error below the interpolation threshold (the smallest
    width whose final train error is 0; None if no model fits the training set).
    Its height is measured above that valley; no peak gives a height near 0."""
    errors = np.array([row["test_error"] for row in rows])
    threshold = next((row["width"] for row in rows if row["train_error"] == 0), None)
    below = [i for i, row in enumerate(rows) if threshold is None or row["width"] < threshold]
    valley = below[int(np.argmin(errors[below]))] if below else 0
    peak = valley + int(np.argmax(errors[valley:]))
    return {"width": rows[peak]["width"], "test_error": float(errors[peak]),
            "valley_width": rows[valley]["width"], "height": float(errors[peak] - errors[valley]),
            "threshold": threshold}


def every_peak(curves):
    """{family: {label: find_peak(rows)}} of every curve."""
    return {family: {label: find_peak(rows) for label, rows in members.items()} for family, members in curves.items()}


def reading(rows):
    """QUANTITIES of one curve: errors in %, to 2 decimals as the notebook's; the threshold
    'not reached' when no model fits every training label."""
    peak = find_peak(rows)
    return (round(peak["test_error"], 2), peak["width"], peak["threshold"] or "not reached",
            round(peak["height"], 2), round(rows[-1]["test_error"], 2))


def readings(curves):
    """The table: QUANTITIES of each main curve; with --ablations, the same in one row per curve of the
    other families."""
    table = {f"{label}: {quantity}": value for label, rows in curves["main"].items()
             for quantity, value in zip(QUANTITIES, reading(rows))}
    table.update({f"ablation, {label}: peak (%) / at h / train error first 0 at / height / widest (%)": reading(rows)
                  for family in ("depth", "noise") for label, rows in curves.get(family, {}).items()})
    return table


# %% The paper's claims, judged on the saved curves (final errors after the last epoch)
def peak(label, key):
    """Claim value: a main curve's find_peak entry `key` (saved under results["peaks"])."""
    return lambda results: results["peaks"]["main"][label][key] if label in results["peaks"]["main"] else None


def fall_after_peak(label):
    """Claim value: the curve's peak test error minus its widest model's (points)."""
    def fall(results):
        rows = results["curves"]["main"].get(label)
        return None if rows is None else results["peaks"]["main"][label]["test_error"] - rows[-1]["test_error"]
    return fall


def peak_to_threshold(label):
    """Claim value: how far the peak's width is from the interpolation threshold (a ratio, >= 1)."""
    def ratio(results):
        entry = results["peaks"]["main"].get(label)
        if entry is None or entry["threshold"] is None:
            return None
        return max(entry["width"], entry["threshold"]) / min(entry["width"], entry["threshold"])
    return ratio


def notebook(label, quantity):
    return NOTEBOOK[label][QUANTITIES.index(quantity)]


PEAK_READING = ("a peak: at least 2 points above the first valley, about 4 binomial SDs of one error "
                "on the 12,000 test examples")
HEIGHT = "peak above first valley (points)"
CLAIMS = [
    Claim("with 15 % label noise, the MLP's test error peaks", "Figure 5", f"MLP, noisy: {HEIGHT}",
          peak("MLP, noisy", "height"), ">=", 2, paper=notebook("MLP, noisy", HEIGHT), reading=PEAK_READING),
    Claim("past the peak, the noisy MLP's test error falls again", "Figure 5",
          "MLP, noisy: peak minus the widest model's test error (points)", fall_after_peak("MLP, noisy"), ">", 2,
          paper=notebook("MLP, noisy", QUANTITIES[0]) - notebook("MLP, noisy", QUANTITIES[4])),
    Claim("the noisy MLP's peak lies near the interpolation threshold", "Figure 5 and its text",
          "MLP, noisy: larger over smaller of the peak's width and the threshold's", peak_to_threshold("MLP, noisy"),
          "<=", 1.5, paper=notebook("MLP, noisy", QUANTITIES[2]) / notebook("MLP, noisy", QUANTITIES[1]),
          reading="'near' read as within a factor 1.5 of the width where train error first reaches 0"),
    Claim("without label noise, the MLP shows no peak", "Figure 5", f"MLP, clean: {HEIGHT}",
          peak("MLP, clean", "height"), "<", 2, paper=notebook("MLP, clean", HEIGHT), reading=PEAK_READING),
    Claim("with 15 % label noise, the CNN's test error peaks too", "Figure 5", f"CNN, noisy: {HEIGHT}",
          peak("CNN, noisy", "height"), ">=", 2, paper=notebook("CNN, noisy", HEIGHT), reading=PEAK_READING),
]


# %% Figures
def plot_main(curves, noise):
    """The paper's three panels (MLP clean, MLP and CNN with noise): train and test error (%) against
    width, the interpolation threshold and the peak marked."""
    fig, axes = plotting.figure(1, 3, width=3.6, height=3.0)
    for ax, (label, rows) in zip(axes, curves.items()):
        for split in ("train", "test"):
            ax.plot([r["width"] for r in rows], [r[f"{split}_error"] for r in rows], "o-", ms=3, label=split)
        peak = find_peak(rows)
        if peak["threshold"] is not None:
            ax.axvline(peak["threshold"], color="gray", ls=":", label="train error first 0")
        if peak["height"] > 0:  # a curve that only descends has no peak to mark
            ax.plot(peak["width"], peak["test_error"], "kv", ms=6,
                    label=f"peak {peak['test_error']:.1f} % (valley +{peak['height']:.1f})")
        ax.set(xlabel="channels" if label.startswith("CNN") else "hidden units h", ylabel="error (%)", ylim=(-2, None),
               title=label.replace("clean", "clean labels").replace("noisy", f"{100 * noise:g} % label noise"))
        plotting.log_width_axis(ax)
        ax.legend(fontsize=7)
    return fig


def plot_test_errors(ax, curves, title, colors=None, thresholds=False):
    """Test error against width, one line per curve of {label: rows}; with thresholds, each one's dotted."""
    colors = [f"C{i}" for i in range(len(curves))] if colors is None else colors
    for (label, rows), color in zip(curves.items(), colors):
        ax.plot([r["width"] for r in rows], [r["test_error"] for r in rows], "o-", ms=3, color=color, label=label)
        if thresholds and find_peak(rows)["threshold"] is not None:
            ax.axvline(find_peak(rows)["threshold"], color=color, ls=":")
    ax.set(xlabel="hidden units h (per layer)", ylabel="test error (%)", title=title)
    plotting.log_width_axis(ax)
    ax.legend(fontsize=7)


def plot_epochwise(rows, title):
    """Test (solid) and train (dashed) error against epoch for widths below, at and above the peak."""
    at = [r["width"] for r in rows].index(find_peak(rows)["width"])
    fig, ax = plotting.figure(1, 1, width=4.5, height=3.2)
    for color, row in enumerate(rows[i] for i in sorted({max(at - 3, 0), at, min(at + 3, len(rows) - 1)})):
        epochs = np.arange(1, len(row["curves"]["test_error"]) + 1)
        ax.plot(epochs, row["curves"]["test_error"], color=f"C{color}", label=f"h = {row['width']}")
        ax.plot(epochs, row["curves"]["train_error"], color=f"C{color}", ls="--", lw=0.8)
    ax.set(xscale="log", xlabel="epoch", ylabel="error (%)", title=f"{title} (solid: test, dashed: train)")
    ax.legend(fontsize=7)
    return fig


def plot_noise(curves, levels):
    """Left: test error against width per noise level. Right: the peak's height against noise, labelled
    with its position."""
    fig, (left, right) = plotting.figure(1, 2, width=4.2, height=3.2)
    plot_test_errors(left, curves, "Label noise", colors=plotting.plt.cm.viridis(np.linspace(0, 1, len(levels))))
    peaks, noise = [find_peak(rows) for rows in curves.values()], 100 * np.array(levels)
    right.plot(noise, [p["height"] for p in peaks], "o-")
    for x, peak in zip(noise, peaks):
        if peak["height"] > 0:  # no peak, no position
            right.annotate(f"h = {peak['width']}", (x, peak["height"]), xytext=(3, -10), textcoords="offset points",
                           fontsize=7)
    right.set(xlabel="label noise (%)", ylabel="peak above first valley (points)", title="The peak against noise")
    return fig


# %% Main
def main():
    run = experiment.start("06_double_descent", __doc__, Settings, QUICK, sweeps=True,
                           ablations="also 1 and 3 hidden layers, and label noise 0-30 %%")
    chosen, noise = families(run.settings), run.settings.label_noise
    curves = train_curves(run, chosen if run.args.ablations else {"main": chosen["main"]})
    run.save_figure(plot_main(curves["main"], noise), "double_descent")
    if run.args.ablations:
        fig, ax = plotting.figure(1, 1, width=4.5, height=3.2)  # depth: 1, 2, 3 hidden layers, with noise
        plot_test_errors(ax, curves["depth"], "Depth (dotted: train error first 0)", thresholds=True)
        run.save_figure(fig, "depth")
        run.save_figure(plot_epochwise(curves["main"]["MLP, noisy"], f"MLP, {100 * noise:g} % noise"), "epochwise")
        run.save_figure(plot_noise(curves["noise"], run.settings.noise_levels), "noise")
    run.finish(dict(curves=curves, peaks=every_peak(curves)), PAPER, readings(curves),
               headers=("quantity", "notebook", "this run"),
               title=f"Final errors after {run.settings.epochs} epochs; noisy: {100 * noise:g} % label noise "
                     "(the notebook: 15 %)", claims=CLAIMS,
               curve=experiment.main_curve("Final test error against width", "width (h or channels)",
                                           "test error (%)", {label: ([r["width"] for r in rows],
                                                                      [r["test_error"] for r in rows])
                                                              for label, rows in curves["main"].items()}, "log"))


if __name__ == "__main__":
    experiment.run_chapter_main(main)
