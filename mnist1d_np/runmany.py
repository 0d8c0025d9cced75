"""Run many independent runs (a sweep): here, in local processes, or on a cluster.

    from mnist1d_np import runmany
    results = runmany.run_many(task, configs, folder, workers=None, scheduler=None)

`task(config, context) -> dict` is a module-level function whose result
depends on `config` alone: a small frozen dataclass (or a dict) of exactly
what the task reads (say, model, dataset, seed, training settings). Each
result is saved as soon as it is done, as folder/<config_name(config)>.json
with its config inside; a rerun skips the runs whose file holds the same
config, so an interrupted sweep resumes where it stopped. Results come back
in config order, and are the same numbers whatever the number or kind of
workers: the task always gets its config as JSON gives it back (a dataclass
rebuilt from it, its lists as tuples), and every result goes through JSON,
whether it was just computed, sent from a worker or read from disk.

`context.checkpoint_path` is a file in `folder` for this config alone, for the
task's own resumable loops (resumable.py, train.fit).

Ctrl-C once: no new run starts, the running ones stop at their next
checkpoint (the tasks run inside resumable.stop_when), one line says how to
resume, and the program exits with code 130. Ctrl-C twice: the workers are
killed at once (their checkpoints, written atomically, stay valid). Workers
also die with their parent, even after a `kill -9` of it.

`scheduler="tcp://host:8786"` runs the same map on a dask.distributed cluster
(`pip install -e ".[cluster]"`; see the README's *Sweeps*). A task defined in
the script being run (a chapter) is sent to the scheduler and the workers
as that file (dask's upload_file), so they import it by name as this process
does, and a config dataclass defined there goes with it.
"""
import argparse
import ctypes
import dataclasses
import glob
import importlib.util
import json
import multiprocessing
import os
import re
import shlex
import signal
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ProcessPoolExecutor

from . import fileio
from .progress import Progress, lines_only
from .resumable import stop_when

POLL_SECONDS = 0.05
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
CONNECT_SECONDS = 10   # how long to wait for a dask scheduler to answer


@dataclasses.dataclass(frozen=True)
class Context:
    """What a task gets besides its config."""
    checkpoint_path: str               # a file for this config's checkpoints


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
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address, default=None,
                        help="run on a dask.distributed cluster instead, e.g. tcp://10.0.0.1:8786")
    return parser


_ADDRESS = re.compile(r"^(?:(tcp)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


def scheduler_address(text):
    """argparse type: a dask scheduler address, tcp://host:port (or host:port)."""
    match = _ADDRESS.match(text)
    if not match or not 1 <= int(match.group(3)) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected a dask scheduler address like tcp://10.0.0.1:8786 (scheme://host:port, port "
            f"1-65535), got {text!r}; `dask scheduler` prints its address when it starts")
    return text if match.group(1) else f"tcp://{text}"


def run_many(task, configs, folder, workers=None, scheduler=None, label="runs"):
    """[task(config, context) for config in configs], saved and resumable.

    task: a module-level function (it is sent to worker processes);
    configs: frozen dataclasses of one class (or JSON-able dicts); folder:
    where results and checkpoints go; workers: local processes (None: one per
    core; 1: in this process; a task defined in a notebook always runs here);
    scheduler: a dask.distributed address, used instead of workers.
    Returns the result dicts, in config order, as JSON would give them back.
    """
    config_class = _config_class(configs)
    configs = [_normalised_config(c) for c in configs]
    workers = _cores() if workers is None else _check_workers(workers)
    if scheduler is not None:
        scheduler = _checked_address(scheduler)
    folder = os.path.abspath(folder)  # checkpoints on a cluster's workers: the same path there
    os.makedirs(folder, exist_ok=True)
    fileio.clean_temporary_files(folder)
    sweep = _Sweep(task, config_class, configs, folder, label)
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

    def __init__(self, task, config_class, configs, folder, label):
        self.task, self.config_class, self.folder, self.label = task, config_class, folder, label
        unique = {config_name(c): c for c in configs}
        self.total = len(unique)
        finished = {name: _load_finished(self.result_path(name), config) for name, config in unique.items()}
        self.results = {name: result for name, result in finished.items() if result is not None}
        self.todo = [(name, c) for name, c in unique.items() if name not in self.results]
        if self.results:
            print(f"{label}: {len(self.results)} of {self.total} already finished in {folder}", file=sys.stderr)
        self.bar = Progress(len(self.todo), label) if self.todo else None

    def result_path(self, name):
        return os.path.join(self.folder, name + ".json")

    def checkpoint_path(self, name):
        return os.path.join(self.folder, name + ".ckpt.npz")

    def save(self, name, config, result):
        """Save a finished run (its checkpoints are then of no use: delete them, both
        the context's path and the identity-named files made from it, name-<hash>.ckpt.npz)."""
        result = _json_round_trip(result, f"the result of {self.task.__name__}({config})", sort_keys=False)
        fileio.write_json(self.result_path(name), {"config": config, "result": result})
        pattern = glob.escape(os.path.join(self.folder, name)) + "-*.ckpt.npz"
        for path in [self.checkpoint_path(name)] + glob.glob(pattern):
            if os.path.exists(path):
                os.unlink(path)
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
        raise ValueError(f"a config must be a dataclass (or a dict), got {type(config).__name__}: {config!r}")
    return _json_round_trip(config, f"config {config!r}")


def _config_class(configs):
    """The dataclass of the configs (None for dicts); one class for all of them."""
    classes = {type(c) for c in configs if dataclasses.is_dataclass(c) and not isinstance(c, type)}
    if len(classes) > 1:
        raise ValueError(f"configs must all be of one dataclass, got {sorted(c.__name__ for c in classes)}")
    if classes and any(not dataclasses.is_dataclass(c) for c in configs):
        raise ValueError("configs must be all dataclasses or all dicts")
    return classes.pop() if classes else None


def rebuild_config(config_class, config):
    """What the task gets: the dataclass rebuilt from its JSON (lists as tuples), or the JSON dict."""
    if config_class is None:
        return config
    return config_class(**{name: _tuples(value) for name, value in config.items()})


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _run_task(task, config_class, config, checkpoint_path, should_stop):
    """One run, as every path runs it: ("done", result) or ("stopped",)."""
    try:
        with stop_when(should_stop):
            return ("done", task(rebuild_config(config_class, config), Context(checkpoint_path)))
    except KeyboardInterrupt:
        return ("stopped",)


def _json_round_trip(value, what, sort_keys=True):
    """value as JSON gives it back (tuples as lists, NumPy numbers as Python's); configs
    with their keys sorted (one text per config), results in their own order."""
    try:
        return json.loads(json.dumps(fileio.to_jsonable(value), sort_keys=sort_keys, allow_nan=False))
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
            sweep.outcome(name, config, _run_task(sweep.task, sweep.config_class, config,
                                                  sweep.checkpoint_path(name), ctrl_c.should_stop))
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
            futures = {pool.submit(_run_in_worker, sweep.task, sweep.config_class, config,
                                   sweep.checkpoint_path(name)): (name, config) for name, config in sweep.todo}
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


def _run_in_worker(task, config_class, config, checkpoint_path):
    """In a worker: ("done", result), ("stopped",) or ("not started",)."""
    if _worker_should_stop():
        return ("not started",)
    with lines_only():  # the workers share the terminal: whole lines, no redrawing
        return _run_task(task, config_class, config, checkpoint_path, _worker_should_stop)


# ---------------------------------------------------------------- dask.distributed

class ClusterError(SystemExit):
    """The cluster cannot be used (no dask installed, no scheduler answering,
    a task it cannot import): exits the program with one line and code 1."""


def _checked_address(address):
    try:
        return scheduler_address(address)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"scheduler: {err}") from None


def check_scheduler(address):
    """Return quietly if a dask scheduler answers at `address`; otherwise ClusterError."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError('--scheduler needs dask.distributed: pip install -e ".[cluster]"') from None
    with _connect(Client, _checked_address(address)):
        pass


def _run_on_dask(sweep, address, ctrl_c):
    """Run the sweep on the dask.distributed scheduler at `address`.

    A cluster-wide dask Event carries the Ctrl-C to the tasks' checkpoints.
    Checkpoints go to the same path on the worker's machine (useful with a
    shared file system); results come back here and are saved here.
    """
    try:
        from distributed import Client, Event
    except ImportError:
        raise ClusterError('--scheduler needs dask.distributed: pip install -e ".[cluster]"') from None
    with _connect(Client, address) as client:
        task, config_class = _shipped(client, sweep.task, sweep.config_class)
        stop = Event(f"mnist1d_np-stop-{uuid.uuid4().hex}", client=client)
        futures = {client.submit(_run_dask_task, task, config_class, config, sweep.checkpoint_path(name),
                                 stop.name, pure=False): (name, config)
                   for name, config in sweep.todo}
        try:
            _collect(sweep, futures, ctrl_c, request_stop=stop.set)
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise sweep.interrupted() from None


def _connect(client_class, address):
    try:
        return client_class(address, timeout=CONNECT_SECONDS)
    except OSError as err:  # refused, unreachable or timed out (TimeoutError is an OSError)
        raise ClusterError(
            f"--scheduler {address}: no dask scheduler answered within {CONNECT_SECONDS} s "
            f"({type(err).__name__}). Start one with `dask scheduler` (it prints its address) and "
            "workers with `dask worker ADDRESS`, or leave --scheduler out to use this machine's cores") from None


def _shipped(client, task, config_class):
    """(task, config class) as the cluster can import them. A task of the script
    being run (its __main__) is imported here from that file under the file's
    name, and the file is uploaded to the scheduler and the workers, which
    import it under the same name."""
    if task.__module__ != "__main__":
        return task, config_class
    path = getattr(sys.modules["__main__"], "__file__", None)
    if path is None:
        raise ClusterError(f"{task.__name__} is defined in a notebook or the REPL: dask workers cannot import "
                           "it; put it in a .py file to run it on a cluster")
    name = os.path.splitext(os.path.basename(path))[0]
    module = sys.modules.get(name) or _import_file(name, path)
    client.upload_file(path)
    if config_class is not None and config_class.__module__ == "__main__":
        config_class = getattr(module, config_class.__qualname__)
    return getattr(module, task.__qualname__), config_class


def _import_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run_dask_task(task, config_class, config, checkpoint_path, stop_name):
    """On a dask worker: as _run_in_worker, with the stop flag a dask Event."""
    from distributed import Event
    stop = Event(stop_name)
    if stop.is_set():
        return ("not started",)
    with lines_only():
        return _run_task(task, config_class, config, checkpoint_path, stop.is_set)
