"""Chapter scaffolding: flags, progress line, tables, JSON, checkpoints."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist1d_np import experiment, fileio


def test_parser_defaults_and_bad_seed(capsys):
    parser = experiment.chapter_parser("07_demo", "Demo chapter.\n\nMore text.")
    args = parser.parse_args([])
    assert (args.quick, args.out, args.seed) == (False, os.path.join("results", "07_demo"), 0)
    for bad in ("-1", str(2 ** 32)):
        with pytest.raises(SystemExit):
            parser.parse_args(["--seed", bad])
        assert "must be in [0, 2**32 - 1]" in capsys.readouterr().err


def test_chapter_settings_quick_overrides_only_its_fields():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings:
        steps: int = 6000
        lr: float = 1e-2

    assert experiment.chapter_settings(Settings, {"steps": 30}, quick=False) == Settings()
    assert experiment.chapter_settings(Settings, {"steps": 30}, quick=True) == Settings(steps=30)
    assert experiment.chapter_settings(Settings, {"steps": 30}, True, lr=0.5) == Settings(30, 0.5)


def test_parse_args_in_a_notebook_uses_quick(monkeypatch):
    parser = experiment.chapter_parser("07_demo", "Demo.")
    monkeypatch.setattr(experiment, "_in_notebook", lambda: True)
    assert experiment.parse_args(parser).quick is True
    monkeypatch.setattr(experiment, "_in_notebook", lambda: False)
    assert experiment.parse_args(parser, []).quick is False


def test_progress_prints_count_and_eta():
    stream = io.StringIO()
    bar = experiment.Progress(4, "train", stream=stream, log_every=0.0)
    for _ in range(4):
        bar.update(loss=0.5)
    lines = stream.getvalue().strip().splitlines()
    assert lines[-1].startswith("train 4/4 [") and "loss=0.5" in lines[-1]
    assert len(lines) == 4  # not a terminal: one line per update when log_every=0


def test_progress_is_quiet_between_log_intervals():
    stream = io.StringIO()
    bar = experiment.Progress(1000, "x", stream=stream, log_every=3600)
    for _ in range(1000):
        bar.update()
    assert stream.getvalue().count("\n") == 1  # only the final line


def test_table_alignment():
    text = experiment.format_table([("CNN", "94 ± 2", 93.5), ("logistic regression", 32, "31")])
    lines = text.splitlines()
    assert lines[0].startswith("quantity") and len({line.index("|") for line in lines if "|" in line}) == 1
    assert experiment.mean_sd([0.9, 0.92, 0.94], scale=100) == "92.0 ± 1.6"


def test_run_saves_results_with_metadata(tmp_path):
    args = experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path / "o"), "--seed", "3"])
    run = experiment.Run("07_demo", args, settings={"lr": 0.1})
    path = run.save_results("results", {"acc": np.float32(0.5), "curve": np.arange(3)})
    record = json.loads(open(path).read())
    assert record["seed"] == 3 and record["settings"] == {"lr": 0.1}
    assert record["results"] == {"acc": 0.5, "curve": [0, 1, 2]}
    assert record["wall_time_s"] >= 0 and record["machine"]["cpu_count"] >= 1
    assert record["mnist1d_np_version"]


def test_the_runs_clock_spans_its_invocations(tmp_path, monkeypatch):
    parser = experiment.chapter_parser("07_demo", "")
    now = [100.0]
    monkeypatch.setattr(experiment.time, "perf_counter", lambda: now[0])
    def run(steps=10):
        return experiment.Run("07_demo", parser.parse_args(["--out", str(tmp_path)]), {"steps": steps})
    first = run()
    now[0] += 60
    first.save_partial({})                                        # then interrupted, after 60 s
    rerun = run()
    now[0] += 2
    record = json.loads(open(rerun.save_results("results", {})).read())
    assert record["wall_time_s"] == 2.0 and record["total_wall_time_s"] == 62.0
    with rerun.stage("search"):
        now[0] += 5
    assert run().stage_seconds("search") == 5.0                   # stages carry over too
    other = run(steps=20)                                         # other settings: other results,
    now[0] += 1
    assert other.total_elapsed() == 1.0 and other.stage_seconds("search") == 0.0   # its own clock


def test_an_interrupted_invocation_keeps_its_time(tmp_path):
    script = ("import sys, time; from mnist1d_np import experiment\n"
              "args = experiment.chapter_parser('07_demo', '').parse_args(['--out', sys.argv[1]])\n"
              "run = experiment.Run('07_demo', args); run.path(''); time.sleep(0.2); sys.exit(130)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env)
    assert done.returncode == 130
    assert json.loads((tmp_path / experiment.TIME_SPENT).read_text())["seconds"] >= 0.2


def test_ctrl_c_anywhere_in_a_chapter_ends_in_one_line(capsys):
    def main():
        raise KeyboardInterrupt  # e.g. while the figures are drawn, outside any sweep
    for resumable, expected in ((True, "run the same command again to resume; kept: the finished work in --out"),
                                (False, "run the same command again (a short run, it starts over)")):
        with pytest.raises(SystemExit) as stop:
            experiment.run_chapter_main(main, resumable=resumable)
        assert stop.value.code == 130
        assert capsys.readouterr().err.strip() == f"interrupted: {expected}"
    experiment.run_chapter_main(lambda: None)                      # a normal end: no exit, no line
    assert capsys.readouterr().err == ""


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    path = tmp_path / "ckpt.npz"
    assert fileio.load_checkpoint(path) is None
    fileio.save_checkpoint(path, {"w": np.ones((2, 3))}, {"step": 7})
    arrays, meta = fileio.load_checkpoint(path)
    assert meta == {"step": 7} and np.array_equal(arrays["w"], np.ones((2, 3)))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="ignoring unreadable checkpoint"):
        assert fileio.load_checkpoint(path) is None


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.json"
    fileio.write_json(path, {"a": 1})

    def fail(f):
        f.write(b"partial")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(path, fail)
    assert json.loads(path.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["f.json"]


def test_json_conversion_of_numpy_values():
    assert fileio.to_jsonable({"x": np.float64("nan"), 1: (np.int64(2),)}) == {"x": None, "1": [2]}


def test_out_that_is_a_file_is_refused_at_once(tmp_path, capsys):
    not_a_folder = tmp_path / "results.txt"
    not_a_folder.write_text("mine")
    parser = experiment.chapter_parser("07_demo", "")
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", str(not_a_folder)])
    assert "exists and is not a folder" in capsys.readouterr().err
    args = parser.parse_args(["--out", str(tmp_path / "o")])
    args.out = str(not_a_folder)  # as a notebook might set it
    with pytest.raises(ValueError, match="exists and is not a folder"):
        experiment.Run("07_demo", args)
    assert not_a_folder.read_text() == "mine"


def test_run_cleans_leftover_temporary_files(tmp_path):
    (tmp_path / ".tmp-999999999-x").write_text("half a checkpoint")
    experiment.Run("07_demo", experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path)]))
    assert os.listdir(tmp_path) == []


def test_partial_results_are_marked_incomplete(tmp_path):
    args = experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path)])
    run = experiment.Run("07_demo", args, settings={"steps": 10})
    path = run.save_partial({"losses": [1.0, 0.5]})
    record = json.loads(open(path).read())
    assert record["complete"] is False and record["results"] == {"losses": [1.0, 0.5]}
    run.save_results("results", {"losses": [1.0, 0.5, 0.2]})
    assert json.loads(open(path).read())["complete"] is True


def test_run_checkpoint_path_depends_on_the_runs_identity(tmp_path):
    parser = experiment.chapter_parser("07_demo", "")
    def run(*argv, steps=10):
        return experiment.Run("07_demo", parser.parse_args(["--out", str(tmp_path), *argv]), {"steps": steps})
    path = run().checkpoint_path("meta", data={"seed": 42})
    assert path == run().checkpoint_path("meta", data={"seed": 42})
    others = {run("--seed", "1").checkpoint_path("meta", data={"seed": 42}),
              run("--quick").checkpoint_path("meta", data={"seed": 42}),
              run(steps=20).checkpoint_path("meta", data={"seed": 42}),
              run().checkpoint_path("meta", data={"seed": 43})}
    assert len(others) == 4 and path not in others
    identity = run().identity(data={"seed": 42})
    assert identity["seed"] == 0 and identity["mnist1d_np_version"] and identity["data"] == {"seed": 42}
