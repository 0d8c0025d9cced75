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
1 -> 100 -> 1. We follow the code by default; `--set meta_hidden=100,100`
gives the text's version (plain Tensor ops: much slower and memory-hungry).

How it is fast: g is applied to 100 x 128 numbers per inner step, each
through 100 hidden units. Fused numba kernels (learned_activation.scalar_mlp) evaluate g,
g' and the products the meta-gradient needs in one pass each, keeping the
(elements x hidden units) intermediates in registers instead of memory, in
float32. The meta-gradient is still ordinary reverse-mode autodiff through
the unrolled run.

Run: python chapters/05_meta_activation.py              (301 outer steps)
     python chapters/05_meta_activation.py --quick      (20 outer x 50 inner steps)
     python chapters/05_meta_activation.py --ablations  (+ noise off, g widths 50 and 200)
The outer loop saves a checkpoint after every step; rerun the same command
to continue an interrupted run (the result is identical). A finished
metalearning is kept: changing only seeds (the comparison's) reuses it.
--seed S: g starts from default_rng((S, 0, 4)), the inner run of outer step
t from an initialisation and noise seeded by (S, t, 0) and (S, t, 1), and the
final comparison's run i by (S, i, 2) and (S, i, 3): initialisations that no
metalearning saw, and two seeds share none. (Not default_rng(S): NumPy's
SeedSequence gives default_rng(S) the stream of default_rng((S, 0, 0)).)

Try it:
- `--set noise=0`: the notebook's noise is a regulariser. Without it, does
  the learned function still beat ReLU, and does it look the same?
- `--set act_scale=1`: act(z) = ELU(z) + g(z), g's part five times the
  notebook's 0.2. Does a freer g learn a better function, or a less stable
  metalearning?
- `--set meta_hidden=100,100`: the paper's text's deeper g (slow, plain
  Tensor ops). Does a more flexible g find a better function?
"""
import dataclasses
import time

import numpy as np

from mnist1d_np import Tensor, data, experiment, grad, nn, ops, optim, plotting, resumable, tensor, train
from mnist1d_np.claims import Claim
from mnist1d_np.learned_activation import scalar_mlp
from mnist1d_np.progress import progress


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Metalearning:
    """What one metalearning run reads: its identity."""
    num_samples: int = 10000      # MNIST-1D regenerated with this many examples (80 % train)
    hidden_size: int = 128        # the inner MLP: 40 -> hidden_size -> 10
    meta_hidden: tuple = (100,)   # g: 1 -> meta_hidden -> 1, tanh
    act_scale: float = 0.2        # act(z) = ELU(z) + act_scale * g(z)
    noise: float = 0.1            # U(-noise, noise); 0 switches both noises off
    noise_in_g: bool = True
    lr: float = 1e-2              # the inner RMSProp
    mu: float = 0.4
    steps: int = 301
    batch_size: int = 100
    meta_loss_last: int = 200     # the meta-loss: the mean of the last this many inner losses
    test_examples: int = 500
    outer_steps: int = 301
    outer_lr: float = 0.3
    clip: float = 0.1             # meta-gradients clipped to +-clip
    dtype: str = "float32"        # the fused kernels' (and everything else's)

    def __post_init__(self):
        if not self.meta_hidden or min(self.meta_hidden) < 1:
            raise ValueError(f"meta_hidden: g's layer sizes must be >= 1, got {self.meta_hidden}")


@dataclasses.dataclass(frozen=True)
class Settings(Metalearning):
    seeds: int = 5                # the final comparison: inner runs from this many fresh initialisations


QUICK = dict(steps=50, meta_loss_last=33, outer_steps=20, seeds=3)
ABLATIONS = {"no_noise": dict(noise=0.0), "width50": dict(meta_hidden=(50,)), "width200": dict(meta_hidden=(200,))}
# One run of the notebook, and the paper's text
PAPER = {"learned, at the last outer step (%)": 68.4, "piecewise-linear fit test acc. (%)": 66.4,
         "learned minus best of ReLU/ELU/Swish (points)": "> 5", "seconds per outer step": "19.3 (PyTorch CPU)"}


# %% The meta-net g
def init_layers(sizes, rng, dtype):
    """The parameters (Tensors) of PyTorch-default Linear layers sizes[0] -> sizes[1] -> ...,
    each layer's weight (in, out) then its bias."""
    layers = [nn.Linear(n_in, n_out, rng, dtype=np.dtype(dtype)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return [p for layer in layers for p in layer.parameters().values()]


def init_meta_params(settings, rng):
    """g's parameters as one flat vector. For 1 -> H -> 1 that is [w (H), c (H), a (H), b], the
    layout learned_activation.scalar_mlp wants."""
    return np.concatenate([p.data.ravel() for p in init_layers((1, *settings.meta_hidden, 1), rng, settings.dtype)])


def meta_net(z, theta, settings, noise_g):
    """g(z) elementwise, noise_g added to its first hidden layer. The default 1 -> H -> 1 net runs
    in fused kernels; deeper ones (the paper's text: 1 -> 100 -> 100 -> 1) in plain Tensor ops."""
    if len(settings.meta_hidden) == 1:
        return scalar_mlp(z, theta, noise_g)
    sizes, h, start = (1, *settings.meta_hidden, 1), z.reshape(-1, 1), 0
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if layer > 0:  # a hidden layer's tanh
            h = ops.tanh(h) if layer > 1 or noise_g is None else ops.tanh(h) + noise_g
        bias = start + n_in * n_out  # theta[start:bias] is the layer's weight, then come its n_out biases
        h = h @ theta[start:bias].reshape(n_in, n_out) + theta[bias:bias + n_out]
        start = bias + n_out
    return h.reshape(z.shape)


def learned_activation(theta, settings):
    """act(z, noise_g) = ELU(z) + act_scale * g(z)."""
    return lambda z, noise_g: ops.elu(z) + settings.act_scale * meta_net(z, theta, settings, noise_g)


# %% The inner run
def make_data(settings):
    """MNIST-1D with settings.num_samples examples, signals in settings.dtype (the kernels run in one dtype)."""
    dataset = data.make_dataset(data.get_dataset_args(num_samples=settings.num_samples))
    return {k: v.astype(settings.dtype) if k.startswith("x") else v for k, v in dataset.items() if k != "templates"}


def forward(params, x, activation, noise_rng, settings):
    """Logits of the inner MLP; `activation(z, noise_g)` is applied to its hidden layer. The noise: one
    draw per forward pass, broadcast over the batch, for g's hidden layer and for the MLP's."""
    w1, b1, w2, b2 = params
    if settings.noise == 0:
        return activation(x @ w1 + b1, None) @ w2 + b2
    noise_g = noise_rng.uniform(-settings.noise, settings.noise, settings.meta_hidden[0]).astype(settings.dtype)
    noise_h = noise_rng.uniform(-settings.noise, settings.noise, settings.hidden_size).astype(settings.dtype)
    return (activation(x @ w1 + b1, noise_g if settings.noise_in_g else None) + noise_h) @ w2 + b2


def inner_run(activation, dataset, settings, seed, index, differentiable=False, stream=0):
    """Train a fresh inner MLP, its initialisation and noise seeded by (seed, index, 2 stream) and
    (seed, index, 2 stream + 1), with RMSProp; return (its losses, its accuracy on the first
    test_examples test examples). Stream 0: metalearning's outer step `index`; 1: the comparison's.

    With differentiable=True, every step is recorded (create_graph=True), so
    the losses can be differentiated with respect to whatever `activation`
    depends on.
    """
    params = init_layers((40, settings.hidden_size, 10), np.random.default_rng([seed, index, 2 * stream]),
                         settings.dtype)
    noise_rng = np.random.default_rng([seed, index, 2 * stream + 1])  # the run's noise, in training and the test
    batches = train.FixedOrder(dataset["x"], dataset["y"], settings.batch_size)
    rule = optim.rmsprop(settings.lr, settings.mu)
    state, losses = rule.init(params), []
    for step in range(settings.steps):
        xb, yb = batches(step)
        loss = ops.cross_entropy(forward(params, xb, activation, noise_rng, settings), yb)
        grads = grad(loss, params, create_graph=differentiable)
        params, state = rule.update(params, grads, state)
        losses.append(loss if differentiable else loss.detach())  # detached: frees the step's graph
    n = settings.test_examples
    logits = forward([p.data for p in params], dataset["x_test"][:n], activation, noise_rng, settings)
    return losses, float((logits.data.argmax(axis=1) == dataset["y_test"][:n]).mean())


# %% The outer loop
@tensor.cycle_collector_paused()  # a big graph and no cycles: the collector would only cost time
def meta_step(theta, settings, dataset, seed, outer_step):
    """One outer step: an unrolled inner run; its meta-loss, meta-gradient and test accuracy."""
    theta_t = Tensor(theta, requires_grad=True)
    losses, accuracy = inner_run(learned_activation(theta_t, settings), dataset, settings, seed, outer_step, True)
    meta_loss = ops.stack(losses[-settings.meta_loss_last:]).mean()
    return meta_loss.item(), grad(meta_loss, theta_t).data, accuracy


def metalearn(settings, dataset, seed, checkpoint=None, label="metalearn"):
    """Outer SGD on g's parameters from their initialisation by (seed, 0, 4), with clipped meta-gradients,
    saved to `checkpoint` (a path, see resumable.py) after every outer step.
    Returns (theta, history); history keeps theta at every tenth of the run (its snapshots)."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Metalearning)}
    identity = {"metalearning": fields, "seed": seed, "data": train.digest(*dataset.values())}
    state = {"theta": init_meta_params(settings, np.random.default_rng([seed, 0, 4])),
             "history": {"meta_loss": [], "test_acc": [], "snapshots": {}, "seconds": 0.0}}
    loop = resumable.Resumable(checkpoint, identity, state, settings.outer_steps, label)
    theta, history = state["theta"], state["history"]  # as the checkpoint left them
    for step in loop:
        if step % max(1, settings.outer_steps // 10) == 0:
            history["snapshots"][str(step)] = theta.tolist()
        start = time.perf_counter()
        meta_loss, meta_grad, accuracy = meta_step(theta, settings, dataset, seed, step)
        theta -= settings.outer_lr * np.clip(meta_grad, -settings.clip, settings.clip)
        history["meta_loss"].append(meta_loss)
        history["test_acc"].append(accuracy)
        history["seconds"] += time.perf_counter() - start
        loop.show(meta_loss=meta_loss, test_acc=accuracy)
        loop.checkpoint()
    history["snapshots"][str(settings.outer_steps)] = theta.tolist()
    return theta, history


# %% Baselines and the piecewise-linear fit
def fixed_activation(name):
    """ops.<name> as an activation(z, noise_g): g's noise has nowhere to go."""
    return lambda z, noise_g: getattr(ops, name)(z)


BASELINES = {name: fixed_activation(name) for name in ("relu", "swish", "elu", "softplus", "tanh", "sigmoid")}


def piecewise_linear(knots, values):
    """act(z) interpolating (knots, values), extended linearly: a sum of shifted ReLUs,
    in the dtype of values."""
    slopes = np.diff(values) / np.diff(knots)

    def act(z, noise_g):
        out = values[0] + slopes[0] * (z - knots[0])
        for knot, kink in zip(knots[1:-1], np.diff(slopes)):
            out = out + kink * ops.relu(z - values.dtype.type(knot))
        return out.astype(values.dtype)
    return act


def compare_activations(activations, settings, dataset, seed):
    """Final test accuracy of each activation over settings.seeds inner runs; run i
    starts every activation from the same initialisation and noise (stream 1 of inner_run)."""
    return {name: [inner_run(act, dataset, settings, seed, i, stream=1)[1] for i in range(settings.seeds)]
            for name, act in progress(activations.items(), "comparison (activations)", total=len(activations))}


# %% The experiment
def run_experiment(run, settings, seed, name="metalearn", baselines=BASELINES):
    """Metalearn g (its checkpoint: OUT/name), fit it, and compare both with the baselines."""
    dataset = make_data(settings)
    theta, history = metalearn(settings, dataset, seed, run.path(name), name)
    learned = learned_activation(Tensor(theta), settings)
    knots = np.linspace(-5, 5, 41)  # the fit: act(z) (without noise) at the knots, linear in between
    fit = {"knots": knots, "values": learned(Tensor(knots.astype(settings.dtype)), None).data}
    activations = {"learned": learned, "piecewise-linear fit": piecewise_linear(**fit), **baselines}
    return {"history": history, "final_theta": theta, "fit": fit,
            "final_test_acc": compare_activations(activations, settings, dataset, seed)}


def run_ablations(run, settings, seed):
    """The experiment again for each change of ABLATIONS: the learned function and its fit."""
    return {name: run_experiment(run, dataclasses.replace(settings, **change), seed, name, baselines={})
            for name, change in ABLATIONS.items()}


def measured(results):
    table, history = results["final_test_acc"], results["history"]
    margin = np.mean(table["learned"]) - max(np.mean(table[b]) for b in ("relu", "elu", "swish"))
    return {"learned, at the last outer step (%)": f"{100 * history['test_acc'][-1]:.1f}",
            "learned minus best of ReLU/ELU/Swish (points)": f"{100 * margin:+.1f}",
            "seconds per outer step": f"{history['seconds'] / len(history['meta_loss']):.2f}",
            **{f"{name} test acc. (%)": experiment.mean_sd(accs, scale=100) for name, accs in table.items()},
            **{f"ablation {name}: learned test acc. (%)": experiment.mean_sd(entry["final_test_acc"]["learned"], 100)
               for name, entry in results.get("ablations", {}).items()}}


# %% The paper's claim, judged on the saved results
def lead_over_best_standard(results):
    """The learned activation's mean final test accuracy minus the best of ReLU/ELU/Swish's (points)."""
    table = results["final_test_acc"]
    return 100 * (np.mean(table["learned"]) - max(np.mean(table[b]) for b in ("relu", "elu", "swish")))


CLAIMS = [Claim("the learned activation beats ReLU, ELU and Swish by more than 5 points", "Figure 6 and its text",
                "learned minus the best of ReLU/ELU/Swish (points)", lead_over_best_standard, ">", 5,
                paper=PAPER["learned minus best of ReLU/ELU/Swish (points)"])]


# %% Figures
def plot_results(results, settings):
    """Meta-loss and test accuracy over the outer steps; the learned activation at its snapshots."""
    history, table, fit = results["history"], results["final_test_acc"], results["fit"]
    fig, axes = plotting.figure(1, 3, width=3.6, height=3.0)
    axes[0].plot(history["meta_loss"], color="k")
    axes[0].set(title="meta-loss (mean of last inner losses)", xlabel="outer step")
    axes[1].plot(100 * np.array(history["test_acc"]), color="k", lw=0.8, label="learned (during metalearning)")
    for i, name in enumerate(table):
        axes[1].axhline(100 * np.mean(table[name]), color=f"C{i}", lw=1, ls="--", label=name)
    axes[1].set(title="test accuracy (%)", xlabel="outer step")
    axes[1].legend(fontsize=6)
    z = np.linspace(-4, 4, 200).astype(settings.dtype)
    colors = plotting.plt.cm.viridis(np.linspace(0, 1, len(history["snapshots"])))
    for color, (step, theta) in zip(colors, history["snapshots"].items()):
        act = learned_activation(Tensor(np.asarray(theta, settings.dtype)), settings)
        axes[2].plot(z, act(Tensor(z), None).data, color=color, lw=1, label=f"step {step}")
    axes[2].plot(fit["knots"], fit["values"], "r:", lw=1.5, label="piecewise-linear fit")
    axes[2].set(title="learned activation", xlabel="z", ylim=(-2, 4))
    axes[2].legend(fontsize=5)
    return fig


# %% Main
def main():
    run = experiment.start("05_meta_activation", __doc__, Settings, QUICK,
                           ablations="also metalearn without noise and with g widths 50 and 200")
    results = run_experiment(run, run.settings, run.args.seed)
    if run.args.ablations:
        results["ablations"] = run_ablations(run, run.settings, run.args.seed)
    run.save_figure(plot_results(results, run.settings), "activation")
    history = results["history"]
    run.finish(results, PAPER, measured(results), title=f"Final test accuracy over {run.settings.seeds} "
                                                         "fresh inner initialisations (mean ± SD)", claims=CLAIMS,
               curve=experiment.main_curve("Test accuracy of the inner run, per outer step", "outer step",
                                           "test accuracy (%)", {"learned": (range(len(history["test_acc"])),
                                                                             100 * np.array(history["test_acc"]))}))


if __name__ == "__main__":
    experiment.run_chapter_main(main)
