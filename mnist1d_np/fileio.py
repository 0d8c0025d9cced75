"""Small, safe file writing: atomic writes, JSON, and pickle-free checkpoints.

A checkpoint carries the identity of its run (a JSON-able description of
what the run reads: its config, a fingerprint of its data, its seed), and
its file name carries a short hash of that identity, so two different runs
never share a file and a run never resumes from another run's state.
"""
import glob
import hashlib
import json
import os
import stat
import tempfile
import warnings
import zipfile

import numpy as np

TEMPORARY_PREFIX = ".tmp-"


def to_jsonable(value, nonfinite_as_none=True):
    """NumPy scalars and arrays (nested in dicts/lists) as plain JSON types; NaN and
    infinities as None (strict JSON), or kept (Python's JSON writes and reads them)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, nonfinite_as_none) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, nonfinite_as_none) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), nonfinite_as_none)
    if isinstance(value, np.generic):
        return to_jsonable(value.item(), nonfinite_as_none)
    if nonfinite_as_none and isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def canonical_json(value):
    """One text per JSON value: sorted keys, no spaces (what hashes are taken of)."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def short_hash(value, length=10):
    """The first `length` hex digits of the SHA-256 of canonical_json(value)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


# ---------------------------------------------------------------- atomic writes

def digest(*arrays):
    """A short hash of the arrays' bytes (None counts as nothing): a data fingerprint."""
    hashed = hashlib.sha256()
    for a in arrays:
        if a is not None:
            hashed.update(np.ascontiguousarray(a).tobytes())
    return hashed.hexdigest()[:12]


def atomic_write(path, write):
    """Write a file through write(file_object) into a temporary file, then rename.

    Readers never see a half-written file, and an interruption leaves the
    previous version intact. The target, if it exists, must be a writable
    regular file: a symlink, FIFO, device or folder is refused with a
    ValueError, and so is a read-only file, rather than replaced.
    """
    _check_replaceable(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The writer's PID in the name lets clean_temporary_files tell an
    # abandoned file from one that a live process is still writing.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_replaceable(path):
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = ("a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ValueError(f"{path} is {kind}; refusing to replace it (give a path to a regular file)")
    # Mode bits, not os.access: root may write anything, but a file someone
    # made read-only should stay as it is.
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        raise ValueError(f"{path} is read-only; refusing to replace it")


def clean_temporary_files(folder):
    """Delete the `.tmp-*` files an interrupted atomic_write left in `folder`.

    A file whose writer (the PID in its name) is still alive is kept.
    Returns the deleted paths.
    """
    removed = []
    for path in glob.glob(os.path.join(glob.escape(str(folder)), TEMPORARY_PREFIX + "*")):
        if os.path.isfile(path) and not _writer_alive(os.path.basename(path)):
            os.unlink(path)
            removed.append(path)
    return removed


def _writer_alive(name):
    pid = name[len(TEMPORARY_PREFIX):].split("-")[0]
    if not pid.isdigit() or int(pid) == 0:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def write_json(path, obj):
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def read_json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- checkpoints

def checkpoint_path(folder, stem, identity):
    """folder/stem-<hash of identity>.ckpt.npz: a checkpoint file only this run uses.

    identity: a JSON-able description of what the run reads (its config, a
    fingerprint of its data, its seed).
    """
    return os.path.join(str(folder), f"{stem}-{short_hash(identity)}.ckpt.npz")


def save_checkpoint(path, arrays, meta, identity=None, exact=False):
    """Atomically save a dict of arrays plus JSON metadata to an .npz (no pickle).

    identity: the run's JSON-able identity, stored with it. A readable
    checkpoint of another run at `path` is not overwritten: ValueError.
    exact: keep NaN and infinities in meta (else None, as in results JSON).
    """
    stored = _stored_identity(path)
    if stored is not _UNREADABLE and stored != canonical_identity(identity):
        raise ValueError(f"{path} holds the checkpoint of another run; refusing to overwrite it "
                         "(use fileio.checkpoint_path to give each run its own file)")
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__meta__"] = _text_array(json.dumps(to_jsonable(meta, nonfinite_as_none=not exact)))
    payload["__identity__"] = _text_array(canonical_json(identity))
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path, identity=None):
    """(arrays, meta) from save_checkpoint, or None if there is no usable file.

    A damaged file, or one saved with another identity, gives None and a warning.
    """
    loaded = _read_checkpoint(path)
    if loaded is None:
        return None
    arrays, meta, stored = loaded
    if stored != canonical_identity(identity):
        warnings.warn(f"ignoring checkpoint {path}: it belongs to another run "
                      f"(saved as {stored}, this run is {canonical_identity(identity)})", stacklevel=2)
        return None
    return arrays, meta


_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_UNREADABLE = object()


def _read_checkpoint(path):
    """(arrays, meta, identity) or None."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(_text(arrays.pop("__meta__")))
        identity = json.loads(_text(arrays.pop("__identity__", np.array("null"))))
    except _READ_ERRORS as err:
        warnings.warn(f"ignoring unreadable checkpoint {path}: {err}", stacklevel=3)
        return None
    return arrays, meta, identity


def _stored_identity(path):
    """The identity in the checkpoint at path (None for one saved without), or
    _UNREADABLE if there is no readable checkpoint there. Reads nothing else."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(_text(f["__identity__"])) if "__identity__" in f.files else None
    except _READ_ERRORS:
        return _UNREADABLE


def _text_array(text):
    """Text as a uint8 array of its UTF-8 bytes (a NumPy string array would take 4 bytes a character)."""
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _text(array):
    """The inverse of _text_array (and the NumPy string of checkpoints saved before it)."""
    return array.tobytes().decode() if array.dtype == np.uint8 else str(array)


def canonical_identity(identity):
    """identity as JSON gives it back (tuples as lists, NumPy numbers as Python's): what is stored."""
    return json.loads(canonical_json(identity))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
