"""Numba kernels for a learned elementwise activation: a 1 -> H -> 1 tanh MLP
applied to every element of an array (the paper's activation metalearning).

For parameters w, c, a (each (H,)) and every element z of the input,

    f(z)  = sum_j a_j t_j + offset,       t_j = tanh(w_j z + c_j)
    f'(z) = sum_j a_j w_j s_j,            s_j = 1 - t_j^2

Metalearning needs f, f' and, in the final backward pass, the vector-Jacobian
products of both with respect to z and the parameters. Written with array
ops, each of these would build (elements x H) temporaries: 1.28 M numbers
per inner step of the paper's setup, kept for 301 steps. Here every kernel
makes one pass over (element, hidden unit) pairs, holds t and s in
registers, and keeps nothing but its (elements,) or (H,) results.

`tanh` comes from kernels._tanh, which vectorises (libm's does not). Loops
over elements run in parallel chunks, each with its own accumulators for
the parameter gradients. float32 and float64 are both supported; constants
are made in the input's dtype (a bare 1 or 2 would promote float32 to
float64 and stop vectorisation).
"""
import numpy as np
from numba import njit, prange

from .kernels import _tanh

_CHUNK = 256  # elements per parallel task


def _forward(z, w, c, a, offset):
    """f(z) and f'(z) for every element. z: (E,); w, c, a: (H,) -> two (E,) arrays."""
    aw, zero, one = a * w, z.dtype.type(0), z.dtype.type(1)
    y, dy = np.empty_like(z), np.empty_like(z)
    for e in prange(z.size):
        ze = z[e]
        acc_y, acc_dy = zero, zero
        for j in range(w.size):
            t = _tanh(w[j] * ze + c[j])
            acc_y += a[j] * t
            acc_dy += aw[j] * (one - t * t)
        y[e], dy[e] = acc_y + offset, acc_dy
    return y, dy


def _param_vjp(z, w, c, a, g):
    """Gradient of sum_e g_e f(z_e) with respect to w, c and a: three (H,) arrays."""
    one = z.dtype.type(1)
    n_chunks = (z.size + _CHUNK - 1) // _CHUNK
    acc = np.zeros((n_chunks, 3, w.size), z.dtype)  # rows: w, c, a
    for k in prange(n_chunks):
        gw, gc, ga = acc[k, 0], acc[k, 1], acc[k, 2]
        for e in range(k * _CHUNK, min((k + 1) * _CHUNK, z.size)):
            ze, ge = z[e], g[e]
            for j in range(w.size):
                t = _tanh(w[j] * ze + c[j])
                gas = ge * a[j] * (one - t * t)
                ga[j] += ge * t
                gc[j] += gas
                gw[j] += gas * ze
    total = acc.sum(axis=0)
    return total[0], total[1], total[2]


def _slope_vjp(z, w, c, a, h):
    """Vector-Jacobian products of f' with upstream h (E,).

    Returns (gz (E,), gw, gc, ga (H,), f'(z) (E,)): gz_e = h_e f''(z_e), the
    parameter gradients of sum_e h_e f'(z_e), and f' itself (free here).
    """
    aw, zero, one, minus_two = a * w, z.dtype.type(0), z.dtype.type(1), z.dtype.type(-2)
    n_chunks = (z.size + _CHUNK - 1) // _CHUNK
    acc = np.zeros((n_chunks, 3, w.size), z.dtype)  # rows: w, c, a
    gz, dy = np.empty_like(z), np.empty_like(z)
    for k in prange(n_chunks):
        gw, gc, ga = acc[k, 0], acc[k, 1], acc[k, 2]
        for e in range(k * _CHUNK, min((k + 1) * _CHUNK, z.size)):
            ze, he = z[e], h[e]
            acc_ddy, acc_dy = zero, zero
            for j in range(w.size):
                t = _tanh(w[j] * ze + c[j])
                s = one - t * t
                ts2 = minus_two * t * s    # d s / d u
                acc_dy += aw[j] * s
                acc_ddy += aw[j] * w[j] * ts2
                ga[j] += he * w[j] * s
                gc[j] += he * aw[j] * ts2
                gw[j] += he * a[j] * (s + w[j] * ze * ts2)
            gz[e], dy[e] = he * acc_ddy, acc_dy
    total = acc.sum(axis=0)
    return gz, total[0], total[1], total[2], dy


scalar_mlp_forward = njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})(_forward)
scalar_mlp_param_vjp = njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})(_param_vjp)
scalar_mlp_slope_vjp = njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})(_slope_vjp)
