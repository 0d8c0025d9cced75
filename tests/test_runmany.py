"""The run-many mechanism: saved, skipped, ordered, identical results, and
real interruptions (SIGINT, a second SIGINT, kill -9) of real processes."""
import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import runmany_tasks
from mnist1d_np import runmany

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = [{"x": x, "seed": 10 + x} for x in range(5)]


def never_called(config, context):
    raise AssertionError(f"{config} should have been read from disk")


def test_config_name_is_readable_stable_and_unique():
    name = runmany.config_name({"model": "cnn", "seed": 2, "train": {"lr": 0.01}})
    assert name.startswith("cnn_seed2-") and len(name.split("-")[-1]) == 10
    assert runmany.config_name({"train": {"lr": 0.01}, "seed": 2, "model": "cnn"}) == name
    assert runmany.config_name({"model": "cnn", "seed": 2, "train": {"lr": 0.02}}) != name
    odd = runmany.config_name({"path": "../../etc/passwd", "note": ".hidden"})
    assert "/" not in odd and not odd.startswith(".")


def test_results_are_saved_in_order_and_skipped_on_rerun(tmp_path):
    results = runmany.run_many(runmany_tasks.noisy_square, CONFIGS, tmp_path, workers=1)
    assert [r["square"] for r in results] == [x * x for x in range(5)]
    assert results[0]["pair"] == [1, 2.5]  # as JSON gives it back, whatever the path
    for config, result in zip(CONFIGS, results):
        record = json.loads((tmp_path / f"{runmany.config_name(config)}.json").read_text())
        assert record == {"config": config, "result": result}
    assert runmany.run_many(never_called, CONFIGS, tmp_path, workers=1) == results


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    one = runmany.run_many(runmany_tasks.noisy_square, CONFIGS, tmp_path / "one", workers=1)
    two = runmany.run_many(runmany_tasks.noisy_square, CONFIGS, tmp_path / "two", workers=2)
    assert one == two


def test_damaged_or_foreign_result_files_are_run_again(tmp_path):
    runmany.run_many(runmany_tasks.noisy_square, CONFIGS[:3], tmp_path, workers=1)
    names = [runmany.config_name(c) for c in CONFIGS[:3]]
    (tmp_path / f"{names[0]}.json").write_text("")
    (tmp_path / f"{names[1]}.json").write_text('{"config": {"x": 1, "seed": 10')
    (tmp_path / f"{names[2]}.json").write_text(json.dumps({"config": {"x": 99}, "result": {}}))
    with pytest.warns(UserWarning) as caught:
        results = runmany.run_many(runmany_tasks.noisy_square, CONFIGS[:3], tmp_path, workers=1)
    assert len(caught) == 3 and all(name in str(w.message) for name, w in zip(names, caught))
    assert [r["square"] for r in results] == [0, 1, 4]
    assert json.loads((tmp_path / f"{names[0]}.json").read_text())["result"] == results[0]


def test_a_failing_run_raises_after_the_others_are_saved(tmp_path):
    configs = [{"x": x} for x in range(3)]
    with pytest.raises(RuntimeError, match="run 1 failed"):
        runmany.run_many(runmany_tasks.failing, configs, tmp_path, workers=2)
    assert (tmp_path / f"{runmany.config_name(configs[0])}.json").exists()


def test_bad_arguments_are_refused(tmp_path):
    for workers in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            runmany.run_many(runmany_tasks.noisy_square, CONFIGS, tmp_path, workers=workers)
    with pytest.raises(ValueError, match="not JSON-able"):
        runmany.run_many(runmany_tasks.noisy_square, [{"x": object()}], tmp_path)
    with pytest.raises(ValueError, match="must be a dataclass"):
        runmany.run_many(runmany_tasks.noisy_square, [3], tmp_path)
    assert os.listdir(tmp_path) == []


def test_add_arguments():
    parser = runmany.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--workers", "3", "--scheduler", "tcp://10.0.0.1:8786"])
    assert (args.workers, args.scheduler) == (3, "tcp://10.0.0.1:8786")
    assert parser.parse_args([]).workers >= 1 and parser.parse_args([]).scheduler is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--workers", "0"])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_dataclass_config_comes_back_as_itself_from_json(tmp_path, workers):
    configs = [runmany_tasks.Point(x) for x in range(3)]
    results = runmany.run_many(runmany_tasks.describe, configs, tmp_path, workers=workers)
    assert results == [{"type": "Point", "shape_type": "tuple", "extra_a_type": "tuple", "product": 6 * x}
                       for x in range(3)]
    with pytest.raises(ValueError, match="one dataclass"):
        runmany.run_many(runmany_tasks.describe, [runmany_tasks.Point(1), runmany.Context("x")], tmp_path)


@pytest.mark.parametrize("address", ["nonsense", "tcp://10.0.0.1", "tcp://host:99999", "http://a:1"])
def test_a_bad_scheduler_address_is_refused_at_once(tmp_path, address, capsys):
    parser = runmany.add_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit):
        parser.parse_args(["--scheduler", address])
    assert "expected a dask scheduler address like tcp://10.0.0.1:8786" in capsys.readouterr().err
    with pytest.raises(ValueError, match="scheduler: expected a dask scheduler address"):
        runmany.run_many(runmany_tasks.noisy_square, CONFIGS, tmp_path / "x", scheduler=address)
    assert not (tmp_path / "x").exists()
    assert parser.parse_args(["--scheduler", "10.0.0.1:8786"]).scheduler == "tcp://10.0.0.1:8786"


def test_no_scheduler_listening_ends_in_one_line(tmp_path, monkeypatch):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install -e '.[cluster]')")
    monkeypatch.setattr(runmany, "CONNECT_SECONDS", 1)
    with pytest.raises(runmany.ClusterError) as stop:
        runmany.check_scheduler("tcp://127.0.0.1:1")
    message = str(stop.value)
    assert message.startswith("--scheduler tcp://127.0.0.1:1: no dask scheduler answered within 1 s")
    assert "dask scheduler" in message and "\n" not in message


# ---------------------------------------------------------------- real signals

def start_sweep(folder, task, workers, n_configs=3):
    """The sweep of runmany_tasks.py in its own process group, as a terminal runs it."""
    script = os.path.join(ROOT, "tests", "runmany_tasks.py")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, script, str(folder), task, str(n_configs), str(workers)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def started_runs(folder, at_least, timeout=30):
    """Wait until `at_least` runs have started; their (worker pid, run) pairs."""
    deadline = time.monotonic() + timeout
    while len(glob.glob(os.path.join(folder, "started-*"))) < at_least:
        assert time.monotonic() < deadline, "the runs did not start"
        time.sleep(0.05)
    names = [os.path.basename(p).split("-", 2)[1:] for p in glob.glob(os.path.join(folder, "started-*"))]
    return [(int(pid), run) for pid, run in names]


def alive(pid):
    """Running, not a zombie (a container's init may not reap orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")


@needs_proc
@pytest.mark.parametrize("workers", [1, 2])
def test_one_ctrl_c_stops_at_the_checkpoint_and_a_rerun_resumes(tmp_path, workers):
    sweep = start_sweep(tmp_path, "counted_steps", workers)
    started = started_runs(tmp_path, workers)
    os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    stdout, stderr = sweep.communicate(timeout=20)
    assert sweep.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: 0 of 3 runs finished")
    assert "run the same command again to resume" in stderr
    assert len(glob.glob(str(tmp_path / "started-*"))) == workers  # no new run started
    assert not wait_dead([pid for pid, _ in started], timeout=5)
    rerun = start_sweep(tmp_path, "counted_steps", workers)
    stdout, stderr = rerun.communicate(timeout=60)
    results = json.loads(stdout)
    assert [r["x"] for r in results] == list(range(3))
    resumed = [r["steps_run_here"] for r in results[:workers]]
    assert all(0 < steps < 20 for steps in resumed)  # continued from their checkpoints
    assert [r["steps_run_here"] for r in results[workers:]] == [20] * (3 - workers)
    assert not glob.glob(str(tmp_path / "*.ckpt.npz"))  # finished runs' checkpoints are gone


@needs_proc
def test_a_second_ctrl_c_stops_now(tmp_path):
    sweep = start_sweep(tmp_path, "stubborn", workers=2)
    workers = [pid for pid, _ in started_runs(tmp_path, 2)]
    os.killpg(sweep.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(sweep.pid, signal.SIGINT)
    stdout, stderr = sweep.communicate(timeout=10)  # the runs would take a minute
    assert sweep.returncode == 130 and "Traceback" not in stderr and "to resume" in stderr
    assert not wait_dead(workers)


@needs_proc
def test_workers_die_with_a_killed_parent(tmp_path):
    sweep = start_sweep(tmp_path, "stubborn", workers=2)
    workers = [pid for pid, _ in started_runs(tmp_path, 2)]
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.communicate(timeout=10)
    assert not wait_dead(workers, timeout=5)
    time.sleep(0.5)
    assert len(glob.glob(str(tmp_path / "started-*"))) == 2 and not glob.glob(str(tmp_path / "*.json"))


def test_a_task_defined_in_a_notebook_runs_in_this_process(tmp_path):
    """Spawned workers cannot import a function of an interactive __main__."""
    code = ("import os; from mnist1d_np import runmany\n"
            "def task(config, context):\n    return {'pid': os.getpid()}\n"
            f"results = runmany.run_many(task, [{{'x': 1}}, {{'x': 2}}], {str(tmp_path)!r}, workers=2)\n"
            "print(all(r['pid'] == os.getpid() for r in results))\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]


def test_a_finished_run_leaves_no_checkpoint_behind(tmp_path):
    """train.train names its checkpoint after the run's identity (name-<hash>.ckpt.npz):
    those go too once the run is saved."""
    results = runmany.run_many(runmany_tasks.trains, [{"seed": 0}, {"seed": 1}], tmp_path, workers=1)
    assert len(results) == 2 and len(glob.glob(str(tmp_path / "*.json"))) == 2
    assert not glob.glob(str(tmp_path / "*.ckpt.npz"))
