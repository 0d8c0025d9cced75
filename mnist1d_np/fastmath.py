"""Fast numerics shared by the numba kernels: a vectorisable exp, and small gemms.

Nothing here is a concept of deep learning; these are the speed tricks the
kernels in ``conv1d.py``, ``gru.py`` and ``learned_activation.py`` stand on,
kept in one place so that those files read as what they compute. Each trick
sits next to the plain formula it replaces, and ``tests/test_fastmath.py``
checks it against that formula:

    exp_fraction(u) = (p, q) with p / q = exp(u)     (plain: np.exp)
    sigmoid(x)      = 1 / (1 + exp(-x))
    tanh(x)         = (1 - exp(-2x)) / (1 + exp(-2x)) (plain: np.tanh)
    gemm_nn(a, b, c): c += a @ b
    gemm_nt(a, b, c): c += a @ b.T
    padded(n, lanes): n rounded up to a multiple of lanes

Every function is plain Python jitted on a separate line, with numba's
on-disk cache; ``NUMBA_DISABLE_JIT=1`` runs them as Python.

And one trick of scheduling, not arithmetic: ``ThreadChooser`` runs a short
parallel kernel with one thread or all of numba's, whichever has lately been
faster, so that a busy core elsewhere on the machine does not stall it.
"""
import math
import time

import numba

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype


# ---------------------------------------------------------------------------
# A vectorisable exp, and the gate nonlinearities built on it
#
# libm's exp is a scalar call (~10 ns here) that stops LLVM from vectorising a
# loop, and it would cost more than the rest of the GRU. So sigmoid and tanh
# are written in terms of e**u = p/q from exp_fraction, whose jitted version
# is plain arithmetic. The formulas need no literal constants, which would
# promote float32 to float64 in numba.

def exp_fraction(u):
    """(p, q) with p/q = exp(u) for u clamped to [-80, 80] (finite in float32).

    Pure-Python version: q = 1. The jitted one is below.
    """
    return np.exp(np.clip(u, -80, 80)), type(u)(1)


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    p, q = exp_fraction(-x)
    return q / (q + p)


def tanh(x):
    """(1 - exp(-2x)) / (1 + exp(-2x)); absolute error ~ machine epsilon."""
    p, q = exp_fraction(-(x + x))
    return (q - p) / (q + p)


@intrinsic
def _pow2(typingctx, k):
    """2**k for an integer-valued float k, |k| < 126, written into the exponent bits."""
    if not isinstance(k, types.Float):
        return None
    width, mantissa, bias = (32, 23, 127) if k.bitwidth == 32 else (64, 52, 1023)

    def codegen(context, builder, signature, args):
        itype = ir.IntType(width)
        i = builder.fptosi(args[0], ir.IntType(32))  # f64 -> i32 vectorises on AVX2, f64 -> i64 does not
        if width == 64:
            i = builder.sext(i, itype)
        bits = builder.shl(builder.add(i, ir.Constant(itype, bias)), ir.Constant(itype, mantissa))
        return builder.bitcast(bits, context.get_value_type(k))
    return k(k), codegen


def _pade_coefficients(m):
    """c_j of the [m/m] Pade approximant of exp: P(r) = sum_j c_j r^j, exp(r) ~ P(r)/P(-r)."""
    return [math.factorial(2 * m - j) * math.factorial(m)
            / (math.factorial(2 * m) * math.factorial(j) * math.factorial(m - j)) for j in range(m + 1)]


@overload(exp_fraction)
def exp_fraction_jit(u):
    """exp(u) = 2**k exp(r), k = round(u / ln 2), |r| <= ln(2)/2, and exp(r) = P(r)/P(-r).

    r uses Cody-Waite's split ln 2 = hi + lo (k*hi is exact). The [m/m]
    Pade approximant is below one ulp for m = 3 (float32) and 6 (float64);
    P(+-r) = E(r^2) +- r O(r^2) share their even and odd parts.
    """
    if not isinstance(u, types.Float):
        return None
    f = as_dtype(u).type
    if u.bitwidth == 32:
        ln2_hi, ln2_lo, c = f(0.693359375), f(-2.12194440e-4), _pade_coefficients(3)
    else:
        ln2_hi, ln2_lo, c = f(6.93147180369123816490e-01), f(1.90821492927058770002e-10), _pade_coefficients(6)
    even, odd = tuple(f(v) for v in c[0::2][::-1]), tuple(f(v) for v in c[1::2][::-1])
    lo, hi, log2e, half, zero = f(-80), f(80), f(1 / math.log(2)), f(0.5), f(0)

    def impl(u):
        if u < lo:  # comparisons, not min/max, so that NaN stays NaN
            u = lo
        if u > hi:
            u = hi
        k = np.floor(u * log2e + half)
        r = (u - k * ln2_hi) - k * ln2_lo
        s = r * r
        e = zero
        for c in even:
            e = e * s + c
        o = zero
        for c in odd:
            o = o * s + c
        o = o * r
        return _pow2(k) * (e + o), e - o
    return impl


sigmoid = njit(cache=True, inline="always")(sigmoid)
tanh = njit(cache=True, inline="always")(tanh)


# ---------------------------------------------------------------------------
# Small dense products (the building blocks of both conv1d and the GRU)

def gemm_nn(a, b, c):
    """c += a @ b for a: (N, Q), b: (Q, M), c: (N, M), all C-contiguous.

    Rows of b are combined four at a time (then two, then one) per pass over
    a row of c: one load and store of c per four multiply-adds. q is the
    outer loop so that those rows of b stay in L1 while every row of c uses them.
    """
    N, Q = a.shape
    for q in range(0, Q - 3, 4):
        b0, b1, b2, b3 = b[q], b[q + 1], b[q + 2], b[q + 3]
        for o in range(N):
            a0, a1, a2, a3, row = a[o, q], a[o, q + 1], a[o, q + 2], a[o, q + 3], c[o]
            for m in range(row.size):
                row[m] += a0 * b0[m] + a1 * b1[m] + a2 * b2[m] + a3 * b3[m]
    q = Q - Q % 4
    if Q - q >= 2:
        b0, b1 = b[q], b[q + 1]
        for o in range(N):
            a0, a1, row = a[o, q], a[o, q + 1], c[o]
            for m in range(row.size):
                row[m] += a0 * b0[m] + a1 * b1[m]
        q += 2
    if q < Q:
        b0 = b[q]
        for o in range(N):
            a0, row = a[o, q], c[o]
            for m in range(row.size):
                row[m] += a0 * b0[m]


def gemm_nt(a, b, c):
    """c += a @ b.T for a: (N, M), b: (Q, M), c: (N, Q): dot products over long rows.

    Two rows of a share each load of a row of b. Jitted with fastmath
    'reassoc', which lets LLVM vectorise the sums (it only changes their
    order, ~1e-16 relative).
    """
    N, Q = c.shape
    for o in range(0, N - 1, 2):
        a0, a1 = a[o], a[o + 1]
        for q in range(Q):
            br, s0, s1 = b[q], c[o, q], c[o + 1, q]
            for m in range(br.size):
                s0 += a0[m] * br[m]
                s1 += a1[m] * br[m]
            c[o, q], c[o + 1, q] = s0, s1
    if N % 2:
        ar = a[N - 1]
        for q in range(Q):
            br, s0 = b[q], c[N - 1, q]
            for m in range(br.size):
                s0 += ar[m] * br[m]
            c[N - 1, q] = s0


gemm_nn = njit(cache=True, fastmath={"contract"})(gemm_nn)
gemm_nt = njit(cache=True, fastmath={"reassoc", "contract"})(gemm_nt)


def padded(n, lanes):
    """n rounded up to a multiple of lanes."""
    return -(-n // lanes) * lanes


padded = njit(cache=True)(padded)


# ---------------------------------------------------------------------------
# How many threads a short parallel kernel should use, measured as it runs
#
# A parallel (prange) kernel forks numba's threads and joins them at its end;
# the join waits for the slowest thread. When another process keeps a core
# busy, the thread that shares that core runs only in the scheduler's
# timeslices, so a kernel of half a millisecond waits several: chapter 05's
# outer step (thousands of such calls) took 11.2 s with two threads and 1.8 s
# with one, against 1.0 s with two on an idle machine. No fixed choice is right
# for both, and the load comes and goes, so the chooser measures, per problem
# size: every `every` calls it runs `trials` calls with one thread and
# `trials` with all, alternately (real calls, nothing is thrown away), and
# keeps the setting with the smaller total until the next probe. The price is
# `trials` calls at the worse setting per `every` calls: ~1 % when idle, ~5 %
# when busy. The kernels' results must not depend on the thread count (ours
# accumulate per fixed-size chunk), so the numbers stay deterministic.

class ThreadChooser:
    """``chooser(*args)`` calls ``kernel(*args)`` with 1 or all numba threads, whichever was faster lately.

    kernel: a parallel jitted function. key(*args): a hashable naming the
    call's problem size (timings are only compared within one size). With
    one numba thread in all (NUMBA_NUM_THREADS=1) or the JIT disabled, it
    simply calls the kernel. The thread count is restored after each call.
    """

    def __init__(self, kernel, key, every=200, trials=2):
        self.kernel, self.key, self.every, self.trials = kernel, key, every, trials
        self.calls, self.seconds, self.chosen = {}, {}, {}

    def __call__(self, *args):
        most = numba.config.NUMBA_NUM_THREADS
        if most == 1 or numba.config.DISABLE_JIT:
            return self.kernel(*args)
        key = self.key(*args)
        n = self.calls.get(key, -1)  # call -1 is a warm-up (it may compile): not timed
        self.calls[key] = n + 1
        phase = n % self.every
        if n < 0 or phase >= 2 * self.trials:
            return self._run(self.chosen.get(key, most), args)
        threads = 1 if phase % 2 == 0 else most  # the probe alternates 1 and all
        start = time.perf_counter()
        out = self._run(threads, args)
        totals = self.seconds.setdefault(key, {1: 0.0, most: 0.0})
        totals[threads] += time.perf_counter() - start
        if phase == 2 * self.trials - 1:  # the probe's last call: choose, and start afresh
            self.chosen[key] = min(totals, key=totals.get)
            del self.seconds[key]
        return out

    def _run(self, threads, args):
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return self.kernel(*args)
        finally:
            numba.set_num_threads(previous)
