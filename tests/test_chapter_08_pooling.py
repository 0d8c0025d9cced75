"""Chapter 08 (pooling against training-set size): its model, its run-many task, and --quick."""
import json
import types

import numpy as np
import pytest

from mnist1d_np import Tensor, nn, ops
from mnist1d_np.gradcheck import check_grad
from test_chapters import assert_real_png, load_chapter, run_chapter


@pytest.fixture(scope="module")
def ch():
    return load_chapter("08_pooling")


def no_runmany_context(path=None):
    """What a run-many task receives, for calling the task directly."""
    return types.SimpleNamespace(checkpoint_path=path, should_stop=lambda: False)


# ---------------------------------------------------------------- the model

@pytest.mark.parametrize("variant, features", [
    ("no_pool", 800), ("stride_2", 200), ("max_pool", 200), ("avg_pool", 200), ("l2_pool", 200),
    ("max_pool_window_4", 40), ("stride_2_l2_pool", 40), ("avg_pool_after_conv1", 400),
    ("max_pool_after_conv2", 400)])
def test_every_variant_has_the_notebooks_shapes(ch, variant, features):
    architecture = {**ch.VARIANTS, **ch.ABLATION_VARIANTS}[variant]
    model = ch.ConvPooling(nn.TorchGenerator(0), **architecture)
    assert model.linear.weight.shape == (features, 10)
    assert nn.count_parameters(model) == (20 * 3 + 20) + (20 * 20 * 3 + 20) + features * 10 + 10
    logits = model(Tensor(np.zeros((3, 40), dtype=np.float32)))
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_every_variant_starts_from_the_same_convolutions(ch):
    """As the notebook, which calls torch.manual_seed(0) before building each model."""
    models = [ch.ConvPooling(nn.TorchGenerator(0), **a) for a in ch.VARIANTS.values()]
    for model in models[1:]:
        assert np.array_equal(model.conv2.weight.data, models[0].conv2.weight.data)
    assert np.abs(models[0].conv1.weight.data).max() <= 1 / np.sqrt(3)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("variant", ["no_pool", "stride_2", "max_pool", "avg_pool", "l2_pool",
                                     "stride_2_max_pool", "l2_pool_window_4"])
def test_model_gradients_match_finite_differences(ch, variant, order):
    architecture = {**ch.VARIANTS, **ch.ABLATION_VARIANTS}[variant]
    model = ch.ConvPooling(np.random.default_rng(0), dtype=np.float64, **architecture)
    names = list(model.parameters())
    labels = np.arange(4)

    def loss(x, *params):
        for name, value in zip(names, params):
            layer, attribute = name.split(".")
            setattr(getattr(model, layer), attribute, value)
        return ops.cross_entropy(model(x), labels)
    x = np.random.default_rng(1).normal(size=(4, 40))
    check_grad(loss, [x, *(p.data for p in model.parameters().values())], mode="directional", order=order)


# ---------------------------------------------------------------- the run-many task

# mean training-batch loss over 21 float32 steps on 100 examples (one batch), from
# this implementation; its gradients are checked above. A wrong or misrouted
# gradient changes the trajectory far beyond rtol.
PINNED_MEAN_BATCH_LOSS = {"no_pool": 0.620360842, "stride_2": 1.159133786, "max_pool": 1.129206597,
                          "avg_pool": 1.298182360, "l2_pool": 1.056046172}


def test_task_results_are_json_with_a_row_per_variant_and_pinned_losses(ch, tmp_path):
    settings = ch.Settings(total_steps=20, eval_every=10)
    configs = ch.make_configs(settings, ch.VARIANTS, (1100,), [0])
    results = [ch.train_one(config, no_runmany_context(str(tmp_path / f"{i}.npz")))
               for i, config in enumerate(configs)]
    assert json.loads(json.dumps(results)) == results
    assert [c["variant"] for c in configs] == list(ch.VARIANTS)
    for config, result in zip(configs, results):
        assert result["train_examples"] == 100 and result["eval_steps"] == [0, 10, 20]
        assert all(0 <= a <= 1 for a in result["test_acc"] + result["train_acc"])
        assert result["final_test_acc"] == result["test_acc"][-1]
        np.testing.assert_allclose(result["mean_batch_loss"], PINNED_MEAN_BATCH_LOSS[config["variant"]],
                                   rtol=1e-4)


# ---------------------------------------------------------------- --quick

def test_chapter_08_quick(tmp_path):
    stdout, record = run_chapter("08_pooling", tmp_path, "--workers", "2")
    results = record["results"]
    runs = results["runs"]
    assert [(r["train_examples"], r["variant"]) for r in runs] == [
        (n, v) for n in (1000, 5000) for v in ("no_pool", "stride_2", "max_pool", "avg_pool", "l2_pool")]
    for r in runs:
        assert all(0 <= a <= 1 for a in r["test_acc"] + r["train_acc"]) and r["eval_steps"][-1] == 600
    accuracy = results["final_test_acc"]
    # The paper's point shows after 600 steps: at 1k, every pooling beats no pooling by > 10 points.
    assert min(accuracy[f"{p}/1000"] for p in ("max_pool", "avg_pool", "l2_pool")) > accuracy["no_pool/1000"] + 10
    assert "max_pool, 1k train: final test acc. (%)" in stdout and "pooling helps at 1k" in stdout
    for figure in ("accuracy_vs_step", "accuracy_vs_training_set_size"):
        assert_real_png(tmp_path / f"{figure}.png")
