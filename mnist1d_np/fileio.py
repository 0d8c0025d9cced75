"""Small, safe file writing: atomic writes, JSON, and pickle-free checkpoints."""
import json
import os
import sys
import tempfile
import zipfile

import numpy as np


def to_jsonable(value):
    """NumPy scalars and arrays (nested in dicts/lists) as plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def atomic_write(path, write):
    """Write a file through write(file_object) into a temporary file, then rename.

    Readers never see a half-written file, and an interruption leaves the
    previous version intact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
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


def write_json(path, obj):
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path, arrays, meta):
    """Atomically save a dict of arrays plus JSON metadata to an .npz (no pickle)."""
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.array(json.dumps(to_jsonable(meta)))
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_checkpoint(path):
    """(arrays, meta) from save_checkpoint, or None if there is no usable file."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        print(f"warning: ignoring unreadable checkpoint {path}: {err}", file=sys.stderr)
        return None
    return arrays, meta


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
