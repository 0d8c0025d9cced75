"""Chapter 03 (lottery tickets): its --quick run's real output, and resuming a search."""
import dataclasses
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from test_chapters import load_chapter as load_chapter_named

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_chapter():
    return load_chapter_named("03_lottery_tickets")


class StopAfter:
    """A run-many context that asks the task to stop after `rounds` checkpoints."""

    def __init__(self, path, rounds=None):
        self.checkpoint_path, self.rounds, self.calls = path, rounds, 0

    def should_stop(self):
        self.calls += 1
        return self.rounds is not None and self.calls >= self.rounds


@pytest.mark.parametrize("method", ["lottery", "random"])
def test_an_interrupted_search_resumes_to_identical_results(tmp_path, method):
    ch = load_chapter()
    settings = ch.Settings(hidden_size=8, num_retrains=5, total_steps=12, eval_every=5, ticket_sparsity=0.75)
    args = types.SimpleNamespace(seed=0, notebook_checkpoint=False)
    config = json.loads(json.dumps(ch.search_config(settings, args, 0, method)))
    straight = ch.search_task(config, StopAfter(str(tmp_path / "a.npz")))
    with pytest.raises(KeyboardInterrupt):
        ch.search_task(config, StopAfter(str(tmp_path / "b.npz"), rounds=2))
    resumed = ch.search_task(config, StopAfter(str(tmp_path / "b.npz")))
    assert resumed == straight
    assert [r["sparsity"] for r in straight["rounds"]] == list(np.linspace(0, 1, 5))


def test_a_checkpoint_of_another_config_is_not_used(tmp_path):
    ch = load_chapter()
    settings = ch.Settings(hidden_size=8, num_retrains=3, total_steps=6, eval_every=5)
    args = types.SimpleNamespace(seed=0, notebook_checkpoint=False)
    lottery = ch.search_config(settings, args, 0, "lottery")
    ch.search_task(lottery, StopAfter(str(tmp_path / "c.npz")))
    other = ch.search_config(dataclasses.replace(settings, total_steps=7), args, 0, "lottery")
    rounds = ch.search_task(other, StopAfter(str(tmp_path / "c.npz")))["rounds"]
    assert len(rounds) == 3 and rounds[0]["test_acc"] != []


def test_chapter_03_quick(tmp_path):
    script = os.path.join(ROOT, "chapters", "03_lottery_tickets.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(tmp_path), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    results = record["results"]
    table = {row[0]: row[1:] for row in record["table"]}   # what the README's results table is made of
    assert table["panel c: lottery ticket"][0] == "64.9 / 66.8"
    for variant, label in (("new data", "panel c"), ("reinit", "panel c with new weights (trap 3)")):
        final = " / ".join(f"{100 * run['final_test_acc']:.1f}" for run in results["panels"][variant]["lottery"])
        assert table[f"{label}: lottery ticket"] == ["64.9 / 66.8", final]  # final accuracies, as the notebook's
    schedule = np.linspace(0, 1, 10)
    for method in ("lottery", "random"):
        trials = results["search"][method]
        assert len(trials) == 2
        for rounds in trials:
            assert [r["sparsity"] for r in rounds] == pytest.approx(schedule, abs=1e-15)
            measured = np.array([r["measured_sparsity"] for r in rounds])
            assert np.all(measured <= schedule + 1e-12) and np.all(measured > schedule - 0.01)
            for r in rounds:
                assert 0 <= r["final_test_acc"] <= r["best_test_acc"] <= 1 and len(r["test_acc"]) == 4
            assert rounds[0]["best_test_acc"] > 0.3 and rounds[-1]["final_test_acc"] < 0.2  # all pruned: chance
    assert results["ticket_round"] == 8
    for variant in ("new data", "flipped", "shuffled", "chunks", "reinit"):
        for ticket in ("dense", "lottery", "random"):
            runs = results["panels"][variant][ticket]
            assert len(runs) == 2 and all(0 <= run["final_test_acc"] <= 1 for run in runs)
    for method in ("lottery", "random"):
        assert all(0 <= p <= 1 for k in ("2", "3", "4") for p in results["adjacency"][method][k])
    assert "final test acc at 88.9 % sparsity, lottery" in proc.stdout
    for figure in ("panels_ab", "panels_cf", "panel_g"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 10_000


def test_notebook_checkpoint_prunes_from_the_weights_after_that_step(tmp_path):
    """Trap 1: with --notebook-checkpoint the second round's mask comes from the
    weights after step `checkpoint_step` of the first round, not its final weights."""
    from mnist1d_np import pruning
    ch = load_chapter()
    settings = ch.Settings(hidden_size=8, num_retrains=3, total_steps=12, eval_every=5, checkpoint_step=4,
                           ticket_sparsity=0.5)
    tickets = {}
    for flag in (False, True):
        config = ch.search_config(settings, types.SimpleNamespace(seed=0, notebook_checkpoint=flag), 0, "lottery")
        result = ch.search_task(config, StopAfter(str(tmp_path / f"{flag}.npz")))
        tickets[flag] = pruning.masks_from_json(result["ticket_masks"])   # the mask of round 1 (sparsity 0.5)
    init = ch.initial_parameters(8, 42)
    last, _, step4 = pruning.train_masked(init, pruning.magnitude_masks(init, 0.0), ch.make_data(42),
                                          pruning.RoundConfig(12, 100, 2e-2, 5), snapshot_step=4)
    for flag, weights in ((False, last), (True, step4)):
        expected = pruning.magnitude_masks(weights, 0.5)
        assert all(np.array_equal(tickets[flag][n], expected[n]) for n in expected)
    assert any((tickets[False][n] != tickets[True][n]).any() for n in expected)
