"""Chapter 06 — deep double descent: test error rises, then falls, as models grow.

Question: classical statistics says a model that grows past the size where
it can fit its training data should generalise worse and worse. Is that
what happens to neural networks trained on MNIST-1D with noisy labels?

The paper's answer (Greydanus & Kobak, Figure 5; the notebook
deep-double-descent.ipynb): no. With 15 % of the training labels replaced
by random ones, the test error of an MLP 40 -> h -> h -> 10 first falls,
then climbs to a peak near the width where the network first fits every
training label (the interpolation threshold), then falls again as h grows
further: "test error peaked around 50 neurons". The notebook printed, after
500 epochs of SGD (lr 0.01, momentum 0.9, batch 100):

    MLP, 15 % noise   test error peaks at 54.05 % at h = 47; train error first 0 at h = 61
    MLP, clean        test error levels off near 41 % (h = 27..61): no peak
    CNN, 15 % noise   test error peaks at 33.8 % at 18 channels; train error first 0 at 24

The data: MNIST-1D regenerated with 16000 examples, 4000 for training and
12000 for testing (the large test set makes the curves smooth). Every
model starts from PyTorch's default initialisation and runs in float32.
Label noise is drawn once from the --seed, on a copy of the data (the clean
labels are never touched); for one width, the clean and the noisy model
share their initial weights and their batch order, so the labels are the
only difference.

Run: python chapters/06_double_descent.py             (67 models of 500 epochs, 25.7 min on 2 idle cores)
     python chapters/06_double_descent.py --quick     (3 widths, 20 epochs, 1000 + 1000 examples: < 1 min)
     python chapters/06_double_descent.py --ablations (+ 1 and 3 hidden layers, noise 5-30 %: 10.4 min more;
                                                      36.5 min for both in one invocation)
The times were measured on 2026-11-26; about half of the work is evaluating
every model after every epoch on all 16000 examples, as the notebook does.
Models train in parallel processes (--workers, default one per core), each
saved as soon as it finishes; an interrupted run resumes where it stopped
(a model from its last checkpoint, every 25 epochs) when rerun.

Try it:
- `--ablations` and look at figure noise.png: does the peak disappear at
  0 % noise, and does it grow and move to wider networks as noise rises?
- Set `epochs=50` in Settings: with early stopping instead of training to
  zero loss, is there still a peak? (Figure epochwise.png hints at it.)
- Set `train_split=0.5` (8000 training examples): does the interpolation
  threshold, and with it the peak, move to wider networks?
"""
# %% Imports
import dataclasses
import functools
import json

import numpy as np

from mnist1d_np import data, experiment, nn, ops, plotting, runmany, train

NAME = "06_double_descent"

# %% Settings (the notebook's)
MLP_WIDTHS = tuple(int(h) for h in np.unique(np.geomspace(2, 300, 20).astype(int)))
CNN_CHANNELS = tuple(range(2, 30, 2)) + tuple(range(30, 101, 5))


@dataclasses.dataclass(frozen=True)
class Settings:
    num_samples: int = 16_000          # 4000 train + 12000 test
    train_split: float = 0.25
    label_noise: float = 0.15          # fraction of training labels redrawn uniformly from 0..9
    mlp_widths: tuple = MLP_WIDTHS     # h of the MLP 40 -> h -> h -> 10
    cnn_channels: tuple = CNN_CHANNELS  # channels of the paper's three-layer CNN
    epochs: int = 500
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 100
    depths: tuple = (1, 2, 3)          # --ablations: hidden layers of the MLP
    noise_levels: tuple = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30)  # --ablations


QUICK = dict(num_samples=2000, train_split=0.5, mlp_widths=(4, 16, 64), cnn_channels=(4, 16), epochs=20)

PAPER = {  # the notebook's printout (errors in %); height: the peak above the first valley (see find_peak)
    "mlp_noisy": {"peak_error": 54.05, "peak_width": 47, "threshold": 61, "widest_error": 45.47,
                  "height": 6.81},   # 54.05 at h = 47 above 47.24 at h = 16
    "mlp_clean": {"error_at_47": 41.01, "threshold": 47, "widest_error": 37.25,
                  "height": 0.64},   # 41.66 at h = 36 above 41.02 at h = 27
    "cnn_noisy": {"peak_error": 33.80, "peak_width": 18, "threshold": 24, "widest_error": 27.66,
                  "height": 14.16},  # 33.80 at 18 channels above 19.64 at 10
}
DTYPE = np.float32                     # as PyTorch
CHECKPOINT_EVERY = 25                  # epochs between a model's checkpoints
NOISE_STREAM = 1                       # the label-noise generator is default_rng([seed, NOISE_STREAM])
MODEL_KINDS = ("mlp", "cnn")


# %% The models and one training run

def make_model(kind, width, depth, rng):
    """'mlp': 40 -> width (x depth hidden layers, ReLU) -> 10; 'cnn': nn.ConvNet with `width` channels."""
    if kind == "cnn":
        return nn.ConvNet(rng, channels=width, dtype=DTYPE)
    sizes, layers = [40] + [width] * depth, []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out, rng, dtype=DTYPE), ops.relu]
    return nn.Sequential(*layers, nn.Linear(width, 10, rng, dtype=DTYPE))


@functools.lru_cache(maxsize=2)
def noisy_dataset(num_samples, train_split, label_noise, seed):
    """MNIST-1D (the paper's generator seed) with label_noise of the training labels redrawn."""
    clean = data.make_dataset(data.get_dataset_args(num_samples=num_samples, train_split=train_split))
    return data.with_label_noise(clean, label_noise, np.random.default_rng([seed, NOISE_STREAM]))


def train_model(config, context):
    """One model of a sweep (a run-many task): its final and per-epoch errors (%).

    config: {model, width, depth, label_noise, seed, num_samples, train_split,
    epochs, lr, momentum, batch_size}. The initial weights and the batch
    order come from (seed, model, width, depth), so they do not depend on the
    label noise. context: checkpoint_path and should_stop, from runmany.
    """
    dataset = noisy_dataset(config["num_samples"], config["train_split"], config["label_noise"],
                            config["seed"])
    streams = np.random.SeedSequence([config["seed"], MODEL_KINDS.index(config["model"]),
                                      config["width"], config["depth"]]).spawn(2)
    init_rng, order_rng = (np.random.default_rng(s) for s in streams)
    model = make_model(config["model"], config["width"], config["depth"], init_rng)
    curves = train.train_epochs(
        model, dataset, config["epochs"], order_rng, lr=config["lr"], momentum=config["momentum"],
        batch_size=config["batch_size"], checkpoint_path=context.checkpoint_path,
        checkpoint_every=CHECKPOINT_EVERY, should_stop=context.should_stop)
    return {"train_error": curves["train_error"][-1], "test_error": curves["test_error"][-1],
            "parameters": nn.count_parameters(model), "curves": curves}


# %% The sweeps

def sweep(settings, seed, model, widths, depth=2, label_noise=None):
    """The configs of one curve: one model per width."""
    noise = settings.label_noise if label_noise is None else label_noise
    common = {k: getattr(settings, k) for k in ("num_samples", "train_split", "epochs", "lr",
                                                "momentum", "batch_size")}
    return [dict(model=model, width=int(w), depth=depth, label_noise=float(noise), seed=seed, **common)
            for w in widths]


def curve_name(model, depth, label_noise):
    """'mlp2_noise15': the MLP with 2 hidden layers and 15 % label noise; 'cnn_noise15'."""
    return f"{model}{depth if model == 'mlp' else ''}_noise{100 * label_noise:g}"


def main_curves(settings):
    """The paper's three curves: {role: curve name}."""
    return {"mlp_clean": curve_name("mlp", 2, 0.0), "mlp_noisy": curve_name("mlp", 2, settings.label_noise),
            "cnn_noisy": curve_name("cnn", 2, settings.label_noise)}


def all_sweeps(settings, seed, ablations):
    """{curve name: configs}: the paper's three curves, plus the ablations' if asked
    (a curve that is in both, like depth 2 at the main noise level, is listed once)."""
    curves = [("mlp", 2, 0.0), ("mlp", 2, settings.label_noise), ("cnn", 2, settings.label_noise)]
    if ablations:
        curves += [("mlp", depth, settings.label_noise) for depth in settings.depths]
        curves += [("mlp", 2, level) for level in settings.noise_levels]
    widths = {"mlp": settings.mlp_widths, "cnn": settings.cnn_channels}
    return {curve_name(*c): sweep(settings, seed, c[0], widths[c[0]], c[1], c[2]) for c in curves}


def estimated_seconds(config):
    """Rough time of one model on one core (measured 2026-11-25), for the schedule."""
    width = config["width"]
    if config["model"] == "cnn":
        return config["epochs"] * (0.02 + 6e-5 * width ** 2)
    return config["epochs"] * (0.01 + 9e-7 * (config["depth"] - 1) * width ** 2 + 2e-7 * width)


def schedule(configs):
    """Cheapest first: a run stopped early already has the small-width side of
    every curve, where the peaks are (the widest models take most of the time).
    The last models are of similar sizes, so the workers finish nearly together."""
    return sorted(configs, key=estimated_seconds)


def run_sweeps(sweeps, folder, args):
    """Train every distinct model once (run-many); rows per curve, by width."""
    key = functools.partial(json.dumps, sort_keys=True)
    unique = {key(c): c for configs in sweeps.values() for c in configs}
    order = schedule(unique.values())
    results = runmany.run_many(train_model, order, folder, workers=args.workers,
                               scheduler=args.scheduler, label="models")
    done = {key(c): r for c, r in zip(order, results)}
    return {name: [dict(width=c["width"], **done[key(c)]) for c in configs]
            for name, configs in sweeps.items()}


# %% Reading the curves

def interpolation_threshold(rows):
    """The smallest width whose final train error is 0 (None if no model fits the training set)."""
    return next((row["width"] for row in rows if row["train_error"] == 0), None)


def find_peak(rows):
    """The double-descent peak: the highest final test error at or after the
    first valley (the lowest test error below the interpolation threshold).
    Its height is measured above that valley; no peak gives a height near 0."""
    errors = np.array([row["test_error"] for row in rows])
    threshold = interpolation_threshold(rows)
    below = [i for i, row in enumerate(rows) if threshold is None or row["width"] < threshold]
    valley = below[int(np.argmin(errors[below]))] if below else 0
    peak = valley + int(np.argmax(errors[valley:]))
    return {"width": rows[peak]["width"], "test_error": float(errors[peak]),
            "valley_width": rows[valley]["width"], "height": float(errors[peak] - errors[valley]),
            "threshold": threshold}


def summarise(curves):
    """{curve name: find_peak(...)} for every curve."""
    return {name: find_peak(rows) for name, rows in curves.items()}


def main_rows(curves, settings):
    """{'mlp_clean', 'mlp_noisy', 'cnn_noisy': that curve's rows}."""
    return {role: curves[name] for role, name in main_curves(settings).items()}


def error_at(rows, width):
    """The final test error (%) of the model of this width, as text ('-' if not in the sweep)."""
    row = next((r for r in rows if r["width"] == width), None)
    return "-" if row is None else f"{row['test_error']:.2f}"


def _reached(threshold):
    return "not reached" if threshold is None else threshold


def noisy_rows(label, unit, paper, peak, widest_error):
    """Table rows for a curve with label noise: the notebook's numbers against ours."""
    return [(f"{label}: peak test error (%)", f"{paper['peak_error']:.2f}", f"{peak['test_error']:.2f}"),
            (f"{label}: peak at {unit}", paper["peak_width"], peak["width"]),
            (f"{label}: train error first 0 at {unit}", paper["threshold"], _reached(peak["threshold"])),
            (f"{label}: peak above first valley (points)", f"{paper['height']:.2f}", f"{peak['height']:.2f}"),
            (f"{label}: test error of the widest (%)", f"{paper['widest_error']:.2f}", f"{widest_error:.2f}")]


def paper_vs_run(curves, noise):
    """Rows (quantity, notebook, this run) of the final table. curves: main_rows(...)."""
    peaks = {role: find_peak(rows) for role, rows in curves.items()}
    rows = noisy_rows(f"MLP, {100 * noise:g} % noise", "h", PAPER["mlp_noisy"], peaks["mlp_noisy"],
                      curves["mlp_noisy"][-1]["test_error"])
    rows += noisy_rows(f"CNN, {100 * noise:g} % noise", "channels", PAPER["cnn_noisy"], peaks["cnn_noisy"],
                       curves["cnn_noisy"][-1]["test_error"])
    paper, clean = PAPER["mlp_clean"], peaks["mlp_clean"]
    return rows + [
        ("MLP, clean: test error at h = 47 (%)", f"{paper['error_at_47']:.2f}", error_at(curves["mlp_clean"], 47)),
        ("MLP, clean: train error first 0 at h", paper["threshold"], _reached(clean["threshold"])),
        ("MLP, clean: peak above first valley (points)", f"{paper['height']:.2f}", f"{clean['height']:.2f}"),
        ("MLP, clean: test error of the widest (%)", f"{paper['widest_error']:.2f}",
         f"{curves['mlp_clean'][-1]['test_error']:.2f}")]


def ablation_rows(curves, settings):
    """Rows (quantity, '-', this run) for the ablations: each curve's peak and threshold."""
    noise, rows = settings.label_noise, []
    for depth in settings.depths:
        peak = find_peak(curves[curve_name("mlp", depth, noise)])
        rows.append((f"ablation, MLP {depth} hidden layer{'s' * (depth > 1)}, {100 * noise:g} % noise: "
                     "peak test error (%) at h; train error first 0 at h", "-",
                     f"{peak['test_error']:.2f} at {peak['width']}; {_reached(peak['threshold'])}"))
    for level in settings.noise_levels:
        peak = find_peak(curves[curve_name("mlp", 2, level)])
        height = f"{peak['height']:.2f} at {peak['width']}" if peak["height"] > 0 else "no peak"
        rows.append((f"ablation, MLP, {100 * level:g} % noise: peak above first valley (points) at h; "
                     "train error first 0 at h", "-", f"{height}; {_reached(peak['threshold'])}"))
    return rows


# %% Figures

def log_width_axis(ax):
    """A log x axis for widths, labelled 2, 5, 10, 20, ... rather than 2 x 10^0."""
    import matplotlib.ticker as ticker
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.FixedLocator([2, 5, 10, 20, 50, 100, 200, 500]))
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def plot_error_curve(ax, rows, title, xlabel="hidden units h"):
    """Train and test error (%) against width, log x axis; the threshold and the peak marked."""
    widths = [r["width"] for r in rows]
    ax.plot(widths, [r["train_error"] for r in rows], "o-", ms=3, label="train")
    ax.plot(widths, [r["test_error"] for r in rows], "o-", ms=3, label="test")
    peak = find_peak(rows)
    if peak["threshold"] is not None:
        ax.axvline(peak["threshold"], color="gray", ls=":", label="train error first 0")
    if peak["height"] > 0:  # a curve that only descends has no peak to mark
        ax.plot([peak["width"]], [peak["test_error"]], "kv", ms=6,
                label=f"peak {peak['test_error']:.1f} % (valley +{peak['height']:.1f})")
    ax.set(xlabel=xlabel, ylabel="error (%)", title=title, ylim=(-2, None))
    log_width_axis(ax)
    ax.legend(fontsize=7)


def plot_main(curves, noise):
    """The paper's three panels: MLP clean, MLP with noise, CNN with noise. curves: main_rows(...)."""
    fig, axes = plotting.figure(1, 3, width=3.6, height=3.0)
    plot_error_curve(axes[0], curves["mlp_clean"], "MLP, clean labels")
    plot_error_curve(axes[1], curves["mlp_noisy"], f"MLP, {100 * noise:g} % label noise")
    plot_error_curve(axes[2], curves["cnn_noisy"], f"CNN, {100 * noise:g} % label noise", "channels")
    return fig


def plot_depth(curves, depths, noise):
    """Test error against width for 1, 2, 3 hidden layers (with noise); thresholds dotted."""
    fig, ax = plotting.figure(1, 1, width=4.5, height=3.2)
    for color, depth in enumerate(depths):
        rows = curves[curve_name("mlp", depth, noise)]
        ax.plot([r["width"] for r in rows], [r["test_error"] for r in rows], "o-", ms=3,
                color=f"C{color}", label=f"{depth} hidden layer{'s' * (depth > 1)}")
        threshold = interpolation_threshold(rows)
        if threshold is not None:
            ax.axvline(threshold, color=f"C{color}", ls=":")
    ax.set(xlabel="hidden units per layer", ylabel="test error (%)",
           title="Depth (dotted: train error first 0)")
    log_width_axis(ax)
    ax.legend(fontsize=7)
    return fig


def plot_epochwise(rows, title):
    """Test (solid) and train (dashed) error against epoch for widths below, at and above the peak."""
    widths = [r["width"] for r in rows]
    at = widths.index(find_peak(rows)["width"])
    picks = sorted({max(at - 3, 0), at, min(at + 3, len(rows) - 1)})
    fig, ax = plotting.figure(1, 1, width=4.5, height=3.2)
    for color, i in enumerate(picks):
        curves = rows[i]["curves"]
        epochs = np.arange(1, len(curves["test_error"]) + 1)
        ax.plot(epochs, curves["test_error"], color=f"C{color}", label=f"h = {widths[i]}")
        ax.plot(epochs, curves["train_error"], color=f"C{color}", ls="--", lw=0.8)
    ax.set(xscale="log", xlabel="epoch", ylabel="error (%)",
           title=f"{title} (solid: test, dashed: train)")
    ax.legend(fontsize=7)
    return fig


def plot_noise(curves, levels):
    """Left: test error against width per noise level. Right: the peak's height and position."""
    fig, (left, right) = plotting.figure(1, 2, width=4.2, height=3.2)
    peaks = []
    for color, level in enumerate(levels):
        rows = curves[curve_name("mlp", 2, level)]
        left.plot([r["width"] for r in rows], [r["test_error"] for r in rows], "o-", ms=2,
                  color=plotting.plt.cm.viridis(color / max(len(levels) - 1, 1)), label=f"{100 * level:g} %")
        peaks.append(find_peak(rows))
    left.set(xlabel="hidden units h", ylabel="test error (%)", title="Label noise")
    log_width_axis(left)
    left.legend(fontsize=7)
    noise = 100 * np.array(levels)
    right.plot(noise, [p["height"] for p in peaks], "o-", label="peak above valley (points)")
    right.set(xlabel="label noise (%)", ylabel="peak height (points)", title="The peak against noise")
    twin = right.twinx()
    positions = [p["width"] if p["height"] > 0 else np.nan for p in peaks]   # no peak, no position
    twin.plot(noise, positions, "s--", color="C1", label="peak position (h)")
    twin.set(ylabel="peak at h", yticks=sorted({w for w in positions if not np.isnan(w)}))
    right.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="lower right")
    return fig


# %% Main

def save_figures(run, curves, settings, ablations):
    noise = settings.label_noise
    main = main_rows(curves, settings)
    run.save_figure(plot_main(main, noise), "double_descent")
    if ablations:
        run.save_figure(plot_depth(curves, settings.depths, noise), "depth")
        run.save_figure(plot_epochwise(main["mlp_noisy"], f"MLP, {100 * noise:g} % noise"), "epochwise")
        run.save_figure(plot_noise(curves, settings.noise_levels), "noise")


def main():
    parser = experiment.chapter_parser(NAME, __doc__)
    parser.add_argument("--ablations", action="store_true",
                        help="also 1 and 3 hidden layers, and label noise 0-30 %%")
    runmany.add_arguments(parser)
    args = experiment.parse_args(parser)
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run(NAME, args, settings)
    sweeps = all_sweeps(settings, args.seed, args.ablations)
    curves = run_sweeps(sweeps, run.path("models"), args)
    table = paper_vs_run(main_rows(curves, settings), settings.label_noise)
    if args.ablations:
        table += ablation_rows(curves, settings)
    experiment.print_table(table, headers=("quantity", "notebook", "this run"),
                           title=f"Final errors after {settings.epochs} epochs")
    save_figures(run, curves, settings, args.ablations)
    run.save_results("results", {"main_curves": main_curves(settings), "peaks": summarise(curves),
                                 "curves": curves}, table)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
