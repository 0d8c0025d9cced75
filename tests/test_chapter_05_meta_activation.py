"""Chapter 05 (metalearning an activation): meta-gradient, resume, cache, --quick."""
import dataclasses

import numpy as np
import pytest

from test_chapters import assert_claims, assert_real_png, load_chapter, run_chapter


@pytest.fixture
def ch():
    return load_chapter("05_meta_activation")


def tiny_meta_settings(ch, **overrides):
    overrides.setdefault("meta_hidden", (5,))
    return ch.Settings(num_samples=500, hidden_size=8, steps=4, meta_loss_last=2, batch_size=20,
                       test_examples=20, outer_steps=6, seeds=1, **overrides)


def count_meta_steps(ch, monkeypatch, interrupt_at=None):
    """Record the outer steps run from now on; raise KeyboardInterrupt at call `interrupt_at`."""
    original, calls = ch.meta_step, []

    def counted(*args):
        calls.append(args[-1])
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return original(*args)
    monkeypatch.setattr(ch, "meta_step", counted)
    return calls


def without_time(history):
    return {k: v for k, v in history.items() if k != "seconds"}


@pytest.mark.parametrize("noise, meta_hidden", [(0.1, (5,)), (0.0, (5,)), (0.1, (4, 3))])
def test_chapter_05_meta_gradient_equals_finite_difference(ch, noise, meta_hidden):
    """Fused kernels (one hidden layer) and plain ops (the paper's text: two)."""
    settings = tiny_meta_settings(ch, noise=noise, meta_hidden=meta_hidden, dtype="float64")
    theta = ch.init_meta_params(settings, np.random.default_rng(0))
    dataset = ch.make_data(settings)
    _, meta_grad, _ = ch.meta_step(theta, settings, dataset, seed=0, outer_step=0)
    # A random direction that leans along the gradient: a direction nearly
    # orthogonal to it would make the relative error measure cancellation.
    v = np.sign(meta_grad) * np.abs(np.random.default_rng(1).normal(size=theta.shape))
    eps = 1e-6
    up, down = (ch.meta_step(theta + s * eps * v, settings, dataset, 0, 0)[0] for s in (1, -1))
    np.testing.assert_allclose(meta_grad @ v, (up - down) / (2 * eps), rtol=1e-6)


def test_chapter_05_resumes_to_identical_numbers(tmp_path, ch, monkeypatch):
    settings = tiny_meta_settings(ch)
    dataset = ch.make_data(settings)
    straight_theta, straight = ch.metalearn(settings, dataset, 0, tmp_path / "a" / "metalearn")
    original = ch.meta_step
    count_meta_steps(ch, monkeypatch, interrupt_at=4)  # in outer step 3: steps 0-2 are saved
    with pytest.raises(KeyboardInterrupt):
        ch.metalearn(settings, dataset, 0, tmp_path / "b" / "metalearn")
    monkeypatch.setattr(ch, "meta_step", original)
    calls = count_meta_steps(ch, monkeypatch)
    resumed_theta, resumed = ch.metalearn(settings, dataset, 0, tmp_path / "b" / "metalearn")
    assert calls == [3, 4, 5]
    assert np.array_equal(resumed_theta, straight_theta) and without_time(resumed) == without_time(straight)


def test_chapter_05_resumes_only_its_own_metalearning(tmp_path, ch, monkeypatch):
    settings = tiny_meta_settings(ch)
    dataset, path = ch.make_data(settings), tmp_path / "metalearn"
    calls = count_meta_steps(ch, monkeypatch)
    _, seed0 = ch.metalearn(settings, dataset, 0, path)
    _, seed1 = ch.metalearn(settings, dataset, 1, path)
    _, other = ch.metalearn(dataclasses.replace(settings, outer_lr=0.1), dataset, 0, path)
    _, other_data = ch.metalearn(settings, {**dataset, "x": dataset["x"][::-1].copy()}, 0, path)
    assert len(calls) == 4 * 6  # each ran all its outer steps
    assert all(h["meta_loss"] != seed0["meta_loss"] for h in (seed1, other, other_data))
    assert len(list(tmp_path.glob("metalearn-*.ckpt.npz"))) == 4  # none overwritten
    # A finished metalearning is a cache, kept when only a setting of the comparison changes.
    calls.clear()
    _, again = ch.metalearn(dataclasses.replace(settings, seeds=4), dataset, 0, path)
    assert calls == [] and again == seed0


def test_chapter_05_quick(tmp_path):
    stdout, record = run_chapter("05_meta_activation", tmp_path)
    results = record["results"]
    meta_loss = results["history"]["meta_loss"]
    accuracy = {name: np.mean(accs) for name, accs in results["final_test_acc"].items()}
    assert len(meta_loss) == 20 and meta_loss[-1] < meta_loss[0]
    # The paper's finding shows already at quick scale (20 outer steps of 50 inner steps):
    # on fresh initialisations, the learned function beats its ELU start, and the best of
    # ReLU, ELU and Swish by more than 5 points.
    assert accuracy["learned"] > accuracy["elu"] + 0.05
    assert accuracy["learned"] > max(accuracy["relu"], accuracy["elu"], accuracy["swish"]) + 0.05
    # Pinned from a quick run (float32 kernels: their summation order may differ on another
    # CPU by ~1e-6); a wrong meta-gradient moves these by far more.
    np.testing.assert_allclose(meta_loss[-1], 1.56783807, rtol=1e-3)
    assert abs(accuracy["learned"] - np.mean([0.438, 0.448, 0.416])) < 0.02
    assert "learned minus best of ReLU/ELU/Swish (points) | > 5" in stdout
    assert_real_png(tmp_path / "activation.png")
    assert_claims(stdout, record, {"the learned activation beats ReLU, ELU and Swish by more than 5 points":
                                   100 * (accuracy["learned"] - max(accuracy[b] for b in ("relu", "elu", "swish")))})
