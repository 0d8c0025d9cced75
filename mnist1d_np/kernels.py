"""Numba kernels on raw NumPy arrays: conv1d and its two gradients, and a fused GRU.

Every function here is plain Python jitted on a separate line,
``f = njit(cache=True)(f)``; ``f.py_func`` is the Python function, and with
``NUMBA_DISABLE_JIT=1`` the whole module runs as plain Python. Importing
compiles nothing. Each kernel compiles on its first call for each new
combination of argument types (dtype, memory layout; ints for sizes, bools
for flags). Cold, per dtype: ~5.5 s for the three conv1d kernels, ~7 s for
the bidirectional GRU pair (~4 s more for the one-direction pair); loaded
from numba's on-disk cache, ~0.3 s in all. float32 and float64 are supported
and preserved: pass arrays that share one dtype. C-contiguous arrays are
fastest; other layouts work but compile a separate, slower specialisation.

conv1d: a closed family
-----------------------
Cross-correlation as in ``torch.nn.functional.conv1d`` (no dilation,
groups=1), stride s >= 1, zero padding p >= 0 on both sides::

    y[b, o, t] = sum_{c, k} w[o, c, k] x_pad[b, c, t*s + k]
    x: (B, C_in, L), w: (C_out, C_in, K), y: (B, C_out, L_out),
    L_out = (L + 2p - K) // s + 1

    conv1d_forward(x, w, s, p, bias=None) -> y (+ bias[o], added as y is written)
    conv1d_grad_input(gy, w, s, p, L) -> gx (B, C_in, L)      transposed convolution
    conv1d_grad_weight(x, gy, s, p, K) -> gw (C_out, C_in, K)  correlation

The three are slices of one trilinear form, T(x, w, gy) = <conv1d_forward(x,
w), gy> with <a, b> = sum(a * b), so each is bilinear in its two arrays and
its vector-Jacobian product (VJP) in either one is another member (s, p
unchanged; L = x.shape[2], K = w.shape[2]; c is the incoming cotangent, of
the kernel's output shape)::

    conv1d_forward(x, w)          VJP in x:  c -> conv1d_grad_input(c, w, L)
                                  VJP in w:  c -> conv1d_grad_weight(x, c, K)
    conv1d_grad_input(gy, w, L)   VJP in gy: c -> conv1d_forward(c, w)
                                  VJP in w:  c -> conv1d_grad_weight(c, gy, K)
    conv1d_grad_weight(x, gy, K)  VJP in x:  c -> conv1d_grad_input(gy, c, L)
                                  VJP in gy: c -> conv1d_forward(x, c)

Equivalently, for all x, w, gy: <forward(x, w), gy> = <x, grad_input(gy, w)>
= <w, grad_weight(x, gy)>. The tests check each of the six VJPs as
<kernel(a, b), c> = <a, VJP_a(c)> to 1e-12 in float64. Derivatives of any
order therefore need no further kernels. (The bias enters linearly: its VJP
is a sum over batch and positions, an ordinary op.)

GRU
---
One direction of ``torch.nn.GRU`` (batch_first, one layer, h0 = 0), gates
stacked (r, z, n) in W_ih (3H, I), W_hh (3H, H), b_ih, b_hh (3H,)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

    gru_forward(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache=True) -> (hs, cache)
    gru_backward(g_hs, x, W_ih, W_hh, b_ih, b_hh, reverse, cache)
        -> (gx, gW_ih, gW_hh, gb_ih, gb_hh)

    gru_bidirectional_forward(x, params_f, params_r, keep_cache=True) -> (hs2, (cache_f, cache_r))
    gru_bidirectional_backward(g_hs2, x, params_f, params_r, caches) -> (gx, grads_f, grads_r)

x: (B, T, I), hs and g_hs: (B, T, H); params_*: tuples (W_ih, W_hh, b_ih,
b_hh); grads_*: tuples (gW_ih, gW_hh, gb_ih, gb_hh). A bidirectional GRU is
two directions with separate weights, outputs concatenated as hs2 (B, T, 2H) =
[forward | reverse]; the bidirectional kernels write and read that array
directly (a concatenation and a split would cost ~100 us per step). ``cache``
is one array, ~5 T H floats per sample (layout in the comment before
``_gru_geometry``). The backward kernels are fused back-propagation through
time, first-order only: they are not themselves differentiable.

Tricks
------
* conv1d works on blocks of ~128 (sample, position) columns: the block's
  im2col matrix stays in L1, and the products are small dense loops whose
  innermost loop runs over contiguous columns padded to a multiple of 32,
  which LLVM vectorises with no scalar tail.
* The GRU lays its state out batch-last, (H, lanes), and steps all samples
  of a chunk in lock-step: every per-step loop is a vector loop over lanes,
  the gates included, whose exp is a Pade approximant (libm's exp does not
  vectorise and alone would cost more than all the rest).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

_BLOCK_COLUMNS = 128   # conv1d: (sample, position) columns per block ...
_BLOCK_LANES = 32      # ... padded to a multiple of this: no scalar loop tails
_CHUNK_SAMPLES = 128   # GRU: most samples run in lock-step ...
_CHUNK_LANES = 8       # ... padded to a multiple of this


# ---------------------------------------------------------------------------
# Vectorisable gate nonlinearities
#
# libm's exp is a scalar call (~10 ns here) that stops LLVM from vectorising a
# loop, and it would cost more than the rest of the GRU. So sigmoid and tanh
# are written in terms of e**u = p/q from _exp_fraction, whose jitted version
# is plain arithmetic. The formulas need no literal constants, which would
# promote float32 to float64 in numba.

def _exp_fraction(u):
    """(p, q) with p/q = exp(u) for u clamped to [-80, 80] (finite in float32).

    Pure-Python version: q = 1. The jitted one is below.
    """
    return np.exp(np.clip(u, -80, 80)), type(u)(1)


def _sigmoid(x):
    """1 / (1 + exp(-x))."""
    p, q = _exp_fraction(-x)
    return q / (q + p)


def _tanh(x):
    """(1 - exp(-2x)) / (1 + exp(-2x)); absolute error ~ machine epsilon."""
    p, q = _exp_fraction(-(x + x))
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


@overload(_exp_fraction)
def _exp_fraction_jit(u):
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


_sigmoid = njit(cache=True, inline="always")(_sigmoid)
_tanh = njit(cache=True, inline="always")(_tanh)


# ---------------------------------------------------------------------------
# Small dense products (the building blocks of both conv1d and the GRU)

def _gemm_nn(a, b, c):
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


def _gemm_nt(a, b, c):
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


_gemm_nn = njit(cache=True, fastmath={"contract"})(_gemm_nn)
_gemm_nt = njit(cache=True, fastmath={"reassoc", "contract"})(_gemm_nt)


def _padded(n, lanes):
    """n rounded up to a multiple of lanes."""
    return -(-n // lanes) * lanes


_padded = njit(cache=True)(_padded)


# ---------------------------------------------------------------------------
# conv1d
#
# A block holds nb samples; its columns are m = j*L_out + t (sample j of the
# block, output position t), padded to Mp columns. cols[c*K + k, m] is the
# im2col matrix, so that a block of y is w.reshape(C_out, C_in*K) @ cols.

def _conv_geometry(x_shape, w_shape, stride, padding):
    """Checks shapes; returns L_out, samples per block nb, padded columns Mp."""
    B, C_in, L = x_shape
    C_out, C_w, K = w_shape
    if C_in != C_w:
        raise ValueError("conv1d: x and w disagree on C_in")
    if stride < 1 or padding < 0:
        raise ValueError("conv1d: need stride >= 1 and padding >= 0")
    L_out = (L + 2 * padding - K) // stride + 1
    if L_out < 1 or K < 1:
        raise ValueError("conv1d: kernel longer than the padded input")
    nb = max(1, min(B, _BLOCK_COLUMNS // L_out))
    return L_out, nb, _padded(nb * L_out, _BLOCK_LANES)


def _valid_positions(k, stride, padding, L, L_out):
    """Output positions t0 <= t < t0 + n whose tap k reads x[i0 + (t - t0)*stride]
    inside x, not in the zero padding. Returned as unsigned ints (see _im2col)."""
    t0 = min(L_out, max(0, (padding - k + stride - 1) // stride))
    t1 = max(t0, min(L_out, (L - 1 + padding - k) // stride + 1))
    i0 = max(0, t0 * stride + k - padding)
    return np.uint64(t0), np.uint64(t1 - t0), np.uint64(i0)


def _im2col(x, b0, nb, stride, padding, L_out, K, cols):
    """cols[c*K + k, j*L_out + t] = x_pad[b0 + j, c, t*stride + k] for samples j < nb.

    Padding entries are never written (cols must start zeroed); columns past
    the nb samples are zeroed. Indices are unsigned: numba then skips its
    negative-index wraparound, which made these copies three times slower.
    """
    C, L = x.shape[1], x.shape[2]
    s, width = np.uint64(stride), np.uint64(L_out)
    for k in range(K):
        t0, n, i0 = _valid_positions(k, stride, padding, L, L_out)
        for c in range(C):
            dst = cols[c * K + k]
            for j in range(nb):
                src, m0 = x[b0 + j, c], np.uint64(j) * width + t0
                for t in range(n):
                    dst[m0 + t] = src[i0 + t * s]
    _zero_columns(cols, nb * L_out)


def _col2im(cols, b0, nb, stride, padding, L_out, K, gx):
    """Adjoint of _im2col: gx[b0 + j, c, t*stride + k - padding] += cols[c*K + k, j*L_out + t]."""
    C, L = gx.shape[1], gx.shape[2]
    s, width = np.uint64(stride), np.uint64(L_out)
    for k in range(K):
        t0, n, i0 = _valid_positions(k, stride, padding, L, L_out)
        for c in range(C):
            src = cols[c * K + k]
            for j in range(nb):
                dst, m0 = gx[b0 + j, c], np.uint64(j) * width + t0
                for t in range(n):
                    dst[i0 + t * s] += src[m0 + t]


def _zero_columns(blk, start):
    """blk[:, start:] = 0."""
    for r in range(blk.shape[0]):
        row = blk[r]
        for m in range(np.uint64(start), np.uint64(row.size)):
            row[m] = 0


def _gather_block(y, b0, nb, blk):
    """blk[o, j*L_out + t] = y[b0 + j, o, t] for samples j < nb, zero beyond."""
    width = np.uint64(y.shape[2])
    for o in range(y.shape[1]):
        dst = blk[o]
        for j in range(nb):
            src, m0 = y[b0 + j, o], np.uint64(j) * width
            for t in range(width):
                dst[m0 + t] = src[t]
    _zero_columns(blk, nb * y.shape[2])


def _scatter_block(blk, b0, nb, y, bias):
    """y[b0 + j, o, t] = blk[o, j*L_out + t] + bias[o] for samples j < nb."""
    width = np.uint64(y.shape[2])
    for j in range(nb):
        for o in range(y.shape[1]):
            dst, src, m0, shift = y[b0 + j, o], blk[o], np.uint64(j) * width, bias[o]
            for t in range(width):
                dst[t] = src[m0 + t] + shift


def conv1d_forward(x, w, stride, padding, bias=None):
    """y = conv1d(x, w) + bias: x (B, C_in, L), w (C_out, C_in, K), bias (C_out,)
    or None -> y (B, C_out, L_out). Adding the bias here saves a pass over y."""
    B, C_in, L = x.shape
    C_out, _, K = w.shape
    L_out, nb, Mp = _conv_geometry(x.shape, w.shape, stride, padding)
    shift = np.zeros(C_out, x.dtype) if bias is None else bias
    w2 = np.ascontiguousarray(w).reshape(C_out, C_in * K)
    cols = np.zeros((C_in * K, Mp), x.dtype)
    yb = np.empty((C_out, Mp), x.dtype)
    y = np.empty((B, C_out, L_out), x.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _im2col(x, b0, n, stride, padding, L_out, K, cols)
        yb[:] = 0
        _gemm_nn(w2, cols, yb)
        _scatter_block(yb, b0, n, y, shift)
    return y


def conv1d_grad_input(gy, w, stride, padding, L):
    """Transposed convolution: gy (B, C_out, L_out), w (C_out, C_in, K) -> gx (B, C_in, L)."""
    B, C_out, L_out = gy.shape
    _, C_in, K = w.shape
    L_out_w, nb, Mp = _conv_geometry((B, C_in, L), w.shape, stride, padding)
    if gy.shape[1] != C_out or L_out != L_out_w:
        raise ValueError("conv1d_grad_input: gy has the wrong shape")
    w2t = np.ascontiguousarray(w).reshape(C_out, C_in * K).T.copy()
    gyb = np.empty((C_out, Mp), gy.dtype)
    cols = np.empty((C_in * K, Mp), gy.dtype)
    gx = np.zeros((B, C_in, L), gy.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _gather_block(gy, b0, n, gyb)
        cols[:] = 0
        _gemm_nn(w2t, gyb, cols)
        _col2im(cols, b0, n, stride, padding, L_out, K, gx)
    return gx


def conv1d_grad_weight(x, gy, stride, padding, K):
    """Weight gradient (a correlation): x (B, C_in, L), gy (B, C_out, L_out) -> gw (C_out, C_in, K)."""
    B, C_in, L = x.shape
    C_out, L_out = gy.shape[1], gy.shape[2]
    L_out_x, nb, Mp = _conv_geometry(x.shape, (C_out, C_in, K), stride, padding)
    if gy.shape[0] != B or L_out != L_out_x:
        raise ValueError("conv1d_grad_weight: gy has the wrong shape")
    cols = np.zeros((C_in * K, Mp), x.dtype)
    gyb = np.empty((C_out, Mp), x.dtype)
    gw = np.zeros((C_out, C_in * K), x.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _im2col(x, b0, n, stride, padding, L_out, K, cols)
        _gather_block(gy, b0, n, gyb)
        _gemm_nt(gyb, cols, gw)
    return gw.reshape(C_out, C_in, K)


_conv_geometry = njit(cache=True)(_conv_geometry)
_valid_positions = njit(cache=True)(_valid_positions)
_im2col = njit(cache=True)(_im2col)
_col2im = njit(cache=True)(_col2im)
_zero_columns = njit(cache=True)(_zero_columns)
_gather_block = njit(cache=True)(_gather_block)
_scatter_block = njit(cache=True)(_scatter_block)
conv1d_forward = njit(cache=True)(conv1d_forward)
conv1d_grad_input = njit(cache=True)(conv1d_grad_input)
conv1d_grad_weight = njit(cache=True)(conv1d_grad_weight)


# ---------------------------------------------------------------------------
# GRU, one direction
#
# Samples run in chunks of Bc lanes (at most ~128, a multiple of 8); in a
# chunk the state is (H, Bc), batch last, and every loop below is a vector
# loop over lanes. Lanes past the last sample carry zero input and zero
# gradient, so they never leak into the results.
#
# cache: (n_chunks, T, 5, H, Bc) with n_chunks = ceil(B / 128) and
# Bc = ceil(B / n_chunks) rounded up to a multiple of 8. For sample
# b = c*Bc + l and time t, cache[c, t, :, j, l] = (r, z, n, W_hn h + b_hn, h')
# at hidden unit j, where h is the state before consuming x[b, t] and
# h' = hs[b, t, j] the state after it.

def _gru_geometry(x_shape, W_ih_shape, W_hh_shape, b_ih_shape, b_hh_shape):
    """Checks shapes; returns (H, n_chunks, Bc)."""
    B, T, I = x_shape
    H = W_hh_shape[1]
    if (W_ih_shape[0] != 3 * H or W_ih_shape[1] != I or W_hh_shape[0] != 3 * H
            or b_ih_shape[0] != 3 * H or b_hh_shape[0] != 3 * H):
        raise ValueError("gru: need W_ih (3H, I), W_hh (3H, H), b_ih and b_hh (3H,)")
    n_chunks = -(-B // _CHUNK_SAMPLES)
    return H, n_chunks, _padded(-(-B // max(1, n_chunks)), _CHUNK_LANES)


def _gather_step(x, b0, nb, t, xs):
    """xs[i, l] = x[b0 + l, t, i] for lanes l < nb, zero beyond."""
    xs[:] = 0
    for i in range(x.shape[2]):
        for lane in range(nb):
            xs[i, lane] = x[b0 + lane, t, i]


def _add_step(g, b0, nb, t, col, dh):
    """dh[j, l] += g[b0 + l, t, col + j] for lanes l < nb."""
    for j in range(dh.shape[0]):
        for lane in range(nb):
            dh[j, lane] += g[b0 + lane, t, col + j]


def _scatter_add_step(v, b0, nb, t, col, out):
    """out[b0 + l, t, col + j] += v[j, l] for lanes l < nb."""
    for j in range(v.shape[0]):
        for lane in range(nb):
            out[b0 + lane, t, col + j] += v[j, lane]


def _affine(W, v, bias, out):
    """out = W @ v + bias[:, None]."""
    for g in range(out.shape[0]):
        out[g] = bias[g]
    _gemm_nn(W, v, out)


def _gru_cell(h_prev, gi, gh, out):
    """Gates and new state from the pre-activations, lane-wise.

    h_prev: (H, Bc); gi = W_ih x + b_ih and gh = W_hh h_prev + b_hh: (3H, Bc);
    out: (5, H, Bc) receives r, z, n, gh_n and h'.
    """
    H = h_prev.shape[0]
    for j in range(H):
        ir, iz, i_n = gi[j], gi[H + j], gi[2 * H + j]
        hr, hz, hn = gh[j], gh[H + j], gh[2 * H + j]
        hp, r, z, n, ghn, h = h_prev[j], out[0, j], out[1, j], out[2, j], out[3, j], out[4, j]
        for lane in range(hp.size):
            r[lane] = _sigmoid(ir[lane] + hr[lane])
            z[lane] = _sigmoid(iz[lane] + hz[lane])
            ghn[lane] = hn[lane]
            n[lane] = _tanh(i_n[lane] + r[lane] * hn[lane])
            h[lane] = n[lane] + z[lane] * (hp[lane] - n[lane])  # (1 - z) n + z h


def _gru_run(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache, hs, col):
    """Runs one direction, adding its states into hs[:, :, col:col + H] (zeroed); returns the cache."""
    B, T, I = x.shape
    H, n_chunks, Bc = _gru_geometry(x.shape, W_ih.shape, W_hh.shape, b_ih.shape, b_hh.shape)
    cache = np.empty((n_chunks if keep_cache else 1, T, 5, H, Bc), x.dtype)
    xs = np.empty((I, Bc), x.dtype)
    gi = np.empty((3 * H, Bc), x.dtype)
    gh = np.empty((3 * H, Bc), x.dtype)
    h0 = np.zeros((H, Bc), x.dtype)
    for c in range(n_chunks):
        b0, slot = c * Bc, c if keep_cache else 0
        nb = min(Bc, B - b0)
        h_prev = h0
        for s in range(T):
            t = T - 1 - s if reverse else s
            _gather_step(x, b0, nb, t, xs)
            _affine(W_ih, xs, b_ih, gi)
            _affine(W_hh, h_prev, b_hh, gh)
            _gru_cell(h_prev, gi, gh, cache[slot, t])
            h_prev = cache[slot, t, 4]
            _scatter_add_step(h_prev, b0, nb, t, col, hs)
    return cache


def gru_forward(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache=True):
    """One GRU direction: x (B, T, I) -> (hs (B, T, H), cache).

    W_ih: (3H, I), W_hh: (3H, H), b_ih, b_hh: (3H,), gates stacked (r, z, n).
    hs[:, t] is the state after consuming x[:, t]; with reverse=True time runs
    from T-1 down to 0 (torch's backward direction). cache: (n_chunks, T, 5,
    H, Bc), see above. keep_cache=False (inference) keeps one chunk only,
    which is still the whole cache when B <= 128. Numba compiles a call that
    omits keep_cache apart from one that passes it: pass it explicitly both
    in training and in inference to share one compilation.
    """
    hs = np.zeros((x.shape[0], x.shape[1], W_hh.shape[1]), x.dtype)
    return hs, _gru_run(x, W_ih, W_hh, b_ih, b_hh, reverse, keep_cache, hs, 0)


def _gru_cell_backward(dh, h_prev, gates, dgi, dgh):
    """Back-propagates one step through the gates, lane-wise.

    dh: (H, Bc) gradient w.r.t. the step's output h'; on return it holds
    dh * z, the direct part of the gradient w.r.t. h_prev. gates: (5, H, Bc)
    from the cache. dgi, dgh: (3H, Bc) receive the gradients w.r.t. the
    pre-activations W_ih x + b_ih and W_hh h_prev + b_hh.
    """
    H = dh.shape[0]
    for j in range(H):
        r, z, n, hn, hp, d = gates[0, j], gates[1, j], gates[2, j], gates[3, j], h_prev[j], dh[j]
        gir, giz, gin, ghr, ghz, ghn = dgi[j], dgi[H + j], dgi[2 * H + j], dgh[j], dgh[H + j], dgh[2 * H + j]
        for lane in range(d.size):
            dn = d[lane] - d[lane] * z[lane]                 # dh (1 - z)
            da_n = dn - dn * n[lane] * n[lane]               # through tanh
            da_r = da_n * hn[lane] * (r[lane] - r[lane] * r[lane])
            da_z = d[lane] * (hp[lane] - n[lane]) * (z[lane] - z[lane] * z[lane])
            gir[lane] = da_r
            ghr[lane] = da_r
            giz[lane] = da_z
            ghz[lane] = da_z
            gin[lane] = da_n
            ghn[lane] = da_n * r[lane]
            d[lane] = d[lane] * z[lane]


def _gru_run_backward(g_hs, col, x, W_ih, W_hh, b_ih, b_hh, reverse, cache, gx):
    """BPTT of one direction whose states are hs[:, :, col:col + H], given g_hs
    = dL/dhs. Adds dL/dx into gx; returns (gW_ih, gW_hh, gb_ih, gb_hh)."""
    B, T, I = x.shape
    H, n_chunks, Bc = _gru_geometry(x.shape, W_ih.shape, W_hh.shape, b_ih.shape, b_hh.shape)
    if g_hs.shape[:2] != (B, T) or g_hs.shape[2] < col + H or cache.shape != (n_chunks, T, 5, H, Bc):
        raise ValueError("gru backward: g_hs or cache has the wrong shape")
    W_ih_t, W_hh_t = W_ih.T.copy(), W_hh.T.copy()
    gW_ih, gW_hh = np.zeros((3 * H, I), x.dtype), np.zeros((3 * H, H), x.dtype)
    gb_ih, gb_hh = np.zeros((3 * H, 1), x.dtype), np.zeros((3 * H, 1), x.dtype)
    ones = np.ones((1, Bc), x.dtype)  # bias gradients are products with a row of ones
    xs, gxs, dh = np.empty((I, Bc), x.dtype), np.empty((I, Bc), x.dtype), np.empty((H, Bc), x.dtype)
    dgi, dgh = np.empty((3 * H, Bc), x.dtype), np.empty((3 * H, Bc), x.dtype)
    h0 = np.zeros((H, Bc), x.dtype)
    for c in range(n_chunks):
        b0 = c * Bc
        nb = min(Bc, B - b0)
        dh[:] = 0
        for s in range(T - 1, -1, -1):
            t = T - 1 - s if reverse else s
            h_prev = h0 if s == 0 else cache[c, t + 1 if reverse else t - 1, 4]
            _add_step(g_hs, b0, nb, t, col, dh)
            _gru_cell_backward(dh, h_prev, cache[c, t], dgi, dgh)
            _gemm_nn(W_hh_t, dgh, dh)       # dh_prev = dh z + W_hh^T dgh
            _gemm_nt(dgh, h_prev, gW_hh)
            _gemm_nt(dgh, ones, gb_hh)
            _gather_step(x, b0, nb, t, xs)
            _gemm_nt(dgi, xs, gW_ih)
            _gemm_nt(dgi, ones, gb_ih)
            gxs[:] = 0
            _gemm_nn(W_ih_t, dgi, gxs)
            _scatter_add_step(gxs, b0, nb, t, 0, gx)
    return gW_ih, gW_hh, gb_ih.reshape(3 * H), gb_hh.reshape(3 * H)


def gru_backward(g_hs, x, W_ih, W_hh, b_ih, b_hh, reverse, cache):
    """Back-propagation through time for one GRU direction.

    g_hs: (B, T, H) gradient w.r.t. hs; x, weights, reverse: as given to
    gru_forward; cache: its second output. Returns (gx (B, T, I),
    gW_ih (3H, I), gW_hh (3H, H), gb_ih (3H,), gb_hh (3H,)).
    """
    if g_hs.shape[2] != W_hh.shape[1]:
        raise ValueError("gru_backward: g_hs has the wrong shape")
    gx = np.zeros(x.shape, x.dtype)
    gW_ih, gW_hh, gb_ih, gb_hh = _gru_run_backward(g_hs, 0, x, W_ih, W_hh, b_ih, b_hh, reverse, cache, gx)
    return gx, gW_ih, gW_hh, gb_ih, gb_hh


def gru_bidirectional_forward(x, forward_params, reverse_params, keep_cache=True):
    """Both directions, separate weights: x (B, T, I) -> (hs (B, T, 2H), (cache_f, cache_r)).

    *_params: tuples (W_ih, W_hh, b_ih, b_hh), one per direction; hs =
    [forward | reverse] on the last axis, written in place (no concatenation).
    """
    H = forward_params[1].shape[1]
    hs = np.zeros((x.shape[0], x.shape[1], 2 * H), x.dtype)
    cache_f = _gru_run(x, *forward_params, False, keep_cache, hs, 0)
    cache_r = _gru_run(x, *reverse_params, True, keep_cache, hs, H)
    return hs, (cache_f, cache_r)


def gru_bidirectional_backward(g_hs, x, forward_params, reverse_params, caches):
    """g_hs: (B, T, 2H) -> (gx (B, T, I), grads_f, grads_r), each grads
    (gW_ih, gW_hh, gb_ih, gb_hh) of its direction."""
    H = forward_params[1].shape[1]
    if g_hs.shape[2] != 2 * H:
        raise ValueError("gru_bidirectional_backward: g_hs has the wrong shape")
    gx = np.zeros(x.shape, x.dtype)
    grads_f = _gru_run_backward(g_hs, 0, x, *forward_params, False, caches[0], gx)
    grads_r = _gru_run_backward(g_hs, H, x, *reverse_params, True, caches[1], gx)
    return gx, grads_f, grads_r


_gru_geometry = njit(cache=True)(_gru_geometry)
_gather_step = njit(cache=True)(_gather_step)
_add_step = njit(cache=True)(_add_step)
_scatter_add_step = njit(cache=True)(_scatter_add_step)
_affine = njit(cache=True)(_affine)
_gru_cell = njit(cache=True, error_model="numpy", fastmath={"contract"})(_gru_cell)
_gru_cell_backward = njit(cache=True, fastmath={"contract"})(_gru_cell_backward)
_gru_run = njit(cache=True)(_gru_run)
_gru_run_backward = njit(cache=True)(_gru_run_backward)
gru_forward = njit(cache=True)(gru_forward)
gru_backward = njit(cache=True)(gru_backward)
gru_bidirectional_forward = njit(cache=True)(gru_bidirectional_forward)
gru_bidirectional_backward = njit(cache=True)(gru_bidirectional_backward)
