"""The figure style shared by the chapters (matplotlib, imported only here).

The backend: Agg (files only) on a machine with no screen, so that chapters
and tests write their PNGs anywhere; matplotlib's own choice where there is
a display or a notebook kernel (the quiz opens a window there), or where
MPLBACKEND names one. In a kernel, the chapters' figures are shown under the
cell from the PNGs they save (kernel.show_png, called by Run.save_figure),
whatever the backend.
"""
import os
import sys

import matplotlib

from . import kernel


def headless():
    """True when nothing can show a window: no MPLBACKEND, no notebook kernel, and on
    Linux and the other X11/Wayland systems, neither DISPLAY nor WAYLAND_DISPLAY."""
    if os.environ.get("MPLBACKEND") or kernel.in_kernel() or sys.platform in ("darwin", "win32"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


if headless():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"figure.dpi": 110, "savefig.dpi": 150, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "font.size": 9, "legend.frameon": False}
plt.rcParams.update(STYLE)


def figure(nrows=1, ncols=1, width=4.0, height=3.0, **kwargs):
    """A figure with nrows x ncols panels of width x height inches each."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kwargs)


def save_figure(fig, target, format=None):
    """Save a figure to a path (its format from the extension) or a binary file (give
    `format`), and close it (frees its memory; in a notebook, Run.save_figure shows
    the saved PNG instead)."""
    fig.tight_layout()
    try:
        fig.savefig(target, format=format)
    finally:
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


def mean_se(values):
    """(mean, standard error) over the first axis (trials), as arrays; SE 0 for one trial."""
    values = np.asarray(values, dtype=float)
    se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros(values.shape[1:])
    return values.mean(axis=0), se


def band(ax, x, runs, scale=1.0, color=None, label=None):
    """The mean of runs (trials x points) against x, and a band of ± one standard error."""
    mean, se = mean_se(scale * np.asarray(runs, dtype=float))
    ax.plot(x, mean, color=color, label=label)
    ax.fill_between(x, mean - se, mean + se, color=color, alpha=0.2)


def class_map(ax, points, labels, title, size=3):
    """A 2-D embedding, points (N, 2), coloured by class (labels (N,)), each class's median labelled.
    size: the dots' area (points^2; smaller for tens of thousands of points)."""
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=size, linewidths=0,
               alpha=0.8)
    for label in range(10):
        x, y = np.median(points[labels == label], axis=0)
        ax.text(x, y, str(label), fontsize=12, weight="bold", ha="center", va="center",
                bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec=f"C{label}", alpha=0.85))
    ax.set(title=title, xticks=[], yticks=[])
    ax.grid(False)


def log_width_axis(ax, ticks=(2, 5, 10, 20, 50, 100, 200, 500)):
    """A log x axis for widths, labelled 2, 5, 10, 20, ... rather than 2 x 10^0."""
    import matplotlib.ticker as ticker
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
