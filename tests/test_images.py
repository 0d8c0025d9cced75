"""The IDX image sets (MNIST, Fashion-MNIST), offline: tiny IDX files made here,
folders in the layouts users have, and downloads from an HTTP server this test
runs on 127.0.0.1 (an ephemeral port, shut down by the test). The real pinned
checksums stay in the code; these tests give the loader an ImageSet of their
own, with the tiny files' checksums and the local server as its mirrors."""
import dataclasses
import errno
import gzip
import hashlib
import http.server
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest

from mnist1d_np import images, idx
from mnist1d_np.images import FASHION, MNIST, ImageFile, ImagesError, load_images

ROLES = images.ROLES


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the user's cache, folder variable or proxies."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(images.ENV_VAR, raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------- tiny sets

def tiny_arrays(rng, n_train=6, n_test=4, shape=(28, 28)):
    """{role: uint8 array}: random images and labels 0-9."""
    return {"train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
            "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}


def gz_files(arrays, spec=MNIST):
    """{file name: gzipped IDX bytes} of the arrays, under the set's file names."""
    return {spec.files[role].name: gzip.compress(idx.idx_bytes(a), mtime=0) for role, a in arrays.items()}


def write_folder(folder, arrays, spec=MNIST, compressed=True):
    os.makedirs(folder, exist_ok=True)
    for role, array in arrays.items():
        raw = idx.idx_bytes(array)
        file = spec.files[role]
        with open(os.path.join(folder, file.name if compressed else file.unzipped), "wb") as f:
            f.write(gzip.compress(raw, mtime=0) if compressed else raw)


def tiny_spec(files, mirrors, spec=MNIST):
    """The set `spec` with the tiny files' sizes and checksums, downloaded from `mirrors`."""
    def pinned(role):
        data = files[spec.files[role].name]
        return ImageFile(spec.files[role].name, len(data), hashlib.sha256(data).hexdigest(),
                         hashlib.md5(data).hexdigest())
    return dataclasses.replace(spec, mirrors=tuple(mirrors), **{role: pinned(role) for role in ROLES})


def assert_holds(data, arrays):
    assert data["x"].dtype == np.float32 and data["x"].flags.c_contiguous
    assert data["x"].shape == (len(arrays["train_images"]), 784)
    # row by row: pixel (r, c) is column 28 r + c, and its value is byte / 255
    np.testing.assert_array_equal(data["x"], arrays["train_images"].reshape(-1, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(data["x_test"][:, 28 * 3 + 5], arrays["test_images"][:, 3, 5] / np.float32(255))
    assert data["y"].dtype == np.int64 and data["y_test"].dtype == np.int64
    np.testing.assert_array_equal(data["y"], arrays["train_labels"])
    np.testing.assert_array_equal(data["y_test"], arrays["test_labels"])


# ---------------------------------------------------------------- the local server

class Server:
    """An HTTP server on 127.0.0.1: routes {path: bytes | 404 | ('cut', bytes)};
    ('cut', data) announces len(data) bytes, sends half and closes the connection."""

    def __init__(self):
        self.routes, self.requests = {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                route = server.routes.get(self.path, 404)
                if route == 404:
                    self.send_error(404)
                    return
                cut = isinstance(route, tuple)
                data = route[1] if cut else route
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2] if cut else data)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, prefix):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def serve(self, prefix, files):
        self.routes.update({f"/{prefix}/{name}": data for name, data in files.items()})

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.close()


def closed_port_url():
    """A loopback URL where nothing listens: a connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def load(spec, cache, **kwargs):
    stream = io.StringIO()
    data = load_images(spec, cache_dir=cache, stream=stream, timeout=5, **kwargs)
    return data, stream.getvalue()


# ---------------------------------------------------------------- the IDX format

def test_idx_reads_a_header_written_by_hand(tmp_path):
    """LeCun's layout, spelt out: 0000, type 08, 2 dims, sizes 2 and 3 big-endian, then the bytes."""
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(idx.parse_idx(raw), [[1, 2, 3], [4, 5, 6]])
    ints = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)
    assert idx.parse_idx(ints).tolist() == [258, -1]
    (tmp_path / "plain").write_bytes(raw)
    (tmp_path / "zipped.gz.not").write_bytes(gzip.compress(raw))   # told by content, not by name
    assert idx.read_idx(tmp_path / "plain").shape == idx.read_idx(tmp_path / "zipped.gz.not").shape == (2, 3)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip_of_every_type(dtype, rng):
    array = (rng.standard_normal((3, 4, 2)) * 100).astype(dtype)
    back = idx.parse_idx(idx.idx_bytes(array))
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    with pytest.raises(ValueError, match="IDX dtype"):
        idx.idx_bytes(array.astype(np.int64))


def test_idx_errors_name_the_file(tmp_path, rng):
    good = idx.idx_bytes(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    zipped = gzip.compress(good, mtime=0)
    damaged = bytearray(zipped)
    damaged[len(damaged) // 2] ^= 0xFF
    cases = {
        "magic": (b"\x01\x02" + good[2:], r"not an IDX file \(magic number 0102"),
        "type": (good[:2] + b"\x07" + good[3:], "unknown IDX element type 0x07"),
        "header": (good[:10], "truncated IDX header"),
        "short": (good[:-1], r"truncated: the header gives shape \(5, 28, 28\) of uint8, 3920 bytes .* holds 3919"),
        "long": (good + b"\x00", "trailing bytes after the data"),
        "gzip-cut": (zipped[:len(zipped) // 2], "truncated gzip file"),
        "gzip-damaged": (bytes(damaged), "damaged gzip file"),
    }
    for name, (raw, message) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(idx.IdxError, match=message) as err:
            idx.read_idx(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name))


# ---------------------------------------------------------------- folders users have

@pytest.mark.parametrize("layout", ["flat-gz", "flat-raw", "torchvision-root", "torchvision-class", "keras-npz"])
def test_mnist_layouts(layout, tmp_path, rng):
    arrays = tiny_arrays(rng)
    root = tmp_path / "user"
    if layout == "keras-npz":
        os.makedirs(root / "datasets")
        np.savez(root / "datasets" / "mnist.npz", x_train=arrays["train_images"], y_train=arrays["train_labels"],
                 x_test=arrays["test_images"], y_test=arrays["test_labels"])
    else:
        sub = {"flat-gz": "", "flat-raw": "", "torchvision-root": "MNIST/raw", "torchvision-class": "raw"}[layout]
        write_folder(root / sub, arrays, compressed=layout != "flat-raw")
    data, _ = load(MNIST, tmp_path / "cache", images_dir=root, download=False)
    assert_holds(data, arrays)
    assert data["name"] == "mnist" and data["image_shape"] == (28, 28) and data["classes"][3] == "3"
    assert not os.path.exists(tmp_path / "cache")  # found: the cache is not even made


@pytest.mark.parametrize("sub", ["FashionMNIST/raw", "fashion-mnist", "datasets/fashion-mnist", "data/fashion"])
def test_fashion_layouts(sub, tmp_path, rng):
    arrays = tiny_arrays(rng)
    write_folder(tmp_path / "user" / sub, arrays, spec=FASHION)
    data, _ = load("fashion", tmp_path / "cache", images_dir=tmp_path / "user", download=False)
    assert_holds(data, arrays)
    assert data["source"] == str(tmp_path / "user" / sub) and data["classes"][9] == "Ankle boot"


def test_search_order_images_dir_then_variable_then_cache(tmp_path, rng, monkeypatch):
    sets = {place: tiny_arrays(rng) for place in ("dir", "env", "cache")}
    for place, arrays in sets.items():
        write_folder(tmp_path / place, arrays)
    monkeypatch.setenv(images.ENV_VAR, str(tmp_path / "env"))
    assert_holds(load(MNIST, tmp_path / "cache", images_dir=tmp_path / "dir", download=False)[0], sets["dir"])
    assert_holds(load(MNIST, tmp_path / "cache", download=False)[0], sets["env"])
    monkeypatch.delenv(images.ENV_VAR)
    assert_holds(load(MNIST, tmp_path / "cache", download=False)[0], sets["cache"])
    assert images.find_images(MNIST, cache_dir=tmp_path / "cache") == str(tmp_path / "cache")


def test_default_cache_follows_xdg(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert images.default_cache_dir("fashion") == str(tmp_path / "xdg" / "mnist1d_np" / "images" / "fashion")
    arrays = tiny_arrays(rng)
    write_folder(tmp_path / "xdg" / "mnist1d_np" / "images" / "mnist", arrays)
    assert_holds(load_images("mnist", download=False, stream=io.StringIO()), arrays)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")   # ignored, as the XDG specification says
    assert images.default_cache_dir("mnist") == os.path.join(os.path.expanduser("~"), ".cache", "mnist1d_np",
                                                             "images", "mnist")


def test_a_partial_folder_is_skipped_with_a_note(tmp_path, rng):
    arrays = tiny_arrays(rng)
    write_folder(tmp_path / "cache", arrays)
    partial = {role: a for role, a in tiny_arrays(rng).items() if role != "test_labels"}
    write_folder(tmp_path / "user", partial)
    data, notes = load(MNIST, tmp_path / "cache", images_dir=tmp_path / "user", download=False)
    assert_holds(data, arrays)
    assert "holds 3 of the 4 MNIST files (missing t10k-labels-idx1-ubyte)" in notes
    assert sorted(os.listdir(tmp_path / "user")) == sorted(MNIST.files[r].name for r in partial)


def test_an_unknown_set_names_the_choices():
    with pytest.raises(ValueError, match=r"image set must be one of \['mnist', 'fashion'\], got 'cifar'"):
        load_images("cifar")


# ---------------------------------------------------------------- bad files are named, never deleted

def bad_sets(rng):
    """(what to change, the arrays, the message): files that parse but do not make a set."""
    a = tiny_arrays(rng)
    yield "counts", dict(a, train_labels=a["train_labels"][:-1]), \
        r"train-images-idx3-ubyte\.gz holds 6 images but .*train-labels-idx1-ubyte\.gz holds 5 labels"
    yield "label range", dict(a, test_labels=np.full(4, 10, np.uint8)), \
        r"t10k-labels-idx1-ubyte\.gz: a label is 10; MNIST's labels are 0 to 9"
    yield "image shape", dict(a, train_images=a["train_images"][:, :27]), r"holds uint8 \(6, 27, 28\), expected"
    yield "label dtype", dict(a, train_labels=a["train_labels"].astype(np.int32)), "expected uint8 labels"
    yield "empty", dict(a, test_images=a["test_images"][:0], test_labels=a["test_labels"][:0]), "holds 0 images"


def test_files_that_do_not_make_a_set_are_named_and_kept(tmp_path, rng):
    for i, (what, arrays, message) in enumerate(bad_sets(rng)):
        folder = tmp_path / f"user{i}"
        write_folder(folder, arrays)
        before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
        with pytest.raises(ImagesError, match=message):
            load(MNIST, tmp_path / "cache", images_dir=folder)
        assert {name: (folder / name).read_bytes() for name in os.listdir(folder)} == before, what


@pytest.mark.parametrize("damage", ["magic", "truncated", "trailing", "gzip-cut"])
def test_a_damaged_file_is_named_and_kept(damage, tmp_path, rng):
    folder = tmp_path / "user"
    write_folder(folder, tiny_arrays(rng), compressed=damage == "gzip-cut")
    name = "t10k-images-idx3-ubyte" + (".gz" if damage == "gzip-cut" else "")
    raw = (folder / name).read_bytes()
    changed = {"magic": b"\x08\x03" + raw[2:], "truncated": raw[:-28], "trailing": raw + b"\x00" * 3,
               "gzip-cut": raw[:len(raw) // 2]}[damage]
    (folder / name).write_bytes(changed)
    with pytest.raises(ImagesError, match=f"(?s){re.escape(str(folder / name))}: .*the file was left as it is") as err:
        load(MNIST, tmp_path / "cache", images_dir=folder)
    assert (folder / name).read_bytes() == changed
    assert "Traceback" not in str(err.value)


def test_a_damaged_cache_file_is_named_and_kept(tmp_path, rng, server):
    cache = tmp_path / "cache"
    write_folder(cache, tiny_arrays(rng))
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really")
    with pytest.raises(ImagesError, match=r"(?s)train-labels-idx1-ubyte\.gz: damaged gzip file.*"
                                          r"delete it, and the next load downloads it again"):
        load(MNIST, cache)
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == b"\x1f\x8b not really"
    assert server.requests == []


def test_keras_npz_named_directly(tmp_path, rng):
    a = tiny_arrays(rng)
    np.savez(tmp_path / "mine.npz", x_train=a["train_images"], y_train=a["train_labels"],
             x_test=a["test_images"], y_test=a["test_labels"])
    data, _ = load(MNIST, tmp_path / "cache", images_dir=tmp_path / "mine.npz", download=False)
    assert_holds(data, a)
    assert data["source"] == str(tmp_path / "mine.npz")


def test_keras_npz_is_read_without_pickle(tmp_path, rng):
    a = tiny_arrays(rng)
    np.savez(tmp_path / "mnist.npz", x_train=np.array([object()] * 6, dtype=object), y_train=a["train_labels"],
             x_test=a["test_images"], y_test=a["test_labels"])
    with pytest.raises(ImagesError, match=r"mnist\.npz: not a readable \.npz file .*allow_pickle"):
        load(MNIST, tmp_path / "cache", images_dir=tmp_path, download=False)
    np.savez(tmp_path / "mnist.npz", x_train=a["train_images"], y_train=a["train_labels"])
    with pytest.raises(ImagesError, match=r"mnist\.npz: not a Keras-style \.npz of MNIST \(no \['x_test', 'y_test'\]"):
        load(MNIST, tmp_path / "cache", images_dir=tmp_path, download=False)


# ---------------------------------------------------------------- downloads

def test_download_then_the_cache_is_reused_without_the_network(tmp_path, rng, server):
    arrays = tiny_arrays(rng)
    files = gz_files(arrays)
    server.serve("a", files)
    spec = tiny_spec(files, [server.url("a")])
    cache = tmp_path / "cache"
    data, log = load(spec, cache)
    assert_holds(data, arrays)
    assert sorted(os.listdir(cache)) == sorted(files)   # the four files, no temporary file
    assert all((cache / name).read_bytes() == raw for name, raw in files.items())
    assert "MNIST: downloading 4 file(s) into" in log
    assert re.search(r"downloading train-images-idx3-ubyte\.gz \(kB\) (\d+)/\1 ", log)   # a progress line, to the end
    assert len(server.requests) == 4
    server.close()                                       # no network from here on
    offline = dataclasses.replace(spec, mirrors=(closed_port_url(),))
    assert_holds(load(offline, cache)[0], arrays)
    assert_holds(load(offline, cache, download=False)[0], arrays)


def test_only_the_missing_files_are_downloaded(tmp_path, rng, server):
    arrays = tiny_arrays(rng)
    files = gz_files(arrays)
    server.serve("a", files)
    cache = tmp_path / "cache"
    write_folder(cache, {role: a for role, a in arrays.items() if role != "test_images"})
    data, _ = load(tiny_spec(files, [server.url("a")]), cache)
    assert_holds(data, arrays)
    assert server.requests == ["/a/t10k-images-idx3-ubyte.gz"]


def test_404_on_the_first_mirror_then_the_second(tmp_path, rng, server):
    arrays = tiny_arrays(rng)
    files = gz_files(arrays)
    server.serve("b", files)
    data, log = load(tiny_spec(files, [server.url("a"), server.url("b")]), tmp_path / "cache")
    assert_holds(data, arrays)
    assert server.requests[:2] == ["/a/train-images-idx3-ubyte.gz", "/b/train-images-idx3-ubyte.gz"]
    assert f"download failed: {server.url('a')}train-images-idx3-ubyte.gz: HTTP 404 Not Found; " \
           f"{server.url('b')}train-images-idx3-ubyte.gz worked" in log


def test_a_checksum_mismatch_is_deleted_and_reported(tmp_path, rng, server):
    arrays = tiny_arrays(rng)
    files = gz_files(arrays)
    spec = tiny_spec(files, [server.url("bad")])
    wrong = dict(files)
    name = "train-labels-idx1-ubyte.gz"
    wrong[name] = files[name][:-5] + bytes(b ^ 1 for b in files[name][-5:])   # same size, other bytes
    server.serve("bad", wrong)
    cache = tmp_path / "cache"
    with pytest.raises(ImagesError, match=f"sha256 mismatch: got {hashlib.sha256(wrong[name]).hexdigest()}, "
                                          rf"expected {spec.train_labels.sha256} \(the download was deleted\)"):
        load(spec, cache)
    assert sorted(os.listdir(cache)) == ["train-images-idx3-ubyte.gz"]   # the good one, fetched before it
    server.serve("good", files)                                          # a second mirror has it right
    data, log = load(dataclasses.replace(spec, mirrors=(server.url("bad"), server.url("good"))), cache)
    assert_holds(data, arrays)
    assert f"download failed: {server.url('bad')}{name}: sha256 mismatch" in log and f"{name} worked" in log


def test_md5_is_checked_too(tmp_path, rng, server):
    files = gz_files(tiny_arrays(rng))
    server.serve("a", files)
    spec = tiny_spec(files, [server.url("a")])
    spec = dataclasses.replace(spec, test_labels=dataclasses.replace(spec.test_labels, md5="0" * 32))
    with pytest.raises(ImagesError, match="md5 mismatch"):
        load(spec, tmp_path / "cache")
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(tmp_path / "cache")


def test_a_connection_closed_halfway_leaves_nothing(tmp_path, rng, server):
    files = gz_files(tiny_arrays(rng))
    server.routes["/a/train-images-idx3-ubyte.gz"] = ("cut", files["train-images-idx3-ubyte.gz"])
    spec = tiny_spec(files, [server.url("a")])
    cache = tmp_path / "cache"
    half = len(files["train-images-idx3-ubyte.gz"]) // 2
    with pytest.raises(ImagesError, match=f"the connection closed after {half} of "
                                          f"{spec.train_images.size} bytes"):
        load(spec, cache)
    assert os.listdir(cache) == []


def test_a_wrong_size_is_refused_before_reading(tmp_path, rng, server):
    files = gz_files(tiny_arrays(rng))
    spec = tiny_spec(files, [server.url("a")])
    server.serve("a", dict(files, **{"train-images-idx3-ubyte.gz": files["train-images-idx3-ubyte.gz"] + b"x"}))
    with pytest.raises(ImagesError, match=f"announces {spec.train_images.size + 1} bytes, the file has "
                                          f"{spec.train_images.size}"):
        load(spec, tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


def test_an_interrupted_download_s_leftover_is_cleaned(tmp_path, rng, server):
    files = gz_files(tiny_arrays(rng))
    server.serve("a", files)
    cache = tmp_path / "cache"
    os.makedirs(cache)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (cache / f".tmp-{dead}-abc").write_bytes(b"half a file")
    load(tiny_spec(files, [server.url("a")]), cache)
    assert sorted(os.listdir(cache)) == sorted(files)


# ---------------------------------------------------------------- cannot write, cannot connect

def test_a_cache_that_cannot_be_made(tmp_path, rng, server, monkeypatch):
    """Tests may run as root, which ignores permissions: the OSError is injected."""
    files = gz_files(tiny_arrays(rng))
    server.serve("a", files)

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(os, "makedirs", refuse)
    with pytest.raises(ImagesError, match=r"(?s)cannot write the MNIST cache .*: Permission denied .*XDG_CACHE_HOME"):
        load(tiny_spec(files, [server.url("a")]), tmp_path / "cache")
    assert server.requests == []   # nothing was fetched that could not be kept


def test_a_cache_folder_that_cannot_be_written(tmp_path, rng, server, monkeypatch):
    files = gz_files(tiny_arrays(rng))
    server.serve("a", files)
    os.makedirs(tmp_path / "cache")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImagesError, match="cannot write the MNIST cache .*Permission denied"):
        load(tiny_spec(files, [server.url("a")]), tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


def test_a_full_disk_leaves_nothing_half_written(tmp_path, rng, server, monkeypatch):
    files = gz_files(tiny_arrays(rng))
    server.serve("a", files)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ImagesError, match=r"(?s)cannot write the MNIST cache .*: No space left on device.*"
                                          r"Nothing was left half-written"):
        load(tiny_spec(files, [server.url("a"), server.url("b")]), tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []
    assert server.requests == ["/a/train-images-idx3-ubyte.gz"]   # a full disk is not a mirror's fault


def test_the_offline_error_says_what_to_do(tmp_path):
    cache = tmp_path / "cache"
    spec = dataclasses.replace(MNIST, mirrors=(closed_port_url(),))
    with pytest.raises(ImagesError) as err:
        load(spec, cache, images_dir=tmp_path / "nowhere")
    message = str(err.value)
    assert message.startswith(f"MNIST is not on this machine, and downloading train-images-idx3-ubyte.gz "
                              f"failed:\n  {spec.mirrors[0]}train-images-idx3-ubyte.gz: cannot connect (")
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        assert name in message
    assert f"{tmp_path / 'nowhere'} (images_dir, no such folder)" in message
    assert f"put them in\n  {cache}\n" in message
    assert "--images-dir DIR" in message and "MNIST1D_NP_IMAGES=DIR" in message
    assert "MNIST/raw/" in message and "mnist.npz" in message
    with pytest.raises(ImagesError, match=r"not on this machine, and downloads are off \(download=False\)"):
        load(spec, cache, download=False)


def test_the_command_line_fails_in_one_clear_message(tmp_path, rng):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop(images.ENV_VAR, None)
    run = subprocess.run([sys.executable, "-m", "mnist1d_np.images", "fashion", "--no-download"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith("error: Fashion-MNIST is not on this machine, and downloads are off")
    write_folder(tmp_path / "user", tiny_arrays(rng), spec=FASHION)
    run = subprocess.run([sys.executable, "-m", "mnist1d_np.images", "fashion", "--images-dir",
                          str(tmp_path / "user")], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "x: (6, 784) float32" in run.stdout and "x_test: (4, 784) float32" in run.stdout


# ---------------------------------------------------------------- the pinned values

@pytest.mark.parametrize("spec", [MNIST, FASHION], ids=lambda s: s.name)
def test_the_pinned_files_are_well_formed(spec):
    """Their values cannot be checked offline (see images.py for their sources); their form can."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]
    assert [f.name for f in spec.files.values()] == names
    for f in spec.files.values():
        assert len(f.sha256) == 64 and len(f.md5) == 32 and int(f.sha256, 16) >= 0 and int(f.md5, 16) >= 0
        assert f.size > 4000
    assert len({f.sha256 for f in spec.files.values()}) == 4 and len(spec.mirrors) >= 2
    assert all(m.startswith(("https://", "http://")) and m.endswith("/") for m in spec.mirrors)
