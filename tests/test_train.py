"""The paper's training loop: batch order, evaluation schedule, learning, resume."""
import numpy as np
import pytest

from mnist1d_np import nn, optim, resumable, train
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


class CountedEvaluations:
    """Counts the evaluations train.train makes (one per checkpoint)."""

    def __init__(self, monkeypatch):
        self.steps = 0
        original = train.losses_and_accuracies

        def counted(model, dataset):
            self.steps += 1
            return original(model, dataset)
        monkeypatch.setattr(train, "losses_and_accuracies", counted)


def stop_at_checkpoint(n):
    """A stop request that turns True at the n-th checkpoint, as runmany's after a Ctrl-C."""
    calls = []
    return resumable.stop_when(lambda: calls.append(1) or len(calls) >= n)


def test_interrupted_run_resumes_to_identical_results(dataset, tmp_path, monkeypatch):
    config = train.TrainConfig(steps=90, eval_every=20)
    straight = train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config)
    path = tmp_path / "run.ckpt.npz"
    with pytest.raises(KeyboardInterrupt), stop_at_checkpoint(3):   # after the evaluations at 0, 20, 40
        train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config, path)
    evaluations = CountedEvaluations(monkeypatch)
    resumed = train.train(nn.make_model("gru", np.random.default_rng(2)), dataset, config, path)
    assert evaluations.steps == 3  # 60, 80 and 89: resumed after step 40
    assert resumed == straight


def test_a_killed_run_loses_at_most_one_checkpoint_interval(dataset, tmp_path, monkeypatch):
    """An exception between checkpoints (a kill, a Ctrl-C outside a sweep) keeps the last one."""
    config = train.TrainConfig(steps=50, eval_every=10)
    straight = train.train(nn.make_model("mlp", np.random.default_rng(2)), dataset, config)
    path = tmp_path / "run.ckpt.npz"
    steps = []
    original = train._cross_entropy  # the training loss of each step

    def dies_at_step_35(model, xb, yb):
        steps.append(1)
        if len(steps) == 36:
            raise KeyboardInterrupt
        return original(model, xb, yb)
    monkeypatch.setattr(train, "_cross_entropy", dies_at_step_35)
    with pytest.raises(KeyboardInterrupt):
        train.train(nn.make_model("mlp", np.random.default_rng(2)), dataset, config, path)
    monkeypatch.setattr(train, "_cross_entropy", original)
    evaluations = CountedEvaluations(monkeypatch)
    assert train.train(nn.make_model("mlp", np.random.default_rng(2)), dataset, config, path) == straight
    assert evaluations.steps == 2  # 40 and 49: resumed after the checkpoint of step 30


def test_a_run_never_uses_or_overwrites_another_runs_checkpoint(dataset, tmp_path, monkeypatch):
    """Other settings, another initialisation, other data: each its own file, each from scratch."""
    path = tmp_path / "run.ckpt.npz"
    model = lambda seed=0: nn.make_model("logistic", np.random.default_rng(seed))
    config = train.TrainConfig(steps=5, eval_every=2)
    first = train.train(model(), dataset, config, path)
    others = [(model(), dataset, train.TrainConfig(steps=6, eval_every=2)), (model(1), dataset, config),
              (model(), {**dataset, "y": dataset["y"][::-1].copy()}, config),
              (model(), {**dataset, "y_test": dataset["y_test"][::-1].copy()}, config)]
    evaluations = CountedEvaluations(monkeypatch)
    for other in others:
        before = evaluations.steps
        train.train(*other, path)
        assert evaluations.steps - before == len(train.paper_eval_steps(other[2].steps, 2))  # from scratch
    assert len(list(tmp_path.glob("run-*.ckpt.npz"))) == 5
    before = evaluations.steps
    assert train.train(model(), dataset, config, path) == first and evaluations.steps == before  # its own: done


def test_stop_request_saves_then_interrupts(dataset, tmp_path, monkeypatch):
    config = train.TrainConfig(steps=30, eval_every=10)
    with pytest.raises(KeyboardInterrupt), stop_at_checkpoint(1):
        train.train(nn.make_model("mlp", np.random.default_rng(0)), dataset, config, tmp_path / "r.ckpt.npz")
    evaluations = CountedEvaluations(monkeypatch)
    train.train(nn.make_model("mlp", np.random.default_rng(0)), dataset, config, tmp_path / "r.ckpt.npz")
    assert evaluations.steps == 3  # 10, 20, 29: stopped at the first checkpoint (after step 0)


def test_masks_and_kept_parameters(dataset):
    """fit's options: masked entries keep their value; parameters_at is a copy after that step."""
    model = nn.make_model("logistic", np.random.default_rng(0))
    before = model.linear.weight.data.copy()
    masks = {name: np.ones(p.shape, bool) for name, p in model.parameters().items()}
    masks["linear.weight"][:20] = False
    curves = train.train(model, dataset, train.TrainConfig(steps=12, eval_every=5), masks=masks,
                         keep_parameters_at=(4,))
    after = model.linear.weight.data
    assert np.array_equal(after[:20], before[:20]) and (after[20:] != before[20:]).all()
    at_4 = curves["parameters_at"][4]["linear.weight"]
    assert not np.array_equal(at_4, after) and not np.array_equal(at_4, before)
    with pytest.raises(ValueError, match=r"keep_parameters_at must lie in \[0, 11\]"):
        train.train(model, dataset, train.TrainConfig(steps=12), keep_parameters_at=(12,))


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="batch_size"):
        train.TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        train.TrainConfig(lr=-1.0)


def test_fit_refuses_a_bad_count_naming_it(dataset):
    model = nn.Linear(40, 10, np.random.default_rng(0))
    batches = train.FixedOrder(dataset["x"], dataset["y"], 100)
    for bad, message in ((dict(steps=2.5), "steps must be an integer >= 0, got 2.5"),
                         (dict(steps=-1), "steps must be an integer >= 0, got -1"),
                         (dict(steps=4, save_every=0), "save_every must be an integer >= 1, got 0")):
        with pytest.raises(ValueError, match=message):
            train.fit(model, batches, optim.adam(1e-2), **bad)


def test_a_model_that_computes_otherwise_gets_its_own_checkpoint(dataset, tmp_path, monkeypatch):
    """Equal weights, another activation: not the same run (nn.describe is part of the identity)."""
    from mnist1d_np import ops

    def model(activation):
        rng = np.random.default_rng(0)
        return nn.Sequential(nn.Linear(40, 16, rng), activation, nn.Linear(16, 10, rng))
    config = train.TrainConfig(steps=6, eval_every=2)
    relu = train.train(model(ops.relu), dataset, config, tmp_path / "run.ckpt.npz")
    evaluations = CountedEvaluations(monkeypatch)
    tanh = train.train(model(ops.tanh), dataset, config, tmp_path / "run.ckpt.npz")
    assert evaluations.steps == 4 and tanh != relu  # trained from scratch, not the ReLU run's curves
    assert tanh == train.train(model(ops.tanh), dataset, config)


@pytest.mark.parametrize("n, steps, batch_size", [(4000, 6000, 100), (50, 20, 100), (250, 7, 100), (7, 5, 3)])
def test_fixed_order_counts_the_examples_its_batches_hold(n, steps, batch_size):
    batches = train.FixedOrder(np.zeros((n, 1)), np.zeros(n), batch_size)
    held = sum(len(batches(step)[0]) for step in range(steps))
    assert train.FixedOrder.examples_seen(n, steps, batch_size) == held
