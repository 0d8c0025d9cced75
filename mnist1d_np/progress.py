"""A one-line progress bar with rate and ETA, on stderr, with no dependencies.

    bar = Progress(6000, "training")
    for step in range(6000):
        ...
        bar.update(1, loss=loss)          # "training 1200/6000 [00:03<00:12] loss=0.8"

On a terminal the line is redrawn in place, ten times a second; in a
notebook too, once a second (each redraw is a message to the notebook, and
one line under the cell is updated); elsewhere (CI, logs, a sweep's worker
processes, whose lines would interleave) a whole line is printed at most
every `log_every` seconds. Inside `with lines_only():` every new bar prints
whole lines (runmany sets it in its workers).
"""
import contextlib
import contextvars
import sys
import time

import numpy as np

from . import kernel

_LINES_ONLY = contextvars.ContextVar("mnist1d_np_progress_lines_only", default=None)
WORKER_LOG_SECONDS = 30.0
TERMINAL_REDRAW_SECONDS = 0.1
NOTEBOOK_REDRAW_SECONDS = 1.0


@contextlib.contextmanager
def lines_only(log_every=WORKER_LOG_SECONDS):
    """Bars made inside print whole lines, at most every `log_every` seconds."""
    token = _LINES_ONLY.set(log_every)
    try:
        yield
    finally:
        _LINES_ONLY.reset(token)


class Progress:
    """total units of work, `label` shown first. initial: units already done
    (a resumed run): they count on the bar, not in the rate or the ETA."""

    def __init__(self, total, label="", stream=None, log_every=10.0, initial=0):
        self.total, self.label, self.done, self.initial = total, label, initial, initial
        self.stream = stream or sys.stderr
        lines_every = _LINES_ONLY.get()
        notebook = lines_every is None and kernel.is_kernel_stream(self.stream)
        self.interactive = notebook or lines_every is None and getattr(self.stream, "isatty", lambda: False)()
        self.redraw_every = NOTEBOOK_REDRAW_SECONDS if notebook else TERMINAL_REDRAW_SECONDS
        self.log_every = log_every if lines_every is None else lines_every
        self.start = self.last_print = time.perf_counter()
        self.info = ""

    def update(self, n=1, **info):
        """Count n more units of work; info (e.g. loss=0.3) is shown on the line."""
        self.done += n
        if info:
            self.info = "  ".join(f"{k}={_short(v)}" for k, v in info.items())
        now, every = time.perf_counter(), self.redraw_every if self.interactive else self.log_every
        if self.done >= self.total or now - self.last_print >= every:
            self.last_print = now
            self._print(now)

    def _print(self, now):
        elapsed, new = now - self.start, self.done - self.initial
        eta = elapsed / new * (self.total - self.done) if new else float("nan")
        line = f"{self.label} {self.done}/{self.total} [{_clock(elapsed)}<{_clock(eta)}] {self.info}"
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
