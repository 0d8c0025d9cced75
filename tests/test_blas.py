"""Run-time control of OpenBLAS threads (skipped where no OpenBLAS is found)."""
import os

import pytest

from mnist1d_np import blas

needs_openblas = pytest.mark.skipif(blas.get_num_threads() is None, reason="no OpenBLAS found")


@needs_openblas
@pytest.mark.skipif("OPENBLAS_NUM_THREADS" in os.environ, reason="the user chose a thread count")
def test_import_leaves_one_blas_thread():
    assert blas.get_num_threads() == 1


@needs_openblas
def test_set_and_get_round_trip():
    before = blas.get_num_threads()
    try:
        assert blas.set_num_threads(2) is True
        assert blas.get_num_threads() == 2
    finally:
        blas.set_num_threads(before)


def test_bad_thread_count_names_the_argument():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        blas.set_num_threads(0)
