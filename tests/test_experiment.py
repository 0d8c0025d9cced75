"""Chapter scaffolding: flags, settings, seeds, progress line, tables, JSON, checkpoints."""
import argparse
import dataclasses
import io
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from mnist1d_np import experiment, fileio, kernel, progress


def test_parser_defaults_and_bad_seed(capsys):
    parser = experiment.chapter_parser("07_demo", "Demo chapter.\n\nMore text.")
    args = parser.parse_args([])
    assert (args.quick, args.out, args.seed) == (False, os.path.join("results", "07_demo"), 0)
    for bad in ("-1", str(2 ** 32)):
        with pytest.raises(SystemExit):
            parser.parse_args(["--seed", bad])
        assert "must be in [0, 2**32 - 1]" in capsys.readouterr().err


def test_the_help_of_set_lists_the_chapters_own_settings():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings:
        lr: float = 0.01
        widths: tuple = (8, 16)
        noisy: bool = True
    text = experiment.chapter_parser("07_demo", "Demo.", settings_class=Settings).format_help()
    assert "lr=0.01, widths=8,16, noisy=true" in " ".join(text.split())


def test_chapter_settings_quick_overrides_only_its_fields():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings:
        steps: int = 6000
        lr: float = 1e-2

    assert experiment.chapter_settings(Settings, {"steps": 30}, quick=False) == Settings()
    assert experiment.chapter_settings(Settings, {"steps": 30}, quick=True) == Settings(steps=30)
    assert experiment.chapter_settings(Settings, {"steps": 30}, True, lr=0.5) == Settings(30, 0.5)
    # explicit overrides come after the quick ones, as documented
    assert experiment.chapter_settings(Settings, {"steps": 30}, True, steps=7) == Settings(steps=7)


def test_set_reads_each_value_as_its_field_is_typed():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings:
        steps: int = 6000
        lr: float = 1e-2
        noise_in_g: bool = True
        meta_hidden: tuple = (100,)
        loss: str = "info_nce"

    changes = experiment.setting_changes(Settings, ["steps=30", "lr=0.5", "noise_in_g=false",
                                                    "meta_hidden=100,100", "loss=triplet"])
    assert changes == {"steps": 30, "lr": 0.5, "noise_in_g": False, "meta_hidden": (100, 100), "loss": "triplet"}
    for bad, message in (("step=3", "NAME one of steps, lr, noise_in_g, meta_hidden, loss"),
                         ("steps", "expected NAME=VALUE"),
                         ("steps=many", r"steps takes an integer \(its default is 6000\)"),
                         ("noise_in_g=maybe", "noise_in_g takes true or false"),
                         ("meta_hidden=1,x", "meta_hidden takes a comma-separated list of integers")):
        with pytest.raises(ValueError, match=message):
            experiment.setting_changes(Settings, [bad])


def test_start_applies_quick_then_set_and_rejects_bad_ones(tmp_path, capsys):
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Settings:
        steps: int = 6000
        lr: float = 1e-2

    out = ["--out", str(tmp_path / "o")]
    run = experiment.start("07_demo", "Demo.", Settings, {"steps": 30}, argv=["--quick", "--set", "lr=0.5", *out])
    assert run.settings == Settings(30, 0.5) and run.quick
    with pytest.raises(SystemExit):
        experiment.start("07_demo", "Demo.", Settings, {}, argv=["--set", "lr=fast", *out])
    assert "--set lr=fast: lr takes a number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    steps: int = 6000
    lr: float = 1e-2
    models: tuple = ("mlp",)


Demo = experiment.task_config("Demo", DemoSettings, ("steps", "lr"), model=str, seed=int, scope=(str, "layer"))


def test_a_task_config_holds_the_settings_it_reads_and_its_own_fields(tmp_path):
    import pickle
    config = Demo.of(DemoSettings(lr=0.5), model="cnn", seed=3)
    assert dataclasses.asdict(config) == {"model": "cnn", "seed": 3, "steps": 6000, "lr": 0.5, "scope": "layer"}
    assert dataclasses.replace(config, scope="global").scope == "global"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 4
    assert pickle.loads(pickle.dumps(config)) == config  # found by name, as runmany's workers find it
    assert Demo.of(DemoSettings(lr=0.5, models=("a", "b")), model="cnn", seed=3) == config  # models: not read
    with pytest.raises(ValueError, match="DemoSettings has no field \\['stesp'\\]"):
        experiment.task_config("Bad", DemoSettings, ("stesp",))


@pytest.mark.parametrize("change, message", [("steps=0", "steps must be an integer >= 1, got 0"),
                                             ("lr=-1", "lr must be a number > 0, got -1.0")])
def test_the_vocabulary_is_checked_before_anything_runs(tmp_path, capsys, change, message):
    with pytest.raises(SystemExit):
        experiment.start("07_demo", "Demo.", DemoSettings, {}, argv=["--set", change, "--out", str(tmp_path / "o")])
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_seed_whose_initialisations_torch_cannot_take_ends_in_one_line(capsys):
    assert experiment.seeds(2 ** 32 // 3 - 1, 3)[-1] < 2 ** 32
    with pytest.raises(experiment.UsageError, match="--seed must be at most 1431655764"):
        experiment.seeds(2 ** 32 // 3, 3)

    def main():
        experiment.seeds(2 ** 31, 6, offset=42)
    with pytest.raises(SystemExit) as stop:
        experiment.run_chapter_main(main)
    assert stop.value.code == 2 and capsys.readouterr().err.strip().startswith("error: --seed 2147483648:")


def test_seeds_of_two_values_of_seed_never_overlap():
    assert experiment.seeds(0, 3) == [0, 1, 2] and experiment.seeds(1, 3) == [3, 4, 5]
    drawn = [s for seed in range(50) for s in experiment.seeds(seed, 4)]
    assert len(set(drawn)) == len(drawn)


def test_parse_args_in_a_notebook_uses_quick(monkeypatch):
    parser = experiment.chapter_parser("07_demo", "Demo.")
    monkeypatch.setitem(experiment._notebook, "flags", None)
    monkeypatch.setattr(kernel, "in_kernel", lambda: True)
    assert experiment.parse_args(parser).quick is True
    monkeypatch.setattr(kernel, "in_kernel", lambda: False)
    assert experiment.parse_args(parser, []).quick is False


def test_notebook_flags_are_the_command_line_of_a_chapter_in_a_kernel(tmp_path, monkeypatch, capsys):
    @dataclasses.dataclass(frozen=True)
    class Settings:
        steps: int = 100
    monkeypatch.setitem(experiment._notebook, "flags", None)
    monkeypatch.setattr(kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json"])  # a kernel's own argv
    start = lambda: experiment.start("07_demo", "Demo.", Settings, dict(steps=10))
    experiment.notebook_flags(["--quick", "--set", "steps=30", "--out", str(tmp_path / "a")])
    run = start()
    assert run.quick and run.settings.steps == 30 and run.out == str(tmp_path / "a")
    assert "notebook: running with the flags --quick --set steps=30" in capsys.readouterr().out
    experiment.notebook_flags([])                      # the full run
    assert not start().quick and start().settings.steps == 100
    experiment.notebook_flags(["--set", "steps=0"])    # checked as on the command line
    with pytest.raises(SystemExit):
        start()
    assert "steps must be an integer >= 1, got 0" in capsys.readouterr().err
    for wrong in ("--quick", None, iter(["--quick"]), ["--set", 3]):  # a generator would be used up unseen
        with pytest.raises(TypeError, match="a list of texts"):
            experiment.notebook_flags(wrong)
    monkeypatch.setattr(kernel, "in_kernel", lambda: False)  # a script reads its own command line
    monkeypatch.setattr(sys, "argv", ["07_demo.py", "--quick"])
    assert start().settings.steps == 10


def test_in_a_notebook_ctrl_c_and_a_usage_error_end_the_cell_not_the_kernel(monkeypatch, capsys):
    monkeypatch.setattr(kernel, "in_kernel", lambda: True)

    def interrupted():
        raise KeyboardInterrupt

    def refused():
        raise experiment.UsageError("--seed 7: too large")
    def interrupted_in_a_kernel_of_numba():
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as err:
                raise SystemError("<function _numba_unpickle> returned a result with an exception set") from err
        except SystemError as err:
            raise SystemError("CPUDispatcher(<function k>) returned a result with an exception set") from err

    def broken():
        raise SystemError("a real one")
    for stop in (interrupted, interrupted_in_a_kernel_of_numba):
        experiment.run_chapter_main(stop)  # no SystemExit
        assert "interrupted: run this cell again to resume" in capsys.readouterr().err
    with pytest.raises(SystemError, match="a real one"):
        experiment.run_chapter_main(broken)
    experiment.run_chapter_main(refused)
    assert capsys.readouterr().err.strip() == "error: --seed 7: too large"


def test_a_saved_figure_is_shown_in_a_notebook_and_only_there(tmp_path, monkeypatch):
    pytest.importorskip("IPython")
    import IPython.display
    from mnist1d_np import plotting
    shown = []
    run = experiment.Run("07_demo", argparse.Namespace(out=str(tmp_path), quick=True, seed=0))
    figures = [plotting.figure()[0] for _ in range(2)]
    for fig in figures:
        fig.axes[0].plot([0, 1], [1, 0])
    monkeypatch.setattr(IPython.display, "display", shown.append)
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # a kernel's shell
    monkeypatch.delitem(sys.modules, "ipykernel.kernelapp", raising=False)
    run.save_figure(figures[0], "script")
    assert shown == []
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", types.ModuleType("ipykernel.kernelapp"))
    path = run.save_figure(figures[1], "notebook")
    assert len(shown) == 1 and shown[0].data == open(path, "rb").read()  # the very PNG saved
    assert plotting.plt.get_fignums() == []  # and closed, as in a script


def test_scripts_and_tests_draw_with_agg_on_a_machine_without_a_screen():
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    code = "import matplotlib, mnist1d_np.plotting; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().lower() == "agg"


def test_progress_prints_count_and_eta():
    stream = io.StringIO()
    bar = progress.Progress(4, "train", stream=stream, log_every=0.0)
    for _ in range(4):
        bar.update(loss=0.5)
    lines = stream.getvalue().strip().splitlines()
    assert lines[-1].startswith("train 4/4 [") and "loss=0.5" in lines[-1]
    assert len(lines) == 4  # not a terminal: one line per update when log_every=0


def test_progress_is_quiet_between_log_intervals():
    stream = io.StringIO()
    bar = progress.Progress(1000, "x", stream=stream, log_every=3600)
    for _ in range(1000):
        bar.update()
    assert stream.getvalue().count("\n") == 1  # only the final line


def test_progress_of_a_resumed_run_counts_only_new_work_in_its_eta(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    stream = io.StringIO()
    bar = progress.Progress(100, "x", stream=stream, log_every=0.0, initial=90)
    now[0] = 5.0
    bar.update(5)            # 5 units in 5 s: 5 more take 5 s (not 95 units in 5 s)
    assert "x 95/100 [00:05<00:05]" in stream.getvalue()


def test_lines_only_never_redraws_a_terminal_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    with progress.lines_only(log_every=0.0):
        bar = progress.Progress(2, "w", stream=Terminal())
    bar.update()
    bar.update()
    assert "\r" not in bar.stream.getvalue() and bar.stream.getvalue().count("\n") == 2


class KernelStream(io.StringIO):
    """Stands for ipykernel's OutStream: text that goes to the notebook, not a terminal."""
    __module__ = "ipykernel.iostream"


def test_progress_in_a_notebook_is_one_line_redrawn_once_a_second(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", types.ModuleType("ipykernel.kernelapp"))
    bar = progress.Progress(1000, "train", stream=KernelStream())
    for _ in range(1000):       # 1000 updates over 10 s
        now[0] += 0.01
        bar.update()
    text = bar.stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("train 1000/1000 [00:10<00:00] \n")
    redraws = text.split("\r")[1:]
    assert 9 <= len(redraws) <= 11  # once a second, not at every update nor ten times a second
    monkeypatch.delitem(sys.modules, "ipykernel.kernelapp")  # the same stream outside a kernel: whole lines, every log_every
    bar = progress.Progress(1000, "train", stream=KernelStream(), log_every=5.0)
    for _ in range(1000):
        now[0] += 0.01
        bar.update()
    assert "\r" not in bar.stream.getvalue() and bar.stream.getvalue().count("\n") == 2  # at 5 s, and the last


def test_table_alignment():
    text = experiment.format_table([("CNN", "94 ± 2", 93.5), ("logistic regression", 32, "31")])
    lines = text.splitlines()
    assert lines[0].startswith("quantity") and len({line.index("|") for line in lines if "|" in line}) == 1
    assert str(experiment.mean_sd([0.9, 0.92, 0.94], scale=100)) == "92.0 ± 1.6"
    assert str(experiment.MeanSD(32, 1)) == "32 ± 1" and experiment.each([0.756, 0.744], 100) == "75.6 / 74.4"


def test_paper_vs_run_rows_follow_paper_then_the_measured_only():
    paper = {"cnn (%)": experiment.MeanSD(94, 2), "lr": 0.62, "trials": (75.6, 74.4), "human": "96 ± 1"}
    measured = {"extra": (1, 2), "trials": "72.0 / 70.1", "human": None, "lr": 0.6243,
                "cnn (%)": experiment.mean_sd([93.1, 94.9]), "not run": None}
    assert experiment.paper_vs_run(paper, measured) == [
        ("cnn (%)", "94 ± 2", "94.0 ± 0.9"), ("lr", "0.62", "0.6243"), ("trials", "75.6 / 74.4", "72.0 / 70.1"),
        ("extra", "—", "1 / 2")]
    with pytest.raises(ValueError, match=r"no measured value for \['lr'\]"):
        experiment.paper_vs_run(paper, {k: v for k, v in measured.items() if k != "lr"})


def test_run_saves_results_with_metadata(tmp_path):
    args = experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path / "o"), "--seed", "3"])
    run = experiment.Run("07_demo", args, settings={"lr": 0.1})
    path = run.finish({"acc": np.float32(0.5), "curve": np.arange(3)}, {"acc": 0.6}, {"acc": 0.5})
    record = json.loads(open(path).read())
    assert record["table"] == [["acc", "0.6", "0.5"]]
    assert record["seed"] == 3 and record["settings"] == {"lr": 0.1}
    assert record["results"] == {"acc": 0.5, "curve": [0, 1, 2]}
    assert record["wall_time_s"] >= 0 and record["machine"]["cpu_count"] >= 1
    assert record["mnist1d_np_version"]


def test_a_table_that_does_not_match_its_paper_still_keeps_the_results(tmp_path):
    args = experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path / "o")])
    run = experiment.Run("07_demo", args, settings={})
    with pytest.raises(ValueError, match="no measured value"):
        run.finish({"acc": 0.5}, {"acc (typo)": 0.6}, {"acc": 0.5})
    record = json.loads((tmp_path / "o" / "results.json").read_text())
    assert record["results"] == {"acc": 0.5} and record["table"] == []


def test_the_runs_clock_spans_its_invocations(tmp_path, monkeypatch):
    parser = experiment.chapter_parser("07_demo", "")
    now = [100.0]
    monkeypatch.setattr(experiment.time, "perf_counter", lambda: now[0])
    def run(steps=10):
        return experiment.Run("07_demo", parser.parse_args(["--out", str(tmp_path)]), {"steps": steps})
    first = run()
    first.path("runs")                                            # it works in OUT,
    now[0] += 60
    first._record_time()                                          # then is interrupted, after 60 s
    rerun = run()
    now[0] += 2
    record = json.loads(open(rerun.save_results({})).read())
    assert record["wall_time_s"] == 2.0 and record["total_wall_time_s"] == 62.0
    with rerun.stage("search"):
        now[0] += 5
    assert run().stage_seconds("search") == 5.0                   # stages carry over too
    other = run(steps=20)                                         # other settings: other results,
    now[0] += 1
    assert other.total_elapsed() == 1.0 and other.stage_seconds("search") == 0.0   # its own clock


def test_a_run_refused_before_it_wrote_anything_leaves_the_earlier_time(tmp_path, monkeypatch):
    parser = experiment.chapter_parser("07_demo", "")
    now = [100.0]
    monkeypatch.setattr(experiment.time, "perf_counter", lambda: now[0])
    worked = experiment.Run("07_demo", parser.parse_args(["--out", str(tmp_path)]), {"steps": 10})
    worked.path("runs")
    now[0] += 60
    worked._record_time()
    refused = experiment.Run("07_demo", parser.parse_args(["--out", str(tmp_path), "--seed", "9"]), {"steps": 10})
    refused._record_time()                                        # e.g. its --seed was refused
    assert json.loads((tmp_path / experiment.TIME_SPENT).read_text())["seconds"] == 60.0


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
        experiment.parse_args(parser, ["--out", str(not_a_folder)])
    assert "exists and is not a folder" in capsys.readouterr().err
    args = experiment.parse_args(parser, ["--out", str(tmp_path / "o")])
    args.out = str(not_a_folder)  # as a notebook might set it
    with pytest.raises(ValueError, match="exists and is not a folder"):
        experiment.Run("07_demo", args)
    assert not_a_folder.read_text() == "mine"


@pytest.mark.parametrize("where", ["/proc/nope", "/proc/nope/deeper", "FILE/sub"])
def test_out_that_cannot_be_made_is_refused_with_one_line(tmp_path, capsys, where):
    (tmp_path / "FILE").write_text("mine")
    where = where.replace("FILE", str(tmp_path / "FILE"))
    if where.startswith("/proc") and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    with pytest.raises(SystemExit) as stop:
        experiment.parse_args(experiment.chapter_parser("07_demo", ""), ["--out", where])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {where}:" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == ["FILE"]


def test_out_that_can_be_made_is_not_made_until_needed(tmp_path):
    args = experiment.parse_args(experiment.chapter_parser("07_demo", ""), ["--out", str(tmp_path / "a" / "b")])
    assert os.listdir(tmp_path) == []
    run = experiment.Run("07_demo", args)
    run.path("x.png")
    assert os.path.isdir(tmp_path / "a" / "b")


def test_run_cleans_leftover_temporary_files(tmp_path):
    (tmp_path / ".tmp-999999999-x").write_text("half a checkpoint")
    experiment.Run("07_demo", experiment.chapter_parser("07_demo", "").parse_args(["--out", str(tmp_path)]))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- --images and --images-dir

def _image_args(argv):
    parser = experiment.chapter_parser("02_classifiers", "doc")
    experiment.add_image_arguments(parser)
    return parser.parse_args(argv)


def test_no_images_flag_reads_nothing(monkeypatch):
    monkeypatch.setattr(experiment.images, "load_images", lambda *a, **k: pytest.fail("read images"))
    assert experiment.load_image_set(_image_args([])) is None


def test_images_dir_without_images_is_a_usage_error():
    with pytest.raises(experiment.UsageError, match="--images-dir /x: give --images"):
        experiment.load_image_set(_image_args(["--images-dir", "/x"]))


def test_images_flag_only_takes_the_known_sets(capsys):
    with pytest.raises(SystemExit):
        _image_args(["--images", "cifar"])
    assert "invalid choice: 'cifar'" in capsys.readouterr().err


def test_images_read_from_images_dir(tmp_path, monkeypatch):
    import gzip
    from mnist1d_np import idx
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    counts = {"train": 5, "t10k": 3}
    for part, n in counts.items():
        images_ = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (tmp_path / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(images_)))
        (tmp_path / f"{part}-labels-idx1-ubyte").write_bytes(idx.idx_bytes(labels))
    data = experiment.load_image_set(_image_args(["--images", "fashion", "--images-dir", str(tmp_path)]))
    assert data["x"].shape == (5, 784) and data["x_test"].shape == (3, 784) and data["name"] == "fashion"


def test_a_set_that_cannot_be_had_is_one_usage_error(tmp_path, monkeypatch):
    def refuse(name, **kwargs):
        raise experiment.images.ImagesError("Fashion-MNIST is not on this machine")
    monkeypatch.setattr(experiment.images, "load_images", refuse)
    with pytest.raises(experiment.UsageError, match="--images fashion: Fashion-MNIST is not on this machine"):
        experiment.load_image_set(_image_args(["--images", "fashion", "--images-dir", str(tmp_path)]))


def test_help_shows_no_empty_defaults():
    parser = experiment.chapter_parser("02_classifiers", "doc")
    experiment.add_image_arguments(parser)
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: [])" not in text and "(default: 0)" in text
