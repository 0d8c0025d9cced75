"""Chapter 02 (the classification benchmark): --quick, worker-count independence, reuse, Ctrl-C."""
import os
import subprocess
import sys

from test_chapters import ROOT, assert_real_png, load_chapter, run_chapter


def test_chapter_02_quick(tmp_path):
    stdout, record = run_chapter("02_classifiers", tmp_path)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 8
    summary = record["results"]["summary"]
    assert set(summary) == {f"{m}/{d}" for m in ("logistic", "mlp", "cnn", "gru") for d in ("mnist1d", "shuffled")}
    for entry in summary.values():
        assert 0.1 < entry["early_stopped_mean"] / 100 <= 1.0
    # Even 300 steps show the paper's point: shuffling hurts the CNN, not the MLP.
    drop = lambda m: summary[f"{m}/mnist1d"]["early_stopped_mean"] - summary[f"{m}/shuffled"]["early_stopped_mean"]
    assert drop("cnn") > 15 and abs(drop("logistic")) < 5
    assert_real_png(tmp_path / "accuracy.png")
    assert "cnn test acc., mnist1d (%)" in stdout


def test_chapter_02_runs_do_not_depend_on_the_worker_count(tmp_path, monkeypatch):
    """The issue's point 3: on the shuffled dataset, a run in this process and
    in a worker process must give the same numbers to the last digit."""
    import importlib
    from mnist1d_np import runmany
    monkeypatch.syspath_prepend(os.path.join(ROOT, "chapters"))  # workers import the task by name
    ch = importlib.import_module("02_classifiers")
    settings = ch.Settings(steps=12, eval_every=6, seeds=1, models=("mlp", "cnn"))
    configs = [c for (_, dataset), c in ch.sweep(settings, seed=0) if dataset == "shuffled"]
    here = runmany.run_many(ch.train_one, configs, tmp_path / "one", workers=1)
    in_workers = runmany.run_many(ch.train_one, configs, tmp_path / "two", workers=2)
    assert here == in_workers and len(here[1]["train_losses"]) == 12


def test_chapter_02_reuses_only_runs_with_the_same_settings(tmp_path):
    from mnist1d_np import runmany
    ch = load_chapter("02_classifiers")
    calls = []

    def counted(config, context):
        calls.append((config.steps, config.seed, config.model))
        return ch.train_one(config, context)
    short, longer = (ch.Settings(steps=steps, eval_every=2, seeds=1, models=("logistic",)) for steps in (3, 5))
    for settings in (short, short, longer, short):
        results = runmany.run_many(counted, [c for _, c in ch.sweep(settings, 0)], tmp_path, workers=1)
        assert [len(r["train_losses"]) for r in results] == [settings.steps] * 2
    assert calls == [(3, 0, "logistic")] * 2 + [(5, 0, "logistic")] * 2  # each (model, dataset) once per settings
    # A run's identity is what it reads: more seeds or another model list keep the finished runs.
    calls.clear()
    settings = ch.Settings(steps=3, eval_every=2, seeds=2, models=("logistic", "mlp"))
    runmany.run_many(counted, [c for _, c in ch.sweep(settings, 0)], tmp_path, workers=1)
    assert sorted(calls) == sorted([(3, 1, "logistic")] * 2 + [(3, 0, "mlp"), (3, 1, "mlp")] * 2)


def test_two_seeds_share_no_initialisation():
    ch = load_chapter("02_classifiers")
    inits = [{(c.model, dataset, c.seed) for (_, dataset), c in ch.sweep(ch.Settings(), seed)} for seed in (0, 1)]
    assert len(inits[0]) == len(inits[1]) == 24 and not inits[0] & inits[1]


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


def test_a_run_of_fewer_models_tabulates_those_it_ran(tmp_path):
    stdout, record = run_chapter("02_classifiers", tmp_path, "--set", "models=mlp", "--set", "steps=30")
    rows = {row[0] for row in record["table"]}
    assert {"mlp test acc., mnist1d (%)", "mlp test acc., shuffled (%)"} <= rows
    assert not any(row.startswith("cnn") for row in rows) and record["settings"]["models"] == ["mlp"]
