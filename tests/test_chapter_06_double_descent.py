"""Chapter 06 (deep double descent): --quick, reuse, resume, identities, and the reading of the curves."""
import dataclasses
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from mnist1d_np import runmany
from mnist1d_np.resumable import stop_when
from test_chapters import ROOT, assert_claims, assert_real_png, load_chapter, run_chapter


@pytest.fixture(scope="module")
def ch():
    return load_chapter("06_double_descent")


def test_chapter_06_quick(tmp_path):
    stdout, record = run_chapter("06_double_descent", tmp_path, "--workers", "1")
    quick, results = record["settings"], record["results"]
    assert set(results["curves"]) == set(results["peaks"]) == {"main"}  # no --ablations: no other family
    curves, peaks = results["curves"]["main"], results["peaks"]["main"]
    expected = {"MLP, clean": quick["mlp_widths"], "MLP, noisy": quick["mlp_widths"],
                "CNN, noisy": quick["cnn_channels"]}
    assert list(curves) == list(peaks) == list(expected)
    n_train = int(quick["num_samples"] * quick["train_split"])
    for label, widths in expected.items():
        assert [row["width"] for row in curves[label]] == list(widths)
        for row in curves[label]:
            for split in ("train_error", "test_error"):
                per_epoch = row["curves"][split]
                assert len(per_epoch) == quick["epochs"] and per_epoch[-1] == row[split]
                assert all(0 <= e <= 100 for e in per_epoch)
            assert row["train_error"] * n_train / 100 == pytest.approx(round(row["train_error"] * n_train / 100))
    # The quick run (3 widths, 20 epochs, 1000 training examples) is far too small to show a
    # double-descent peak: no model fits its training set, so every curve lies left of the
    # interpolation threshold, in the classical regime. What that regime shows is asserted:
    # a wider model has a lower train and test error, and label noise raises the train error
    # at every width (the clean and the noisy model share their weights and batch order).
    for label in expected:
        assert peaks[label]["threshold"] is None
        for split in ("train_error", "test_error"):
            errors = [row[split] for row in curves[label]]
            assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] - 3
    assert all(noisy["train_error"] > clean["train_error"]
               for clean, noisy in zip(curves["MLP, clean"], curves["MLP, noisy"]))
    assert "MLP, noisy: peak test error (%)" in stdout and "not reached" in stdout and "ablation" not in stdout
    assert_real_png(tmp_path / "double_descent.png")
    assert_claims(stdout, record, {  # no threshold reached: how near the peak is to it is not measured
        "with 15 % label noise, the MLP's test error peaks": peaks["MLP, noisy"]["height"],
        "past the peak, the noisy MLP's test error falls again":
            peaks["MLP, noisy"]["test_error"] - curves["MLP, noisy"][-1]["test_error"],
        "the noisy MLP's peak lies near the interpolation threshold": None,
        "without label noise, the MLP shows no peak": peaks["MLP, clean"]["height"],
        "with 15 % label noise, the CNN's test error peaks too": peaks["CNN, noisy"]["height"]})
    assert [c["paper"] for c in record["claims"]] == pytest.approx([6.81, 54.05 - 45.47, 61 / 47, 0.64, 14.16])
    # A rerun trains nothing: every model is read back from its saved result.
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "chapters", "06_double_descent.py"), "--quick",
                           "--workers", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "models: 8 of 8 already finished" in proc.stderr and "models 1/" not in proc.stderr


def tiny(ch, **changes):
    """A Model that trains in milliseconds: 100 training examples, 30 epochs."""
    return dataclasses.replace(ch.Model("mlp", 4, 2, 0.15, 0, 200, 0.5, 30, 0.01, 0.9, 50, "float32"), **changes)


def test_an_interrupted_model_resumes_to_the_same_numbers_and_skips_other_checkpoints(ch, tmp_path):
    config, other = tiny(ch), tiny(ch, lr=0.05)
    whole = ch.train_model(config, runmany.Context(str(tmp_path / "whole.ckpt.npz")))
    shared = runmany.Context(str(tmp_path / "shared.ckpt.npz"))
    with pytest.raises(KeyboardInterrupt), stop_when(lambda: True):
        ch.train_model(config, shared)  # stops at its first checkpoint, after epoch 25
    assert ch.train_model(config, shared) == whole
    # The other lr's run finds the checkpoint of this one at epoch 25 and must not use it:
    # its numbers are those of its own fresh run, which differ from this run's.
    fresh_other = ch.train_model(other, runmany.Context(None))
    assert ch.train_model(other, shared) == fresh_other and fresh_other["curves"] != whole["curves"]


def test_clean_and_noisy_models_share_weights_and_order_and_seeds_share_neither(ch):
    def start(config):
        model, order = ch.initial_model(config)
        return np.concatenate([p.data.ravel() for p in model.parameters().values()]), order.permutation(100)
    clean, noisy, seed1 = start(tiny(ch, label_noise=0.0)), start(tiny(ch)), start(tiny(ch, seed=1))
    assert all(np.array_equal(a, b) for a, b in zip(clean, noisy))
    assert not any(np.array_equal(a, b) for a, b in zip(clean, seed1))
    assert start(tiny(ch, dtype="float64"))[0].dtype == np.float64


def test_a_models_identity_is_what_its_training_reads(ch):
    """The main curves' models do not change with the ablations' settings or the other curve's widths."""
    main = ch.families(ch.Settings())["main"]
    changed = ch.Settings(depths=(1,), noise_levels=(0.3,), cnn_channels=(4,))
    assert ch.families(changed)["main"] == main
    for label in ("MLP, clean", "MLP, noisy"):
        assert ch.models(changed, 0, *main[label]) == ch.models(ch.Settings(), 0, *main[label])
    assert ch.models(ch.Settings(lr=0.02), 0, *main["MLP, noisy"]) != ch.models(ch.Settings(), 0, *main["MLP, noisy"])
    assert [c.width for c in ch.models(ch.Settings(), 0, *main["CNN, noisy"])] == list(ch.Settings().cnn_channels)


def test_a_model_shared_by_two_families_is_trained_once_and_the_narrowest_first(ch):
    """--ablations' families repeat curves (the noisy MLP with 2 hidden layers is in all three, the
    clean one in two): each distinct model is given to the sweep once, in order of width, and every
    family gets its rows back."""
    settings = dataclasses.replace(ch.Settings(), **ch.QUICK)
    given = []

    def sweep(task, configs, label, folder):
        given.extend(configs)
        return [{"train_error": 0.0, "test_error": float(c.width), "curves": {}} for c in configs]
    run = types.SimpleNamespace(settings=settings, args=types.SimpleNamespace(seed=0), sweep=sweep)
    curves = ch.train_curves(run, ch.families(settings))
    assert len(given) == len(set(given)) == 3 + 3 + 2 + 2 * 3 + 4 * 3  # main; depth 1, 3; noise 5, 10, 20, 30 %
    assert [c.width for c in given] == sorted(c.width for c in given)
    assert curves["depth"]["2 hidden layers"] == curves["noise"]["15 % noise"] == curves["main"]["MLP, noisy"]
    assert [row["width"] for row in curves["main"]["CNN, noisy"]] == list(settings.cnn_channels)


NOTEBOOK_NOISY_MLP = {  # width: (train error, test error), the notebook's printout
    2: (71.68, 69.59), 3: (68.65, 67.50), 4: (62.75, 62.55), 5: (57.95, 57.45), 7: (54.45, 54.80),
    9: (47.45, 48.97), 12: (46.47, 50.28), 16: (39.70, 47.24), 21: (38.08, 50.84), 27: (29.55, 50.69),
    36: (19.02, 52.80), 47: (5.47, 54.05), 61: (0.0, 54.02), 80: (0.0, 52.08), 104: (0.0, 50.23),
    135: (0.0, 48.39), 177: (0.0, 47.88), 230: (0.0, 46.54), 300: (0.0, 45.47)}
NOTEBOOK_CLEAN_MLP = {
    2: (67.15, 68.53), 3: (63.88, 66.83), 4: (54.78, 58.27), 5: (57.23, 61.37), 7: (48.03, 54.20),
    9: (41.28, 49.33), 12: (38.40, 50.08), 16: (28.80, 44.55), 21: (19.95, 42.63), 27: (12.05, 41.02),
    36: (1.35, 41.66), 47: (0.0, 41.01), 61: (0.0, 41.24), 80: (0.0, 39.59), 104: (0.0, 38.61),
    135: (0.0, 38.58), 177: (0.0, 38.09), 230: (0.0, 37.10), 300: (0.0, 37.25)}


def rows(table):
    return [{"width": w, "train_error": tr, "test_error": te} for w, (tr, te) in table.items()]


def test_peak_and_threshold_read_from_the_notebooks_curves(ch):
    noisy, clean = ch.find_peak(rows(NOTEBOOK_NOISY_MLP)), ch.find_peak(rows(NOTEBOOK_CLEAN_MLP))
    assert (noisy["width"], noisy["test_error"], noisy["threshold"]) == (47, 54.05, 61)
    assert noisy["valley_width"] == 16 and noisy["height"] == pytest.approx(54.05 - 47.24)
    assert (clean["width"], clean["valley_width"], clean["threshold"]) == (36, 27, 47)
    assert clean["height"] == pytest.approx(41.66 - 41.02)  # the clean curve has no real peak
    # The table's notebook column is what the chapter reads from the notebook's printed curves.
    read = ch.readings({"main": {"MLP, noisy": rows(NOTEBOOK_NOISY_MLP), "MLP, clean": rows(NOTEBOOK_CLEAN_MLP)}})
    assert read == {quantity: value for quantity, value in ch.PAPER.items() if quantity.startswith("MLP")}
    assert len(read) == 10 and ch.Settings().mlp_widths == tuple(NOTEBOOK_NOISY_MLP)


def test_peak_reading_of_curves_without_a_peak_or_a_threshold(ch):
    descending = rows({4: (30.0, 50.0), 8: (20.0, 45.0), 16: (10.0, 44.0)})
    peak = ch.find_peak(descending)
    assert peak["threshold"] is None and peak["height"] == 0 and peak["width"] == 16
    read = ch.readings({"main": {"MLP, clean": descending}, "depth": {"1 hidden layer": descending}})
    assert read["MLP, clean: train error first 0 at width"] == "not reached"
    ablation_row = list(read)[-1]  # one row per curve of another family: the same readings
    assert ablation_row.startswith("ablation, 1 hidden layer: ")
    assert read[ablation_row] == (44.0, 16, "not reached", 0, 44.0)
    # A peak right at the threshold: the valley is searched only below it.
    at_threshold = rows({4: (30.0, 50.0), 8: (0.0, 60.0), 16: (0.0, 40.0)})
    assert ch.find_peak(at_threshold) == {"width": 8, "test_error": 60.0, "valley_width": 4, "height": 10.0,
                                          "threshold": 8}
