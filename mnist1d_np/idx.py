"""The IDX file format of MNIST and Fashion-MNIST, read and written in NumPy.

An IDX file is a header and then the array, row-major, big-endian:

    bytes 0-1   0x00 0x00                    (the magic number starts with two zeros)
    byte  2     the element type             (0x08 = unsigned byte, see IDX_TYPES)
    byte  3     the number of dimensions d
    4 d bytes   each dimension's size, a big-endian uint32
    the rest    the values, prod(sizes) of them

MNIST's images are (60000, 28, 28) unsigned bytes, magic 0x00000803; its
labels (60000,), magic 0x00000801. The format is LeCun's, described on the
MNIST page; the published files are gzipped, so a reader takes both.

A file is accepted only if it is complete: the header's sizes must account
for every byte, no more and no fewer. A truncated download or a file with
trailing bytes is an IdxError that names the file.
"""
import gzip
import zlib

import numpy as np

__all__ = ["IDX_TYPES", "IdxError", "read_idx", "parse_idx", "idx_bytes"]

GZIP_MAGIC = b"\x1f\x8b"
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_TYPE_CODE = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}


class IdxError(ValueError):
    """A file that is not a complete IDX file; the message names it."""


def read_idx(path):
    """The array in the IDX file at `path`, gzipped or not (told by its first bytes,
    not its name), in native byte order. IdxError if it is not a complete IDX file."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == GZIP_MAGIC:
        raw = _gunzip(raw, path)
    return parse_idx(raw, name=str(path))


def _gunzip(raw, path):
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise IdxError(f"{path}: truncated gzip file (the compressed stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise IdxError(f"{path}: damaged gzip file ({err})") from None


def parse_idx(raw, name="<bytes>"):
    """The array held by the IDX bytes `raw`; `name` is used in error messages."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise IdxError(f"{name}: not an IDX file (magic number {raw[:4].hex() or 'missing'}, "
                       "expected 0000 then a type byte and a number of dimensions)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise IdxError(f"{name}: unknown IDX element type 0x{code:02x} (known: "
                       f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
    if ndim == 0:
        raise IdxError(f"{name}: the IDX header gives 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{name}: truncated IDX header ({len(raw)} bytes, {header} needed for {ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    held = len(raw) - header
    if held != expected:
        kind = "truncated" if held < expected else "trailing bytes after the data"
        raise IdxError(f"{name}: {kind}: the header gives shape {shape} of {dtype.newbyteorder('=').name}, "
                       f"{expected} bytes of data, but the file holds {held}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx_bytes(array):
    """The IDX bytes (not gzipped) of `array`, one of the IDX_TYPES' dtypes."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _TYPE_CODE or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions and an IDX dtype "
                         f"({sorted(d.name for d in _TYPE_CODE)}), got {array.dtype} with {array.ndim}")
    code = _TYPE_CODE[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes()
