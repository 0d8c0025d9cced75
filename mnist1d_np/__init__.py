"""mnist1d_np: a pure-NumPy deep-learning toolkit for MNIST-1D.

Importing the package is light: it loads NumPy only. Plotting (matplotlib)
and the numba kernels are imported by the modules that need them.
"""
import os

__version__ = "0.1.0"

# Our matrices are small (a batch of 100 by at most a few hundred units), where
# OpenBLAS's threads cost more than they save and, on 2 cores, fight numba's
# threads. This takes effect only if NumPy is not imported yet, which is why
# the chapters import mnist1d_np first. Set OPENBLAS_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .tensor import Tensor, grad, no_grad
from . import ops
