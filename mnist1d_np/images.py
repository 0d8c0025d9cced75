"""MNIST and Fashion-MNIST: the 28x28 image sets MNIST-1D is measured against.

    from mnist1d_np.images import load_images
    data = load_images("mnist")        # or "fashion"; x (60000, 784), x_test (10000, 784), y, y_test

The dictionary has data.get_dataset's keys: `x` and `x_test` are float32
in [0, 1] (pixel / 255), each image's 28 rows one after the other; `y` and
`y_test` are int64 labels 0-9. Nothing is standardised: a model that wants
its input centred does it itself, and says so. Also in it: `name`, `title`,
`classes` (the label names), `image_shape` (28, 28) and `source` (where the
files were read).

Where the files are looked for, in this order:

1. `images_dir`, the chapters' `--images-dir DIR`;
2. the folder in the environment variable MNIST1D_NP_IMAGES;
3. the cache, $XDG_CACHE_HOME/mnist1d_np/images/NAME (by default
   ~/.cache/mnist1d_np/images/mnist and .../fashion), or `cache_dir`.

A folder is used when it holds all four files, under their standard names
(`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each gzipped (.gz) or not), either in the folder
itself or in a layout other tools leave on disk:

- torchvision's root: DIR/MNIST/raw/ or DIR/FashionMNIST/raw/ (or DIR/raw/);
- Keras' cache (~/.keras/datasets, or ~/.keras): DIR/mnist.npz, read without
  pickle, and DIR/fashion-mnist/;
- a clone of zalandoresearch/fashion-mnist: DIR/data/fashion/.

If no folder has them, the missing files are downloaded into the cache (with
download=True: asking for the images is consent to fetch them), from the
mirrors below, each file checked against the size and checksums pinned here.
Files already in a folder, the user's or the cache, are checked by reading
them completely: the IDX headers, the sizes, the counts of images and labels,
the label range. They are never deleted or changed; a bad one is an
ImagesError that names it.

When the files cannot be found or fetched, ImagesError says which files are
missing, where to put them, and how to point the loader at them. A chapter
turns it into one line (experiment.UsageError).

A sweep that trains on the images (chapter 02) names them in each run's
config by `run_spec(data, n_train)`, a digest of the pixels the run reads, and
each run, in whatever worker process, gets them back with `for_run(spec)`.

Command line: `python -m mnist1d_np.images mnist [--images-dir DIR] [--no-download]`
finds or downloads the set and prints what it holds.
"""
import argparse
import dataclasses
import os
import sys
import time
import zipfile

import numpy as np

from .download import DownloadError, fetch
from .fileio import clean_temporary_files, digest
from .idx import IdxError, read_idx

__all__ = ["ENV_VAR", "IMAGE_SETS", "NAMES", "ImageFile", "ImageSet", "ImagesError",
           "image_set", "default_cache_dir", "load_images", "find_images", "how_to_get", "run_spec", "for_run"]

ENV_VAR = "MNIST1D_NP_IMAGES"
ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclasses.dataclass(frozen=True)
class ImageFile:
    """One published file: its name (gzipped), size in bytes and checksums (hex)."""
    name: str
    size: int
    sha256: str
    md5: str

    @property
    def unzipped(self):
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """An IDX image set: its four files, where to download them, and the folders
    other tools keep them in (None where a tool has no such layout)."""
    name: str
    title: str
    homepage: str
    mirrors: tuple               # base URLs, tried in order; each file is mirror + file.name
    train_images: ImageFile
    train_labels: ImageFile
    test_images: ImageFile
    test_labels: ImageFile
    classes: tuple
    torchvision_folder: str      # DIR/<this>/raw/
    keras_npz: str = None        # DIR/<this>, with x_train, y_train, x_test, y_test
    keras_folder: str = None     # DIR/<this>/, the .gz files
    clone_folder: str = None     # DIR/<this>/ in a clone of the set's repository
    image_shape: tuple = (28, 28)

    @property
    def files(self):
        """{role: ImageFile} for the four roles, in ROLES order."""
        return {role: getattr(self, role) for role in ROLES}


# ---------------------------------------------------------------- the published files
#
# A wrong value here would break every user's download, and no test can see it
# (tests serve their own tiny files), so each value is copied from the source named.
#
# MNIST (LeCun, Cortes & Burges; its own page publishes no checksums).
#   size and SHA-256: TensorFlow Datasets, tensorflow_datasets/url_checksums/mnist.txt
#     (the files on https://storage.googleapis.com/cvdf-datasets/mnist/);
#   MD5: torchvision, torchvision/datasets/mnist.py, MNIST.resources
#     (the files on its mirror https://ossci-datasets.s3.amazonaws.com/mnist/).
MNIST = ImageSet(
    name="mnist", title="MNIST", homepage="http://yann.lecun.com/exdb/mnist/",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",      # torchvision's mirror
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),  # TensorFlow Datasets' mirror
    train_images=ImageFile("train-images-idx3-ubyte.gz", 9912422,
                           "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                           "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    train_labels=ImageFile("train-labels-idx1-ubyte.gz", 28881,
                           "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                           "d53e105ee54ea40749a09fcbcd1e9432"),
    test_images=ImageFile("t10k-images-idx3-ubyte.gz", 1648877,
                          "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                          "9fb629c4189551a2d022fa330f9573f3"),
    test_labels=ImageFile("t10k-labels-idx1-ubyte.gz", 4542,
                          "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                          "ec29112dd5afa0611ce80d1b7f02629c"),
    classes=tuple(str(digit) for digit in range(10)),
    torchvision_folder="MNIST", keras_npz="mnist.npz")

# Fashion-MNIST (Xiao, Rasul & Vollgraf, Zalando Research).
#   MD5: its README, github.com/zalandoresearch/fashion-mnist, "Get the Data" table
#     (the publisher's own values);
#   size and SHA-256: TensorFlow Datasets, tensorflow_datasets/url_checksums/fashion_mnist.txt
#     (the files on the S3 website below); Keras lists the same SHA-256 for its copies,
#     keras/src/datasets/fashion_mnist.py, FILE_HASHES.
#   Mirrors: Keras' copy, the repository's data/fashion/ folder, and the S3 website
#     the README links to (plain HTTP only: the checksums make it safe).
FASHION = ImageSet(
    name="fashion", title="Fashion-MNIST", homepage="https://github.com/zalandoresearch/fashion-mnist",
    mirrors=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    train_images=ImageFile("train-images-idx3-ubyte.gz", 26421880,
                           "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                           "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    train_labels=ImageFile("train-labels-idx1-ubyte.gz", 29515,
                           "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                           "25c81989df183df01b3e8a0aad5dffbe"),
    test_images=ImageFile("t10k-images-idx3-ubyte.gz", 4422102,
                          "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                          "bef4ecab320f06d8554ea6380940ec79"),
    test_labels=ImageFile("t10k-labels-idx1-ubyte.gz", 5148,
                          "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                          "bb300cfdad3c16e7a12a480ee83cd310"),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    torchvision_folder="FashionMNIST", keras_folder="fashion-mnist", clone_folder=os.path.join("data", "fashion"))

IMAGE_SETS = {s.name: s for s in (MNIST, FASHION)}
NAMES = tuple(IMAGE_SETS)


class ImagesError(Exception):
    """The image set cannot be loaded. The message says why and what to do; a
    chapter prints it without a traceback."""


def image_set(name):
    """The ImageSet called `name` ('mnist' or 'fashion'); an ImageSet is returned as it is."""
    if isinstance(name, ImageSet):
        return name
    if not isinstance(name, str) or name not in IMAGE_SETS:
        raise ValueError(f"image set must be one of {list(NAMES)}, got {name!r}")
    return IMAGE_SETS[name]


def default_cache_dir(name):
    """$XDG_CACHE_HOME/mnist1d_np/images/<name>, or ~/.cache/mnist1d_np/images/<name>
    (a relative XDG_CACHE_HOME is ignored, as the XDG specification asks)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mnist1d_np", "images", image_set(name).name)


# ---------------------------------------------------------------- finding the files

@dataclasses.dataclass
class _Found:
    where: str                 # the folder, or the .npz file
    paths: dict = None         # {role: path} of an IDX folder; None for an .npz


def _idx_files(folder, spec):
    """{role: path} of the files present in folder (the uncompressed one preferred)."""
    present = {}
    for role, file in spec.files.items():
        for candidate in (file.unzipped, file.name):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                present[role] = path
                break
    return present


def _layouts(root, spec):
    """The folders (and .npz files) under root where the set may be, in the order tried."""
    folders = [root, os.path.join(root, "raw"), os.path.join(root, spec.torchvision_folder, "raw")]
    for sub in (spec.keras_folder, spec.clone_folder):
        if sub:
            folders += [os.path.join(root, sub), os.path.join(root, "datasets", sub)]
    npz = [os.path.join(root, spec.keras_npz), os.path.join(root, "datasets", spec.keras_npz)] \
        if spec.keras_npz else []
    return folders, npz


def _search(root, spec, notes):
    """A _Found for the set under root, or None; partial folders are noted."""
    if root.endswith(".npz") and os.path.isfile(root):   # Keras' file named directly
        return _Found(root)
    folders, npz_files = _layouts(root, spec)
    for folder in folders:
        present = _idx_files(folder, spec)
        if len(present) == len(ROLES):
            return _Found(folder, present)
        if present:
            missing = [spec.files[role].unzipped for role in ROLES if role not in present]
            notes.append(f"{folder} holds {len(present)} of the 4 {spec.title} files (missing "
                         f"{', '.join(missing)}): not used")
    for path in npz_files:
        if os.path.isfile(path):
            return _Found(path)
    return None


def _places(spec, images_dir, cache_dir):
    """[(what, folder)] to search, in order; the cache last."""
    places = []
    if images_dir is not None:
        places.append(("images_dir", os.path.expanduser(str(images_dir))))
    if os.environ.get(ENV_VAR):
        places.append((ENV_VAR, os.path.expanduser(os.environ[ENV_VAR])))
    places.append(("the cache", str(cache_dir) if cache_dir is not None else default_cache_dir(spec.name)))
    return places


def find_images(name, images_dir=None, cache_dir=None):
    """Where the set's files are, without reading or downloading them: the folder
    (or Keras .npz file), or None. Partial folders are skipped."""
    spec = image_set(name)
    for _, root in _places(spec, images_dir, cache_dir):
        found = _search(root, spec, [])
        if found:
            return found.where
    return None


# ---------------------------------------------------------------- reading them

def _read_found(found, spec, in_cache):
    """{role: array} read from a _Found; ImagesError naming the file if one is bad."""
    if found.paths is None:
        return _read_npz(found.where, spec)
    arrays = {}
    for role, path in found.paths.items():
        try:
            arrays[role] = read_idx(path)
        except IdxError as err:
            todo = "delete it, and the next load downloads it again" if in_cache \
                else f"replace it with a good copy of {spec.files[role].name}"
            raise ImagesError(f"{err}\n(the file was left as it is: {todo})") from None
        except OSError as err:
            raise ImagesError(f"{path}: cannot be read ({err.strerror or err})") from None
    return arrays


_NPZ_KEYS = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}


def _read_npz(path, spec):
    """Keras' mnist.npz, without pickle."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key in _NPZ_KEYS.values() if key not in f.files]
            if missing:
                raise ImagesError(f"{path}: not a Keras-style .npz of {spec.title} (no {missing}; it has {f.files})")
            return {role: f[key] for role, key in _NPZ_KEYS.items()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ImagesError(f"{path}: not a readable .npz file ({err})") from None


def _check_set(arrays, found, spec):
    """ImagesError unless arrays hold a well-formed set: uint8 images of the set's
    shape, as many uint8 labels, each below the number of classes."""
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        name_i, name_l = (_file_name(found, f"{split}_{kind}") for kind in ("images", "labels"))
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != tuple(spec.image_shape):
            raise ImagesError(f"{name_i}: holds {images.dtype} {images.shape}, expected uint8 images "
                              f"(N, {spec.image_shape[0]}, {spec.image_shape[1]})")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ImagesError(f"{name_l}: holds {labels.dtype} {labels.shape}, expected uint8 labels (N,)")
        if len(images) == 0 or len(images) != len(labels):
            raise ImagesError(f"{name_i} holds {len(images)} images but {name_l} holds {len(labels)} labels")
        if labels.max() >= len(spec.classes):
            raise ImagesError(f"{name_l}: a label is {int(labels.max())}; {spec.title}'s labels are "
                              f"0 to {len(spec.classes) - 1}")


def _file_name(found, role):
    return found.paths[role] if found.paths else f"{found.where}[{_NPZ_KEYS[role]}]"


def _as_dataset(arrays, spec, where):
    def flat(images):
        x = images.reshape(len(images), -1).astype(np.float32)
        x /= np.float32(255)   # in place: the train set is 188 MB as float32
        return x
    return {"x": flat(arrays["train_images"]), "x_test": flat(arrays["test_images"]),
            "y": arrays["train_labels"].astype(np.int64), "y_test": arrays["test_labels"].astype(np.int64),
            "name": spec.name, "title": spec.title, "classes": spec.classes,
            "image_shape": tuple(spec.image_shape), "source": where}


def _read(found, spec, in_cache=False):
    arrays = _read_found(found, spec, in_cache)
    _check_set(arrays, found, spec)
    return _as_dataset(arrays, spec, found.where)


# ---------------------------------------------------------------- the loader

def load_images(name, images_dir=None, download=True, cache_dir=None, stream=None, timeout=30.0):
    """The image set `name` ('mnist', 'fashion', or an ImageSet) as data.get_dataset's dict.

    Returns {'x': (n_train, 784) float32 in [0, 1], 'x_test': (n_test, 784),
    'y', 'y_test': int64, 'name', 'title', 'classes', 'image_shape': (28, 28),
    'source': the folder or file read}. Looks in images_dir, then $MNIST1D_NP_IMAGES,
    then cache_dir (default: default_cache_dir(name)); downloads the missing files
    into the cache if download is True. stream: where notes and the download's
    progress go (stderr); timeout: the seconds a mirror may stay silent.
    ImagesError if the set cannot be had.
    """
    spec = image_set(name)
    stream = sys.stderr if stream is None else stream
    looked = []
    *user_places, (_, cache) = _places(spec, images_dir, cache_dir)
    for what, root in user_places:
        notes = []
        found = _search(root, spec, notes)
        if found:
            return _read(found, spec)
        exists = os.path.isdir(root)
        looked.append(f"{root} ({what}{'' if exists else ', no such folder'})")
        state = f"holds no complete {spec.title} set" if exists else "no such folder"
        for note in notes + [f"{root} ({what}): {state}; looking further"]:
            stream.write(f"note: {note}\n")
    present = _idx_files(cache, spec)
    if len(present) < len(ROLES):
        missing = [role for role in ROLES if role not in present]
        looked.append(f"{cache} (the cache)")
        if not download:
            raise ImagesError(_not_found(spec, cache, looked, "downloads are off (download=False)."))
        present.update(_download(spec, missing, cache, looked, stream, timeout))
    return _read(_Found(cache, present), spec, in_cache=True)


def _download(spec, roles, cache, looked, stream, timeout):
    """{role: path} of the files fetched into the cache; ImagesError if one cannot be."""
    try:
        os.makedirs(cache, exist_ok=True)
        clean_temporary_files(cache)   # what an interrupted earlier download left
    except OSError as err:
        raise ImagesError(_cannot_write(spec, cache, err)) from None
    stream.write(f"{spec.title}: downloading {len(roles)} file(s) into {cache}\n")
    fetched = {}
    for role in roles:
        file = spec.files[role]
        path = os.path.join(cache, file.name)
        try:
            fetch([mirror + file.name for mirror in spec.mirrors], path, sha256=file.sha256, md5=file.md5,
                  size=file.size, timeout=timeout, stream=stream)
        except DownloadError as err:
            failures = "".join(f"\n  {url}: {reason}" for url, reason in err.failures)
            raise ImagesError(_not_found(spec, cache, looked, f"downloading {file.name} failed:{failures}")) from None
        except OSError as err:
            raise ImagesError(_cannot_write(spec, cache, err)) from None
        fetched[role] = path
    return fetched


def _not_found(spec, cache, looked, reason):
    layouts = f"torchvision's {spec.torchvision_folder}/raw/" + (
        f" and Keras' {spec.keras_npz}" if spec.keras_npz else f" and Keras' {spec.keras_folder}/")
    return (f"{spec.title} is not on this machine, and {reason}\n"
            f"Looked in: {'; '.join(looked)}.\n"
            f"To get it, download its four files (gzipped or not), "
            f"{' '.join(file.name for file in spec.files.values())},\n"
            f"from {spec.homepage} or a mirror ({', '.join(spec.mirrors)}), and put them in\n"
            f"  {cache}\n"
            f"or in a folder of your own, named by --images-dir DIR (load_images(images_dir=DIR)) or by the "
            f"environment variable {ENV_VAR}=DIR\n"
            f"({layouts} are recognised too).")


def _cannot_write(spec, cache, err):
    return (f"cannot write the {spec.title} cache {cache}: {err.strerror or err}"
            f"{f' ({err.filename})' if getattr(err, 'filename', None) else ''}.\n"
            f"Nothing was left half-written. Free some space, or choose another cache "
            f"(XDG_CACHE_HOME=DIR, or load_images(cache_dir=DIR)), or download the four files "
            f"({' '.join(file.name for file in spec.files.values())}) yourself into a folder and "
            f"name it by --images-dir DIR or {ENV_VAR}=DIR.")


def how_to_get(name):
    """One line on how to get the set: for a chapter that runs without it."""
    spec = image_set(name)
    return (f"`python -m mnist1d_np.images {spec.name}` downloads {spec.title} into "
            f"{default_cache_dir(spec.name)}; or --images-dir DIR / {ENV_VAR}=DIR for a folder that holds it")


# ---------------------------------------------------------------- the set as the data of a sweep's runs

def run_spec(data, n_train=None):
    """What identifies runs that train on the first n_train images of `data` (load_images' dict;
    all of them if None or more) and test on all of its test images: {'images': the set's name,
    'train_examples', 'test_examples', 'digest': a hash of exactly those pixels and labels}.
    Not the folder they were read from: the same pixels found elsewhere are the same runs.
    It is small, for a sweep's config; a run gets the images back with for_run. So that the
    sweep's worker processes find the set where this process did, the environment variable
    MNIST1D_NP_IMAGES is set to data['source'] (the processes started from now on inherit it)."""
    n = len(data["y"]) if n_train is None else min(int(n_train), len(data["y"]))
    spec = {"images": data["name"], "train_examples": n, "test_examples": len(data["y_test"]),
            "digest": digest(*_part(data, n))}
    os.environ[ENV_VAR] = data["source"]
    return spec


def for_run(spec):
    """The images a run_spec names: load_images' dict with the first spec['train_examples']
    training images and all the test images, read from $MNIST1D_NP_IMAGES or the cache (never
    downloaded: the sweep that planned the run found the set). ImagesError if the files found
    now hold other pixels than the ones the run was planned with."""
    data = load_images(spec["images"], download=False)
    x, y, x_test, y_test = _part(data, spec["train_examples"])
    if len(y) != spec["train_examples"] or len(y_test) != spec["test_examples"] or \
            digest(x, y, x_test, y_test) != spec["digest"]:
        raise ImagesError(f"{data['source']}: not the {data['title']} files this sweep was planned with "
                          f"(its runs read {spec['train_examples']} + {spec['test_examples']} images, digest "
                          f"{spec['digest']})")
    return {**data, "x": x, "y": y}


def _part(data, n):
    return data["x"][:n], data["y"][:n], data["x_test"], data["y_test"]


# ---------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mnist1d_np.images",
        description=f"Find (or download into the cache) an image set, check it and say what it holds. "
                    f"Searched: --images-dir, then ${ENV_VAR}, then the cache.")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--images-dir", metavar="DIR", help="a folder that holds the four files (or a "
                        "torchvision root, or Keras' datasets folder)")
    parser.add_argument("--cache-dir", metavar="DIR", help="the cache folder (default: "
                        f"{os.path.join(os.path.dirname(default_cache_dir('mnist')), 'NAME')})")
    parser.add_argument("--no-download", action="store_true", help="only look; never use the network")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        data = load_images(args.name, args.images_dir, download=not args.no_download, cache_dir=args.cache_dir)
    except ImagesError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    seconds = time.perf_counter() - start
    print(f"{data['title']} from {data['source']} in {seconds:.2f} s")
    for split in ("", "_test"):
        x, y = data["x" + split], data["y" + split]
        counts = " ".join(str(c) for c in np.bincount(y, minlength=len(data["classes"])))
        print(f"  x{split}: {x.shape} {x.dtype} in [{x.min():g}, {x.max():g}], mean {x.mean():.4f};"
              f" labels per class: {counts}")


if __name__ == "__main__":
    main()
