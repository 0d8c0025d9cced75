"""Chapter 07 (SimCLR): the --quick run's finding, exact resumption, checkpoint identity, every loss trains."""
import dataclasses
import types

import numpy as np
import pytest

from mnist1d_np import resumable
from test_chapters import assert_claims, assert_real_png, load_chapter, run_chapter

chapter = load_chapter("07_self_supervised")


@pytest.fixture(scope="module")
def tiny_dataset():
    from mnist1d_np.data import get_dataset_args, make_dataset
    return make_dataset(get_dataset_args(num_samples=500))  # 400 train (4 batches an epoch), 100 test


def tiny(**overrides):
    return chapter.Trial(**{"epochs": 4, "eval_every_epochs": 2, **overrides})


def test_quick_run_learns_a_representation(tmp_path):
    stdout, record = run_chapter("07_self_supervised", tmp_path)
    main = record["results"]["main"]
    layers, history = main["layers"], main["history"]
    assert list(layers) == ["input", "conv1", "conv2", "conv3", "hidden1", "output"]
    assert layers["input"] == pytest.approx(0.328)  # pixels: the notebook's 32.8 %, no training involved
    # The finding at 20 label-free epochs: the encoder's linear probe is far above the pixels'
    # (every conv layer is), and the head's output is below the encoder.
    assert layers["conv3"] > layers["input"] + 0.25
    assert min(layers[name] for name in ("conv1", "conv2", "conv3")) > layers["input"] + 0.25
    assert layers["output"] < max(layers[name] for name in ("conv1", "conv2", "conv3"))
    assert history["epoch"] == [0, 10, 20] and len(history["epoch_losses"]) == 20
    assert history["epoch_losses"][-1] < history["epoch_losses"][0] - 0.5
    assert history["knn"][-1] > history["knn"][0] and history["linear"][-1] > history["linear"][0]
    tsne = record["results"]["tsne"]
    assert tsne["after training"]["trustworthiness"] > tsne["before training"]["trustworthiness"]
    assert "linear probe, conv3 (encoder) (%)" in stdout
    for figure in ("views", "tsne", "layers", "training"):
        assert_real_png(tmp_path / f"{figure}.png")
    assert_claims(stdout, record, {
        "the best linear probe is in the encoder, before the projection head":
            100 * (max(layers[n] for n in ("conv1", "conv2", "conv3")) - max(layers["hidden1"], layers["output"])),
        "the encoder's features reach about 82 % linear accuracy": 100 * layers["conv3"],
        "label-free features are far more linearly readable than the pixels": 100 * (layers["conv3"] - layers["input"])})
    assert [c["paper"] for c in record["claims"]] == pytest.approx([82.1 - 76.1, 82.1, 82.1 - 32.8])


def test_interrupted_training_resumes_to_identical_numbers(tiny_dataset, tmp_path, capsys):
    config = tiny()
    whole, history = chapter.train_simclr(config, tiny_dataset, str(tmp_path / "whole.npz"))
    with resumable.stop_when(lambda: True), pytest.raises(KeyboardInterrupt):  # a stop at the first checkpoint
        chapter.train_simclr(config, tiny_dataset, str(tmp_path / "cut.npz"))
    capsys.readouterr()
    resumed, resumed_history = chapter.train_simclr(config, tiny_dataset, str(tmp_path / "cut.npz"))
    assert "after 8 of 16" in capsys.readouterr().err  # resumed at epoch 2, did not start over
    assert resumed_history == history
    for (name, a), b in zip(whole.parameters().items(), resumed.parameters().values()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_a_checkpoint_of_another_run_is_not_used(tiny_dataset, tmp_path):
    path = str(tmp_path / "ckpt.npz")
    _, history = chapter.train_simclr(tiny(epochs=2), tiny_dataset, path)
    _, other = chapter.train_simclr(tiny(epochs=2, tau=0.1), tiny_dataset, path)
    _, fresh = chapter.train_simclr(tiny(epochs=2, tau=0.1), tiny_dataset, str(tmp_path / "fresh.npz"))
    assert other == fresh and other != history  # reusing the tau=0.5 checkpoint would give `history`


def test_t_sne_settings_keep_the_training_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    settings = chapter.Settings(epochs=2, eval_every_epochs=2)
    moved = dataclasses.replace(settings, tsne_points=50, tsne_iterations=100)
    assert chapter.trial(moved, 0) == chapter.trial(settings, 0) != chapter.trial(settings, 1)
    path = str(tmp_path / "ckpt.npz")
    _, history = chapter.train_simclr(chapter.trial(settings, 0), tiny_dataset, path)
    monkeypatch.setattr(chapter, "two_views", lambda *args: pytest.fail("trained again"))
    _, again = chapter.train_simclr(chapter.trial(moved, 0), tiny_dataset, path)
    assert again == history


@pytest.mark.parametrize("loss", chapter.ABLATIONS["loss"])
def test_every_loss_trains(loss, tiny_dataset):
    net, history = chapter.train_simclr(tiny(loss=loss, epochs=2), tiny_dataset)
    assert len(history["epoch_losses"]) == 2 and np.all(np.isfinite(history["epoch_losses"]))
    assert hasattr(net, "predictor") == (loss == "negative_free")


@pytest.mark.parametrize("depth, names", [
    (0, ["input", "conv1", "conv2", "conv3"]),
    (3, ["input", "conv1", "conv2", "conv3", "hidden1", "hidden2", "output"])])
def test_projector_depth_sets_the_layers(depth, names):
    net, _ = chapter.build(tiny(projector_layers=depth))
    outputs = net.layers(chapter.Tensor(np.zeros((2, 40), dtype=np.float32)))
    assert list(outputs) == names and outputs["conv3"].dtype == np.float32
    assert outputs["conv3"].shape == (2, 125) and net(outputs["input"]).shape[1] == (125 if depth == 0 else 16)


@pytest.mark.parametrize("field, value", [("loss", "mse"), ("projector_layers", 4), ("train_on", "test")])
def test_bad_choices_raise(field, value):  # numbers (tau = 0, epochs = 0, ...) are checked where they are used
    with pytest.raises(ValueError, match=f"invalid {field}={value!r}"):
        chapter.Settings(**{field: value})


def ablation_runs(settings):
    run = types.SimpleNamespace(sweep=lambda task, configs, **kwargs: configs,  # a sweep that returns its configs
                                settings=settings, args=types.SimpleNamespace(seed=0))
    return chapter.run_ablations(run)


def test_ablations_change_one_thing_of_the_main_run_each_and_read_only_what_their_loss_reads():
    main = chapter.trial(chapter.Settings(), 0)
    variants = ablation_runs(chapter.Settings())
    assert len(variants) == 10  # 3 heads, 4 losses, 2 temperatures, train+test
    unread = {"tau", "predictor_hidden"}  # set to None where the loss does not read them
    for label, variant in variants.items():
        changed = {k for k, v in dataclasses.asdict(variant).items() if dataclasses.asdict(main)[k] != v}
        assert changed == {label.split()[0]} or (changed - unread == {label.split()[0]}), label
    assert variants["loss triplet"].tau is None and variants["loss nt_xent"].tau == 0.5
    assert variants["loss negative_free"].predictor_hidden == 64 and main.predictor_hidden is None
    other = ablation_runs(chapter.Settings(loss="nt_xent"))
    assert "loss info_nce" in other and "loss nt_xent" not in other
