"""Chapters, run as a student runs them (--quick), checked by their real outputs."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_real_png(path, min_colors=20):
    """A decodable PNG of a plausible size that shows something (not one flat colour)."""
    import matplotlib.image
    pixels = matplotlib.image.imread(str(path))
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    colors = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colors) >= min_colors


def run_chapter(name, out_dir, *extra):
    script = os.path.join(ROOT, "chapters", f"{name}.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out_dir), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out_dir / "results.json").read_text())


def test_chapter_01_dataset(tmp_path):
    stdout, record = run_chapter("01_dataset", tmp_path)
    assert record["results"]["matches_frozen"] is True
    stats = record["results"]["statistics"]
    assert sum(stats["train_per_class"]) == 4000 and sum(stats["test_per_class"]) == 1000
    assert abs(stats["std"] - 1) < 1e-12 and abs(stats["mean"]) < 1e-12
    assert "equals the frozen dataset (1e-12) | yes" in stdout
    for figure in ("templates", "pipeline", "examples"):
        assert_real_png(tmp_path / f"{figure}.png")


def load_chapter(name):
    """Import chapters/NN_name.py as a module, to test its functions directly."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "chapters", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_dataset():
    from mnist1d_np.data import get_dataset_args, make_dataset
    return make_dataset(get_dataset_args(num_samples=500))


def test_chapter_02_quick(tmp_path):
    stdout, record = run_chapter("02_classifiers", tmp_path)
    assert record["complete"] is True and len(list((tmp_path / "runs").glob("*.json"))) == 8
    summary = record["results"]["summary"]
    assert set(summary) == {f"{m}/{d}" for m in ("logistic", "mlp", "cnn", "gru") for d in ("mnist1d", "shuffled")}
    for entry in summary.values():
        assert 0.1 < entry["early_stopped_mean"] / 100 <= 1.0
    # Even 300 steps show the paper's point: shuffling hurts the CNN, not the MLP.
    drop = lambda m: summary[f"{m}/mnist1d"]["early_stopped_mean"] - summary[f"{m}/shuffled"]["early_stopped_mean"]
    assert drop("cnn") > 15 and abs(drop("logistic")) < 5
    assert_real_png(tmp_path / "accuracy.png")
    assert "cnn test acc., mnist1d (%)" in stdout


def test_chapter_04_hypergradient_equals_finite_difference(small_dataset):
    ch = load_chapter("04_meta_learning_rate")
    init = ch.initial_parameters()
    inner = dict(steps=15, batch=50)
    objective, _, hyper = ch.hypergradient(0.4, init, small_dataset, **inner)
    eps = 1e-5
    up, down = (np.mean([l.item() for l in ch.inner_losses(lr, init, small_dataset, **inner)])
                for lr in (0.4 + eps, 0.4 - eps))
    assert abs(hyper) > 1e-3
    np.testing.assert_allclose(hyper, (up - down) / (2 * eps), rtol=1e-6)


@pytest.mark.parametrize("initial_lr, printed", [
    (1.5, ("1.808e+00", "1.588e+00", "1.259e+00")), (0.15, ("1.722e+00", "1.555e+00", "4.909e-01"))])
def test_chapter_04_reproduces_the_notebooks_printout(initial_lr, printed):
    """The paper's notebook printed, after outer step 3: mean inner loss, final
    inner loss and learning rate. Same network (TorchGenerator), same data."""
    from mnist1d_np.data import make_dataset
    ch = load_chapter("04_meta_learning_rate")
    trial = ch.metalearn(initial_lr, ch.initial_parameters(), make_dataset(), outer_steps=4)
    ours = (trial["outer_losses"][3], trial["final_inner_losses"][3], trial["lr_history"][4])
    assert tuple(f"{v:.3e}" for v in ours) == printed


def test_chapter_04_quick(tmp_path):
    stdout, record = run_chapter("04_meta_learning_rate", tmp_path)
    trials = record["results"]["trials"]
    assert [t["init_lr"] for t in trials] == [1.5, 0.15]
    for t in trials:
        assert len(t["lr_history"]) == 11 and len(t["outer_losses"]) == 10
        assert t["outer_losses"][-1] < t["outer_losses"][0]  # the outer loop improves the objective
    assert abs(trials[0]["final_lr"] - trials[1]["final_lr"]) < abs(1.5 - 0.15)  # they approach each other
    # Pinned from the quick run of 2026-11-25; a wrong hypergradient moves these by far more.
    np.testing.assert_allclose([t["final_lr"] for t in trials], [0.91112393, 0.56885700], rtol=1e-5)
    np.testing.assert_allclose([t["outer_losses"][-1] for t in trials], [1.73672020, 1.71701917], rtol=1e-5)
    assert_real_png(tmp_path / "trials.png")
    assert_real_png(tmp_path / "grid_search.png")


def test_chapter_04_rejects_a_seed_pytorch_cannot_take(tmp_path):
    script = os.path.join(ROOT, "chapters", "04_meta_learning_rate.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--seed", str(2 ** 32), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and r"--seed: must be in [0, 2**32 - 1]" in proc.stderr
    assert not (tmp_path / "out").exists()


def tiny_meta_settings(ch, **overrides):
    overrides.setdefault("meta_hidden", (5,))
    return ch.Settings(hidden=8, inner_steps=4, meta_loss_last=2, batch=20,
                       test_examples=20, outer_steps=6, checkpoint_every=2, baseline_inits=1, **overrides)


@pytest.mark.parametrize("noise, meta_hidden", [(0.1, (5,)), (0.0, (5,)), (0.1, (4, 3))])
def test_chapter_05_meta_gradient_equals_finite_difference(small_dataset, monkeypatch, noise, meta_hidden):
    """Fused kernels (one hidden layer) and plain ops (the paper's text: two)."""
    ch = load_chapter("05_meta_activation")
    monkeypatch.setattr(ch, "DTYPE", np.float64)
    settings = tiny_meta_settings(ch, noise=noise, meta_hidden=meta_hidden)
    theta = ch.init_meta_params(settings, np.random.default_rng(0))
    dataset = ch.in_dtype(small_dataset)
    _, meta_grad, _ = ch.meta_step(theta, settings, dataset, seed=0, outer_step=0)
    # A random direction that leans along the gradient: a direction nearly
    # orthogonal to it would make the relative error measure cancellation.
    v = np.sign(meta_grad) * np.abs(np.random.default_rng(1).normal(size=theta.shape))
    eps = 1e-6
    up, down = (ch.meta_step(theta + s * eps * v, settings, dataset, 0, 0)[0] for s in (1, -1))
    np.testing.assert_allclose(meta_grad @ v, (up - down) / (2 * eps), rtol=1e-6)


def test_chapter_05_resumes_to_identical_numbers(small_dataset, tmp_path, monkeypatch):
    ch = load_chapter("05_meta_activation")
    settings, dataset = tiny_meta_settings(ch), ch.in_dtype(small_dataset)
    straight_theta, straight, _ = ch.metalearn(settings, dataset, 0, str(tmp_path / "a"))
    original, calls = ch.meta_step, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args)
    monkeypatch.setattr(ch, "meta_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ch.metalearn(settings, dataset, 0, str(tmp_path / "b"))
    monkeypatch.setattr(ch, "meta_step", original)
    resumed_theta, resumed, _ = ch.metalearn(settings, dataset, 0, str(tmp_path / "b"))
    assert np.array_equal(resumed_theta, straight_theta) and resumed == straight


def test_chapter_05_never_resumes_another_seeds_or_settings_checkpoint(small_dataset, tmp_path, capsys):
    ch = load_chapter("05_meta_activation")
    settings, dataset = tiny_meta_settings(ch), ch.in_dtype(small_dataset)
    _, seed0, _ = ch.metalearn(settings, dataset, 0, str(tmp_path))
    _, seed1, _ = ch.metalearn(settings, dataset, 1, str(tmp_path))
    other_settings = dataclasses.replace(settings, outer_lr=0.1)
    _, other, _ = ch.metalearn(other_settings, dataset, 0, str(tmp_path))
    assert "resuming" not in capsys.readouterr().out
    assert seed1["meta_loss"] != seed0["meta_loss"] and other["meta_loss"] != seed0["meta_loss"]
    assert len(list(tmp_path.glob("metalearn-*.ckpt.npz"))) == 3   # none overwritten
    _, again, _ = ch.metalearn(settings, dataset, 0, str(tmp_path))
    assert again == seed0 and "resuming from outer step 6" in capsys.readouterr().out


def test_chapter_05_quick(tmp_path):
    stdout, record = run_chapter("05_meta_activation", tmp_path)
    results = record["results"]
    assert len(results["history"]["meta_loss"]) == 20
    assert results["history"]["meta_loss"][-1] < results["history"]["meta_loss"][0]
    table = results["final_test_acc"]
    assert set(table) == {"learned", "piecewise-linear fit", "relu", "swish", "elu", "softplus", "tanh", "sigmoid"}
    assert all(len(v) == 3 and 0.2 < np.mean(v) <= 1 for v in table.values())  # chance is 0.1
    # Pinned from the quick run of 2026-11-25 (float32 kernels: their summation order may
    # differ on another CPU by ~1e-6); a wrong meta-gradient moves these by far more.
    np.testing.assert_allclose(results["history"]["meta_loss"][-1], 1.54165053, rtol=1e-3)
    assert abs(np.mean(table["learned"]) - np.mean([0.43, 0.442, 0.444])) < 0.02
    assert np.mean(table["learned"]) > np.mean(table["relu"]) + 0.05
    assert_real_png(tmp_path / "activation.png")


def test_chapter_02_runs_do_not_depend_on_the_worker_count(tmp_path, monkeypatch):
    """The issue's point 3: on the shuffled dataset, a run in this process and
    in a worker process must give the same numbers to the last digit."""
    import importlib
    from mnist1d_np import runmany
    monkeypatch.syspath_prepend(os.path.join(ROOT, "chapters"))  # workers import the task by name
    ch = importlib.import_module("02_classifiers")
    settings = ch.Settings(steps=12, eval_every=6, seeds=(0,), models=("mlp", "cnn"))
    configs = [c for c in ch.sweep_configs(settings, seed=0) if c["dataset"] == "shuffled"]
    here = runmany.run_many(ch.train_one, configs, tmp_path / "one", workers=1)
    in_workers = runmany.run_many(ch.train_one, configs, tmp_path / "two", workers=2)
    assert here == in_workers and len(here[1]["train_losses"]) == 12


def test_chapter_02_reuses_only_runs_with_the_same_settings(tmp_path):
    from mnist1d_np import runmany
    ch = load_chapter("02_classifiers")
    calls = []

    def counted(config, context):
        calls.append(config["train"]["steps"])
        return ch.train_one(config, context)
    short, longer = (ch.Settings(steps=steps, eval_every=2, seeds=(0,), models=("logistic",)) for steps in (3, 5))
    for settings in (short, short, longer, short):
        results = runmany.run_many(counted, ch.sweep_configs(settings, 0), tmp_path, workers=1)
        assert [len(r["train_losses"]) for r in results] == [settings.steps] * 2
    assert calls == [3, 3, 5, 5]  # each (model, dataset) once per settings


# ---------------------------------------------------------------- every chapter, as a lesson and a notebook

CHAPTERS = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "chapters")) if name.endswith(".py"))


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_reads_as_a_lesson_and_opens_as_a_notebook(name):
    """Cell markers for VS Code / Jupyter, settings in one style, a Try it section."""
    text = open(os.path.join(ROOT, "chapters", f"{name}.py")).read()
    assert text.count("\n# %%") >= 3
    assert "class Settings" in text and "\nQUICK = " in text
    assert "experiment.parse_args(parser)" in text and "experiment.chapter_settings(" in text
    assert "Try it" in text.split('"""')[1]


def test_a_chapter_run_in_a_notebook_kernel_uses_quick(tmp_path):
    """No command line in a notebook: the chapter runs with its --quick settings."""
    script = os.path.join(ROOT, "chapters", "01_dataset.py")
    code = ("import sys, types; sys.modules['ipykernel'] = types.ModuleType('ipykernel'); "
            f"sys.argv = ['kernel']; import os; os.chdir({str(tmp_path)!r}); "
            f"exec(compile(open({script!r}).read(), {script!r}, 'exec'), {{'__name__': '__main__'}})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "01_dataset" / "results.json").read_text())
    assert record["quick"] is True and record["settings"]["timing_repeats"] == 1


def test_chapter_02_stops_cleanly_on_ctrl_c(tmp_path):
    """The issue's point 1: one Ctrl-C used to leave the pool training every
    queued run and end in a traceback."""
    import signal
    import time
    script = os.path.join(ROOT, "chapters", "02_classifiers.py")
    proc = subprocess.Popen([sys.executable, script, "--quick", "--workers", "2", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("runs/*.ckpt.npz")):  # training has started
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert "run the same command again to resume" in stderr.splitlines()[-1]
    assert len(list((tmp_path / "runs").glob("*.json"))) < 8 and not (tmp_path / "results.json").exists()
