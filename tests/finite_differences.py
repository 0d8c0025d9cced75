"""Finite-difference helpers shared by the kernel tests."""
import numpy as np

EPS = 1e-6  # central-difference step


def inner(a, b):
    """<a, b> = sum(a * b)."""
    return float(np.sum(a * b))


def numeric_gradient(f, a):
    """Element-wise central differences of the scalar f at a."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        up = f(a)
        a[i] = old - EPS
        g[i] = (up - f(a)) / (2 * EPS)
        a[i] = old
    return g
