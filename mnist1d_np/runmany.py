"""Run many independent runs (a sweep): here, in local processes, or on a cluster.

    from mnist1d_np import runmany
    results = runmany.run_many(task, configs, folder, workers=None, scheduler=None)

`task(config, context) -> dict` is a module-level function whose result
depends on `config` alone, a small JSON-able dict (say, model, dataset,
seed, training settings). Each result is saved as soon as it is done, as
folder/<config_name(config)>.json with its config inside; a rerun skips the
runs whose file holds the same config, so an interrupted sweep resumes where
it stopped. Results come back in config order, and are the same numbers
whatever the number or kind of workers: every result goes through JSON,
whether it was just computed, sent from a worker or read from disk.

`context.checkpoint_path` is a file in `folder` for this config alone, for the
task's own step-wise checkpoint. `context.should_stop()` turns True after a
Ctrl-C: a long task checks it at each checkpoint, and, once it is True,
saves and raises KeyboardInterrupt.

Ctrl-C once: no new run starts, the running ones stop at their next
checkpoint, one line says how to resume, and the program exits with code
130. Ctrl-C twice: the workers are killed at once (their checkpoints, written
atomically, stay valid). Workers also die with their parent, even after a
`kill -9` of it.

`scheduler="tcp://host:8786"` runs the same map on a dask.distributed cluster
(`pip install -e ".[cluster]"`; see the README's *Sweeps*).
"""
import argparse
import ctypes
import dataclasses
import json
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

from . import experiment, fileio

POLL_SECONDS = 0.05
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclasses.dataclass(frozen=True)
class Context:
    """What a task gets besides its config."""
    checkpoint_path: str               # a file for this config's checkpoint
    should_stop: Callable[[], bool]    # True once the user asked to stop


class Interrupted(SystemExit):
    """Raised by run_many after a Ctrl-C: exits the program with code 130, no traceback."""

    def __init__(self):
        super().__init__(130)


def config_name(config):
    """The file stem of a config: its scalar values, readable, then a hash of all of it.

    {"model": "cnn", "seed": 2, "train": {...}} -> "cnn_seed2-<10 hex digits>".
    Equal configs (whatever their key order) get the same name, different ones
    different names.
    """
    config = _normalised_config(config)
    parts = [value if isinstance(value, str) else f"{key}{value}"
             for key, value in sorted(config.items())
             if isinstance(value, (str, int, float, bool))]
    readable = "".join(c if c.isalnum() or c in ".=+-" else "_" for c in "_".join(parts))
    readable = readable.strip("._-")[:60]
    return f"{readable}-{fileio.short_hash(config)}" if readable else fileio.short_hash(config)


def add_arguments(parser):
    """Add --workers N and --scheduler ADDRESS to an argparse parser."""
    parser.add_argument("--workers", type=_positive_int, default=_cores(),
                        help="runs in parallel local processes (default: one per core; 1: all in this process)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on a dask.distributed cluster instead, e.g. tcp://10.0.0.1:8786")
    return parser


def run_many(task, configs, folder, workers=None, scheduler=None, label="runs"):
    """[task(config, context) for config in configs], saved and resumable.

    task: a module-level function (it is sent to worker processes);
    configs: JSON-able dicts (or frozen dataclasses); folder: where results and
    checkpoints go; workers: local processes (None: one per core; 1: in this
    process; a task defined in a notebook always runs here); scheduler: a
    dask.distributed address, used instead of workers.
    Returns the result dicts, in config order, as JSON would give them back.
    """
    configs = [_normalised_config(c) for c in configs]
    workers = _cores() if workers is None else _check_workers(workers)
    os.makedirs(folder, exist_ok=True)
    fileio.clean_temporary_files(folder)
    sweep = _Sweep(task, configs, str(folder), label)
    if sweep.todo:
        with _CtrlC() as ctrl_c:
            if scheduler is not None:
                _run_on_dask(sweep, scheduler, ctrl_c)
            elif min(workers, len(sweep.todo)) > 1 and not _defined_in_a_notebook(task):
                _run_in_processes(sweep, min(workers, len(sweep.todo)), ctrl_c)
            else:
                _run_here(sweep, ctrl_c)
    return [sweep.results[config_name(c)] for c in configs]


# ---------------------------------------------------------------- bookkeeping

class _Sweep:
    """Which configs are finished, which are to do, and saving the new results."""

    def __init__(self, task, configs, folder, label):
        self.task, self.folder, self.label = task, folder, label
        unique = {config_name(c): c for c in configs}
        self.total = len(unique)
        finished = {name: _load_finished(self.result_path(name), config) for name, config in unique.items()}
        self.results = {name: result for name, result in finished.items() if result is not None}
        self.todo = [(name, c) for name, c in unique.items() if name not in self.results]
        if self.results:
            print(f"{label}: {len(self.results)} of {self.total} already finished in {folder}", file=sys.stderr)
        self.bar = experiment.Progress(len(self.todo), label) if self.todo else None

    def result_path(self, name):
        return os.path.join(self.folder, name + ".json")

    def checkpoint_path(self, name):
        return os.path.join(self.folder, name + ".ckpt.npz")

    def save(self, name, config, result):
        """Save a finished run (its checkpoint is then of no use: delete it)."""
        result = _json_round_trip(result, f"the result of {self.task.__name__}({config})")
        fileio.write_json(self.result_path(name), {"config": config, "result": result})
        if os.path.exists(self.checkpoint_path(name)):
            os.unlink(self.checkpoint_path(name))
        self.results[name] = result
        self.bar.update()

    def outcome(self, name, config, outcome):
        """Record what a run returned: ("done", result), ("stopped",) or ("not started",)."""
        if outcome[0] == "done":
            self.save(name, config, outcome[1])

    def finished(self):
        return len(self.results) == self.total

    def interrupted(self):
        """Print how to resume; returns the exception that exits with code 130."""
        command = shlex.join([os.path.basename(sys.executable)] + sys.argv)
        print(f"{_line_break()}interrupted: {len(self.results)} of {self.total} {self.label} finished and saved in "
              f"{self.folder}; run the same command again to resume: {command}", file=sys.stderr)
        return Interrupted()


def _load_finished(path, config):
    """The saved result of config, or None if there is none (or a damaged one)."""
    if not os.path.exists(path):
        return None
    try:
        record = fileio.read_json(path)
    except (OSError, ValueError) as err:
        warnings.warn(f"{path} is damaged ({err}); running it again", stacklevel=4)
        return None
    if not isinstance(record, dict) or "result" not in record or record.get("config") != config:
        warnings.warn(f"{path} does not hold a result of this config; running it again", stacklevel=4)
        return None
    return record["result"]


def _normalised_config(config):
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise ValueError(f"a config must be a dict (or a dataclass), got {type(config).__name__}: {config!r}")
    return _json_round_trip(config, f"config {config!r}")


def _json_round_trip(value, what):
    """value as JSON gives it back (tuples as lists, NumPy numbers as Python's)."""
    try:
        return json.loads(fileio.canonical_json(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} is not JSON-able: {err}") from None


def _line_break():
    """A line break to end an interactive progress line first."""
    return "\n" if getattr(sys.stderr, "isatty", lambda: False)() else ""


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _check_workers(workers):
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 (or None: one per core), got {workers!r}")
    return workers


def _defined_in_a_notebook(task):
    """A function of an interactive __main__ (Jupyter, the REPL): spawned
    processes cannot import it, so such a sweep runs in this process."""
    main = sys.modules.get("__main__")
    return getattr(task, "__module__", None) == "__main__" and not hasattr(main, "__file__")


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------- Ctrl-C

class _CtrlC:
    """While active, the first SIGINT asks the runs to stop, the second raises
    KeyboardInterrupt at once. `flag` is shared memory without a lock, so
    the signal handler can set it and worker processes can read it safely.
    """

    def __init__(self):
        self.flag = multiprocessing.get_context("spawn").RawValue("b", 0)
        self.presses = 0

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:  # signal handlers can only be set from the main thread
            self.previous = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)

    def __call__(self, signum, frame):
        self.presses += 1
        self.flag.value = 1
        if self.presses > 1:
            raise KeyboardInterrupt
        print(f"{_line_break()}stopping: runs stop at their next checkpoint (Ctrl-C again: stop now)",
              file=sys.stderr, flush=True)

    def ignored(self):
        """A context in which SIGINT is ignored (processes started in it inherit that)."""
        return _SigintIgnored(self.active)

    def should_stop(self):
        return self.flag.value != 0


class _SigintIgnored:
    def __init__(self, active):
        self.active = active

    def __enter__(self):
        if self.active:
            self.handler = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.handler)


# ---------------------------------------------------------------- in this process

def _run_here(sweep, ctrl_c):
    try:
        for name, config in sweep.todo:
            if ctrl_c.should_stop():
                break
            context = Context(sweep.checkpoint_path(name), ctrl_c.should_stop)
            sweep.save(name, config, sweep.task(config, context))
    except KeyboardInterrupt:
        raise sweep.interrupted() from None
    if not sweep.finished():
        raise sweep.interrupted()


# ---------------------------------------------------------------- local processes

def _run_in_processes(sweep, workers, ctrl_c):
    """Run the sweep in `workers` processes.

    Start method "spawn": each worker is a fresh interpreter and a direct
    child of this process. "fork" would copy this process with whatever
    threads it holds (BLAS, numba, dask) and can deadlock; "forkserver"
    makes the workers children of a server process, so their death signal
    would watch the server instead of us. Spawn also behaves the same on
    Linux, macOS and Windows.
    """
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(), ctrl_c.flag))
    try:
        with ctrl_c.ignored():  # a Ctrl-C during start-up would give tracebacks in the workers
            futures = {pool.submit(_run_in_worker, sweep.task, config, sweep.checkpoint_path(name)):
                       (name, config) for name, config in sweep.todo}
        _collect(sweep, futures, ctrl_c, request_stop=lambda: None)
    except KeyboardInterrupt:
        for process in list(pool._processes.values()):  # no public API before Python 3.14
            process.kill()
        raise sweep.interrupted() from None
    finally:
        pool.shutdown(wait=True)


def _collect(sweep, futures, ctrl_c, request_stop):
    """Save results as futures finish; after a Ctrl-C, request_stop() once.

    futures: {future: (name, config)}, concurrent.futures' or dask's. Queued
    runs are not cancelled: they see the stop flag and return at once
    without starting (cancelling them races with the executor's own
    clean-up after the workers are killed: CPython gh-107219).
    The first error stops the other runs (at their next checkpoint) and is
    raised once they have stopped.
    """
    pending, error, stopping = dict(futures), None, False
    while pending:
        for future in [f for f in pending if f.done()]:
            name, config = pending.pop(future)
            try:
                sweep.outcome(name, config, future.result())
            except Exception as err:  # noqa: BLE001 - raised below, once the others are done
                error = error or err
                ctrl_c.flag.value = 1
        if ctrl_c.should_stop() and not stopping:
            stopping = True
            request_stop()
        time.sleep(POLL_SECONDS)
    if error is not None:
        raise error
    if not sweep.finished():
        raise sweep.interrupted()


_STOP_FLAG = None  # in a worker: the parent's shared stop flag


def _init_worker(parent_pid, stop_flag):
    """Worker set-up: ignore Ctrl-C (the parent tells us through stop_flag) and die with the parent."""
    global _STOP_FLAG
    _STOP_FLAG = stop_flag
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        # The kernel sends us SIGKILL when our parent dies, even by kill -9.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)
    # Elsewhere (and as a fallback): a thread that notices we were orphaned.
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _worker_should_stop():
    return _STOP_FLAG.value != 0


def _run_in_worker(task, config, checkpoint_path):
    """In a worker: ("done", result), ("stopped",) or ("not started",)."""
    if _worker_should_stop():
        return ("not started",)
    try:
        result = task(config, Context(checkpoint_path, _worker_should_stop))
    except KeyboardInterrupt:
        return ("stopped",)
    return ("done", result)


# ---------------------------------------------------------------- dask.distributed

def _run_on_dask(sweep, address, ctrl_c):
    """Run the sweep on the dask.distributed scheduler at `address`.

    A cluster-wide dask Event carries the Ctrl-C to the tasks' should_stop.
    Checkpoints go to the same path on the worker's machine (useful with a
    shared file system); results come back here and are saved here.
    """
    try:
        from distributed import Client, Event
    except ImportError:
        raise ValueError('--scheduler needs dask.distributed: pip install -e ".[cluster]"') from None
    with Client(address) as client:
        stop = Event(f"mnist1d_np-stop-{uuid.uuid4().hex}", client=client)
        futures = {client.submit(_run_dask_task, sweep.task, config, sweep.checkpoint_path(name),
                                 stop.name, pure=False): (name, config)
                   for name, config in sweep.todo}
        try:
            _collect(sweep, futures, ctrl_c, request_stop=stop.set)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise sweep.interrupted() from None


def _run_dask_task(task, config, checkpoint_path, stop_name):
    """On a dask worker: as _run_in_worker, with the stop flag a dask Event."""
    from distributed import Event
    stop = Event(stop_name)
    if stop.is_set():
        return ("not started",)
    try:
        result = task(config, Context(checkpoint_path, stop.is_set))
    except KeyboardInterrupt:
        return ("stopped",)
    return ("done", result)
