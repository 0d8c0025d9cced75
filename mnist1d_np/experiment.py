"""Chapter scaffolding: flags, settings, seeds, the paper-vs-run table, results, figures.

Every chapter does the same bookkeeping, so it lives here and the chapters
keep only their lesson:

    def main():
        run = experiment.start("02_classifiers", __doc__, Settings, QUICK, sweeps=True)
        ...                                         # the experiment, with run.settings and run.args
        run.save_figure(fig, "accuracy")            # PNG in --out
        run.finish(results, PAPER, measured, title="...")   # prints paper vs this run, saves results.json

    if __name__ == "__main__":
        experiment.run_chapter_main(main)           # Ctrl-C: one line, exit 130

Flags every chapter has: --quick (the QUICK settings: well under a minute),
--out, --seed, and --set NAME=VALUE to change any field of Settings for one
run; --ablations and the sweep flags (--workers, --scheduler) where they apply.
A notebook has no command line: there the flags are a list given to
notebook_flags (without it, --quick alone).
"""
import argparse
import atexit
import contextlib
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np

from . import __version__, claims as claims_module, images, kernel, runmany
from .fileio import atomic_write, clean_temporary_files, read_json, to_jsonable, write_json


# ---------------------------------------------------------------- flags and settings

class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (None, [])."""

    def _get_help_string(self, action):
        if action.default is None or action.default == []:
            return action.help
        return super()._get_help_string(action)


def chapter_parser(name, doc, ablations=None, sweeps=False, settings_class=None):
    """argparse parser with the standard flags --quick, --out, --seed and --set.

    name: "NN_name", which gives the default output folder results/NN_name/.
    doc: the chapter's module docstring; its first paragraph is the description.
    ablations: the help text of --ablations, for chapters that have them.
    sweeps: add runmany's --workers and --scheduler.
    settings_class: the chapter's Settings, whose fields and defaults --set's help lists.
    """
    parser = argparse.ArgumentParser(
        prog=f"python chapters/{name}.py", description=(doc or "").strip().split("\n\n")[0],
        formatter_class=_HelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small run that finishes in well under a minute")
    parser.add_argument("--out", default=os.path.join("results", name),
                        help="folder for figures (PNG), numbers (JSON) and checkpoints")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="chooses the initialisations, in [0, 2**32 - 1]; two seeds share none")
    fields = dataclasses.fields(settings_class) if settings_class is not None else ()
    defaults = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default for f in fields}
    listed = ("; its fields and defaults: " + ", ".join(f"{k}={_shown(v)}" for k, v in defaults.items())
              if fields else "")
    parser.add_argument("--set", dest="changes", metavar="NAME=VALUE", action="append", default=[],
                        help=f"change one field of the chapter's Settings for this run (repeatable){listed}")
    if ablations:
        parser.add_argument("--ablations", action="store_true", help=ablations)
    if sweeps:
        runmany.add_arguments(parser)
    return parser


def add_image_arguments(parser):
    """--images {mnist,fashion} and --images-dir DIR: the 28x28 image set a chapter
    sets beside MNIST-1D (chapters 02 and 09). Without --images nothing is read
    and nothing is downloaded."""
    parser.add_argument("--images", choices=images.NAMES, default=None,
                        help="also run on this 28x28 image set, beside MNIST-1D; it is looked for in "
                             f"--images-dir, then ${images.ENV_VAR}, then the cache, and downloaded if "
                             "missing (off when not given)")
    parser.add_argument("--images-dir", metavar="DIR", default=None,
                        help="a folder that holds the image set's four IDX files (gzipped or not), or "
                             "torchvision's or Keras' layout of them (not given: only the environment "
                             "variable and the cache are searched)")


def load_image_set(args, stream=None):
    """The image set named by --images (images.load_images' dict), or None without --images.
    --images-dir without --images is a UsageError; so is a set that cannot be found or
    fetched, with the loader's message (which files, where to put them)."""
    if getattr(args, "images", None) is None:
        if getattr(args, "images_dir", None) is not None:
            raise UsageError(f"--images-dir {args.images_dir}: give --images {{{','.join(images.NAMES)}}} too")
        return None
    try:
        return images.load_images(args.images, images_dir=args.images_dir, stream=stream)
    except images.ImagesError as err:
        raise UsageError(f"--images {args.images}: {err}") from None


def parse_args(parser, argv=None):
    """The chapter's flags, checked (the output folder must be one that can be
    made and written). In a notebook there is no command line: the flags are
    those given to notebook_flags, and without it every flag keeps its
    default, except --quick, which is on."""
    if argv is None and kernel.in_kernel():
        args = _notebook_args(parser)
    else:
        args = parser.parse_args(argv)
    problem = output_folder_problem(args.out)
    if problem:
        parser.error(f"--out {args.out}: {problem}")
    return args


_notebook = {"flags": None}  # what notebook_flags was given, in this kernel


def notebook_flags(flags):
    """In a notebook (a Jupyter kernel): the flags the chapter runs with from now on, a list
    as on its command line. ["--quick"]: the small run (the default); []: the full run
    (the paper's settings); ["--quick", "--set", "noise=0"]: the small run with one setting
    changed. They are checked when the chapter starts, as on the command line. A script
    reads its own command line and ignores them."""
    given = flags
    flags = list(flags) if isinstance(flags, (list, tuple)) else None
    if flags is None or not all(isinstance(flag, str) for flag in flags):
        raise TypeError(f"notebook_flags takes a list of texts, e.g. ['--quick', '--set', 'steps=100'], "
                        f"got {given!r}")
    _notebook["flags"] = flags


def _notebook_args(parser):
    flags = _notebook["flags"]
    if flags is None:
        args = parser.parse_args([])
        args.quick = True
        print(f"notebook: running with --quick settings (other flags: experiment.notebook_flags([...]); "
              f"the full run: experiment.notebook_flags([]), or {parser.prog})")
        return args
    print(f"notebook: running with the flags {' '.join(flags)}" if flags else
          "notebook: the full run (no flags: the paper's settings)")
    return parser.parse_args(flags)


def chapter_settings(settings_class, quick_overrides, quick, **overrides):
    """The paper's settings (the frozen dataclass's defaults), with the fields in
    `quick_overrides` replaced when quick, and then the explicit `overrides`."""
    settings = settings_class()
    if quick:
        settings = dataclasses.replace(settings, **quick_overrides)
    return dataclasses.replace(settings, **overrides)


COUNTS = ("steps", "batch_size", "eval_every", "eval_every_epochs", "seeds", "epochs", "rounds", "outer_steps",
          "hidden_size")
RATES = ("lr", "outer_lr")
DTYPES = ("float32", "float64")


def check_vocabulary(settings):
    """ValueError naming the field unless the settings of the shared vocabulary are in range:
    counts (steps, batch_size, eval_every, seeds, ...) integers >= 1, rates (lr) > 0, dtype
    float32 or float64. (A chapter's Settings checks its own other fields.)"""
    for name in COUNTS:
        value = getattr(settings, name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    for name in RATES:
        value = getattr(settings, name, 1.0)
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if getattr(settings, "dtype", "float32") not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {settings.dtype!r}")


def setting_changes(settings_class, changes):
    """{field: value} from --set's NAME=VALUE texts, each VALUE read as the field's
    default is typed (numbers, true/false, comma-separated tuples). ValueError
    names the field and what it takes."""
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    out = {}
    for change in changes:
        name, sep, text = change.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set {change}: expected NAME=VALUE with NAME one of {', '.join(fields)}")
        out[name] = _read_value(name, text, settings_class.__dataclass_fields__[name].default)
    return out


def _read_value(name, text, default):
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, tuple):
            element = default[0] if default else ""
            return tuple(_read_value(name, part, element) for part in text.split(",") if part.strip())
        if isinstance(default, (int, np.integer)):
            return int(text)
        if isinstance(default, (float, np.floating)):
            return float(text)
        return text
    except ValueError:
        raise ValueError(f"--set {name}={text}: {name} takes {_kind(default)} "
                         f"(its default is {_shown(default)})") from None


def _kind(default):
    """What a setting with this default takes, in words."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, tuple):
        plural = {"an integer": "integers", "a number": "numbers"}.get(_kind(default[0]) if default else "", "texts")
        return f"a comma-separated list of {plural}"
    if isinstance(default, (int, np.integer)):
        return "an integer"
    if isinstance(default, (float, np.floating)):
        return "a number"
    return "a text"


def _shown(default):
    """A default as --set takes it (tuples comma-separated, booleans lower case)."""
    if isinstance(default, tuple):
        return ",".join(map(_shown, default))
    return str(default).lower() if isinstance(default, bool) else str(default)


def output_folder_problem(path):
    """Why `path` cannot serve as an output folder (None if it can), checked at once
    (not after minutes of work) and without leaving anything behind."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            return "exists and is not a folder"
        return _not_writable(path)
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a folder"
    try:
        probe = tempfile.mkdtemp(prefix=".probe-", dir=parent)
    except OSError as err:
        return f"cannot make a folder in {parent} ({err.strerror or err})"
    os.rmdir(probe)
    return None


def _not_writable(folder):
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
    except OSError as err:
        return f"cannot write in it ({err.strerror or err})"
    os.close(fd)
    os.unlink(probe)
    return None


def seed_int(text):
    """argparse type: a seed in [0, 2**32 - 1], the range every chapter's generators accept."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32 - 1], got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32 - 1], got {value}")
    return value


def task_config(name, settings_class, shared, **own):
    """A frozen dataclass for the config of one task of a sweep: exactly what the task
    reads, its identity. shared: names of fields of settings_class that the task reads
    (their types come from there); own: the fields that differ between the tasks,
    name=type or name=(type, default). `Config.of(settings, **own_values)` makes one,
    its shared fields read from settings:

        Training = experiment.task_config("Training", Settings, ("steps", "lr"), model=str, seed=int)
        configs = [Training.of(settings, model=m, seed=s) for m in models for s in seeds]
    """
    types = {f.name: f.type for f in dataclasses.fields(settings_class)}
    unknown = [field for field in shared if field not in types]
    if unknown:
        raise ValueError(f"task_config {name}: {settings_class.__name__} has no field {unknown}")
    required = [(field, kind) for field, kind in own.items() if not isinstance(kind, tuple)]
    optional = [(field, kind[0], dataclasses.field(default=kind[1])) for field, kind in own.items()
                if isinstance(kind, tuple)]
    config = dataclasses.make_dataclass(name, required + [(field, types[field]) for field in shared] + optional,
                                        frozen=True, namespace={"of": classmethod(_of(tuple(shared)))})
    config.__module__ = sys._getframe(1).f_globals.get("__name__", "__main__")  # importable by name, as a class
    return config


def _of(shared):
    def of(cls, settings, **own):
        return cls(**{field: getattr(settings, field) for field in shared}, **own)
    return of


class UsageError(ValueError):
    """Bad input found after the flags were read: run_chapter_main prints it in one line (exit 2)."""


def seeds(seed, count, offset=0):
    """The initialisation seeds of `count` runs under --seed `seed`: offset + seed * count + i,
    so that two values of --seed share none (--seed 0: 0, 1, 2; --seed 1: 3, 4, 5). UsageError
    if the largest is not a seed torch takes (at most 2**32 - 1)."""
    if offset + seed * count + count - 1 >= 2 ** 32:
        raise UsageError(f"--seed {seed}: this chapter draws {count} initialisations per seed (from {offset}), "
                         f"so --seed must be at most {(2 ** 32 - 1 - offset - count + 1) // count}")
    return [offset + seed * count + i for i in range(count)]


def start(name, doc, settings_class, quick_overrides, ablations=None, sweeps=False, flags=None, argv=None):
    """Parse the flags, make the settings and return the chapter's Run.

    flags: a function that adds the chapter's own flags to the parser.
    With --scheduler, the scheduler is asked to answer first, so that a bad
    address ends the chapter at once, before anything is written.
    """
    parser = chapter_parser(name, doc, ablations, sweeps, settings_class)
    if flags is not None:
        flags(parser)
    args = parse_args(parser, argv)
    try:
        changes = setting_changes(settings_class, args.changes)
        settings = chapter_settings(settings_class, quick_overrides, args.quick, **changes)
        check_vocabulary(settings)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if getattr(args, "scheduler", None):
        runmany.check_scheduler(args.scheduler)
    return Run(name, args, settings)


def run_chapter_main(main, resumable=True, saved="the finished work in --out"):
    """Call a chapter's main(); on Ctrl-C print one line on how to go on and exit
    with code 130, instead of a traceback. Everything a chapter saves is written
    atomically, so an interruption anywhere loses at most the unsaved work.
    In a notebook the same lines are printed, and the cell ends without exiting
    the kernel ("interrupt the kernel" is its Ctrl-C)."""
    again = "run this cell again" if kernel.in_kernel() else "run the same command again"
    try:
        main()
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        _stop(2)
    except (KeyboardInterrupt, SystemError) as err:
        if not _ctrl_c(err):
            raise
        if resumable:
            print(f"\ninterrupted: {again} to resume; kept: {saved}", file=sys.stderr)
        else:
            print(f"\ninterrupted: {again} (a short run, it starts over)", file=sys.stderr)
        _stop(130)


def _ctrl_c(err):
    """A KeyboardInterrupt, or a SystemError it caused: a Ctrl-C that lands inside a numba
    kernel comes out as "... returned a result with an exception set", one per level."""
    while isinstance(err, SystemError):
        err = err.__cause__
    return isinstance(err, KeyboardInterrupt)


def _stop(code):
    if not kernel.in_kernel():  # a kernel would show SystemExit as an error, and keep running
        sys.exit(code)


# ---------------------------------------------------------------- the paper-vs-run table

class MeanSD(NamedTuple):
    """A mean ± SD, shown with `digits` decimals (None: as typed, e.g. the paper's '32 ± 1')."""
    mean: float
    sd: float
    digits: int = None

    def __str__(self):
        if self.digits is None:
            return f"{self.mean:g} ± {self.sd:g}"
        return f"{self.mean:.{self.digits}f} ± {self.sd:.{self.digits}f}"


def mean_sd(values, scale=1.0, digits=1):
    """MeanSD of values * scale (population SD of the runs, as the paper's tables)."""
    values = np.asarray(values, dtype=float) * scale
    return MeanSD(float(values.mean()), float(values.std()), digits)


def each(values, scale=1.0, digits=1):
    """'75.6 / 74.4': every value (say, of each trial) * scale, with `digits` decimals."""
    return " / ".join(f"{scale * v:.{digits}f}" for v in values)


def cell(value):
    """A table cell: text as it is, numbers as Python writes them (as typed: 75.0, 0.62), lists and
    tuples as 'a / b', None as '—'."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)) and not isinstance(value, MeanSD):
        return " / ".join(cell(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def paper_vs_run(paper, measured):
    """Rows (quantity, paper, this run): every quantity of `paper`, in its order,
    then the quantities only measured (paper '—'). A quantity of `paper` that
    was not measured is an error (a typo would otherwise hide a row); one this
    run does not measure (a smaller --quick run, say) is given as None and left out."""
    missing = [q for q in paper if q not in measured]
    if missing:
        raise ValueError(f"paper_vs_run: no measured value for {missing}")
    rows = [(q, cell(paper[q]), cell(measured[q])) for q in paper if measured[q] is not None]
    return rows + [(q, "—", cell(v)) for q, v in measured.items() if q not in paper and v is not None]


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


def code_identity():
    """The code that made a result: the package version and, in a git checkout, its commit
    (and whether the checkout had uncommitted changes). None where git or the checkout is missing."""
    import subprocess
    folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    identity = {"version": __version__, "commit": None, "uncommitted_changes": None}
    try:
        git = lambda *args: subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                                           timeout=10, check=True).stdout.strip()
        identity["commit"] = git("rev-parse", "HEAD")
        identity["uncommitted_changes"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed package), or no git: the version alone
    return identity


def main_curve(title, xlabel, ylabel, series, xscale="linear"):
    """The chapter's main curve, as results.json keeps it for the multi-seed report to overlay:
    series: {label: (x values, y values)}."""
    return {"title": title, "xlabel": xlabel, "ylabel": ylabel, "xscale": xscale,
            "series": {label: [list(map(float, x)), list(map(float, y))] for label, (x, y) in series.items()}}


TIME_SPENT = "time_spent.json"


class Run:
    """One run of a chapter: its flags (`args`), `settings`, output folder and clock.

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
        self.settings = settings
        self.start = time.perf_counter()
        self.earlier_s, self.stages = self._earlier_time()
        self.working = False  # set once the run writes to OUT: a run refused before that records no time
        atexit.register(self._record_time)

    @property
    def quick(self):
        return bool(getattr(self.args, "quick", False))

    def path(self, filename):
        """OUT/filename (the folder is made when first needed)."""
        os.makedirs(self.out, exist_ok=True)
        self.working = True
        return os.path.join(self.out, filename)

    def sweep(self, task, configs, label="runs", folder="runs"):
        """runmany.run_many(task, configs) in OUT/folder, with --workers and --scheduler."""
        return runmany.run_many(task, configs, self.path(folder), workers=getattr(self.args, "workers", None),
                                scheduler=getattr(self.args, "scheduler", None), label=label)

    def finish(self, results, paper, measured, title=None, headers=("quantity", "paper", "this run"),
               claims=(), curve=None):
        """Print the *quantity | paper | this run* table of `paper` and `measured`
        (see paper_vs_run), then the `claims` (claims.Claim) judged on the results,
        and save results.json: the results, the table's rows (which `python -m
        mnist1d_np.report` turns into the README's results table), the claims'
        records, the main `curve` (main_curve), settings, seed, the code's
        version and commit, wall time, date and machine."""
        try:
            rows = paper_vs_run(paper, measured)
        except ValueError:  # a chapter's table is wrong: keep what the run computed, then say so
            self.save_results(results)
            raise
        saved = json.loads(json.dumps(to_jsonable(results)))  # the claims read what results.json keeps
        records = claims_module.evaluate(claims, saved)
        print_table(rows, headers, title)
        claims_module.print_claims(records)
        return self.save_results(results, rows, claims=records, curve=curve)

    def save_results(self, results, table=(), name="results", claims=(), curve=None):
        """Write OUT/name.json (see finish)."""
        record = {"chapter": self.name, "quick": self.quick, "seed": getattr(self.args, "seed", None),
                  "settings": self._settings_json(), "arguments": vars(self.args),
                  "mnist1d_np_version": __version__, "code": code_identity(),
                  "wall_time_s": round(self.elapsed(), 3), "total_wall_time_s": round(self.total_elapsed(), 3),
                  "stage_seconds": {k: round(v, 3) for k, v in self.stages.items()},
                  "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
                  "table": [list(map(str, row)) for row in table], "claims": list(claims), "curve": curve,
                  "results": results}
        path = self.path(f"{name}.json")
        write_json(path, record)
        self._record_time()
        print(f"saved {path}")
        return path

    def save_figure(self, fig, name):
        """Save a matplotlib figure as OUT/name.png, atomically; in a notebook, show it too."""
        from .plotting import save_figure
        path = self.path(f"{name}.png")
        atomic_write(path, lambda f: save_figure(fig, f, format="png"))
        print(f"saved {path}")
        kernel.show_png(path)  # in a notebook, under the cell
        return path

    def elapsed(self):
        """Seconds since this invocation started."""
        return time.perf_counter() - self.start

    def total_elapsed(self):
        """Seconds of this invocation and of the earlier ones of the same run."""
        return self.earlier_s + self.elapsed()

    def _settings_json(self):
        settings = self.settings
        return dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings or {})

    def _time_key(self):
        # What makes earlier invocations count: the same results, not the same flags
        # (--workers, --ablations added later) or version.
        key = {"chapter": self.name, "quick": self.quick, "seed": getattr(self.args, "seed", None),
               "settings": self._settings_json()}
        return json.loads(json.dumps(to_jsonable(key)))

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
            if self.working and os.path.isdir(self.out):
                write_json(os.path.join(self.out, TIME_SPENT),
                           {"run": self._time_key(), "seconds": round(self.total_elapsed(), 3),
                            "stages": {k: round(v, 3) for k, v in self.stages.items()}})
        except OSError:
            pass  # only the clock is lost (e.g. the folder went away before exit), no result
