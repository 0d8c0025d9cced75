"""Sweeps on a real dask cluster: `dask scheduler` and `dask worker` processes on
127.0.0.1, started as the README tells users to start them, and the sweep
chapters run through them with --scheduler, giving the local run's numbers."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import runmany_tasks
from mnist1d_np import runmany
from test_chapters import ROOT

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed: "
                                  "pip install -e '.[cluster]' to run the cluster tests")


def dask_command():
    here = os.path.join(os.path.dirname(sys.executable), "dask")
    return here if os.path.exists(here) else shutil.which("dask")


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a real scheduler and its workers, started in the README's two forms: `dask worker
    ADDRESS --nthreads 2` (one process, two tasks in its threads) and `--nworkers 2 --nthreads 1` (a
    process per core): three worker processes."""
    folder = tmp_path_factory.mktemp("dask")
    address_file, dask = folder / "scheduler.json", dask_command()
    assert dask, "the `dask` command of dask.distributed is not on PATH"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"), os.environ.get("PYTHONPATH", "")]))
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(address_file)], cwd=folder, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"))]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists():
            assert time.monotonic() < deadline and processes[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give the scheduler a moment
        address = json.loads(address_file.read_text())["address"]
        for i, form in enumerate((["--nthreads", "2"], ["--nworkers", "2", "--nthreads", "1"])):
            processes.append(subprocess.Popen([dask, "worker", address, *form, "--no-dashboard",
                                               "--local-directory", str(folder / f"workers{i}")],
                                              cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                              stderr=open(folder / f"worker{i}.log", "w")))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(3, timeout=60)
        yield address
    finally:  # the workers first, while the scheduler can still answer their goodbyes, then the scheduler
        for group in (processes[1:], processes[:1]):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def run_chapter(name, out, *flags):
    script = os.path.join(ROOT, "chapters", f"{name}.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out), *flags],
                          capture_output=True, text=True, timeout=600, cwd=out.parent)
    return proc


def executed(address):
    """How many tasks the cluster's workers have run, in all."""
    with distributed.Client(address, timeout=30) as client:
        return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


# The two longest, made smaller for the suite: the same sweeps, over fewer rounds and steps.
SMALLER = {"03_lottery_tickets": ["--set", "rounds=4", "--set", "steps=200", "--set", "checkpoint_step=100",
                                  "--set", "panel_steps=100"],
           "08_pooling": ["--set", "steps=301"]}


@pytest.mark.parametrize("name", ["02_classifiers", "08_pooling", "03_lottery_tickets", "06_double_descent"])
def test_a_sweep_chapter_on_the_cluster_gives_the_local_numbers(scheduler, tmp_path, name):
    before = executed(scheduler)
    smaller = SMALLER.get(name, [])
    on_cluster = run_chapter(name, tmp_path / "cluster", "--scheduler", scheduler, *smaller)
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    runs = [path for path in (tmp_path / "cluster").rglob("*.json") if path.parent != tmp_path / "cluster"]
    assert len(runs) > 1 and executed(scheduler) - before == len(runs)  # each saved run ran on a worker, none here
    local = run_chapter(name, tmp_path / "local", "--workers", "2", *smaller)
    assert local.returncode == 0, local.stderr[-3000:]
    results = [json.loads((tmp_path / where / "results.json").read_text())["results"] for where in ("cluster", "local")]
    assert without_times(results[0]) == without_times(results[1])


def without_times(value):
    """Results without what runs time themselves (chapter 02's 'seconds', 'seconds_mean', ...): those differ."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not k.startswith("seconds")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_a_task_of_an_importable_module_runs_on_the_cluster(scheduler, tmp_path):
    configs = [runmany_tasks.Point(x) for x in range(4)]
    local = runmany.run_many(runmany_tasks.describe, configs, tmp_path / "local", workers=1)
    assert runmany.run_many(runmany_tasks.describe, configs, tmp_path / "dask", scheduler=scheduler) == local


@pytest.mark.parametrize("address, code, message", [
    ("nonsense", 2, "--scheduler: expected a dask scheduler address like tcp://10.0.0.1:8786"),
    ("tcp://127.0.0.1:1", 1, "--scheduler tcp://127.0.0.1:1: no dask scheduler answered within")])
def test_a_bad_address_ends_the_chapter_in_one_line_before_anything_is_written(tmp_path, address, code, message):
    proc = run_chapter("02_classifiers", tmp_path / "out", "--scheduler", address)
    assert proc.returncode == code and "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]
    if code == 1:
        assert "dask scheduler" in proc.stderr and "dask worker" in proc.stderr  # how to start one
    assert not (tmp_path / "out").exists()
