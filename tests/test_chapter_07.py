"""Chapter 07 (SimCLR): the --quick run's real outputs, exact resumption, every loss trains."""
import dataclasses

import numpy as np
import pytest

from test_chapters import load_chapter, run_chapter

chapter = load_chapter("07_self_supervised")


@pytest.fixture(scope="module")
def tiny_dataset():
    from mnist1d_np.data import get_dataset_args, make_dataset
    return make_dataset(get_dataset_args(num_samples=500))  # 400 train, 100 test


def tiny(**overrides):
    return chapter.Settings(**{"epochs": 4, "eval_every": 2, **overrides})


def test_quick_run_learns_a_representation(tmp_path):
    stdout, record = run_chapter("07_self_supervised", tmp_path)
    main = record["results"]["main"]
    layers, history = main["layers"], main["history"]
    assert list(layers) == ["input", "conv1", "conv2", "conv3", "hidden1", "output"]
    assert layers["input"] == pytest.approx(0.328)  # pixels: the notebook's 32.8 %, no training involved
    # A few label-free epochs already put every conv layer far above the pixels.
    assert min(layers[name] for name in ("conv1", "conv2", "conv3")) > layers["input"] + 0.25
    epochs = record["settings"]["epochs"]
    assert history["epoch"][0] == 0 and history["epoch"][-1] == epochs
    assert len(history["epoch_losses"]) == epochs
    assert history["epoch_losses"][-1] < history["epoch_losses"][0]
    assert history["knn"][-1] > history["knn"][0] and history["linear"][-1] > history["linear"][0]
    tsne = record["results"]["tsne"]
    assert tsne["after training"]["trustworthiness"] > 0.8 and np.isfinite(tsne["after training"]["kl"])
    assert "linear probe, conv3 (encoder) (%)" in stdout
    for figure in ("views", "tsne", "layers", "training"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 10_000


def test_interrupted_training_resumes_to_identical_numbers(tiny_dataset, tmp_path):
    settings = tiny()
    whole, history = chapter.train(settings, 3, tiny_dataset, str(tmp_path / "whole.npz"))
    stops = iter([False, True])  # Ctrl-C after the second epoch, as run_many's should_stop
    with pytest.raises(KeyboardInterrupt):
        chapter.train(settings, 3, tiny_dataset, str(tmp_path / "cut.npz"), should_stop=lambda: next(stops))
    resumed, resumed_history = chapter.train(settings, 3, tiny_dataset, str(tmp_path / "cut.npz"))
    assert resumed_history == history
    for (name, a), b in zip(whole.parameters().items(), resumed.parameters().values()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_a_checkpoint_of_other_settings_is_not_used(tiny_dataset, tmp_path):
    path = str(tmp_path / "ckpt.npz")
    chapter.train(tiny(epochs=2), 0, tiny_dataset, path)
    _, history = chapter.train(tiny(epochs=2, tau=0.1), 0, tiny_dataset, path)
    _, fresh = chapter.train(tiny(epochs=2, tau=0.1), 0, tiny_dataset, str(tmp_path / "fresh.npz"))
    assert history == fresh


@pytest.mark.parametrize("loss", chapter.LOSS_NAMES)
def test_every_loss_trains(loss, tiny_dataset, tmp_path):
    net, history = chapter.train(tiny(loss=loss, epochs=2), 0, tiny_dataset, str(tmp_path / "c.npz"))
    assert np.all(np.isfinite(history["epoch_losses"]))
    assert hasattr(net, "predictor") == (loss == "negative_free")


@pytest.mark.parametrize("depth, names", [
    (0, ["input", "conv1", "conv2", "conv3"]),
    (3, ["input", "conv1", "conv2", "conv3", "hidden1", "hidden2", "output"])])
def test_projector_depth_sets_the_layers(depth, names):
    net, _ = chapter.build(tiny(projector_layers=depth), 0)
    outputs = net.layers(chapter.Tensor(np.zeros((2, 40), dtype=chapter.DTYPE)))
    assert list(outputs) == names
    assert outputs["conv3"].shape == (2, 125) and net(outputs["input"]).shape[1] == (125 if depth == 0 else 16)


@pytest.mark.parametrize("field, value", [("loss", "mse"), ("projector_layers", 4), ("train_on", "test"),
                                          ("tau", 0.0), ("epochs", 0)])
def test_bad_settings_raise(field, value):
    with pytest.raises(ValueError, match=field):
        chapter.Settings(**{field: value})


def test_ablation_variants_change_one_thing_each():
    base = dataclasses.asdict(chapter.Settings())
    variants = chapter.ablation_variants(chapter.Settings())
    assert len(variants) == 10  # 3 heads, 4 losses, 2 temperatures, train+test
    for label, settings in variants.items():
        changed = {k for k, v in dataclasses.asdict(settings).items() if base[k] != v}
        assert len(changed) == 1, label


def test_t_sne_settings_keep_the_training_checkpoint(tiny_dataset, tmp_path):
    path = str(tmp_path / "ckpt.npz")
    _, history = chapter.train(tiny(epochs=2), 0, tiny_dataset, path)
    flat, _ = chapter.fileio.load_checkpoint(path)
    resumed = chapter._resume(path, np.empty_like(flat["flat"]), chapter.optim.adam(0.01).init([flat["flat"]]),
                              np.random.default_rng(), tiny(epochs=2, tsne_points=50), 0)
    assert resumed is not None and resumed[1] == history
