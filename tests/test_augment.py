"""The self-supervised augmentation: invariants, determinism, bad input."""
import numpy as np
import pytest

from mnist1d_np import augment


def test_removing_the_trend_of_a_pure_line_gives_zeros(rng):
    positions = np.arange(40.0)
    lines = rng.normal(size=(5, 1)) + rng.normal(size=(5, 1)) * positions
    np.testing.assert_allclose(augment.remove_trend(lines), 0.0, atol=1e-12)


def test_removing_the_trend_leaves_mean_and_slope_zero(rng):
    x = rng.normal(size=(6, 40))
    detrended = augment.remove_trend(x)
    c = augment.centred_positions(40)
    np.testing.assert_allclose(detrended.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(detrended @ c, 0.0, atol=1e-10)
    # Least squares: what is removed is the best line, so the rest is orthogonal to lines.
    np.testing.assert_allclose(augment.remove_trend(detrended), detrended, atol=1e-12)


def test_shifts_are_circular(rng):
    x = rng.normal(size=(3, 40))
    shifted = augment.circular_shift(x, np.array([0, 7, 43]))
    np.testing.assert_array_equal(shifted[0], x[0])
    np.testing.assert_array_equal(shifted[1], np.roll(x[1], 7))
    np.testing.assert_array_equal(shifted[2], np.roll(x[2], 3))  # 43 = 40 + 3
    np.testing.assert_array_equal(np.sort(shifted, axis=1), np.sort(x, axis=1))  # nothing lost


def test_a_view_is_a_shifted_detrended_signal_plus_a_line(rng):
    x = rng.normal(size=(4, 40))
    view = augment.augment(x, np.random.default_rng(3))
    # view - roll(detrended x, k) is a line for the drawn k: detrending it leaves zeros.
    detrended = augment.remove_trend(x)
    for row, target in zip(detrended, view):
        residuals = [augment.remove_trend((target - np.roll(row, k))[None]) for k in range(10)]
        assert sum(np.allclose(r, 0.0, atol=1e-10) for r in residuals) == 1


def test_draws_follow_the_documented_order_and_scales():
    x = np.zeros((20000, 40))
    view = augment.augment(x, np.random.default_rng(0), max_shift=10, slope_sd=0.04, offset_sd=0.3)
    draws = np.random.default_rng(0)
    draws.integers(0, 10, size=20000)
    slopes, offsets = draws.normal(0, 0.04, size=20000), draws.normal(0, 0.3, size=20000)
    expected = slopes[:, None] * augment.centred_positions(40) + offsets[:, None]
    np.testing.assert_allclose(view, expected, atol=1e-12)
    assert abs(slopes.std() - 0.04) < 0.002 and abs(offsets.std() - 0.3) < 0.01


def test_same_seed_same_views_and_dtype_kept(rng):
    x = rng.normal(size=(8, 40)).astype(np.float32)
    a = augment.augment(x, np.random.default_rng(5))
    b = augment.augment(x, np.random.default_rng(5))
    c = augment.augment(x, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and not np.allclose(a, c)


def test_shift_range_is_respected():
    x = np.zeros((1, 40))
    x[0, 0] = 1.0  # a spike: after detrending its position still marks the shift
    rng = np.random.default_rng(0)
    seen = {int(np.argmax(augment.augment(x, rng, slope_sd=0, offset_sd=0)[0])) for _ in range(300)}
    assert seen == set(range(10))


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_shift=0), "max_shift"), (dict(max_shift=2.5), "max_shift"),
    (dict(slope_sd=-1), "slope_sd"), (dict(offset_sd=float("nan")), "offset_sd")])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment.augment(np.zeros((2, 40)), np.random.default_rng(0), **kwargs)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="x must be"):
        augment.augment(np.zeros(40), np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        augment.augment(np.zeros((2, 40)), 0)
    with pytest.raises(ValueError, match="shifts"):
        augment.circular_shift(np.zeros((2, 40)), np.array([1.5, 2.0]))
