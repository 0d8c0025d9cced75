"""Chapter 08 (pooling against training-set size): its model, its sweep task, seeds, the claim, --quick."""
import dataclasses
import json

import numpy as np
import pytest

from mnist1d_np import Tensor, nn, ops, runmany
from mnist1d_np.gradcheck import check_grad
from mnist1d_np.resumable import stop_when
from test_chapters import assert_claims, assert_real_png, load_chapter, run_chapter


@pytest.fixture(scope="module")
def ch():
    return load_chapter("08_pooling")


# ---------------------------------------------------------------- the model

@pytest.mark.parametrize("variant, features", [
    ("no_pool", 800), ("stride_2", 200), ("max_pool", 200), ("avg_pool", 200), ("l2_pool", 200),
    ("max_pool_window_4", 40), ("stride_2_l2_pool", 40), ("avg_pool_after_conv1", 400),
    ("max_pool_after_conv2", 400)])
def test_every_variant_has_the_notebooks_shapes(ch, variant, features):
    architecture = {**ch.VARIANTS, **ch.ABLATION_VARIANTS}[variant]
    model = ch.ConvPooling(nn.TorchGenerator(0), np.float32, **architecture)
    assert model.linear.weight.shape == (features, 10)
    assert nn.count_parameters(model) == (20 * 3 + 20) + (20 * 20 * 3 + 20) + features * 10 + 10
    logits = model(Tensor(np.zeros((3, 40), dtype=np.float32)))
    assert logits.shape == (3, 10) and logits.dtype == np.float32


def test_every_variant_starts_from_the_same_convolutions(ch):
    """As the notebook, which calls torch.manual_seed(0) before building each model."""
    models = [ch.ConvPooling(nn.TorchGenerator(0), np.float32, **a) for a in ch.VARIANTS.values()]
    for model in models[1:]:
        assert np.array_equal(model.conv2.weight.data, models[0].conv2.weight.data)
    assert np.abs(models[0].conv1.weight.data).max() <= 1 / np.sqrt(3)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("variant", ["no_pool", "stride_2", "max_pool", "avg_pool", "l2_pool",
                                     "stride_2_max_pool", "l2_pool_window_4"])
def test_model_gradients_match_finite_differences(ch, variant, order):
    architecture = {**ch.VARIANTS, **ch.ABLATION_VARIANTS}[variant]
    model = ch.ConvPooling(np.random.default_rng(0), np.float64, **architecture)
    names = list(model.parameters())
    labels = np.arange(4)

    def loss(x, *params):
        for name, value in zip(names, params):
            layer, attribute = name.split(".")
            setattr(getattr(model, layer), attribute, value)
        return ops.cross_entropy(model(x), labels)
    x = np.random.default_rng(1).normal(size=(4, 40))
    check_grad(loss, [x, *(p.data for p in model.parameters().values())], mode="directional", order=order)


# ---------------------------------------------------------------- the sweep task

# mean training-batch loss over 21 float32 steps on 100 examples (one batch), from
# this implementation; its gradients are checked above. A wrong or misrouted
# gradient changes the trajectory far beyond rtol.
PINNED_MEAN_BATCH_LOSS = {"no_pool": 0.620360842, "stride_2": 1.159133786, "max_pool": 1.129206597,
                          "avg_pool": 1.298182360, "l2_pool": 1.056046172}


def test_task_results_are_json_with_a_row_per_variant_and_pinned_losses(ch, tmp_path):
    names, configs = ch.sweep(ch.Settings(steps=21, eval_every=10), ch.VARIANTS, (1100,), [0])
    results = [ch.train_one(config, runmany.Context(str(tmp_path / f"{i}.ckpt.npz")))
               for i, config in enumerate(configs)]
    assert json.loads(json.dumps(results)) == results
    assert names == list(ch.VARIANTS) and [c.architecture for c in configs] == list(ch.VARIANTS.values())
    for name, result in zip(names, results):
        assert result["train_examples"] == 100 and result["eval_steps"] == [0, 10, 20]
        assert all(0 <= a <= 1 for a in result["test_acc"] + result["train_acc"])
        assert result["final_test_acc"] == result["test_acc"][-1]
        assert result["final_train_acc"] == result["train_acc"][-1]
        np.testing.assert_allclose(result["mean_batch_loss"], PINNED_MEAN_BATCH_LOSS[name], rtol=1e-4)


def test_an_interrupted_run_resumes_to_the_same_numbers_and_skips_other_checkpoints(ch, tmp_path):
    config = ch.sweep(ch.Settings(steps=21, eval_every=10), ch.VARIANTS, (1100,), [0])[1][2]
    other = dataclasses.replace(config, lr=3e-3)
    whole = ch.train_one(config, runmany.Context(str(tmp_path / "whole.ckpt.npz")))
    shared = runmany.Context(str(tmp_path / "shared.ckpt.npz"))
    with pytest.raises(KeyboardInterrupt), stop_when(lambda: True):
        ch.train_one(config, shared)  # stops at its first checkpoint, the evaluation after step 0
    assert ch.train_one(config, shared) == whole
    # Another lr finds this run's finished checkpoint and must not use it.
    fresh_other = ch.train_one(other, runmany.Context(None))
    assert ch.train_one(other, shared) == fresh_other and fresh_other["test_loss"] != whole["test_loss"]


def test_seeds_the_ablations_from_seeds_S_3_and_the_main_runs_from_the_first(ch):
    settings = ch.Settings()
    assert {c.seed for c in ch.sweep(settings, ch.VARIANTS, settings.dataset_sizes, [7])[1]} == {7}
    ((_, zero), seeds_zero), ((_, one), seeds_one) = ch.ablations(settings, 0), ch.ablations(settings, 1)
    assert seeds_zero == [0, 1, 2] and seeds_one == [3, 4, 5]  # --seed 0 keeps the numbers of before
    assert {c.seed for c in zero} == set(seeds_zero) and not {c.seed for c in zero} & {c.seed for c in one}
    variants = {**ch.VARIANTS, **ch.ABLATION_VARIANTS}
    names, configs = ch.ablations(settings, 0)[0]
    assert len(configs) == len(variants) * len(settings.ablation_sizes) * 3
    assert {(c.num_samples, n) for n, c in zip(names, configs)} == {(n, v) for n in (2000, 6000) for v in variants}


def test_a_runs_identity_is_what_it_reads(ch):
    """The ablations' settings do not touch the main runs; a changed architecture does."""
    main = ch.sweep(ch.Settings(), ch.VARIANTS, (2000,), [0])[1]
    assert main == ch.sweep(ch.Settings(ablation_sizes=(3000,), seeds=5), ch.VARIANTS, (2000,), [0])[1]
    wider = {**ch.VARIANTS, "max_pool": dict(stride=1, pool="max", window=4)}
    changed = ch.sweep(ch.Settings(), wider, (2000,), [0])[1]
    assert [a == b for a, b in zip(main, changed)] == [name != "max_pool" for name in ch.VARIANTS]


def test_the_notebook_column_reads_the_claim_from_the_notebooks_numbers(ch):
    paper = ch.PAPER
    assert paper["max_pool, 50k train: final test acc. (%)"] == "98.1" and len(ch.NOTEBOOK) == 30
    assert paper["pooling minus no pooling, 1k (points)"] == "+18.6"      # 77.8 - 59.2
    assert paper["pooling minus no pooling, 50k (points)"] == "+1.2"      # 97.5 - 96.3
    assert paper["max / avg / L2 pool minus no pooling, 50k (points)"] == ("+1.8", "+1.0", "+0.8")
    assert paper["pooling helps at 1k / hinders at 50k / benefit shrinks?"] == ("yes", "no", "yes")
    assert paper["binomial SD of one test accuracy at 50k (points)"] == "0.6"  # p = 96.84 %
    hurt = {**ch.NOTEBOOK, (50000, "no_pool"): [99.0]}
    assert ch.claim_rows(hurt)["pooling helps at 1k / hinders at 50k / benefit shrinks?"] == ("yes", "yes", "yes")


# ---------------------------------------------------------------- --quick

def test_chapter_08_quick(tmp_path):
    stdout, record = run_chapter("08_pooling", tmp_path, "--workers", "2")
    results = record["results"]
    runs = results["runs"]
    assert [(r["train_examples"], r["variant"]) for r in runs] == [
        (n, v) for n in (1000, 5000) for v in ("no_pool", "stride_2", "max_pool", "avg_pool", "l2_pool")]
    for r in runs:
        assert all(0 <= a <= 1 for a in r["test_acc"] + r["train_acc"]) and r["eval_steps"][-1] == 600
    accuracy = {key: accs[0] for key, accs in results["final"]["test_acc"].items()}  # one seed
    # The paper's point shows after 601 steps: at 1k, every pooling beats no pooling by > 10 points.
    assert min(accuracy[f"{p}/1000"] for p in ("max_pool", "avg_pool", "l2_pool")) > accuracy["no_pool/1000"] + 10
    assert results["final"]["pooling_gap"]["1000"] > 10
    assert "max_pool, 1k train: final test acc. (%)" in stdout and "pooling helps at 1k" in stdout
    # The notebook's rows of the sizes not run (2k, 10k, 20k, 50k) are left out of the table.
    table = stdout.split("The paper's claims")[0]
    assert "2k train" not in table and "50k" not in table and "not run" not in table
    for figure in ("accuracy_vs_step", "accuracy_vs_training_set_size"):
        assert_real_png(tmp_path / f"{figure}.png")
    assert_claims(stdout, record, {  # the quick run has no 50k: those claims are not measured
        "pooling helps by more than 10 points with 1k training examples":
            np.mean([accuracy[f"{p}/1000"] for p in ("max_pool", "avg_pool", "l2_pool")]) - accuracy["no_pool/1000"],
        "pooling hinders performance with 50k training examples": None,
        "pooling's benefit shrinks below 2 points at 50k": None,
        "pooling's benefit shrinks below 2 points at 50k, read less noisily": None})
    assert [c["paper"] for c in record["claims"]][:3] == pytest.approx(
        [(78.2 + 78.0 + 77.2) / 3 - 59.2, (98.1 + 97.3 + 97.1) / 3 - 96.3, (98.1 + 97.3 + 97.1) / 3 - 96.3])
