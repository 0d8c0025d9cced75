"""data.with_label_noise: how many labels change, on a copy, reproducibly."""
import numpy as np
import pytest

from mnist1d_np.data import with_label_noise


def labelled(n, rng):
    return {"x": rng.standard_normal((n, 4)), "y": rng.integers(0, 10, n),
            "x_test": rng.standard_normal((50, 4)), "y_test": rng.integers(0, 10, 50)}


def test_changed_fraction_is_fraction_times_nine_tenths(rng):
    clean = labelled(200_000, rng)
    noisy = with_label_noise(clean, 0.15, np.random.default_rng(1))
    changed = np.mean(noisy["y"] != clean["y"])
    # 0.15 * 0.9 = 0.135; the binomial SD at n = 2e5 is 0.00076: 5 SD either side.
    assert abs(changed - 0.135) < 0.004
    # Replacements are uniform over the ten classes, the old label included.
    counts = np.bincount(noisy["y"][noisy["y"] != clean["y"]], minlength=10)
    assert counts.min() > 0.9 * counts.mean()


def test_clean_copy_and_test_labels_untouched(rng):
    clean = labelled(1000, rng)
    before = {k: v.copy() for k, v in clean.items()}
    noisy = with_label_noise(clean, 0.5, np.random.default_rng(2))
    for key, value in before.items():
        np.testing.assert_array_equal(clean[key], value)
    np.testing.assert_array_equal(noisy["y_test"], clean["y_test"])
    np.testing.assert_array_equal(noisy["x"], clean["x"])
    assert not np.shares_memory(noisy["y"], clean["y"])
    assert not np.shares_memory(noisy["x"], clean["x"])
    assert noisy["y"].dtype == clean["y"].dtype and (noisy["y"] != clean["y"]).any()


def test_same_seed_same_labels_and_nested_levels(rng):
    clean = labelled(5000, rng)
    first, second = (with_label_noise(clean, 0.15, np.random.default_rng(7))["y"] for _ in range(2))
    np.testing.assert_array_equal(first, second)
    other = with_label_noise(clean, 0.15, np.random.default_rng(8))["y"]
    assert (other != first).any()
    low, high = (with_label_noise(clean, f, np.random.default_rng(7))["y"] for f in (0.1, 0.2))
    changed_low = low != clean["y"]
    np.testing.assert_array_equal(high[changed_low], low[changed_low])


def test_edge_fractions(rng):
    clean = labelled(1000, rng)
    np.testing.assert_array_equal(with_label_noise(clean, 0, np.random.default_rng(0))["y"], clean["y"])
    changed = np.mean(with_label_noise(clean, 1.0, np.random.default_rng(0))["y"] != clean["y"])
    assert 0.85 < changed < 0.95


@pytest.mark.parametrize("fraction", [-0.01, 1.5, float("nan"), "0.1", None, True])
def test_bad_fraction_raises_naming_it(rng, fraction):
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\]"):
        with_label_noise(labelled(10, rng), fraction, np.random.default_rng(0))


def test_bad_rng_raises(rng):
    with pytest.raises(ValueError, match="rng"):
        with_label_noise(labelled(10, rng), 0.1, 0)
