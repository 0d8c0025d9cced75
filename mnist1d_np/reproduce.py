"""The whole paper, over several seeds: every chapter run once per seed, then a report of its claims.

    python -m mnist1d_np.reproduce --seeds 0 1 2                  # every chapter's full run, 3 seeds
    python -m mnist1d_np.reproduce --seeds 0 --chapters 03 06     # some chapters, one seed
    python -m mnist1d_np.reproduce --quick --seeds 0 1            # every chapter's --quick: a first try

Seed S runs each chapter as `python chapters/NN_name.py --seed S --out
OUT/seed-S/NN_name` (with --quick and --ablations if given), its output in
OUT/seed-S/NN_name.log. What --seed changes is each chapter's to say (its
docstring): the initialisations, and the batch order where the paper's loop
draws one; two seeds share none.

The chapter runs go side by side, up to --workers at once (default: one
per core), the longest first. A sweep chapter runs its sweep in its own
process (--workers 1) while others are waiting, and with the cores that are
free when it is the last. With --scheduler the sweeps' runs go to that dask
cluster, while the chapters themselves stay on this machine (a chapter
waiting on its own worker's sweep could deadlock).

Resuming: a chapter run whose results.json is there (same seed, --quick and
--ablations) is done and is not run again; the others resume from what they
saved. Ctrl-C stops every chapter cleanly; run the same command to go on.
A --quick reproduction refuses an --out that holds full runs (and the
reverse), which it would overwrite.

At the end (and whenever the command is rerun) OUT/REPRODUCTION.md and
OUT/reproduction.json give every claim over the seeds, the chapters' wall
and CPU times, and a figure per chapter with the seeds overlaid (see
`python -m mnist1d_np.report --claims OUT`, which regenerates them alone).
"""
import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time

from . import report
from .fileio import read_json, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTERS_DIR = os.path.join(ROOT, "chapters")
TIMES = "reproduce_times.json"


@dataclasses.dataclass(frozen=True)
class Chapter:
    name: str
    minutes: float          # a full run without --ablations on 2 idle cores, roughly: for the ETA and the order
    sweeps: bool = False    # takes --workers / --scheduler
    ablations: bool = True  # takes --ablations


CHAPTERS = {c.name[:2]: c for c in (
    Chapter("01_dataset", 0.1, ablations=False), Chapter("02_classifiers", 1.5, sweeps=True, ablations=False),
    Chapter("03_lottery_tickets", 25, sweeps=True), Chapter("04_meta_learning_rate", 1.2),
    Chapter("05_meta_activation", 8), Chapter("06_double_descent", 30, sweeps=True),
    Chapter("07_self_supervised", 5, sweeps=True), Chapter("08_pooling", 12, sweeps=True),
    Chapter("09_pixel_space", 1, ablations=False))}
QUICK_MINUTES = 0.5


@dataclasses.dataclass
class Job:
    chapter: Chapter
    seed: int
    out: str

    @property
    def key(self):
        return f"seed-{self.seed}/{self.chapter.name}"

    @property
    def results(self):
        return os.path.join(self.out, "seed-" + str(self.seed), self.chapter.name, "results.json")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mnist1d_np.reproduce", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="S",
                        help="the seeds, each in [0, 2**32 - 1]; seed S runs every chapter with --seed S")
    parser.add_argument("--chapters", nargs="+", default=sorted(CHAPTERS), metavar="NN",
                        help=f"the chapters, by number, among {' '.join(sorted(CHAPTERS))}")
    parser.add_argument("--ablations", action="store_true", help="also the paper's ablations, where a chapter has them")
    parser.add_argument("--quick", action="store_true", help="every chapter's --quick run: for tests and a first try")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="chapter runs (processes) at once, at least 1")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="send the sweeps' runs to this dask scheduler")
    parser.add_argument("--out", default=os.path.join("results", "reproduction"),
                        help="folder for OUT/seed-S/NN_name/ and the report")
    args = parser.parse_args(argv)
    unknown = [c for c in args.chapters if c not in CHAPTERS]
    if unknown:
        parser.error(f"--chapters: {' '.join(unknown)} not among {' '.join(sorted(CHAPTERS))}")
    bad = [s for s in args.seeds if not 0 <= s <= 2**32 - 1]
    if bad:
        parser.error(f"--seeds: {' '.join(map(str, bad))} not in [0, 2**32 - 1]")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    if not os.path.isdir(CHAPTERS_DIR):
        parser.error(f"the chapters are not at {CHAPTERS_DIR}: reproduce runs from a clone of the project "
                     "installed with pip install -e .")
    args.seeds, args.chapters = list(dict.fromkeys(args.seeds)), sorted(dict.fromkeys(args.chapters))
    return args


def is_done(job, args):
    """The job's results.json is there, from a run with the same seed, --quick and --ablations."""
    try:
        record = read_json(job.results)
        return (record.get("seed") == job.seed and bool(record.get("quick")) == args.quick
                and bool(record.get("arguments", {}).get("ablations")) == (args.ablations and job.chapter.ablations))
    except (OSError, ValueError, AttributeError):
        return False


def other_mode(job, args):
    """The job's folder holds a run of the other mode (full where --quick is asked, or the reverse)."""
    try:
        return bool(read_json(job.results).get("quick")) != args.quick
    except (OSError, ValueError, AttributeError):
        return False


def command(job, args, free_cores):
    """The chapter's command line."""
    chapter = job.chapter
    cmd = [sys.executable, os.path.join(CHAPTERS_DIR, chapter.name + ".py"), "--seed", str(job.seed),
           "--out", os.path.join(args.out, f"seed-{job.seed}", chapter.name)]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--ablations"] if args.ablations and chapter.ablations else []
    if chapter.sweeps:
        cmd += ["--scheduler", args.scheduler] if args.scheduler else ["--workers", str(max(1, free_cores))]
    return cmd


def estimate(job, args):
    """Minutes a job is expected to take (for the order and the ETA)."""
    return QUICK_MINUTES if args.quick else job.chapter.minutes


class Ledger:
    """OUT/reproduce_times.json: each chapter run's wall and CPU seconds over every invocation, and the
    reproduction's own wall time."""

    def __init__(self, out):
        self.path = os.path.join(out, TIMES)
        try:
            self.data = read_json(self.path)
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("runs", {})
        self.data.setdefault("wall_s", 0.0)
        self.start = time.perf_counter()
        self.base_wall = self.data["wall_s"]

    def add(self, key, wall, cpu):
        entry = self.data["runs"].setdefault(key, {"wall_s": 0.0, "cpu_s": 0.0, "invocations": 0})
        entry["wall_s"] += wall
        entry["cpu_s"] += cpu
        entry["invocations"] += 1
        self.save()

    def save(self):
        self.data["wall_s"] = round(self.base_wall + time.perf_counter() - self.start, 3)
        write_json(self.path, self.data)


class Runner:
    """Runs the jobs, up to args.workers at once, longest first, and keeps the ledger."""

    def __init__(self, jobs, args):
        self.args, self.ledger = args, Ledger(args.out)
        self.pending = sorted(jobs, key=lambda job: -estimate(job, args))
        self.total = sum(estimate(job, args) for job in jobs) or 1.0
        self.done_minutes, self.running, self.failed = 0.0, {}, []
        self.start, self.shown = time.perf_counter(), 0.0

    def run(self):
        while self.pending or self.running:
            while self.pending and self._room():
                self._launch(self.pending.pop(0))
            self._reap(block=False)
            self._show()
            time.sleep(0.5)
        self._show(force=True)
        self.ledger.save()

    def _room(self):
        local = [job for job in self.running.values() if not (job[0].chapter.sweeps and self.args.scheduler)]
        return len(local) < self.args.workers

    def _launch(self, job):
        free = self.args.workers - len(self.running) - len(self.pending)
        os.makedirs(os.path.dirname(job.results), exist_ok=True)
        with open(os.path.join(self.args.out, f"seed-{job.seed}", job.chapter.name + ".log"), "a") as log:
            proc = subprocess.Popen(command(job, self.args, free), stdout=log, stderr=subprocess.STDOUT,
                                    cwd=ROOT, start_new_session=True)  # Ctrl-C reaches this process only
        self.running[proc.pid] = (job, proc, time.perf_counter())

    def _reap(self, block):
        while self.running:
            pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            if pid not in self.running:
                continue
            job, proc, started = self.running.pop(pid)
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.ledger.add(job.key, time.perf_counter() - started, usage.ru_utime + usage.ru_stime)
            if proc.returncode == 0:
                self.done_minutes += estimate(job, self.args)
                print(f"\rdone: {job.key}" + " " * 40, file=sys.stderr)
            elif proc.returncode != 130:
                self.failed.append(job)
                print(f"\rfailed: {job.key} (exit {proc.returncode}); see its log "
                      f"{os.path.join(self.args.out, job.key)}.log", file=sys.stderr)

    def _show(self, force=False):
        now = time.perf_counter()
        if not force and now - self.shown < (1 if sys.stderr.isatty() else 30):
            return
        self.shown, elapsed = now, now - self.start
        share = self.done_minutes / self.total
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        running = ", ".join(job.key for job, _, _ in self.running.values()) or "nothing"
        line = (f"reproduce: {100 * share:.0f} % of the estimated work [{clock(elapsed)}<{clock(eta)}] "
                f"running: {running}")
        print(("\r" + line) if sys.stderr.isatty() else line, end="" if sys.stderr.isatty() else "\n",
              file=sys.stderr, flush=True)

    def stop(self):
        """Ctrl-C: one SIGINT to every chapter (each saves what it has), then wait for them."""
        for job, proc, _ in self.running.values():
            try:
                os.killpg(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        deadline = time.perf_counter() + 120
        while self.running and time.perf_counter() < deadline:
            self._reap(block=False)
            time.sleep(0.2)
        for job, proc, _ in list(self.running.values()):
            os.killpg(proc.pid, signal.SIGKILL)
        self._reap(block=True)
        self.ledger.save()


def clock(seconds):
    if seconds != seconds:  # NaN: not known yet
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    jobs = [Job(CHAPTERS[number], seed, args.out) for seed in args.seeds for number in args.chapters]
    clash = [job.key for job in jobs if other_mode(job, args)]
    if clash:  # a --quick run would overwrite a full run's results (or the reverse)
        print(f"error: --out {args.out} holds {'full' if args.quick else '--quick'} runs ({', '.join(clash)}); "
              f"give this {'--quick ' if args.quick else 'full '}reproduction another --out", file=sys.stderr)
        sys.exit(2)
    todo = [job for job in jobs if not is_done(job, args)]
    print(f"reproduce: {len(jobs)} chapter runs ({len(args.chapters)} chapters x {len(args.seeds)} seeds), "
          f"{len(jobs) - len(todo)} done already; logs in {args.out}/seed-S/NN_name.log", file=sys.stderr)
    runner = Runner(todo, args)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()
        print(f"\ninterrupted: run the same command again to continue; kept: every finished chapter run and "
              f"what the running ones saved, in {args.out}", file=sys.stderr)
        sys.exit(130)
    paths = report.write_claims_report(args.out)
    print(f"\nsaved {paths['markdown']}", file=sys.stderr)
    if runner.failed:
        print(f"failed: {' '.join(job.key for job in runner.failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
