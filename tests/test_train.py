"""The paper's training loop: batch order, evaluation schedule, learning, resume."""
import numpy as np
import pytest

from mnist1d_np import nn, train
from mnist1d_np.data import get_dataset_args, make_dataset


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(get_dataset_args(num_samples=1000))


def test_schedule_and_learning(dataset):
    model = nn.make_model("mlp", np.random.default_rng(0))
    config = train.TrainConfig(steps=120, eval_every=50)
    results = train.train(model, dataset, config)
    assert results["eval_steps"] == [0, 50, 100, 119]
    assert len(results["train_losses"]) == 120
    assert results["test_acc"][-1] > 0.3 > results["test_acc"][0] - 0.1  # learns from ~chance
    assert np.mean(results["train_losses"][-10:]) < np.mean(results["train_losses"][:10])
    best = train.early_stopped(results)
    assert best["test_acc"] == max(results["test_acc"]) and best["step"] in results["eval_steps"]


def test_batches_follow_the_papers_fixed_order(dataset, monkeypatch):
    seen = []
    original = train.ops.cross_entropy

    def spy(logits, labels):
        seen.append(labels.copy())
        return original(logits, labels)
    monkeypatch.setattr(train.ops, "cross_entropy", spy)
    monkeypatch.setattr(train, "evaluate", lambda *a: (0.0, 0.0))
    model = nn.make_model("logistic", np.random.default_rng(0))
    train.train(model, dataset, train.TrainConfig(steps=10, batch_size=300, eval_every=100))
    y, n = dataset["y"], len(dataset["y"])  # 800: batches start at 0, 300, 600, 100 (900 mod 800)...
    assert len(seen) == 10
    for step, labels in enumerate(seen):
        start = (step * 300) % n
        assert np.array_equal(labels, y[start:start + 300])


def test_evaluate_weights_every_example_equally(dataset):
    """250 examples in batches of 100: the last, short batch must not count as much."""
    from mnist1d_np import Tensor, ops
    model = nn.make_model("mlp", np.random.default_rng(2))
    x, y = dataset["x"][:250], dataset["y"][:250]
    loss, accuracy = train.evaluate(model, x, y, batch_size=100)
    logits = model(Tensor(x))
    assert loss == pytest.approx(ops.cross_entropy(logits, y).item(), rel=1e-12)
    assert accuracy == np.mean(logits.data.argmax(axis=1) == y)


def test_same_seed_same_run(dataset):
    runs = [train.train(nn.make_model("cnn", np.random.default_rng(1)), dataset,
                        train.TrainConfig(steps=30, eval_every=10)) for _ in range(2)]
    assert runs[0] == runs[1]


class Interrupt(Exception):
    pass


class StopAt:
    """A progress object that records the steps it is told of, and interrupts
    training after `limit` steps."""

    def __init__(self, limit):
        self.limit, self.calls = limit, []

    def update(self, n=1, **info):
        self.calls.append(n)
        if sum(self.calls) >= self.limit:
            raise Interrupt


def test_interrupted_run_resumes_to_identical_results(dataset, tmp_path):
    config = train.TrainConfig(steps=90, eval_every=20)
    straight = train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config)
    path = tmp_path / "run.ckpt.npz"
    with pytest.raises(Interrupt):
        train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config, path, StopAt(55))
    resuming = StopAt(10**9)
    resumed = train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config, path, resuming)
    assert resuming.calls[0] == 41  # from the checkpoint of the evaluation at step 40
    assert resumed == straight


def test_a_run_never_uses_or_overwrites_another_runs_checkpoint(dataset, tmp_path):
    """Other settings, another initialisation, other data: each its own file, each from scratch."""
    path = tmp_path / "run.ckpt.npz"
    model = lambda seed=0: nn.make_model("logistic", np.random.default_rng(seed))
    config = train.TrainConfig(steps=5, eval_every=2)
    train.train(model(), dataset, config, path)
    others = [(model(), dataset, train.TrainConfig(steps=6, eval_every=2)), (model(1), dataset, config),
              (model(), {**dataset, "y": dataset["y"][::-1].copy()}, config)]
    for other in others:
        progress = StopAt(10**9)
        train.train(*other, path, progress)
        assert progress.calls[0] == 1  # started from scratch
    assert len(list(tmp_path.glob("run-*.ckpt.npz"))) == 4


def test_stop_request_saves_then_interrupts(dataset, tmp_path):
    config = train.TrainConfig(steps=30, eval_every=10)
    with pytest.raises(KeyboardInterrupt):
        train.train(nn.make_model("mlp", np.random.default_rng(0)), dataset, config, tmp_path / "r.ckpt.npz",
                    should_stop=lambda: True)
    progress = StopAt(10**9)
    train.train(nn.make_model("mlp", np.random.default_rng(0)), dataset, config, tmp_path / "r.ckpt.npz", progress)
    assert progress.calls[0] == 1  # stopped at the first checkpoint (after step 0): resumes at step 1


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="batch_size"):
        train.TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        train.TrainConfig(lr=-1.0)
