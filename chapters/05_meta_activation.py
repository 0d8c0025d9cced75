"""Chapter 05 — metalearning an activation function.

Question: if the activation function of a network is itself a small neural
network, can we train it by backpropagating through whole training runs of
the network that uses it?

Setup (the notebook that produced the paper's Figure 6):
- MNIST-1D regenerated with num_samples=10000 (8000 train / 2000 test);
- inner model: MLP 40 -> 128 -> 10 whose activation is
  act(z) = ELU(z) + 0.2 * g(z), with g a tanh MLP 1 -> 100 -> 1 applied to
  every hidden unit;
- uniform noise U(-0.1, 0.1) added to the hidden units after the
  activation, and the same kind of noise inside g's hidden layer: one draw
  per forward pass, broadcast over the batch, from a generator reseeded at
  the start of every inner run (both switchable);
- inner optimizer: RMSProp, lr 1e-2, mu 0.4, avg_sq starting at ones;
  301 steps of batch 100 in a fixed order, from a fresh initialisation at
  every outer step; test accuracy on the first 500 test examples;
- meta-loss: the mean of the last 200 inner losses; its gradient with
  respect to g's 301 parameters flows back through all 301 RMSProp steps;
- outer loop: gradients clipped to +-0.1, SGD with lr 0.3, 301 steps.

The paper's answer: the learned function beats ReLU, ELU and Swish by more
than 5 points (the notebook reached 68.4 % at the end; a piecewise-linear
fit of the learned function, 66.4 %).

The paper's text describes g as 1 -> 100 -> 100 -> 1, while its code is
1 -> 100 -> 1. We follow the code by default; `--meta-hidden 100 100` gives
the text's version (plain Tensor ops: much slower and memory-hungry).

How it is fast: g is applied to 100 x 128 numbers per inner step, each
through 100 hidden units. Fused numba kernels (learned_activation.scalar_mlp) evaluate g,
g' and the products the meta-gradient needs in one pass each, keeping the
(elements x hidden units) intermediates in registers instead of memory, in
float32. The meta-gradient is still ordinary reverse-mode autodiff through
the unrolled run.

Run: python chapters/05_meta_activation.py          (301 outer steps, 7-12 min on 2 cores)
     python chapters/05_meta_activation.py --quick  (20 outer x 50 inner steps, < 1 min)
     python chapters/05_meta_activation.py --ablations   (+ noise off, widths 50 and 200: 16-40 min more)
The outer loop saves a checkpoint every few steps; rerun the same command
to continue an interrupted run (the result is identical). In a notebook
(VS Code, or Jupyter with jupytext) the `# %%` cells run one by one, with
the --quick settings unless you change `args`.

Try it
------
- `--no-noise`: the notebook's noise is a regulariser. Without it, does the
  learned function still beat ReLU, and does it look the same?
- Set `act_scale=0` in Settings: then act(z) = ELU(z) and nothing is
  learned. How far below the learned activation does plain ELU land?
- `--meta-hidden 100 100`: the paper's text's deeper g (slow, plain Tensor
  ops). Does a more flexible g find a better function?
"""
import dataclasses
import time

import numpy as np

import mnist1d_np
from mnist1d_np import Tensor, data, experiment, fileio, grad, nn, ops, optim, plotting, tensor, train
from mnist1d_np.learned_activation import scalar_mlp

DTYPE = np.float32


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    num_samples: int = 10000
    hidden: int = 128
    meta_hidden: tuple = (100,)
    act_scale: float = 0.2        # act(z) = ELU(z) + act_scale * g(z)
    noise: float = 0.1            # U(-noise, noise); 0 switches both noises off
    noise_in_g: bool = True
    inner_lr: float = 1e-2
    inner_mu: float = 0.4
    inner_steps: int = 301
    batch: int = 100
    meta_loss_last: int = 200
    test_examples: int = 500
    outer_steps: int = 301
    outer_lr: float = 0.3
    clip: float = 0.1
    baseline_inits: int = 5
    checkpoint_every: int = 5


QUICK = dict(inner_steps=50, meta_loss_last=33, outer_steps=20, baseline_inits=3)  # --quick
BASELINES = ["relu", "swish", "elu", "softplus", "tanh", "sigmoid"]
PAPER = {"learned": "68.4 (one run)", "piecewise-linear fit": "66.4 (one run)"}


# %% The meta-net g

def init_meta_params(settings, rng):
    """g's parameters as one flat vector, PyTorch-default initialisation.

    For 1 -> H -> 1 the layout is [w (H), c (H), a (H), b], as learned_activation.scalar_mlp wants.
    """
    sizes = (1,) + tuple(settings.meta_hidden) + (1,)
    layers = [nn.Linear(i, o, rng, dtype=DTYPE) for i, o in zip(sizes[:-1], sizes[1:])]
    if len(layers) == 2:
        (first, last) = layers
        return np.concatenate([first.weight.data[0], first.bias.data, last.weight.data[:, 0], last.bias.data])
    return np.concatenate([p.data.ravel() for layer in layers for p in layer.parameters().values()])


def meta_net(z, theta, settings, noise_g):
    """g(z) elementwise. The default 1 -> H -> 1 net runs in fused kernels."""
    if len(settings.meta_hidden) == 1:
        return scalar_mlp(z, theta, noise_g)
    return _deep_meta_net(z, theta, settings, noise_g)


def _deep_meta_net(z, theta, settings, noise_g):
    """g for deeper nets (the paper's text: 1 -> 100 -> 100 -> 1), from plain Tensor ops."""
    sizes = (1,) + tuple(settings.meta_hidden) + (1,)
    h, start = z.reshape(-1, 1), 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = theta[start:start + n_in * n_out].reshape(n_in, n_out)
        bias = theta[start + n_in * n_out:start + n_in * n_out + n_out]
        start += n_in * n_out + n_out
        h = h @ weight + bias
        if layer < len(sizes) - 2:
            h = ops.tanh(h)
            if noise_g is not None and layer == 0:
                h = h + noise_g
    return h.reshape(z.shape)


# %% The inner run

def in_dtype(dataset):
    """The dataset's signals in DTYPE (float32: the kernels run in one dtype)."""
    return {k: v.astype(DTYPE) if k.startswith("x") else v for k, v in dataset.items() if k != "templates"}


def init_inner_params(settings, rng):
    """A fresh MLP 40 -> hidden -> 10, PyTorch-default initialisation."""
    layers = (nn.Linear(40, settings.hidden, rng, dtype=DTYPE), nn.Linear(settings.hidden, 10, rng, dtype=DTYPE))
    return [p.data for layer in layers for p in layer.parameters().values()]


def forward(params, x, activation, noise_rng, settings):
    """Logits of the inner MLP; `activation(z, noise_g)` is applied to the hidden layer."""
    w1, b1, w2, b2 = params
    noise_g, noise_h = draw_noise(noise_rng, settings)
    h = activation(x @ w1 + b1, noise_g)
    if noise_h is not None:
        h = h + noise_h
    return h @ w2 + b2


def draw_noise(noise_rng, settings):
    """One draw per forward pass, broadcast over the batch: (g's hidden, the MLP's hidden)."""
    if settings.noise == 0:
        return None, None
    width = settings.meta_hidden[0]
    noise_g = noise_rng.uniform(-settings.noise, settings.noise, width).astype(DTYPE)
    noise_h = noise_rng.uniform(-settings.noise, settings.noise, settings.hidden).astype(DTYPE)
    return (noise_g if settings.noise_in_g else None), noise_h


def learned_activation(theta, settings):
    def act(z, noise_g):
        return ops.elu(z) + settings.act_scale * meta_net(z, theta, settings, noise_g)
    return act


def inner_run(activation, init, dataset, noise_seed, settings, differentiable):
    """Train the inner MLP with RMSProp; return (losses, final params, noise generator).

    With differentiable=True, every step is recorded (create_graph=True), so
    the losses can be differentiated with respect to whatever `activation`
    depends on.
    """
    x, y = dataset["x"], dataset["y"]
    noise_rng = np.random.default_rng(noise_seed)
    params = [Tensor(p, requires_grad=True) for p in init]
    rule = optim.rmsprop(settings.inner_lr, settings.inner_mu)
    state, losses = rule.init(params), []
    for step in range(settings.inner_steps):
        xb, yb = train.fixed_order_batch(x, y, step, settings.batch)
        loss = ops.cross_entropy(forward(params, xb, activation, noise_rng, settings), yb)
        grads = grad(loss, params, create_graph=differentiable)
        params, state = rule.update(params, grads, state)
        losses.append(loss if differentiable else loss.detach())  # detached: frees the step's graph
    return losses, params, noise_rng


def evaluate_accuracy(params, activation, dataset, noise_rng, settings):
    """Accuracy on the first `test_examples` test examples (the notebook's shared forward)."""
    n = settings.test_examples
    logits = forward([p.data for p in params], dataset["x_test"][:n], activation, noise_rng, settings)
    return float((logits.data.argmax(axis=1) == dataset["y_test"][:n]).mean())


def inner_seeds(seed, outer_step):
    """(initialisation rng, noise seed) of one inner run: fresh, and reproducible."""
    return np.random.default_rng([seed, outer_step, 0]), [seed, outer_step, 1]


# %% The outer loop

@tensor.cycle_collector_paused()  # a big graph and no cycles: the collector would only cost time
def meta_step(theta, settings, dataset, seed, outer_step):
    """One outer step: an unrolled inner run, its meta-loss and meta-gradient."""
    init_rng, noise_seed = inner_seeds(seed, outer_step)
    theta_t = Tensor(theta, requires_grad=True)
    activation = learned_activation(theta_t, settings)
    init = init_inner_params(settings, init_rng)
    losses, params, noise_rng = inner_run(activation, init, dataset, noise_seed, settings, True)
    meta_loss = ops.stack(losses[-settings.meta_loss_last:]).mean()
    meta_grad = grad(meta_loss, theta_t).data
    accuracy = evaluate_accuracy(params, activation, dataset, noise_rng, settings)
    return meta_loss.item(), meta_grad, accuracy


def metalearn(settings, dataset, seed, folder, name="metalearn", on_checkpoint=None):
    """Outer SGD on g's parameters, resuming from this run's checkpoint in `folder`.

    The checkpoint's file name and contents carry the run's identity (its
    settings, seed and package version: the data follow from the settings), so a
    run with another seed or other settings never resumes it, nor overwrites it.
    on_checkpoint(history): called after each checkpoint (e.g. to save partial results).
    Returns (theta, history, seconds per outer step run in this call, or None
    if the checkpoint was already complete).
    """
    theta = init_meta_params(settings, np.random.default_rng(seed))
    history = {"meta_loss": [], "test_acc": [], "snapshots": {}}
    identity = {"chapter": "05_meta_activation", "settings": dataclasses.asdict(settings), "seed": seed,
                "mnist1d_np_version": mnist1d_np.__version__}
    checkpoint_path = fileio.checkpoint_path(folder, name, identity)
    start = 0
    loaded = fileio.load_checkpoint(checkpoint_path, identity)
    if loaded is not None:
        theta, history, start = loaded[0]["theta"], loaded[1]["history"], loaded[1]["next_step"]
        print(f"resuming from outer step {start} ({checkpoint_path})")
    bar = experiment.Progress(settings.outer_steps, name)
    bar.update(start)
    clock = time.perf_counter()
    for step in range(start, settings.outer_steps):
        if step % max(1, settings.outer_steps // 10) == 0:
            history["snapshots"][str(step)] = theta.tolist()
        meta_loss, meta_grad, accuracy = meta_step(theta, settings, dataset, seed, step)
        theta = theta - settings.outer_lr * np.clip(meta_grad, -settings.clip, settings.clip)
        history["meta_loss"].append(meta_loss)
        history["test_acc"].append(accuracy)
        bar.update(1, meta_loss=meta_loss, test_acc=accuracy)
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.outer_steps:
            fileio.save_checkpoint(checkpoint_path, {"theta": theta}, {"next_step": step + 1, "history": history},
                                   identity)
            if on_checkpoint is not None:
                on_checkpoint(history)
    history["snapshots"][str(settings.outer_steps)] = theta.tolist()
    steps_run = settings.outer_steps - start
    seconds_per_step = (time.perf_counter() - clock) / steps_run if steps_run else None
    return theta, history, seconds_per_step


# %% Baselines and the piecewise-linear fit

def fixed_activation(name):
    fn = getattr(ops, name)
    return lambda z, noise_g: fn(z)


def piecewise_linear_fit(theta, settings, knots=np.linspace(-5, 5, 41)):
    """Knots and values of the learned act(z) (without noise), as a linear interpolant."""
    values = learned_activation(Tensor(theta), settings)(Tensor(knots.astype(DTYPE)), None).data
    return knots, values


def piecewise_linear(knots, values):
    """act(z) interpolating (knots, values), extended linearly: a sum of shifted ReLUs."""
    slopes = np.diff(values) / np.diff(knots)
    kinks = np.diff(slopes)

    def act(z, noise_g):
        out = values[0] + slopes[0] * (z - knots[0])
        for knot, kink in zip(knots[1:-1], kinks):
            out = out + kink * ops.relu(z - DTYPE(knot))
        return out.astype(DTYPE) if out.dtype != DTYPE else out
    return act


def compare_activations(activations, settings, dataset, seed, n_inits):
    """Final test accuracy of each activation over n_inits identical inner runs."""
    table = {name: [] for name in activations}
    bar = experiment.Progress(n_inits * len(activations), "baselines")
    for i in range(n_inits):
        init_rng, noise_seed = inner_seeds(seed + 1000, i)  # inits never seen in metalearning
        init = init_inner_params(settings, init_rng)
        for name, act in activations.items():
            _, params, noise_rng = inner_run(act, init, dataset, noise_seed, settings, False)
            table[name].append(evaluate_accuracy(params, act, dataset, noise_rng, settings))
            bar.update(1)
    return table


# %% The table and the figure

def plot_results(history, table, snapshots, fit, settings):
    fig, axes = plotting.figure(1, 3, width=3.6, height=3.0)
    axes[0].plot(history["meta_loss"], color="k")
    axes[0].set(title="meta-loss (mean of last inner losses)", xlabel="outer step")
    axes[1].plot(100 * np.array(history["test_acc"]), color="k", lw=0.8, label="learned (during metalearning)")
    for i, name in enumerate(table):
        axes[1].axhline(100 * np.mean(table[name]), color=f"C{i}", lw=1, ls="--", label=name)
    axes[1].set(title="test accuracy (%)", xlabel="outer step")
    axes[1].legend(fontsize=6)
    z = np.linspace(-4, 4, 200).astype(DTYPE)
    colors = plotting.plt.cm.viridis(np.linspace(0, 1, len(snapshots)))
    for color, (step, theta) in zip(colors, sorted(snapshots.items(), key=lambda kv: int(kv[0]))):
        act = learned_activation(Tensor(np.asarray(theta, DTYPE)), settings)
        axes[2].plot(z, act(Tensor(z), None).data, color=color, lw=1, label=f"step {step}")
    axes[2].plot(*fit, "r:", lw=1.5, label="piecewise-linear fit")
    axes[2].set(title="learned activation", xlabel="z", ylim=(-2, 4))
    axes[2].legend(fontsize=5)
    return fig


# %% Main

def run_experiment(run, settings, seed, ablations):
    """Metalearn g, fit it, compare it with the baselines; optionally the ablations."""
    dataset = in_dtype(data.make_dataset(data.get_dataset_args(num_samples=settings.num_samples)))
    theta, history, seconds_per_step = metalearn(settings, dataset, seed, run.path(""), "metalearn",
                                                 on_checkpoint=lambda h: run.save_partial({"history": h}))
    fit = piecewise_linear_fit(theta, settings)
    activations = {"learned": learned_activation(Tensor(theta), settings),
                   "piecewise-linear fit": piecewise_linear(*fit)}
    activations.update({name: fixed_activation(name) for name in BASELINES})
    table = compare_activations(activations, settings, dataset, seed, settings.baseline_inits)
    results = {"history": history, "final_theta": theta, "fit": {"knots": fit[0], "values": fit[1]},
               "final_test_acc": table, "seconds_per_outer_step": seconds_per_step,
               "peak_rss_mb": experiment.peak_rss_mb()}
    if ablations:
        results["ablations"] = run_ablations(run, settings, dataset, seed)
    return results


def paper_vs_run(results):
    """Rows of the *quantity | paper | this run* table."""
    table, history = results["final_test_acc"], results["history"]
    rows = [(f"{name} test acc. (%)", PAPER.get(name, "—"), experiment.mean_sd(accs, scale=100))
            for name, accs in table.items()]
    rows.append(("learned, at the last outer step (%)", "68.4", f"{100 * history['test_acc'][-1]:.1f}"))
    best_baseline = max(np.mean(table[b]) for b in ("relu", "elu", "swish"))
    rows.append(("learned minus best of ReLU/ELU/Swish (points)", "> 5",
                 f"{100 * (np.mean(table['learned']) - best_baseline):+.1f}"))
    seconds = results["seconds_per_outer_step"]
    rows.append(("seconds per outer step", "19.3 (PyTorch CPU)",
                 "— (resumed: none run)" if seconds is None else f"{seconds:.2f}"))
    for name, ablation in results.get("ablations", {}).items():
        rows.append((f"ablation {name}: learned test acc. (%)", "—", experiment.mean_sd(ablation["test_acc"], 100)))
    return rows


def run_ablations(run, settings, dataset, seed):
    variants = {"no_noise": dataclasses.replace(settings, noise=0.0),
                "width50": dataclasses.replace(settings, meta_hidden=(50,)),
                "width200": dataclasses.replace(settings, meta_hidden=(200,))}
    out = {}
    for name, variant in variants.items():
        theta, history, _ = metalearn(variant, dataset, seed, run.path(""), name)
        table = compare_activations({"learned": learned_activation(Tensor(theta), variant)}, variant,
                                    dataset, seed, settings.baseline_inits)
        out[name] = {"final_meta_loss": history["meta_loss"][-1], "test_acc": table["learned"]}
    return out


def main():
    parser = experiment.chapter_parser("05_meta_activation", __doc__)
    parser.add_argument("--meta-hidden", type=int, nargs="+", default=[100],
                        help="hidden layer sizes of g (the code: 100; the paper's text: 100 100)")
    parser.add_argument("--no-noise", action="store_true", help="switch both hidden-unit noises off")
    parser.add_argument("--ablations", action="store_true",
                        help="also metalearn without noise and with g widths 50 and 200")
    args = experiment.parse_args(parser)
    if any(h < 1 for h in args.meta_hidden):
        parser.error("--meta-hidden sizes must be >= 1")
    settings = experiment.chapter_settings(Settings, QUICK, args.quick, meta_hidden=tuple(args.meta_hidden),
                                           noise=0.0 if args.no_noise else Settings.noise)
    run = experiment.Run("05_meta_activation", args, settings)
    results = run_experiment(run, settings, args.seed, args.ablations)
    table = paper_vs_run(results)
    experiment.print_table(table, title=f"Final test accuracy over {settings.baseline_inits} "
                                                         "fresh inner initialisations (mean ± SD)")
    run.save_figure(plot_results(results["history"], results["final_test_acc"], results["history"]["snapshots"],
                                 (results["fit"]["knots"], results["fit"]["values"]), settings), "activation")
    run.save_results("results", results, table)


if __name__ == "__main__":
    experiment.run_chapter_main(main)
