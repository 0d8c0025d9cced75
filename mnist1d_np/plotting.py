"""The figure style shared by the chapters (matplotlib, imported only here)."""
import matplotlib

matplotlib.use("Agg")  # files only: chapters run on machines without a screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"figure.dpi": 110, "savefig.dpi": 150, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "font.size": 9, "legend.frameon": False}
plt.rcParams.update(STYLE)


def figure(nrows=1, ncols=1, width=4.0, height=3.0, **kwargs):
    """A figure with nrows x ncols panels of width x height inches each."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def save_figure(fig, path):
    """Save a figure as PNG and close it (frees its memory)."""
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_signal(ax, x, t=None, color="k", label=None, **kwargs):
    """Draw one MNIST-1D signal the paper's way: read top to bottom, it looks like its digit."""
    t = np.arange(len(x)) if t is None else t
    ax.plot(x, t, color=color, label=label, **kwargs)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def plot_examples(dataset, per_class=4):
    """A grid of train examples: one row per class, `per_class` columns."""
    x, y = dataset["x"], dataset["y"]
    fig, axes = figure(10, per_class, width=1.0, height=1.1, squeeze=False)
    for label in range(10):
        for col, index in enumerate(np.flatnonzero(y == label)[:per_class]):
            plot_signal(axes[label, col], x[index], dataset["t"], color=f"C{label}", lw=1)
        axes[label, 0].set_ylabel(str(label), rotation=0, labelpad=8)
    return fig
