"""The generator: frozen-dataset fingerprints, code paths, validation, cache, CLI."""
import json
import os

import numpy as np
import pytest

from mnist1d_np import data
from mnist1d_np.data import get_dataset_args, make_dataset, get_dataset

# Fingerprints of the paper's frozen dataset (mnist1d_data.pkl) and of the
# original SciPy generator's outputs for other arguments, derived once from
# those files. The tests never read them: a user's clone does not have them.
FINGERPRINTS = {
    "default": ({}, {'n_train': 4000, 'n_test': 1000, 'x_sum': -51.78746787509559, 'x_sq_sum': 159248.2538653486, 'x_test_sum': 51.78746787509186, 'x_first': [-0.3320056673693902, -0.4719103656557236, -0.778697076293495], 'x_test_last': [0.6598756470890784, 0.8777343497528006, 1.193151836835276], 't_values': [-5.38753506670427, -3.453548119682224, 0.1381419247872882, 5.38753506670427], 'y_head': [2, 6, 4, 5, 6, 6, 6, 0], 'y_weighted': 36383495, 'y_test_weighted': 2254146}),
    "seed43": ({"seed": 43}, {'n_train': 4000, 'n_test': 1000, 'x_sum': 97.70707252038812, 'x_sq_sum': 160065.93443859066, 'x_test_sum': -97.70707252038557, 'x_first': [1.442687384481954, 1.3714772887892945, 1.3456116813313865], 'x_test_last': [0.2155534225281649, 0.9678368587680425, 1.5759622107303015], 't_values': [-5.384949874010338, -3.4518909448784214, 0.1380756377951361, 5.384949874010338], 'y_head': [0, 6, 6, 9, 9, 2, 2, 8], 'y_weighted': 35876534, 'y_test_weighted': 2269662}),
    "shuffled": ({"shuffle_seq": True}, {'n_train': 4000, 'n_test': 1000, 'x_sum': -51.787467875095444, 'x_sq_sum': 159248.2538653486, 'x_test_sum': 51.787467875091835, 'x_first': [1.0358740294925417, 0.4101984957624668, -0.8823525654053074], 'x_test_last': [1.0676781439045142, -0.5193287078205188, -1.2810376906623184], 't_values': [-5.38753506670427, -3.453548119682224, 0.1381419247872882, 5.38753506670427], 'y_head': [2, 6, 4, 5, 6, 6, 6, 0], 'y_weighted': 36383495, 'y_test_weighted': 2254146}),
    "n16000_split025": ({"num_samples": 16000, "train_split": 0.25}, {'n_train': 4000, 'n_test': 12000, 'x_sum': -326.7350940549335, 'x_sq_sum': 161408.685139188, 'x_test_sum': 326.73509405492814, 'x_first': [0.1905425707884389, -0.06464255395729823, -0.012497109722591316], 'x_test_last': [0.9059345777090088, 0.8631023795314414, 0.9823937993769439], 't_values': [-5.399128440667238, -3.460979769658486, 0.13843919078633868, 5.399128440667238], 'y_head': [5, 6, 2, 6, 8, 3, 2, 0], 'y_weighted': 36208518, 'y_test_weighted': 322292502}),
    "n10000": ({"num_samples": 10000}, {'n_train': 8000, 'n_test': 2000, 'x_sum': -37.43785626039801, 'x_sq_sum': 318625.3223299713, 'x_test_sum': 37.43785626039761, 'x_first': [-0.08669279624143802, -0.40828485105060625, -1.5830933765274522], 'x_test_last': [-0.8317209049999988, -0.6366614778457622, -0.49498754214702045], 't_values': [-5.392294657551741, -3.456599139456244, 0.138263965578249, 5.392294657551741], 'y_head': [4, 2, 4, 4, 2, 1, 3, 9], 'y_weighted': 145161151, 'y_test_weighted': 8746654}),
}
FROZEN_TEMPLATE_0 = [0.0, 0.23693955110363693, 0.3554093266554554, 0.41464421443136464,
                     0.4738791022072739, 0.4738791022072739]


@pytest.mark.parametrize("name", FINGERPRINTS)
def test_matches_original_generator(name):
    overrides, expected = FINGERPRINTS[name]
    got = data.fingerprint(make_dataset(get_dataset_args(**overrides)))
    assert data.fingerprint_mismatches(got, expected) == []


def test_library_fingerprint_is_the_frozen_one():
    """data.FROZEN_FINGERPRINT (what chapter 01 checks against) describes what the generator makes."""
    assert data.fingerprint_mismatches(data.fingerprint(make_dataset()), data.FROZEN_FINGERPRINT) == []
    assert data.FROZEN_FINGERPRINT.keys() == FINGERPRINTS["default"][1].keys()


def test_fingerprint_detects_a_tiny_change():
    d = make_dataset()
    d["x"] = d["x"].copy()
    d["x"][123, 7] += 1e-10
    assert data.fingerprint_mismatches(data.fingerprint(d), data.FROZEN_FINGERPRINT) == ["x_sum"]


def test_templates_match_frozen():
    t = data.get_templates()
    np.testing.assert_allclose(t["x"][0, :6], FROZEN_TEMPLATE_0, rtol=0, atol=1e-15)
    assert np.all(t["x"][:, 0] == 0) and np.all(t["x"][:, -1] == 0)
    np.testing.assert_allclose(t["t"][[0, -1]], [-5 / 6, 5 / 6], atol=1e-15)


def test_same_seed_same_data_and_dtypes():
    a, b = make_dataset(get_dataset_args(num_samples=200)), make_dataset(get_dataset_args(num_samples=200))
    for key in ("x", "x_test", "y", "y_test", "t"):
        assert np.array_equal(a[key], b[key])
    assert a["x"].dtype == np.float64 and a["y"].dtype == np.int64
    c = make_dataset(get_dataset_args(num_samples=200, seed=1))
    assert not np.array_equal(a["x"], c["x"])


# ------------------------------------------------------------ an independent, one-example-at-a-time reference

def reference_gaussian_filter(x, sigma=2.0):
    """Direct definition: reflect boundary (d c b a | a b c d), radius 8."""
    radius = int(4.0 * sigma + 0.5)
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    w /= w.sum()
    n = len(x)
    out = np.zeros(n)
    for i in range(n):
        for k in range(-radius, radius + 1):
            j = i + k
            while j < 0 or j >= n:  # reflect, repeatedly for short signals
                j = -j - 1 if j < 0 else 2 * n - j - 1
            out[i] += w[k + radius] * x[j]
    return out


def reference_dataset(args):
    rs = np.random.RandomState(args.seed)
    templates = data.get_templates()
    low, high = args.padding
    length = args.template_len + high

    def stretch(v, n):
        return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(v)), v)

    xs, ys = [], []
    for label in range(10):
        for _ in range(args.num_samples // 10):
            pad = low + int(rs.rand() * (high - low + 1))
            x = stretch(np.concatenate([templates["x"][label] + 1e-8, np.zeros(pad)]), length)
            x = x * (1 + args.scale_coeff * (rs.rand() - 0.5))
            k = rs.choice(args.max_translation)
            x = np.concatenate([x[-k:], x[:-k]]) if k else x
            smooth = reference_gaussian_filter(args.corr_noise_scale * rs.randn(length))
            x = np.where(x != 0, x, smooth) + args.iid_noise_scale * rs.randn(length)
            x = x - args.shear_scale * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, length)
            xs.append(stretch(x, args.final_seq_length))
            ys.append(label)
    perm = rs.permutation(len(ys))
    xs, ys = np.stack(xs)[perm], np.array(ys)[perm]
    if args.shuffle_seq:
        xs = xs[:, rs.permutation(args.final_seq_length)]
    t = stretch(stretch(templates["t"], length), args.final_seq_length) / xs.std()
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * args.train_split)
    return {"x": xs[:split], "x_test": xs[split:], "y": ys[:split], "y_test": ys[split:], "t": t}


@pytest.mark.parametrize("overrides", [
    {"num_samples": 300},
    {"num_samples": 100, "padding": (0, 0)},                      # no padding: shifts >= length
    {"num_samples": 100, "padding": (5, 5), "max_translation": 1},
    {"num_samples": 57, "padding": (0, 100), "final_seq_length": 7, "train_split": 0.5},
    {"num_samples": 100, "shuffle_seq": True, "final_seq_length": 72, "seed": 7},
    {"num_samples": 100, "scale_coeff": 0.0, "corr_noise_scale": 0.0, "iid_noise_scale": 0.0, "shear_scale": 0.0},
    {"num_samples": 100, "padding": (60, 60), "max_translation": 200},  # grids coincide; big shifts
])
def test_code_paths_match_reference(overrides):
    args = get_dataset_args(**overrides)
    got, want = make_dataset(args), reference_dataset(args)
    for key in ("x", "x_test", "t"):
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-12, err_msg=key)
    for key in ("y", "y_test"):
        assert np.array_equal(got[key], want[key])


def test_gaussian_filter_matches_direct_definition():
    x = np.random.default_rng(0).normal(size=(3, 20))
    got = data.gaussian_filter_rows(x)
    for row, out in zip(x, got):
        np.testing.assert_allclose(out, reference_gaussian_filter(row), rtol=0, atol=1e-14)


def test_interp_rows_matches_np_interp():
    rng = np.random.default_rng(1)
    fp = rng.normal(size=(4, 9))
    xp, x_new = np.linspace(0, 1, 9), np.linspace(0, 1, 31)
    want = np.stack([np.interp(x_new, xp, row) for row in fp])
    assert np.array_equal(data.interp_rows(x_new, xp, fp), want)


# ------------------------------------------------------------ validation

@pytest.mark.parametrize("overrides, field", [
    ({"num_samples": 9}, "num_samples"),
    ({"train_split": 0.0}, "train_split"),
    ({"train_split": 1.0}, "train_split"),
    ({"num_samples": 10, "train_split": 0.05}, "train_split"),  # 0 train (int() floors, so test is never empty)
    ({"padding": (10, 5)}, "padding"),
    ({"padding": (-1, 5)}, "padding"),
    ({"padding": (1, 2, 3)}, "padding"),
    ({"max_translation": 0}, "max_translation"),
    ({"final_seq_length": 1}, "final_seq_length"),
    ({"template_len": 13}, "template_len"),
    ({"scale_coeff": -0.1}, "scale_coeff"),
    ({"corr_noise_scale": -1}, "corr_noise_scale"),
    ({"iid_noise_scale": -1e-3}, "iid_noise_scale"),
    ({"shear_scale": -2}, "shear_scale"),
    ({"num_samples": 100.0}, "num_samples"),
    ({"num_samples": True}, "num_samples"),
    ({"seed": "42"}, "seed"),
    ({"shuffle_seq": 1}, "shuffle_seq"),
    ({"train_split": float("nan")}, "train_split"),
    ({"num_sample": 100}, "num_sample"),
])
def test_bad_arguments_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_dataset_args(**overrides)


@pytest.mark.parametrize("overrides, field", [
    ({"scale_coeff": 1e308}, "scale_coeff"),
    ({"iid_noise_scale": 1e300}, "iid_noise_scale"),
    ({"corr_noise_scale": 1e4}, "corr_noise_scale"),
    ({"shear_scale": 1e200}, "shear_scale"),
    ({"num_samples": 10**11}, "num_samples"),
    ({"padding": (0, 10**9)}, "padding"),
    ({"num_samples": 10**6, "padding": (36, 600)}, "num_samples"),  # 6e8 values: memory
    ({"final_seq_length": 10**8}, "final_seq_length"),
    ({"num_samples": 10**6, "final_seq_length": 5000}, "final_seq_length"),
    ({"max_translation": 2**70}, "max_translation"),
    ({"padding": {0: 36, 1: 60}}, "padding"),
    ({"padding": {"low": 36, "high": 60}}, "padding"),
    ({"padding": {36, 60}}, "padding"),
    ({"padding": np.array([[36, 60]])}, "padding"),
])
def test_extreme_arguments_get_a_range_error_not_nan_or_memory_error(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_dataset_args(**overrides)


def test_largest_allowed_amplitudes_give_a_finite_dataset():
    big = make_dataset(get_dataset_args(num_samples=100, scale_coeff=1000, corr_noise_scale=1000,
                                        iid_noise_scale=1000, shear_scale=1000))
    assert all(np.isfinite(big[k]).all() for k in ("x", "x_test", "t"))


def test_shuffled_dataset_is_c_contiguous():
    """x[:, perm] is not C-contiguous; a copy sent to a worker is, and float32
    products then round differently: training must see the same layout everywhere."""
    shuffled = make_dataset(get_dataset_args(num_samples=200, shuffle_seq=True))
    for key in ("x", "x_test", "y", "y_test", "t"):
        assert shuffled[key].flags.c_contiguous, key


def test_args_are_immutable_and_accept_numpy_scalars():
    args = get_dataset_args(num_samples=np.int64(100), train_split=np.float32(0.5), padding=[3, 4])
    assert args.num_samples == 100 and args.padding == (3, 4)
    with pytest.raises(Exception):
        args.seed = 1
    assert get_dataset_args(as_dict=True)["padding"] == [36, 60]


# ------------------------------------------------------------ cache

def small_args(**kw):
    return get_dataset_args(num_samples=100, **kw)


def test_cache_roundtrip_without_pickle(tmp_path):
    path = tmp_path / "d.npz"
    first = get_dataset(small_args(), path=path)
    with np.load(path, allow_pickle=False) as f:  # loads with pickle disabled
        assert json.loads(str(f["args_json"]))["num_samples"] == 100
    again = get_dataset(small_args(), path=path)
    for key in ("x", "x_test", "y", "y_test", "t"):
        assert np.array_equal(first[key], again[key])
    assert np.array_equal(again["templates"]["x"], data.get_templates()["x"])
    assert os.listdir(tmp_path) == ["d.npz"]  # no temporary file left behind


def test_cache_with_other_args_is_regenerated(tmp_path):
    path = tmp_path / "d.npz"
    get_dataset(small_args(), path=path)
    with pytest.warns(UserWarning, match="other arguments"):
        d = get_dataset(small_args(seed=5), path=path)
    assert np.array_equal(d["x"], make_dataset(small_args(seed=5))["x"])
    _, cached_args = data.load_dataset(path)
    assert cached_args["seed"] == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_cache_is_regenerated(tmp_path, damage):
    path = tmp_path / "d.npz"
    get_dataset(small_args(), path=path)
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"not a zip" * 50, "empty": b""}[damage])
    with pytest.warns(UserWarning, match="regenerating"):
        d = get_dataset(small_args(), path=path)
    assert np.array_equal(d["x"], make_dataset(small_args())["x"])
    data.load_dataset(path)  # the rewritten cache is whole again


def rewrite_cache(path, **changes):
    """Rewrite the .npz cache at path with some entries changed (None: removed)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


@pytest.mark.parametrize("changes", [
    {"templates_y": None}, {"templates_t": None}, {"y_test": None},
    {"format": np.array("one")}, {"format": np.array([1, 1])}, {"args_json": np.array([1, 2])},
    {"args_json": np.array("{not json")},
    {"x": np.zeros((3, 40))}, {"x_test": np.zeros((20, 41))}, {"t": np.zeros(7)},
    {"y": np.array(["a"] * 80)}, {"x": np.full((80, 40), np.nan)},
    {"templates_x": np.zeros((10, 11))}, {"y_test": np.zeros(20)},
])
def test_cache_with_odd_contents_is_regenerated(tmp_path, changes):
    path = tmp_path / "d.npz"
    get_dataset(small_args(), path=path)
    rewrite_cache(path, **changes)
    with pytest.warns(UserWarning, match="regenerating"):
        d = get_dataset(small_args(), path=path)
    fresh = make_dataset(small_args())
    assert all(np.array_equal(d[k], fresh[k]) for k in ("x", "x_test", "y", "y_test", "t"))
    with np.load(path, allow_pickle=False) as f:  # the cache was rewritten whole
        assert np.array_equal(f["x"], fresh["x"]) and "templates_y" in f.files


def test_npz_of_other_content_is_regenerated(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.warns(UserWarning, match="not an mnist1d_np cache"):
        get_dataset(small_args(), path=path)


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    get_dataset(small_args(), path=path)
    before = path.read_bytes()

    def explode(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError):
        get_dataset(small_args(seed=3), path=path, regenerate=True)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["d.npz"]


# ------------------------------------------------------------ command line

def test_cli_writes_dataset(tmp_path, capsys):
    out = tmp_path / "sub" / "m.npz"
    data.main(["--out", str(out), "--num-samples", "100", "--seed", "3", "--shuffle-seq", "--padding", "10", "20"])
    d, args = data.load_dataset(out)
    assert args["seed"] == 3 and args["shuffle_seq"] and args["padding"] == [10, 20]
    want = make_dataset(get_dataset_args(num_samples=100, seed=3, shuffle_seq=True, padding=(10, 20)))
    assert np.array_equal(d["x"], want["x"])


def test_cli_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "m.npz"
    with pytest.raises(SystemExit) as exc:
        data.main(["--out", str(out), "--num-samples", "5"])
    assert exc.value.code == 2
    assert "num_samples must be in [10, 1000000], got 5" in capsys.readouterr().err
    assert not out.exists()


def test_cli_help_documents_every_field(capsys):
    with pytest.raises(SystemExit):
        data.main(["--help"])
    text = capsys.readouterr().out
    for name in data.FIELD_HELP:
        assert "--" + name.replace("_", "-") in text
