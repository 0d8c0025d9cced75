"""Chapter 04 (metalearning a learning rate): hypergradient, the notebook's printout, --quick."""
import os
import subprocess
import sys

import numpy as np
import pytest

from test_chapters import ROOT, assert_claims, assert_real_png, load_chapter, run_chapter


@pytest.fixture(scope="module")
def small_dataset():
    from mnist1d_np.data import get_dataset_args, make_dataset
    return make_dataset(get_dataset_args(num_samples=500))


def test_chapter_04_hypergradient_equals_finite_difference(small_dataset):
    ch = load_chapter("04_meta_learning_rate")
    init, settings = ch.initial_parameters(), ch.Settings(steps=15, batch_size=50)
    objective, _, hyper = ch.hypergradient(0.4, init, small_dataset, settings)
    # The differentiable run and plain training give the same meta-objective.
    plain = ch.grid_search(init, small_dataset, settings, [0.4])["objective"][0]
    np.testing.assert_allclose(objective, plain, rtol=1e-12)
    eps = 1e-5
    up, down = ch.grid_search(init, small_dataset, settings, [0.4 + eps, 0.4 - eps])["objective"]
    assert abs(hyper) > 1e-3
    np.testing.assert_allclose(hyper, (up - down) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("initial_lr, printed", [
    (1.5, ("1.808e+00", "1.588e+00", "1.259e+00")), (0.15, ("1.722e+00", "1.555e+00", "4.909e-01"))])
def test_chapter_04_reproduces_the_notebooks_printout(initial_lr, printed):
    """The paper's notebook printed, after outer step 3: mean inner loss, final
    inner loss and learning rate. Same network (TorchGenerator), same data."""
    from mnist1d_np.data import make_dataset
    ch = load_chapter("04_meta_learning_rate")
    trial = ch.metalearn(initial_lr, ch.initial_parameters(), make_dataset(), ch.Settings(outer_steps=4))
    ours = (trial["outer_losses"][3], trial["final_inner_losses"][3], trial["lr_history"][4])
    assert tuple(f"{v:.3e}" for v in ours) == printed


def test_chapter_04_quick(tmp_path):
    stdout, record = run_chapter("04_meta_learning_rate", tmp_path)
    results = record["results"]
    trials, grid_minimum = results["trials"], results["grid"]["best_lr"]
    # The paper's finding at 10 outer steps: the outer loop improves the objective, each trial
    # moves towards the grid's minimum, and the two trials have more than halved their gap.
    for t in trials:
        assert t["outer_losses"][-1] < t["outer_losses"][0]
        assert abs(t["final_lr"] - grid_minimum) < abs(t["init_lr"] - grid_minimum) / 2
    start_gap = abs(trials[0]["init_lr"] - trials[1]["init_lr"])
    assert abs(trials[0]["final_lr"] - trials[1]["final_lr"]) < start_gap / 2
    # Pinned from a quick run; a wrong hypergradient moves these by far more.
    np.testing.assert_allclose([t["final_lr"] for t in trials], [0.91112393, 0.56885700], rtol=1e-5)
    np.testing.assert_allclose([t["outer_losses"][-1] for t in trials], [1.73672020, 1.71701917], rtol=1e-5)
    assert "final lr, each trial" in stdout and "0.9111 / 0.5689" in stdout
    assert_real_png(tmp_path / "trials.png")
    assert_real_png(tmp_path / "grid_search.png")
    finals = [t["final_lr"] for t in trials]
    assert_claims(stdout, record, {
        "from 1.5 and from 0.15, the metalearned learning rate converges to 0.62": max(abs(lr - 0.62) for lr in finals),
        "the hypergradient finds the grid search's best learning rate": abs(np.mean(finals) - grid_minimum)})
    assert record["claims"][0]["paper"] == pytest.approx(0.6243 - 0.62)  # the notebook's farther trial


def test_chapter_04_rejects_a_seed_pytorch_cannot_take(tmp_path):
    script = os.path.join(ROOT, "chapters", "04_meta_learning_rate.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--seed", str(2 ** 32), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and r"--seed: must be in [0, 2**32 - 1]" in proc.stderr
    assert not (tmp_path / "out").exists()
