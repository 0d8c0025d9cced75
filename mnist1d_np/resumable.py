"""Resumable loops: long work that saves its state and, run again, continues where it stopped.

Every loop of the project that saves progress is one of these (the training
loops, chapter 03's pruning rounds, chapter 05's outer loop, chapter 09's
embeddings):

    state = {"weights": w, "history": [], "rng": rng}
    loop = Resumable(path, identity, state, total=100, label="rounds")
    for i in loop:                    # starts after the last checkpoint; a progress line with ETA
        ...                           # change state's arrays in place, or replace its other values
        loop.checkpoint()             # saved atomically; a requested stop happens here

- `state` is a dict whose values are NumPy arrays (and scalars), numpy
  Generators, dicts (with string keys) or lists of those, or any JSON-able
  value (NaN and infinities included); a tuple or a key that is not a
  string, which would come back changed, is refused (TypeError). A
  checkpoint holds all of it exactly (arrays without pickle, in an .npz);
  on a restart the arrays are copied back *in place* (so views of them, a
  model's parameters say, see the saved values), the generators get their
  saved state and the other values are replaced. What the live state has no counterpart for (a list that grew
  during the run, a key added to a dict) comes back as a new value.
- `identity`: a JSON-able description of everything the loop reads (its
  config, a fingerprint of its data, its seed) and nothing else. The file is
  `path` with a hash of the identity put before `.ckpt.npz`, and the identity
  is stored inside: a checkpoint is only ever used, or overwritten, by the
  loop that made it, and a change to anything the loop does not read keeps it.
- The last iteration is always saved, so a finished loop run again does no
  work and leaves `state` as it ended: a cache (chapter 09's t-SNE).
- Stopping: inside `with stop_when(should_stop):` (runmany's sweeps use it,
  for a first Ctrl-C), each checkpoint ends the loop with KeyboardInterrupt
  once should_stop() is True, right after the state is saved. Elsewhere a
  Ctrl-C raises KeyboardInterrupt where it lands; the last checkpoint stays
  valid, so an interruption loses at most one checkpoint interval, and a
  resumed loop gives the numbers an uninterrupted one gives.
- path None: nothing is saved or read; the loop still shows its progress and
  still stops at its checkpoints when asked to.

`with stopwatch(path) as clock:` times a block that may be interrupted and
resumed (a run of a sweep): clock.seconds, read after the block, is its wall
time over every invocation, kept in its own checkpoint file next to path.
"""
import contextlib
import contextvars
import os
import sys
import time
import warnings

import numpy as np

from . import fileio
from .progress import Progress

_STOP = contextvars.ContextVar("mnist1d_np_stop", default=None)


@contextlib.contextmanager
def stop_when(should_stop):
    """Loops run inside end at their next checkpoint once should_stop() is True."""
    token = _STOP.set(should_stop)
    try:
        yield
    finally:
        _STOP.reset(token)


def stop_requested():
    """True when the enclosing stop_when's function says so (False outside any)."""
    should_stop = _STOP.get()
    return should_stop is not None and bool(should_stop())


def checkpoint_file(path, identity):
    """folder/stem-<hash of identity>.ckpt.npz for path folder/stem(.ckpt.npz)."""
    folder, name = os.path.split(os.fspath(path))
    stem = name[:-len(".ckpt.npz")] if name.endswith(".ckpt.npz") else os.path.splitext(name)[0]
    return fileio.checkpoint_path(folder or ".", stem, identity)


class Resumable:
    """`for i in Resumable(path, identity, state, total, label)`: i from the first
    iteration not yet saved to total - 1 (see the module docstring)."""

    def __init__(self, path, identity, state, total, label=None):
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
            raise ValueError(f"total must be an integer >= 0, got {total!r}")
        _check(state, "state")  # before any work: what a checkpoint could not give back
        self.state, self.total, self.label = state, int(total), label
        self.identity = fileio.canonical_identity(identity)
        self.path = None if path is None else checkpoint_file(path, self.identity)
        self.start = self.saved = self._restore()
        self.position, self.info = self.start, {}
        self.bar = Progress(self.total, label, initial=self.start) if label and self.start < self.total else None

    def __iter__(self):
        for i in range(self.start, self.total):
            self.position = i + 1
            yield i
            if self.position == self.total and self.saved < self.total:
                self.checkpoint()
            if self.bar is not None:
                self.bar.update(1, **self.info)

    def show(self, **info):
        """Numbers to show on the progress line (e.g. loss=0.3)."""
        self.info = info

    def checkpoint(self):
        """Save the state as it is after the current iteration; then, if a stop
        was requested (and the loop is not finished), raise KeyboardInterrupt."""
        if self.path is not None:
            _check(self.state, "state")
            arrays = {}
            tree = {"dict": {k: _encode(v, arrays) for k, v in self.state.items()}}
            fileio.save_checkpoint(self.path, arrays, {"position": self.position, "state": tree}, self.identity,
                                   exact=True)
        self.saved = self.position
        if self.position < self.total and stop_requested():
            raise KeyboardInterrupt

    def _restore(self):
        if self.path is None:
            return 0
        loaded = fileio.load_checkpoint(self.path, self.identity)
        if loaded is None:
            return 0
        arrays, meta = loaded
        position = int(meta["position"])
        if position > self.total:  # the identity should have told them apart: never use it
            warnings.warn(f"ignoring {self.path}: it saved {position} iterations of a loop of {self.total}")
            return 0
        _decode_into(self.state, meta["state"], arrays, "state")
        if 0 < position < self.total:
            print(f"resuming {self.label or 'a run'} after {position} of {self.total} ({self.path})", file=sys.stderr)
        return position


class Clock:
    """What stopwatch gives: seconds (this invocation's and the earlier ones', once the block
    has ended) and invocations (how many invocations ran the block, this one included)."""

    def __init__(self, seconds, invocations):
        self.seconds, self.invocations = seconds, invocations


@contextlib.contextmanager
def stopwatch(path):
    """`with stopwatch(path) as clock:`: clock.seconds is the block's wall time, added over the
    invocations that ran it: an earlier invocation stopped by Ctrl-C (or an error) saved its
    seconds as it left the block, to checkpoint_file(path, STOPWATCH), which a sweep deletes
    with the run's other checkpoints once the run is saved. A process killed outright (kill -9)
    saves nothing: its seconds are lost. path None: this invocation's time alone."""
    file = None if path is None else checkpoint_file(path, STOPWATCH)
    loaded = None if file is None else fileio.load_checkpoint(file, STOPWATCH)
    earlier = loaded[1] if loaded else {"seconds": 0.0, "invocations": 0}
    clock = Clock(float(earlier["seconds"]), int(earlier["invocations"]) + 1)
    start = time.perf_counter()
    try:
        yield clock
    finally:
        clock.seconds += time.perf_counter() - start
        if file is not None:
            fileio.save_checkpoint(file, {}, {"seconds": clock.seconds, "invocations": clock.invocations},
                                   STOPWATCH)


STOPWATCH = {"stopwatch": "wall seconds of a resumable block"}


# ---------------------------------------------------------------- the state, as arrays and JSON

def _encode(value, arrays):
    """A JSON tree for value; its arrays (and NumPy scalars) go to `arrays` under keys a0, a1, ..."""
    if isinstance(value, (np.ndarray, np.generic)):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"array" if isinstance(value, np.ndarray) else "scalar": key}
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state}
    if isinstance(value, dict) and not _plain(value):
        return {"dict": {str(k): _encode(v, arrays) for k, v in value.items()}}
    if isinstance(value, list) and not _plain(value):
        return {"list": [_encode(v, arrays) for v in value]}
    return {"value": value}  # plain JSON; saved with NaN and infinities as they are


def _check(value, where):
    """TypeError naming the entry if a checkpoint would not give `value` back as it is:
    a tuple (JSON has only lists) or a dict key that is not a string."""
    if isinstance(value, tuple):
        raise TypeError(f"checkpoint: {where} is a tuple, which would come back as a list: make it a list")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"checkpoint: {where} has the key {key!r}, which would come back as "
                                f"{str(key)!r}: use string keys")
            _check(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")


def _plain(value):
    """True for a value with no array, NumPy scalar or generator anywhere inside (plain JSON)."""
    if isinstance(value, (np.ndarray, np.generic, np.random.Generator)):
        return False
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return True


def _decode_into(live, tree, arrays, where):
    """Put the saved values of `tree` into the live dict or list `live`: arrays into live arrays
    of their shape and dtype (in place), generators into live generators; where the live state
    has no counterpart (a list that grew, a key added during the run), a new value."""
    entries = list(tree["dict"].items() if "dict" in tree else enumerate(tree["list"]))
    if isinstance(live, list):
        del live[len(entries):]  # the saved list is the whole list
    for key, entry in entries:
        present = key < len(live) if isinstance(live, list) else key in live
        current = live[key] if present else None
        name = f"{where}[{key!r}]"
        if "array" in entry and isinstance(current, np.ndarray):
            saved = arrays[entry["array"]]
            if current.shape != saved.shape or current.dtype != saved.dtype:
                raise ValueError(f"checkpoint: {name} was saved as {saved.dtype}{saved.shape}, "
                                 f"the live array is {current.dtype}{current.shape}")
            current[...] = saved
        elif "generator" in entry and isinstance(current, np.random.Generator):
            current.bit_generator.state = entry["generator"]
        elif ("dict" in entry and isinstance(current, dict)) or ("list" in entry and isinstance(current, list)):
            _decode_into(current, entry, arrays, name)
        else:
            value = _decode_new(entry, arrays)
            if isinstance(live, list) and not present:
                live.append(value)
            else:
                live[key] = value


def _decode_new(entry, arrays):
    """A new value for a saved entry that has no live counterpart."""
    if "array" in entry:
        return arrays[entry["array"]].copy()
    if "scalar" in entry:
        return arrays[entry["scalar"]][()]
    if "generator" in entry:
        bit_generator = getattr(np.random, entry["generator"]["bit_generator"])()
        bit_generator.state = entry["generator"]
        return np.random.Generator(bit_generator)
    if "value" in entry:
        return entry["value"]
    if "dict" in entry:
        return {key: _decode_new(value, arrays) for key, value in entry["dict"].items()}
    return [_decode_new(value, arrays) for value in entry["list"]]
