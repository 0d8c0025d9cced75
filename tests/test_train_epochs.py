"""train.train_epochs: SGD + momentum over reshuffled epochs, per-epoch errors, resume."""
import numpy as np
import pytest

from mnist1d_np import nn, resumable, train
from mnist1d_np.data import get_dataset_args, make_dataset


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(get_dataset_args(num_samples=310, train_split=0.8))  # 248 train: a short last batch


def reference_logistic(dataset, weight, bias, epochs, seed, lr, momentum, batch_size):
    """The same training written out in NumPy: softmax regression, its gradient by hand."""
    rng = np.random.default_rng(seed)
    params, bufs = [weight.copy(), bias.copy()], None
    for _ in range(epochs):
        order = rng.permutation(len(dataset["y"]))
        x, y = dataset["x"][order], dataset["y"][order]
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = xb @ params[0] + params[1]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            grads = [xb.T @ p / len(yb), p.sum(axis=0) / len(yb)]
            bufs = grads if bufs is None else [momentum * b + g for b, g in zip(bufs, grads)]
            params = [w - lr * b for w, b in zip(params, bufs)]
    return params


def test_matches_a_numpy_reference(dataset):
    model = nn.Sequential(nn.Linear(40, 10, np.random.default_rng(0)))
    start = [p.data.copy() for p in model.parameters().values()]
    train.train_epochs(model, dataset, 3, np.random.default_rng(5), lr=0.05, momentum=0.9, batch_size=100)
    want = reference_logistic(dataset, *start, epochs=3, seed=5, lr=0.05, momentum=0.9, batch_size=100)
    for got, expected in zip(model.parameters().values(), want):
        np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-12)


def test_records_real_percent_errors_every_epoch(dataset):
    model = nn.make_model("mlp", np.random.default_rng(0), dtype=np.float32)
    curves = train.train_epochs(model, dataset, 4, np.random.default_rng(1), lr=0.05)
    assert set(curves) == set(train.EPOCH_CURVES) and all(len(c) == 4 for c in curves.values())
    loss, accuracy = train.evaluate(model, dataset["x_test"], dataset["y_test"])
    assert curves["test_error"][-1] == pytest.approx(100 * (1 - accuracy))
    assert curves["test_loss"][-1] == pytest.approx(loss)
    n_test = len(dataset["y_test"])  # 62: errors are multiples of 100/62, not integers
    assert all(0 <= e <= 100 and abs(e * n_test / 100 - round(e * n_test / 100)) < 1e-9
               for e in curves["test_error"])
    assert curves["train_loss"][-1] < curves["train_loss"][0]


def test_stop_at_checkpoint_then_resume_gives_the_same_numbers(dataset, tmp_path, monkeypatch):
    def run(**kwargs):
        model = nn.make_model("cnn", np.random.default_rng(3), dtype=np.float32)
        curves = train.train_epochs(model, dataset, 6, np.random.default_rng(4), save_every=2, **kwargs)
        return curves, nn.flatten_parameters(model).copy()
    whole, whole_params = run()
    path = str(tmp_path / "run.npz")
    polls = []
    with pytest.raises(KeyboardInterrupt), resumable.stop_when(lambda: polls.append(1) or len(polls) == 2):
        run(checkpoint=path)
    assert len(polls) == 2  # polled at epochs 2 and 4 only; stopped after saving epoch 4
    epochs = []
    original = train.errors
    monkeypatch.setattr(train, "errors", lambda model, data: epochs.append(1) or original(model, data))
    resumed, resumed_params = run(checkpoint=path)
    assert len(epochs) == 2  # epochs 5 and 6: the order of epoch 5 comes from the saved generator
    assert resumed == whole
    np.testing.assert_array_equal(resumed_params, whole_params)


def test_another_run_gets_its_own_checkpoint(dataset, tmp_path):
    def run(lr):
        model = nn.make_model("logistic", np.random.default_rng(0))
        return train.train_epochs(model, dataset, 2, np.random.default_rng(0), lr=lr,
                                  checkpoint=str(tmp_path / "run.ckpt.npz"))
    first = run(0.01)
    second = run(0.02)  # not a resume of the first run: trained from the start
    assert len(second["test_error"]) == 2 and second != first
    assert len(list(tmp_path.glob("run-*.ckpt.npz"))) == 2
    assert run(0.01) == first  # resumes its own finished checkpoint
