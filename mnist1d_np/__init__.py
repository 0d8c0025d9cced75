"""mnist1d_np: a pure-NumPy deep-learning toolkit for MNIST-1D.

Importing the package is light: it loads NumPy only. Plotting (matplotlib)
and the numba kernels are imported by the modules that need them.
"""
__version__ = "0.1.0"

from . import blas

# Small matrices: one BLAS thread is faster and leaves the cores to numba
# and to worker processes. Set OPENBLAS_NUM_THREADS to choose otherwise.
blas.default_to_one_thread()

from .tensor import Tensor, grad, no_grad
from . import ops
