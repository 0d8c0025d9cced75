"""Best-effort control of OpenBLAS's thread count at run time.

Our matrices are small (a batch of 100 by at most a few hundred units).
There, OpenBLAS's threads cost more than they save, and on 2 cores they
fight numba's threads and the other worker processes: with one core busy
elsewhere, a 2-thread matmul of this size ran ~10x slower here. Setting
OPENBLAS_NUM_THREADS only works before NumPy is imported, so, like
threadpoolctl, we find the OpenBLAS that NumPy loaded and call its setter.
Where that is impossible (no OpenBLAS, not Linux), nothing happens.
"""
import ctypes
import os

_PREFIXES = ("openblas", "scipy_openblas")  # plain builds, and NumPy's own wheels
_SUFFIXES = ("", "64_")


def _openblas_functions(action):
    """The loaded OpenBLAS libraries' `<prefix>_<action>_num_threads<suffix>` functions."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return []
    functions = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                fn = getattr(lib, f"{prefix}_{action}_num_threads{suffix}", None)
                if fn is not None:
                    functions.append(fn)
    return functions


def get_num_threads():
    """OpenBLAS's thread count, or None if no OpenBLAS could be found."""
    getters = _openblas_functions("get")
    return int(getters[0]()) if getters else None


def set_num_threads(n):
    """Set OpenBLAS's thread count (n >= 1); returns True if an OpenBLAS was found."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    setters = _openblas_functions("set")
    for fn in setters:
        fn(int(n))
    return bool(setters)


def default_to_one_thread():
    """One BLAS thread, unless the user chose a number with OPENBLAS_NUM_THREADS."""
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        import numpy  # noqa: F401  (loads OpenBLAS, so that it can be found)
        set_num_threads(1)
