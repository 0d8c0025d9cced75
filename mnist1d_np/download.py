"""A checked download: mirrors tried in turn, the bytes hashed as they arrive,
the file written atomically, so that it appears only when it is complete and right.

    fetch(["https://a.example/f.gz", "https://b.example/f.gz"], "cache/f.gz",
          sha256="...", size=9912422)

Each mirror is tried until one gives the file whose size and checksums are
the pinned ones. The bytes stream into a temporary file in the target's
folder (`fileio.atomic_write`), which is renamed only once every check has
passed. A dropped connection, a wrong size or a checksum mismatch deletes the
temporary file, and the next mirror is tried. When one works, what the others
did is reported on `stream` (stderr by default); when none does, DownloadError
lists it, and nothing is printed twice.

A failure to write (a folder that cannot be written, a full disk) is not the
network's fault and no mirror would change it: that OSError is raised at once,
with nothing left behind. The standard library does the HTTP, so the
checksums are what make a plain-HTTP mirror safe to use.
"""
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request

from . import __version__
from .fileio import atomic_write
from .progress import Progress

__all__ = ["fetch", "DownloadError"]

CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 30.0
USER_AGENT = f"mnist1d_np/{__version__} (Python urllib)"
# What a connection can raise while it opens or reads: URLError and HTTPError,
# refused, reset or timed out sockets (OSError), a bad or cut-off HTTP reply.
NETWORK_ERRORS = (OSError, http.client.HTTPException)


class DownloadError(Exception):
    """No mirror gave the file. failures: [(url, reason)], one per mirror tried."""

    def __init__(self, path, failures):
        self.path, self.failures = str(path), list(failures)
        lines = [f"  {url}: {reason}" for url, reason in self.failures]
        super().__init__(f"could not download {os.path.basename(self.path)}:\n" + "\n".join(lines))


class _MirrorFailed(Exception):
    """This mirror did not give the right file; the next one may."""


def fetch(urls, path, sha256, md5=None, size=None, timeout=TIMEOUT_SECONDS, stream=None):
    """Download the file at the first of `urls` that gives it right; write it to `path`.

    sha256 (and md5, if given): the expected hex digests; size: the expected
    number of bytes, or None. Returns the URL used. Raises DownloadError if no
    mirror gave the file, or the OSError of a failed write (nothing is left
    at `path` or beside it in either case).
    """
    stream = sys.stderr if stream is None else stream
    failures = []
    for url in urls:
        try:
            _fetch_one(url, path, {"sha256": sha256, "md5": md5}, size, timeout, stream)
        except _MirrorFailed as err:
            failures.append((url, str(err)))
            continue
        for failed, reason in failures:   # when no mirror works, the DownloadError alone says it
            stream.write(f"download failed: {failed}: {reason}; {url} worked\n")
        return url
    raise DownloadError(path, failures)


def _fetch_one(url, path, digests, size, timeout, stream):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except NETWORK_ERRORS as err:
        if isinstance(err, urllib.error.HTTPError):
            err.close()   # an HTTPError holds the error page's open connection
        raise _MirrorFailed(_describe(err)) from None
    with response:
        announced = _content_length(response)
        if size is not None and announced is not None and announced != size:
            raise _MirrorFailed(f"the server announces {announced} bytes, the file has {size}")
        expected = size if size is not None else announced
        bar = Progress(max(1, _kilobytes(expected or 0)), f"downloading {os.path.basename(str(path))} (kB)",
                       stream=stream)
        atomic_write(path, lambda f: _copy(response, f, digests, size, announced, bar))


def _copy(response, f, digests, size, announced, bar):
    """Stream the response into f, hashing it; _MirrorFailed (and so no file) unless it is right."""
    # usedforsecurity=False: MD5 here checks integrity, and FIPS-mode Pythons refuse it otherwise
    hashes = {name: hashlib.new(name, usedforsecurity=False) for name, want in digests.items() if want}
    received = 0
    while True:
        chunk = _read(response)
        if not chunk:
            break
        received += len(chunk)
        if size is not None and received > size:
            raise _MirrorFailed(f"the server sent more than the file's {size} bytes")
        for h in hashes.values():
            h.update(chunk)
        f.write(chunk)
        bar.update(_kilobytes(received) - bar.done)
    if announced is not None and received != announced:
        raise _MirrorFailed(f"the connection closed after {received} of {announced} bytes")
    if size is not None and received != size:
        raise _MirrorFailed(f"got {received} bytes, the file has {size}")
    for name, h in hashes.items():
        if h.hexdigest() != digests[name].lower():
            raise _MirrorFailed(f"{name} mismatch: got {h.hexdigest()}, expected {digests[name]} "
                                "(the download was deleted)")


def _read(response):
    try:
        return response.read(CHUNK_BYTES)
    except NETWORK_ERRORS as err:
        raise _MirrorFailed(_describe(err)) from None


def _content_length(response):
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _kilobytes(n):
    return -(-n // 1000)


def _describe(err):
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    if isinstance(err, http.client.IncompleteRead):
        return f"the connection closed early ({len(err.partial)} bytes read)"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__

