"""Chapter scaffolding: flags, settings, progress, results, figures, tables.

Every chapter does the same bookkeeping, so it lives here and the chapters
keep only their lesson:

    parser = experiment.chapter_parser("02_classifiers", __doc__)
    args = experiment.parse_args(parser)      # in a notebook: the defaults, with --quick
    settings = experiment.chapter_settings(Settings, QUICK, args.quick)
    run = experiment.Run("02_classifiers", args, settings)
    bar = experiment.Progress(n, "training"); ... bar.update(1, loss=loss)
    run.save_partial({...})                   # at each checkpoint: "complete": false
    run.save_results("results", {...})        # JSON with settings and machine info
    run.save_figure(fig, "accuracy")          # PNG
    experiment.print_table([("CNN accuracy", "94 ± 2", "93.1 ± 0.8")])
    if __name__ == "__main__": experiment.run_chapter_main(main)   # Ctrl-C: one line, exit 130
"""
import argparse
import atexit
import contextlib
import dataclasses
import json
import os
import platform
import sys
import time

import numpy as np

from . import __version__
from .fileio import checkpoint_path, clean_temporary_files, read_json, to_jsonable, write_json


def chapter_parser(name, doc):
    """argparse parser with the standard flags --quick, --out and --seed.

    name: "NN_name", which gives the default output folder results/NN_name/.
    doc: the chapter's module docstring; its first paragraph is the description.
    """
    parser = argparse.ArgumentParser(
        prog=f"python chapters/{name}.py", description=(doc or "").strip().split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small run that finishes in well under a minute")
    parser.add_argument("--out", type=output_folder, default=os.path.join("results", name),
                        help="folder for figures (PNG), numbers (JSON) and checkpoints")
    parser.add_argument("--seed", type=seed_int, default=0, help="master random seed, in [0, 2**32 - 1]")
    return parser


def parse_args(parser, argv=None):
    """The chapter's flags. In a notebook there is no command line: every flag
    keeps its default, except --quick, which is on (change `args` in a cell
    for a full run)."""
    if argv is None and _in_notebook():
        args = parser.parse_args([])
        args.quick = True
        print("notebook: running with --quick settings (set args.quick = False for a full run)")
        return args
    return parser.parse_args(argv)


def _in_notebook():
    # A Jupyter kernel (VS Code's interactive window included) imports ipykernel
    # and has no chapter flags on its command line.
    return "ipykernel" in sys.modules


def chapter_settings(settings_class, quick_overrides, quick, **overrides):
    """The paper's settings (the frozen dataclass's defaults), with the fields in
    `quick_overrides` replaced when quick, and then any explicit `overrides`."""
    settings = settings_class(**overrides)
    return dataclasses.replace(settings, **quick_overrides) if quick else settings


def output_folder(text):
    """argparse type: a folder for the outputs, or a path where one can be made
    (checked at once, not after minutes of work)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return text


def seed_int(text):
    """argparse type: a seed in [0, 2**32 - 1], the range every chapter's generators accept."""
    value = int(text)
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32 - 1], got {value}")
    return value


def run_chapter_main(main, resumable=True, saved="the finished work in --out"):
    """Call a chapter's main(); on Ctrl-C print one line on how to go on and exit
    with code 130, instead of a traceback. Everything a chapter saves is written
    atomically, so an interruption anywhere loses at most the unsaved work."""
    try:
        main()
    except KeyboardInterrupt:
        if resumable:
            print(f"\ninterrupted: run the same command again to resume; kept: {saved}", file=sys.stderr)
        else:
            print("\ninterrupted: run the same command again (a short run, it starts over)", file=sys.stderr)
        sys.exit(130)


# ---------------------------------------------------------------- progress

class Progress:
    """A one-line progress bar with rate and ETA, on stderr, no dependencies.

    On a terminal the line is redrawn in place; elsewhere (CI, logs) a line
    is printed at most every `log_every` seconds.
    """

    def __init__(self, total, label="", stream=None, log_every=10.0):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.interactive = getattr(self.stream, "isatty", lambda: False)()
        self.start = self.last_print = time.perf_counter()
        self.log_every, self.info = log_every, ""

    def update(self, n=1, **info):
        """Count n more units of work; info (e.g. loss=0.3) is shown on the line."""
        self.done += n
        if info:
            self.info = "  ".join(f"{k}={_short(v)}" for k, v in info.items())
        now = time.perf_counter()
        if self.done >= self.total or now - self.last_print >= (0.1 if self.interactive else self.log_every):
            self.last_print = now
            self._print(now)

    def _print(self, now):
        elapsed = now - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        line = (f"{self.label} {self.done}/{self.total} [{_clock(elapsed)}<{_clock(eta)}] {self.info}")
        end = "\n" if self.done >= self.total or not self.interactive else ""
        self.stream.write(("\r" if self.interactive else "") + line + end)
        self.stream.flush()


def progress(iterable, label="", total=None, **kwargs):
    """Iterate over `iterable` while showing a Progress line."""
    total = len(iterable) if total is None else total
    bar = Progress(total, label, **kwargs)
    for item in iterable:
        yield item
        bar.update()


def _clock(seconds):
    if not np.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _short(value):
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


# ---------------------------------------------------------------- tables

def format_table(rows, headers=("quantity", "paper", "this run")):
    """Rows of strings (or numbers) as an aligned plain-text table."""
    rows = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in rows + [tuple(headers)]) for i in range(len(headers))]
    def line(cells):
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in rows])


def print_table(rows, headers=("quantity", "paper", "this run"), title=None):
    """Print a *quantity | paper | this run* table."""
    if title:
        print(f"\n{title}")
    print(format_table(rows, headers))


def mean_sd(values, scale=1.0, digits=1):
    """'m ± s' of values * scale (population SD of the runs, as the paper's tables)."""
    values = np.asarray(values, dtype=float) * scale
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


# ---------------------------------------------------------------- saving

def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB (Linux and macOS)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def machine_info():
    """What ran this: platform, Python, NumPy, CPU count."""
    return {"platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}


TIME_SPENT = "time_spent.json"


class Run:
    """One run of a chapter: its settings, output folder and clock.

    The clock spans invocations: OUT/time_spent.json keeps the wall time of
    the earlier invocations with the same chapter, --quick, seed and settings
    (written at every save and at exit; a killed process loses only the time
    since its last save). A run resumed after Ctrl-C, or re-run to redraw
    its figures from the saved runs, then reports the time its results
    really took, not the seconds of its last invocation. `with
    run.stage(name):` keeps such a total for one part of the run.
    """

    def __init__(self, name, args, settings=None):
        self.name, self.args = name, args
        self.out = args.out
        if os.path.exists(self.out) and not os.path.isdir(self.out):
            raise ValueError(f"--out {self.out} exists and is not a folder")
        if os.path.isdir(self.out):
            clean_temporary_files(self.out)  # left by an interrupted write
        if dataclasses.is_dataclass(settings):
            settings = dataclasses.asdict(settings)
        self.settings = dict(settings or {})
        self.start = time.perf_counter()
        self.earlier_s, self.stages = self._earlier_time()
        atexit.register(self._record_time)

    def path(self, filename):
        os.makedirs(self.out, exist_ok=True)
        return os.path.join(self.out, filename)

    def identity(self, **extra):
        """What makes this run this run: chapter, --quick, seed, settings,
        package version, plus `extra` (e.g. data=dataset_args.as_dict())."""
        return {"chapter": self.name, "quick": bool(getattr(self.args, "quick", False)),
                "seed": getattr(self.args, "seed", None), "settings": self.settings,
                "mnist1d_np_version": __version__, **extra}

    def checkpoint_path(self, stem, **extra):
        """OUT/stem-<hash of identity(**extra)>.ckpt.npz: a checkpoint file for
        this run alone. Save and load it with identity=run.identity(**extra)."""
        return checkpoint_path(self.path(""), stem, self.identity(**extra))

    def save_results(self, name, results, table=None):
        """Write results to OUT/name.json with settings, seed, version, wall time, date,
        machine, "complete": true, and the *quantity | paper | this run* rows in
        `table` (which `python -m mnist1d_np.report` turns into the README's results table)."""
        return self._save(name, results, complete=True, table=table)

    def save_partial(self, results, name="results", table=None):
        """Write the results so far to OUT/name.json, marked "complete": false
        (call it at each checkpoint: an interrupted run keeps its numbers)."""
        return self._save(name, results, complete=False, table=table)

    def _save(self, name, results, complete, table):
        record = {"chapter": self.name, "complete": complete,
                  "quick": bool(getattr(self.args, "quick", False)),
                  "seed": getattr(self.args, "seed", None), "settings": self.settings,
                  "arguments": vars(self.args), "mnist1d_np_version": __version__,
                  "wall_time_s": round(self.elapsed(), 3), "total_wall_time_s": round(self.total_elapsed(), 3),
                  "stage_seconds": {k: round(v, 3) for k, v in self.stages.items()},
                  "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
                  "table": [list(map(str, row)) for row in table or []], "results": results}
        path = self.path(f"{name}.json")
        write_json(path, record)
        self._record_time()
        if complete:
            print(f"saved {path}")
        return path

    def save_figure(self, fig, name):
        """Save a matplotlib figure as OUT/name.png."""
        from .plotting import save_figure
        path = self.path(f"{name}.png")
        save_figure(fig, path)
        print(f"saved {path}")
        return path

    def elapsed(self):
        """Seconds since this invocation started."""
        return time.perf_counter() - self.start

    def total_elapsed(self):
        """Seconds of this invocation and of the earlier ones of the same run."""
        return self.earlier_s + self.elapsed()

    def _time_key(self):
        # What makes earlier invocations count: the same results, not the same flags
        # (--workers, --ablations added later) or version.
        identity = self.identity()
        del identity["mnist1d_np_version"]
        return json.loads(json.dumps(to_jsonable(identity)))

    @contextlib.contextmanager
    def stage(self, name):
        """with run.stage("search"): ... adds the block's wall time to stage_seconds(name),
        over every invocation of the run (even when the block is interrupted)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start
            self._record_time()

    def stage_seconds(self, name):
        return self.stages.get(name, 0.0)

    def _earlier_time(self):
        """(seconds, {stage: seconds}) of the earlier invocations of this run."""
        try:
            ledger = read_json(os.path.join(self.out, TIME_SPENT))
            if ledger.get("run") == self._time_key():
                return float(ledger["seconds"]), {k: float(v) for k, v in ledger.get("stages", {}).items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # no ledger yet, or not readable: start counting from zero
        return 0.0, {}

    def _record_time(self):
        try:
            if os.path.isdir(self.out):
                write_json(os.path.join(self.out, TIME_SPENT),
                           {"run": self._time_key(), "seconds": round(self.total_elapsed(), 3),
                            "stages": {k: round(v, 3) for k, v in self.stages.items()}})
        except OSError:
            pass  # only the clock is lost (e.g. the folder went away before exit), no result
