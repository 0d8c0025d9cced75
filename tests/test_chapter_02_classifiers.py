"""Chapter 02 (the classification benchmark): --quick, worker-count independence, reuse, Ctrl-C."""
import os
import subprocess
import sys

import pytest
from test_chapters import ROOT, assert_claims, assert_real_png, load_chapter, run_chapter


def table_1_claims(summary):
    """{statement: value} of the claims on MNIST-1D and shuffled, computed from the saved summary."""
    mean = lambda model, dataset: summary[f"{model}/{dataset}"]["early_stopped_mean"]
    lead = lambda m: mean(m, "mnist1d") - mean("mlp", "mnist1d")
    drop = lambda m: mean(m, "mnist1d") - mean(m, "shuffled")
    return {"the CNN beats the MLP by more than 15 points": lead("cnn"),
            "the GRU beats the MLP by more than 15 points": lead("gru"),
            "shuffling the positions costs the CNN more than 20 points": drop("cnn"),
            "shuffling the positions costs the GRU more than 20 points": drop("gru"),
            "shuffling the positions changes the MLP by less than 3 points": abs(drop("mlp")),
            "shuffling the positions changes the logistic regression by less than 3 points": abs(drop("logistic"))}


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
    assert_claims(stdout, record, {
        **table_1_claims(summary),
        # the image column's claims: not judged without --images
        "on the 28x28 image set the four models lie within 6 points": None,
        "MNIST-1D spreads the models over 30 points wider than the image set": None,
        "every model's run costs over 10 times the FLOPs on the image set": None,
        "every model's run takes over 10 times the seconds on the image set": None})
    assert [c["paper"] for c in record["claims"][:6]] == [94 - 68, 91 - 68, 94 - 56, 91 - 57, 0, 0]  # Table 1
    from mnist1d_np import images  # without --images: one line on how to get an image set, no image rows
    assert stdout.count("image column: not run") == 1 and images.how_to_get("mnist") in stdout
    assert "images" not in record["results"] and not any("fashion" in row[0] or "mnist " in row[0]
                                                          for row in record["table"])
    curve = record["curve"]["series"]["cnn"]  # the main curve the multi-seed report overlays
    assert curve == [record["results"]["curves"]["cnn/mnist1d"][0]["eval_steps"],
                     pytest.approx([100 * a for a in record["results"]["curves"]["cnn/mnist1d"][0]["test_acc"]])]


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
    numbers = lambda results: [{k: v for k, v in r.items() if k != "seconds"} for r in results]  # times differ
    assert numbers(here) == numbers(in_workers) and len(here[1]["train_losses"]) == 12
    assert all(r["seconds"] > 0 for r in here + in_workers)


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
    verdicts = {c["statement"]: c["verdict"] for c in record["claims"]}  # claims of models not run: not measured
    assert [s for s, v in verdicts.items() if v != "not measured"] == [
        "shuffling the positions changes the MLP by less than 3 points"]


# ---------------------------------------------------------------- the human row (issue 23)

def write_quiz(path, shuffled, right, n=10, q=1):
    """A finished quiz file of n examples, `right` of them guessed right."""
    from mnist1d_np import quiz
    from mnist1d_np.fileio import write_json
    truth = [i % 10 for i in range(n)]
    guesses = truth[:right] + [(t + 1) % 10 for t in truth[right:]]
    write_json(path, {**quiz.identity(q, n, shuffled, quiz.dataset_args(shuffled)), "indices": list(range(n)),
                      "guesses": guesses, "truth": truth, "page_seconds": [1.0], "complete": True})
    return str(path)


def test_the_human_row_reads_quiz_files(tmp_path, monkeypatch):
    ch = load_chapter("02_classifiers")
    monkeypatch.chdir(tmp_path)  # the default location, results/quiz/, is empty here
    assert ch.read_human(None) == {} and ch.human_cell({}) == "not measured"
    files = [write_quiz(tmp_path / "a.json", False, 9), write_quiz(tmp_path / "b.json", False, 10, q=2)]
    human = ch.read_human(files)
    assert ch.human_cell(human) == "95.0 ± 3.5 (2 quizzes, 20 examples) / not measured"  # (90, 100): 5 / √2
    os.makedirs("results/quiz")
    write_quiz(tmp_path / "results" / "quiz" / "s.json", True, 3)
    assert ch.human_cell(ch.read_human(None)) == "not measured / 30.0 (1 quiz, 10 examples)"


def test_a_quiz_on_another_dataset_is_refused(tmp_path):
    import pytest
    from mnist1d_np import experiment, quiz
    from mnist1d_np.fileio import write_json
    ch = load_chapter("02_classifiers")
    record = {**quiz.identity(1, 10, False, quiz.dataset_args(False, seed=43)), "indices": [], "guesses": [],
              "truth": [], "page_seconds": [], "complete": False}
    write_json(tmp_path / "other.json", record)
    with pytest.raises(experiment.UsageError, match="another dataset"):
        ch.read_human([str(tmp_path / "other.json")])


def test_the_figure_draws_the_measured_human_and_says_so(tmp_path):
    ch = load_chapter("02_classifiers")
    curves = {"eval_steps": [0, 1], "train_acc": [0.1, 0.5], "test_acc": [0.1, 0.4]}
    runs = {(m, d): [curves] for m in ("mlp",) for d in ch.DATASETS}

    def human_lines(human):
        fig = ch.plot_curves(runs, ("mlp",), human)
        lines = {line.get_label(): line.get_ydata()[0] for line in fig.axes[1].lines if "human" in line.get_label()}
        ch.plotting.plt.close(fig)
        return lines
    assert human_lines(None) == {"human (the notebook's quizzes)": ch.HUMAN_ACCURACY}
    human = ch.read_human([write_quiz(tmp_path / "a.json", False, 7), write_quiz(tmp_path / "s.json", True, 4)])
    assert human_lines(human) == {"human, mnist1d: measured (1 quiz)": 70.0, "human, shuffled: measured (1 quiz)": 40.0}
