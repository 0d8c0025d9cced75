"""The self-supervised augmentation: two random views of the same signal.

Contrastive learning (chapter 07) teaches a network that two distorted
copies of one example are "the same thing". The distortions define what the
representation learns to ignore. The paper's notebook uses three, all of
them nuisances the MNIST-1D generator itself applies:

1. remove each example's mean and least-squares slope (so the level and the
   linear trend carry no information),
2. shift it circularly by a random integer in [0, max_shift),
3. add back a random linear trend: slope ~ N(0, slope_sd) times the centred
   position (i - (L - 1) / 2), plus an offset ~ N(0, offset_sd).

Everything is vectorised over the batch, and every draw comes from the
Generator passed in, so the same seed gives the same views.
"""
import numpy as np

__all__ = ["centred_positions", "remove_trend", "circular_shift", "add_trend", "augment"]


def centred_positions(length):
    """(length,) float64 positions i - (length - 1) / 2: they sum to 0."""
    return np.arange(length, dtype=np.float64) - (length - 1) / 2


def remove_trend(x):
    """Each row minus its least-squares line a + b * i. x: (N, L) -> (N, L).

    With centred positions c the fit decouples: a is the row's mean and
    b = <x, c> / <c, c>, so no linear solve is needed.
    """
    x = _check_rows(x)
    c = centred_positions(x.shape[1])
    slope = x @ c / (c @ c)
    return x - x.mean(axis=1, keepdims=True) - slope[:, None] * c


def circular_shift(x, shifts):
    """Row i of x (N, L) rolled right by shifts[i] (any integers, taken mod L)."""
    x = _check_rows(x)
    shifts = np.asarray(shifts)
    if shifts.shape != (x.shape[0],) or shifts.dtype.kind not in "iu":
        raise ValueError(f"circular_shift: shifts must be {x.shape[0]} integers, "
                         f"got shape {shifts.shape} dtype {shifts.dtype}")
    length = x.shape[1]
    source = (np.arange(length) - shifts[:, None]) % length
    return np.take_along_axis(x, source, axis=1)


def add_trend(x, slopes, offsets):
    """x (N, L) plus slopes[i] * centred position + offsets[i] on row i."""
    x = _check_rows(x)
    return x + slopes[:, None] * centred_positions(x.shape[1]) + offsets[:, None]


def augment(x, rng, max_shift=10, slope_sd=0.04, offset_sd=0.3):
    """One random view of every row of x: detrend, shift, re-trend.

    x: (N, L) float array; rng: numpy Generator. Draws, in this order:
    N shifts in [0, max_shift), N slopes, N offsets. Returns (N, L) in x's dtype.
    """
    x = _check_rows(x)
    _check_settings(rng, max_shift, slope_sd, offset_sd)
    n = x.shape[0]
    shifts = rng.integers(0, max_shift, size=n)
    slopes = rng.normal(0.0, slope_sd, size=n)
    offsets = rng.normal(0.0, offset_sd, size=n)
    view = add_trend(circular_shift(remove_trend(x), shifts), slopes, offsets)
    return view.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def _check_rows(x):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"x must be a (N, L) array with L >= 2, got shape {x.shape}")
    return x


def _check_settings(rng, max_shift, slope_sd, offset_sd):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if int(max_shift) != max_shift or max_shift < 1:
        raise ValueError(f"max_shift must be an integer >= 1, got {max_shift}")
    if not (slope_sd >= 0 and offset_sd >= 0):
        raise ValueError(f"slope_sd and offset_sd must be >= 0, got {slope_sd}, {offset_sd}")
