"""The MNIST-1D generator, in NumPy only.

Each example is one of ten hand-made 12-point templates pushed through a
pipeline of random transforms (Greydanus & Kobak, Figure 1):

    pad -> dilate -> scale -> translate -> noise -> shear -> subsample

then the batch is shuffled, standardised globally and split into train and
test sets. With default arguments the result equals the paper's frozen
dataset to ~1e-15, so code written for the original `mnist1d` package ports
by changing one import:

    from mnist1d_np.data import get_dataset_args, get_dataset
    data = get_dataset(get_dataset_args(), path="mnist1d.npz")

The trick that makes it fast: the random numbers are drawn from
`RandomState(seed)` one example at a time, in exactly the original order
(the stream is what fixes the dataset), but every transform then runs on the
whole batch at once.

Command line: `python -m mnist1d_np.data --out mnist1d.npz [--seed 43 ...]`.
"""
import argparse
import copy
import dataclasses
import json
import os
import warnings
import zipfile

import numpy as np

from .fileio import atomic_write

__all__ = ["DatasetArgs", "get_dataset_args", "get_templates", "make_dataset",
           "get_dataset", "save_dataset", "load_dataset", "transform_steps",
           "draw_randomness", "fingerprint", "FROZEN_FINGERPRINT", "with_label_noise", "shuffled_positions"]

CACHE_FORMAT = 1
EPS = 1e-8             # added to the template so its own zeros survive the noise mask
CORR_NOISE_SIGMA = 2.0  # Gaussian filter width of the correlated noise
FILTER_TRUNCATE = 4.0   # as scipy.ndimage.gaussian_filter: radius = int(4 * 2 + 0.5) = 8

FIELD_HELP = {
    "num_samples": "total number of examples, train + test (10 to 10**6; rounded down to a multiple of 10)",
    "train_split": "fraction of examples in the train set, in (0, 1)",
    "template_len": "length of the digit templates (must be 12)",
    "padding": "range (low, high) of the number of zeros appended before dilation, 0 <= low <= high <= 10**4",
    "scale_coeff": "amplitude scaling: x *= 1 + scale_coeff * U(-0.5, 0.5) (0 to 1000)",
    "max_translation": "circular shift drawn from [0, max_translation) (1 to 10**4)",
    "corr_noise_scale": "std of the smoothed noise filling the padded region (0 to 1000)",
    "iid_noise_scale": "std of the i.i.d. noise added everywhere (0 to 1000)",
    "shear_scale": "linear trend: x -= shear_scale * U(-0.5, 0.5) * linspace(-0.5, 0.5) (0 to 1000)",
    "shuffle_seq": "randomly permute the 40 positions of every example (the same permutation for all)",
    "final_seq_length": "length of each example after subsampling (2 to 10**4)",
    "seed": "seed of the numpy RandomState that draws every random number (>= 0)",
}


# ---------------------------------------------------------------- arguments

@dataclasses.dataclass(frozen=True)
class DatasetArgs:
    """Validated, immutable settings of the generator; see FIELD_HELP."""
    num_samples: int = 5000
    train_split: float = 0.8
    template_len: int = 12
    padding: tuple = (36, 60)
    scale_coeff: float = 0.4
    max_translation: int = 48
    corr_noise_scale: float = 0.25
    iid_noise_scale: float = 2e-2
    shear_scale: float = 0.75
    shuffle_seq: bool = False
    final_seq_length: int = 40
    seed: int = 42

    def __post_init__(self):
        for name, kind in _FIELD_KINDS.items():
            object.__setattr__(self, name, kind(name, getattr(self, name)))
        _check_ranges(self)

    def as_dict(self):
        """The settings as a plain JSON-friendly dict."""
        d = dataclasses.asdict(self)
        d["padding"] = list(self.padding)
        return d


def _as_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _as_float(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _as_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _as_padding(name, value):
    # A sequence, not just anything with a length: a set has no order, and a
    # dict's value[0] looks up the key 0.
    if not isinstance(value, (tuple, list, np.ndarray)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high) of integers, got {value!r}")
    return (_as_int(name, value[0]), _as_int(name, value[1]))


_FIELD_KINDS = {
    "num_samples": _as_int, "train_split": _as_float, "template_len": _as_int,
    "padding": _as_padding, "scale_coeff": _as_float, "max_translation": _as_int,
    "corr_noise_scale": _as_float, "iid_noise_scale": _as_float, "shear_scale": _as_float,
    "shuffle_seq": _as_bool, "final_seq_length": _as_int, "seed": _as_int,
}


# Upper bounds: far beyond any experiment, low enough that the generator
# neither runs out of memory (num_samples * length values, a few arrays of
# them) nor overflows float64 (amplitudes of 1e308 gave NaN datasets).
MAX_NUM_SAMPLES = 10**6
MAX_LENGTH = 10**4      # padding high, max_translation, final_seq_length
MAX_VALUES = 10**8      # num_samples * (template_len + padding high): 0.8 GB per float64 array
MAX_SCALE = 1000.0      # scale_coeff and the noise and shear scales


def _check_ranges(a):
    def require(ok, message):
        if not ok:
            raise ValueError(message)
    require(10 <= a.num_samples <= MAX_NUM_SAMPLES,
            f"num_samples must be in [10, {MAX_NUM_SAMPLES}], got {a.num_samples}")
    require(0 < a.train_split < 1, f"train_split must be in (0, 1), got {a.train_split}")
    n_total = 10 * (a.num_samples // 10)
    n_train = int(n_total * a.train_split)
    require(0 < n_train < n_total,
            f"train_split={a.train_split} with num_samples={a.num_samples} leaves an empty "
            f"train or test set ({n_train} train of {n_total}); it must give 1 to {n_total - 1} train examples")
    require(a.template_len == TEMPLATE_LEN,
            f"template_len must be {TEMPLATE_LEN} (the length of the templates), got {a.template_len}")
    low, high = a.padding
    require(0 <= low <= high <= MAX_LENGTH,
            f"padding must satisfy 0 <= low <= high <= {MAX_LENGTH}, got {a.padding}")
    require(a.num_samples * (a.template_len + high) <= MAX_VALUES,
            f"num_samples * (template_len + padding high) must be <= {MAX_VALUES} (memory), "
            f"got {a.num_samples} * {a.template_len + high}")
    require(1 <= a.max_translation <= MAX_LENGTH,
            f"max_translation must be in [1, {MAX_LENGTH}], got {a.max_translation}")
    require(2 <= a.final_seq_length <= MAX_LENGTH,
            f"final_seq_length must be in [2, {MAX_LENGTH}], got {a.final_seq_length}")
    require(a.num_samples * a.final_seq_length <= MAX_VALUES,
            f"num_samples * final_seq_length must be <= {MAX_VALUES} (memory), "
            f"got {a.num_samples} * {a.final_seq_length}")
    for name in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
        require(0 <= getattr(a, name) <= MAX_SCALE,
                f"{name} must be in [0, {MAX_SCALE:g}], got {getattr(a, name)}")
    require(0 <= a.seed < 2**32, f"seed must be in [0, 2**32), got {a.seed}")


def get_dataset_args(as_dict=False, **overrides):
    """The generator's settings: the paper's defaults, with `overrides` applied.

    Returns a frozen DatasetArgs (or a plain dict if as_dict=True). Unknown
    fields, wrong types and out-of-range values raise ValueError.
    """
    unknown = sorted(set(overrides) - set(_FIELD_KINDS))
    if unknown:
        raise ValueError(f"unknown dataset argument(s) {unknown}; allowed: {list(_FIELD_KINDS)}")
    args = DatasetArgs(**overrides)
    return args.as_dict() if as_dict else args


def shuffled_positions():
    """The get_dataset_args overrides of MNIST-1D with its 40 positions shuffled: one
    permutation, drawn from the dataset's seed after every other draw, applied to
    every example. Chapter 02's shuffled dataset and the quiz's --shuffled both come
    from here, so they show the same permutation of the same examples."""
    return {"shuffle_seq": True}


def _coerce_args(args):
    if args is None:
        return DatasetArgs()
    if isinstance(args, DatasetArgs):
        return args
    if isinstance(args, dict):
        return get_dataset_args(**args)
    raise ValueError(f"args must be a DatasetArgs, a dict or None, got {type(args).__name__}")


# ---------------------------------------------------------------- templates

TEMPLATE_LEN = 12
_DIGITS = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],       # 0
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],     # 1
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],   # 2
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],         # 3
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],       # 4
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],           # 5
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],       # 6
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],     # 7
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],         # 8
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],         # 9
])


def get_templates():
    """The ten digit templates: {'x': (10, 12), 't': (12,), 'y': (10,) int64}.

    Each is whitened, shifted to start (and end) at exactly 0, and divided by 6.
    """
    x = _DIGITS - _DIGITS.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return {"x": x / 6.0, "t": np.linspace(-5, 5, TEMPLATE_LEN) / 6.0,
            "y": np.arange(10, dtype=np.int64)}


# ---------------------------------------------------------------- transforms

def interp_rows(x_new, xp, fp):
    """np.interp(x_new, xp, row) for every row of fp, vectorised.

    x_new: (m,) sorted within [xp[0], xp[-1]]; xp: (n,) increasing;
    fp: (rows, n). Returns (rows, m). Uses np.interp's exact arithmetic:
    slope * (x - xp[j]) + fp[j] on the interval xp[j] <= x < xp[j+1], and
    the last value itself at the right end.
    """
    j = np.clip(np.searchsorted(xp, x_new, side="right") - 1, 0, len(xp) - 2)
    slope = (fp[:, j + 1] - fp[:, j]) / (xp[j + 1] - xp[j])
    out = slope * (x_new - xp[j]) + fp[:, j]
    out[:, x_new >= xp[-1]] = fp[:, -1:]
    return out


def resample(fp, n):
    """Linear interpolation of rows fp (rows, L) onto n evenly spaced points."""
    return interp_rows(np.linspace(0, 1, n), np.linspace(0, 1, fp.shape[1]), fp)


def gaussian_kernel(sigma=CORR_NOISE_SIGMA, truncate=FILTER_TRUNCATE):
    """Normalised Gaussian weights on [-radius, radius], radius = int(truncate*sigma + 0.5)."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / sigma**2 * offsets**2)
    return weights / weights.sum()


def gaussian_filter_rows(x, sigma=CORR_NOISE_SIGMA):
    """Gaussian smoothing of each row of x (rows, L), as scipy.ndimage's default.

    The boundary is 'reflect' (d c b a | a b c d | d c b a), which is
    np.pad's 'symmetric'. The symmetric weights are summed in pairs, from the
    outermost in, as SciPy does, so results agree to the last bits.
    """
    weights = gaussian_kernel(sigma)
    radius = len(weights) // 2
    padded = np.pad(x, ((0, 0), (radius, radius)), mode="symmetric")
    length = x.shape[1]
    out = padded[:, radius:radius + length] * weights[radius]
    for offset in range(radius, 0, -1):
        left = padded[:, radius - offset:radius - offset + length]
        right = padded[:, radius + offset:radius + offset + length]
        out += (left + right) * weights[radius + offset]
    return out


def draw_randomness(args, n_total):
    """Every random number of the pipeline, drawn in the original per-example order.

    The original draws, for each example: pad (rand), scale (rand),
    translate (choice == randint), correlated noise (randn), i.i.d. noise
    (randn), shear (rand); then one permutation of the batch and, if
    shuffle_seq, one of the positions. Back-to-back draws of one kind are
    merged into one call (rand(); rand() is rand(2)): same stream, fewer calls.
    """
    rs = np.random.RandomState(args.seed)
    length = args.template_len + args.padding[1]
    uniforms = np.empty((n_total, 3))  # pad, scale, shear
    shift = np.empty(n_total, dtype=np.int64)
    noise = np.empty((n_total, 2 * length))  # correlated, then i.i.d.
    rand, randn, randint = rs.random_sample, rs.standard_normal, rs.randint
    for i in range(n_total):
        uniforms[i, :2] = rand(2)
        shift[i] = randint(0, args.max_translation)
        noise[i] = randn(2 * length)
        uniforms[i, 2] = rand()
    batch_perm = rs.permutation(n_total)
    seq_perm = rs.permutation(args.final_seq_length) if args.shuffle_seq else None
    return dict(pad_u=uniforms[:, 0], scale_u=uniforms[:, 1], shear_u=uniforms[:, 2],
                shift=shift, corr=args.corr_noise_scale * noise[:, :length],
                iid=args.iid_noise_scale * noise[:, length:],
                batch_perm=batch_perm, seq_perm=seq_perm)


def pad_lengths(args, draws):
    """Number of zeros appended to each example: low + floor(u * (high - low + 1))."""
    low, high = args.padding
    return low + (draws["pad_u"] * (high - low + 1)).astype(np.int64)


def pad_and_dilate(templates_x, pad_lengths, length):
    """Append pad_lengths[i] zeros to row i, then stretch it to `length` points.

    templates_x: (n, 12); pad_lengths: (n,) ints. Rows with the same pad
    length share one interpolation grid, so we loop over the distinct lengths.
    """
    n, tlen = templates_x.shape
    out = np.empty((n, length))
    x_new = np.linspace(0, 1, length)
    for pad_len in np.unique(pad_lengths):
        rows = np.flatnonzero(pad_lengths == pad_len)
        padded = np.zeros((len(rows), tlen + pad_len))
        padded[:, :tlen] = templates_x[rows] + EPS
        out[rows] = interp_rows(x_new, np.linspace(0, 1, tlen + pad_len), padded)
    return out


def circular_shift(x, shifts):
    """Roll row i of x (n, L) right by shifts[i].

    As the original's concatenate([x[-k:], x[:-k]]), a shift k >= L leaves
    the row unchanged (it is not taken modulo L).
    """
    length = x.shape[1]
    shifts = np.where(shifts < length, shifts, 0)
    cols = (np.arange(length) - shifts[:, None]) % length
    return np.take_along_axis(x, cols, axis=1)


def shear(x, coeffs):
    """Subtract a linear trend coeffs[i] * linspace(-0.5, 0.5) from row i."""
    return x - coeffs[:, None] * np.linspace(-0.5, 0.5, x.shape[1])


def transform_steps(templates_x, args, draws):
    """Run the pipeline; return every stage as a dict of (n, L) arrays.

    Used by make_dataset (which keeps only the last stage) and by chapter 01
    (which draws every stage).
    """
    length = args.template_len + args.padding[1]
    steps = {"template": templates_x}
    steps["pad+dilate"] = x = pad_and_dilate(templates_x, pad_lengths(args, draws), length)
    steps["scale"] = x = x * (1 + args.scale_coeff * (draws["scale_u"] - 0.5))[:, None]
    steps["translate"] = x = circular_shift(x, draws["shift"])
    # The padded region is where the signal is exactly 0 (the template got +EPS).
    smooth_noise = gaussian_filter_rows(draws["corr"])
    x = np.where(x != 0, x, smooth_noise)
    steps["noise"] = x = x + draws["iid"]
    steps["shear"] = x = shear(x, args.shear_scale * (draws["shear_u"] - 0.5))
    steps["subsample"] = resample(x, args.final_seq_length)
    return steps


def make_dataset(args=None, templates=None):
    """Generate MNIST-1D. args: DatasetArgs, dict or None (defaults).

    Returns {'x': (n_train, L), 'x_test': (n_test, L), 'y', 'y_test': int64,
    't': (L,), 'templates': get_templates()} with L = final_seq_length.
    """
    args = _coerce_args(args)
    templates = get_templates() if templates is None else templates
    n_classes = len(templates["y"])
    per_class = args.num_samples // n_classes
    labels = np.repeat(np.arange(n_classes), per_class)
    draws = draw_randomness(args, len(labels))
    xs = transform_steps(templates["x"][labels], args, draws)["subsample"]
    xs, ys = xs[draws["batch_perm"]], templates["y"][labels][draws["batch_perm"]]
    if draws["seq_perm"] is not None:
        xs = xs[:, draws["seq_perm"]]
    t = resample(resample(templates["t"][None], args.template_len + args.padding[1]),
                 args.final_seq_length)[0]
    t = t / xs.std()
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * args.train_split)
    # C-contiguous, whatever the path (x[:, seq_perm] is not): float32 matrix
    # products round differently on other memory layouts, so a copy sent to
    # a worker or through a cache would otherwise train to other numbers.
    parts = {"x": xs[:split], "x_test": xs[split:], "y": ys[:split], "y_test": ys[split:], "t": t}
    return {**{k: np.ascontiguousarray(v) for k, v in parts.items()}, "templates": templates}


def fingerprint(dataset):
    """A few sums and values that pin a dataset down (compare to ~1e-12)."""
    x, x_test, y, y_test = (dataset[k] for k in ("x", "x_test", "y", "y_test"))
    return {"n_train": len(y), "n_test": len(y_test),
            "x_sum": float(x.sum()), "x_sq_sum": float((x ** 2).sum()),
            "x_test_sum": float(x_test.sum()), "x_first": x[0, :3].tolist(),
            "x_test_last": x_test[-1, -3:].tolist(),
            "t_values": dataset["t"][[0, 7, 20, 39]].tolist(),  # (t is symmetric: its sum is ~0)
            "y_head": y[:8].tolist(), "y_weighted": int((y * np.arange(len(y))).sum()),
            "y_test_weighted": int((y_test * np.arange(len(y_test))).sum())}


# Derived once from the paper's frozen mnist1d_data.pkl (which we never load).
FROZEN_FINGERPRINT = {
    "n_train": 4000, "n_test": 1000, "x_sum": -51.78746787509559,
    "x_sq_sum": 159248.2538653486, "x_test_sum": 51.78746787509186,
    "x_first": [-0.3320056673693902, -0.4719103656557236, -0.778697076293495],
    "x_test_last": [0.6598756470890784, 0.8777343497528006, 1.193151836835276],
    "t_values": [-5.38753506670427, -3.453548119682224, 0.1381419247872882, 5.38753506670427],
    "y_head": [2, 6, 4, 5, 6, 6, 6, 0],
    "y_weighted": 36383495, "y_test_weighted": 2254146}


def fingerprint_mismatches(got, want, tol=1e-12):
    """Names of the fingerprint entries of `got` that differ from `want` by more than tol."""
    bad = []
    for key, expected in want.items():
        close = np.allclose(got[key], expected, rtol=tol, atol=tol)
        if not close or (isinstance(expected, int) and got[key] != expected):
            bad.append(key)
    return bad


# ---------------------------------------------------------------- cache

_ARRAY_KEYS = ("x", "x_test", "y", "y_test", "t")


def save_dataset(dataset, path, args):
    """Write the dataset and its arguments to `path` (.npz) atomically, without pickle."""
    args = _coerce_args(args)
    arrays = {k: dataset[k] for k in _ARRAY_KEYS}
    arrays.update({f"templates_{k}": v for k, v in dataset["templates"].items()})
    arrays["args_json"] = np.array(json.dumps(args.as_dict(), sort_keys=True))
    arrays["format"] = np.array(CACHE_FORMAT)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_dataset(path):
    """Read a dataset written by save_dataset. Returns (dataset, args_dict).

    Raises ValueError if the file is not a complete, well-formed cache.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    missing = [k for k in _ARRAY_KEYS + ("args_json", "format") + _TEMPLATE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: not an mnist1d_np cache (missing {missing})")
    try:  # int() of several values is a TypeError, of text a ValueError
        cache_format, cached_args = int(arrays["format"]), json.loads(str(arrays["args_json"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: not an mnist1d_np cache ({err})") from None
    if cache_format != CACHE_FORMAT:
        raise ValueError(f"{path}: cache format {cache_format}, expected {CACHE_FORMAT}")
    dataset = {k: arrays[k] for k in _ARRAY_KEYS}
    dataset["templates"] = {k: arrays[f"templates_{k}"] for k in ("x", "t", "y")}
    return dataset, cached_args


_TEMPLATE_KEYS = ("templates_x", "templates_t", "templates_y")


def check_dataset(dataset, args):
    """Raise ValueError unless dataset has the arrays make_dataset(args) makes:
    their dtypes, shapes, and finite values."""
    n_total = 10 * (args.num_samples // 10)
    n_train, length = int(n_total * args.train_split), args.final_seq_length
    expected = {"x": ((n_train, length), np.float64), "x_test": ((n_total - n_train, length), np.float64),
                "y": ((n_train,), np.int64), "y_test": ((n_total - n_train,), np.int64),
                "t": ((length,), np.float64)}
    arrays = dict(dataset, **{f"templates_{k}": v for k, v in dataset["templates"].items()})
    expected.update({"templates_x": ((10, TEMPLATE_LEN), np.float64),
                     "templates_t": ((TEMPLATE_LEN,), np.float64), "templates_y": ((10,), np.int64)})
    for key, (shape, dtype) in expected.items():
        array = arrays[key]
        if array.shape != shape or array.dtype != dtype or not np.isfinite(array).all():
            raise ValueError(f"{key} is {array.dtype} {array.shape}, expected finite {np.dtype(dtype)} {shape}")


def get_dataset(args=None, path=None, regenerate=False):
    """The dataset for `args`, cached in `path` (.npz) if a path is given.

    A cache made with other arguments, or corrupt, truncated or with arrays
    of the wrong kind or shape, is regenerated with a warning. Nothing is
    downloaded.
    """
    args = _coerce_args(args)
    if path is None:
        return make_dataset(args)
    dataset = _read_cache(path, args) if not regenerate and os.path.exists(path) else None
    if dataset is None:
        dataset = make_dataset(args)
        save_dataset(dataset, path, args)
    return dataset


def _read_cache(path, args):
    """The dataset cached at path if it is a sound one of args, else None and a warning."""
    try:
        dataset, cached_args = load_dataset(path)
    except ValueError as err:
        return _regenerating(str(err))
    if cached_args != args.as_dict():
        return _regenerating(f"{path}: cached with other arguments")
    try:
        check_dataset(dataset, args)
    except ValueError as err:
        return _regenerating(f"{path}: {err}")
    return dataset


def _regenerating(reason):
    warnings.warn(f"{reason}; regenerating", stacklevel=4)


# ---------------------------------------------------------------- command line

def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mnist1d_np.data",
        description="Generate MNIST-1D and write it to an .npz file (no pickle). "
                    "Defaults reproduce the paper's frozen dataset.")
    parser.add_argument("--out", required=True, help="output .npz path")
    parser.add_argument("--plot", metavar="FILE.png", help="also save a grid of examples")
    defaults = DatasetArgs()
    for name, help_text in FIELD_HELP.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=int, nargs=2, metavar=("LOW", "HIGH"), default=default,
                                help=f"{help_text} (default: {default[0]} {default[1]})")
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                help=f"{help_text} (default: {default})")
    return parser


def main(argv=None):
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        args = get_dataset_args(**{name: getattr(ns, name) for name in FIELD_HELP})
    except ValueError as err:
        parser.error(str(err))
    dataset = make_dataset(args)
    save_dataset(dataset, ns.out, args)
    print(f"wrote {ns.out}: {len(dataset['y'])} train, {len(dataset['y_test'])} test, "
          f"length {dataset['x'].shape[1]}")
    if ns.plot:
        from .plotting import plot_examples, save_figure
        save_figure(plot_examples(dataset), ns.plot)
        print(f"wrote {ns.plot}")


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------- label noise

def with_label_noise(dataset, fraction, rng, num_classes=10):
    """A copy of `dataset` whose training labels are noised; `dataset` is untouched.

    Each training label is, with probability `fraction`, replaced by a
    uniform draw from 0..num_classes-1 (which may be the label it had: about
    fraction * (num_classes - 1) / num_classes of the labels change). Test
    labels are never noised. fraction: in [0, 1]; rng: a numpy Generator.

    The whole dataset is deep-copied: a shallow `dict.copy()` would share the
    label array, and writing noise into it would corrupt the clean labels too.
    Both draws are made for every example whatever `fraction` is, so one seed
    gives nested noise: the labels noised at 10 % are also noised at 20 %.
    """
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, (int, float, np.integer, np.floating)) \
            or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    noisy = copy.deepcopy(dataset)
    y = noisy["y"]
    replaced = rng.random(len(y)) < fraction
    draws = rng.integers(0, num_classes, size=len(y))
    noisy["y"] = np.where(replaced, draws, y).astype(y.dtype)
    return noisy
