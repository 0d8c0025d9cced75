"""Atomic writes that refuse odd targets, leftover temporary files, and
checkpoints that only their own run uses."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist1d_np import fileio

IDENTITY = {"chapter": "05_meta_activation", "settings": {"hidden": 100}, "seed": 0,
            "data": {"seed": 42}, "version": "0.1.0"}


def write_hello(f):
    f.write(b"hello")


def test_atomic_write_refuses_a_symlink_and_keeps_its_target(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("precious")
    (tmp_path / "link.txt").symlink_to(target)
    with pytest.raises(ValueError, match=r"link\.txt is a symlink; refusing"):
        fileio.atomic_write(tmp_path / "link.txt", write_hello)
    assert target.read_text() == "precious" and (tmp_path / "link.txt").is_symlink()


def test_atomic_write_refuses_a_fifo_a_device_and_a_folder(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    for path, kind in ((tmp_path / "fifo", "a FIFO"), (tmp_path / "folder", "a folder"), ("/dev/null", "a device")):
        with pytest.raises(ValueError, match=f"is {kind}; refusing"):
            fileio.atomic_write(path, write_hello)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert sorted(os.listdir(tmp_path)) == ["fifo", "folder"]  # no temporary file left


def test_atomic_write_refuses_a_read_only_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{}")
    path.chmod(0o444)
    with pytest.raises(ValueError, match=r"results\.json is read-only"):
        fileio.write_json(path, {"a": 1})
    assert path.read_text() == "{}"


def test_leftover_temporary_files_are_cleaned_but_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    for name in (f".tmp-{dead}-abc", ".tmp-xyz", f".tmp-{os.getpid()}-def", "keep.json"):
        (tmp_path / name).write_text("x")
    removed = fileio.clean_temporary_files(tmp_path)
    assert sorted(os.path.basename(p) for p in removed) == sorted([f".tmp-{dead}-abc", ".tmp-xyz"])
    assert sorted(os.listdir(tmp_path)) == sorted([f".tmp-{os.getpid()}-def", "keep.json"])


def test_checkpoint_path_is_one_file_per_identity(tmp_path):
    path = fileio.checkpoint_path(tmp_path, "metalearn", IDENTITY)
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("metalearn-")
    assert path.endswith(".ckpt.npz")
    assert fileio.checkpoint_path(tmp_path, "metalearn", dict(reversed(IDENTITY.items()))) == path
    assert fileio.checkpoint_path(tmp_path, "metalearn", {**IDENTITY, "seed": 1}) != path


def test_a_checkpoint_is_used_only_by_its_own_run(tmp_path):
    path = tmp_path / "run.ckpt.npz"
    fileio.save_checkpoint(path, {"theta": np.arange(3.0)}, {"step": 20}, identity=IDENTITY)
    arrays, meta = fileio.load_checkpoint(path, identity={**IDENTITY, "settings": {"hidden": 100}})
    assert meta == {"step": 20} and np.array_equal(arrays["theta"], np.arange(3.0))
    for other in ({**IDENTITY, "seed": 1}, None):
        with pytest.warns(UserWarning, match="belongs to another run"):
            assert fileio.load_checkpoint(path, identity=other) is None
    with pytest.raises(ValueError, match="checkpoint of another run; refusing to overwrite"):
        fileio.save_checkpoint(path, {"theta": np.zeros(3)}, {"step": 1}, identity={**IDENTITY, "seed": 1})
    assert fileio.load_checkpoint(path, identity=IDENTITY)[1] == {"step": 20}
    fileio.save_checkpoint(path, {"theta": np.zeros(3)}, {"step": 21}, identity=IDENTITY)
    assert fileio.load_checkpoint(path, identity=IDENTITY)[1] == {"step": 21}
