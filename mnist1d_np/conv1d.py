"""1-D convolution: numba kernels, and the op that makes them differentiable.

What it computes: cross-correlation as ``torch.nn.functional.conv1d`` (no
dilation, groups=1), stride s >= 1, zero padding p >= 0 on both sides::

    y[b, o, t] = sum_{c, k} w[o, c, k] x_pad[b, c, t*s + k] (+ bias[o])
    x: (B, C_in, L), w: (C_out, C_in, K), y: (B, C_out, L_out),
    L_out = (L + 2p - K) // s + 1

A closed family
---------------
Three kernels on raw arrays::

    forward_kernel(x, w, s, p, bias=None) -> y
    grad_input_kernel(gy, w, s, p, L) -> gx (B, C_in, L)      transposed convolution
    grad_weight_kernel(x, gy, s, p, K) -> gw (C_out, C_in, K)  correlation

are slices of one trilinear form, T(x, w, gy) = <forward(x, w), gy> with
<a, b> = sum(a * b). So each is bilinear in its two arrays, and its
vector-Jacobian product (VJP) in either one is another member (s, p
unchanged; L = x.shape[2], K = w.shape[2]; c is the incoming cotangent)::

    forward(x, w)           VJP in x:  c -> grad_input(c, w, L)
                            VJP in w:  c -> grad_weight(x, c, K)
    grad_input(gy, w, L)    VJP in gy: c -> forward(c, w)
                            VJP in w:  c -> grad_weight(c, gy, K)
    grad_weight(x, gy, K)   VJP in x:  c -> grad_input(gy, c, L)
                            VJP in gy: c -> forward(x, c)

Equivalently, for all x, w, gy: <forward(x, w), gy> = <x, grad_input(gy, w)>
= <w, grad_weight(x, gy)>; the tests check each of the six VJPs that way.
The ops ``conv1d``, ``conv1d_grad_input`` and ``conv1d_grad_weight`` below
wrap the kernels with exactly these rules, so conv1d is differentiable to any
order with no further kernels (metalearning through a CNN works). The bias
enters linearly: its VJP is a sum over batch and positions, an ordinary op.

How it is fast
--------------
The kernels work on blocks of ~128 (sample, position) columns: the block's
im2col matrix stays in L1, and the products are small dense loops
(``fastmath.gemm_nn``/``gemm_nt``) whose innermost loop runs over contiguous
columns padded to a multiple of 32, which LLVM vectorises with no scalar
tail. Wide layers (C_out * C_in * K >= BLAS_FROM, such as chapter 06's
CNN with 100 channels) take another path to the same kernels: the im2col
matrix of many samples at once, multiplied by NumPy's BLAS, which is faster
there (see "Wide layers" below). float32 and float64 are supported and
preserved. Cold, the three kernels compile in ~5 s per dtype; from numba's
on-disk cache they load in a fraction of a second. Importing compiles nothing.
"""
import numpy as np
from numba import njit

from . import ops
from .fastmath import gemm_nn, gemm_nt, padded
from .tensor import make_op

_BLOCK_COLUMNS = 128   # (sample, position) columns per block ...
_BLOCK_LANES = 32      # ... padded to a multiple of this: no scalar loop tails


# conv1d
#
# A block holds nb samples; its columns are m = j*L_out + t (sample j of the
# block, output position t), padded to Mp columns. cols[c*K + k, m] is the
# im2col matrix, so that a block of y is w.reshape(C_out, C_in*K) @ cols.

def _conv_geometry(x_shape, w_shape, stride, padding):
    """L_out, samples per block nb, padded columns Mp (shapes were checked by the op)."""
    B, C_in, L = x_shape
    K = w_shape[2]
    L_out = (L + 2 * padding - K) // stride + 1
    nb = max(1, min(B, _BLOCK_COLUMNS // L_out))
    return L_out, nb, padded(nb * L_out, _BLOCK_LANES)


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


def forward_kernel(x, w, stride, padding, bias=None):
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
        gemm_nn(w2, cols, yb)
        _scatter_block(yb, b0, n, y, shift)
    return y


def grad_input_kernel(gy, w, stride, padding, L):
    """Transposed convolution: gy (B, C_out, L_out), w (C_out, C_in, K) -> gx (B, C_in, L)."""
    B, C_out, L_out = gy.shape
    _, C_in, K = w.shape
    L_out_w, nb, Mp = _conv_geometry((B, C_in, L), w.shape, stride, padding)
    if gy.shape[1] != C_out or L_out != L_out_w:
        raise ValueError("grad_input_kernel: gy has the wrong shape")
    w2t = np.ascontiguousarray(w).reshape(C_out, C_in * K).T.copy()
    gyb = np.empty((C_out, Mp), gy.dtype)
    cols = np.empty((C_in * K, Mp), gy.dtype)
    gx = np.zeros((B, C_in, L), gy.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _gather_block(gy, b0, n, gyb)
        cols[:] = 0
        gemm_nn(w2t, gyb, cols)
        _col2im(cols, b0, n, stride, padding, L_out, K, gx)
    return gx


def grad_weight_kernel(x, gy, stride, padding, K):
    """Weight gradient (a correlation): x (B, C_in, L), gy (B, C_out, L_out) -> gw (C_out, C_in, K)."""
    B, C_in, L = x.shape
    C_out, L_out = gy.shape[1], gy.shape[2]
    L_out_x, nb, Mp = _conv_geometry(x.shape, (C_out, C_in, K), stride, padding)
    if gy.shape[0] != B or L_out != L_out_x:
        raise ValueError("grad_weight_kernel: gy has the wrong shape")
    cols = np.zeros((C_in * K, Mp), x.dtype)
    gyb = np.empty((C_out, Mp), x.dtype)
    gw = np.zeros((C_out, C_in * K), x.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _im2col(x, b0, n, stride, padding, L_out, K, cols)
        _gather_block(gy, b0, n, gyb)
        gemm_nt(gyb, cols, gw)
    return gw.reshape(C_out, C_in, K)


_conv_geometry = njit(cache=True)(_conv_geometry)
_valid_positions = njit(cache=True)(_valid_positions)
_im2col = njit(cache=True)(_im2col)
_col2im = njit(cache=True)(_col2im)
_zero_columns = njit(cache=True)(_zero_columns)
_gather_block = njit(cache=True)(_gather_block)
_scatter_block = njit(cache=True)(_scatter_block)
forward_kernel = njit(cache=True)(forward_kernel)
grad_input_kernel = njit(cache=True)(grad_input_kernel)
grad_weight_kernel = njit(cache=True)(grad_weight_kernel)


# ---------------------------------------------------------------------------
# Wide layers: the same three kernels as whole-batch BLAS products
#
# The gemms above run at ~40 GFLOP/s on one core here; OpenBLAS's sgemm at
# ~100. For narrow layers (the paper's 25 channels) that does not matter: the
# products are small and the block kernels, which never leave L1, win. For
# wide ones (chapter 06's CNN has up to 100 channels) the products are most of
# the time, so there we build the im2col matrix of many samples at once, with
# the same copy helpers, and hand the product to NumPy, that is, to BLAS.
# The threshold is on C_out * C_in * K, the multiply-adds per output position,
# and was measured with benchmarks/bench_kernels.py --compare-paths (one
# idle core, the three kernels summed): at 25 channels (1875) the paths are
# even, at 32 (3072) the BLAS path takes 0.88x the time, at 100 (30000)
# 0.69x. The paper-sized layers (chapters 02, 07-09) thus stay on the block
# kernels, and their results are unchanged.

BLAS_FROM = 3072           # C_out * C_in * K at which the BLAS path takes over
_BLAS_CHUNK = 1 << 19      # im2col entries per product (2 MiB in float32)


def uses_blas(w_shape):
    """True if a weight of this shape (C_out, C_in, K) takes the BLAS path."""
    return w_shape[0] * w_shape[1] * w_shape[2] >= BLAS_FROM


def _chunk_geometry(x_shape, w_shape, stride, padding):
    """L_out and samples per product nb: the im2col matrix stays near _BLAS_CHUNK entries."""
    B, C_in, L = x_shape
    K = w_shape[2]
    L_out = (L + 2 * padding - K) // stride + 1
    return L_out, max(1, min(B, _BLAS_CHUNK // (C_in * K * L_out)))


def blas_forward(x, w, stride, padding, bias=None):
    """forward_kernel, with the products in BLAS."""
    B, C_in, _ = x.shape
    C_out, _, K = w.shape
    L_out, nb = _chunk_geometry(x.shape, w.shape, stride, padding)
    w2 = np.ascontiguousarray(w).reshape(C_out, C_in * K)
    cols = np.zeros((C_in * K, nb * L_out), x.dtype)      # padding entries stay zero
    y = np.empty((B, C_out, L_out), x.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _im2col(x, b0, n, stride, padding, L_out, K, cols)
        block = (w2 @ cols).reshape(C_out, nb, L_out)[:, :n].transpose(1, 0, 2)
        if bias is None:
            y[b0:b0 + n] = block
        else:
            np.add(block, bias[:, None], out=y[b0:b0 + n])
    return y


def blas_grad_input(gy, w, stride, padding, L):
    """grad_input_kernel, with the products in BLAS."""
    B, C_out, L_out = gy.shape
    _, C_in, K = w.shape
    L_out_w, nb = _chunk_geometry((B, C_in, L), w.shape, stride, padding)
    if C_out != w.shape[0] or L_out != L_out_w:
        raise ValueError("blas_grad_input: gy has the wrong shape")
    w2t = np.ascontiguousarray(w).reshape(C_out, C_in * K).T
    gyb = np.empty((C_out, nb * L_out), gy.dtype)
    gx = np.zeros((B, C_in, L), gy.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _gather_block(gy, b0, n, gyb)
        _col2im(w2t @ gyb, b0, n, stride, padding, L_out, K, gx)
    return gx


def blas_grad_weight(x, gy, stride, padding, K):
    """grad_weight_kernel, with the products in BLAS."""
    B, C_in, _ = x.shape
    C_out, L_out = gy.shape[1], gy.shape[2]
    L_out_x, nb = _chunk_geometry(x.shape, (C_out, C_in, K), stride, padding)
    if gy.shape[0] != B or L_out != L_out_x:
        raise ValueError("blas_grad_weight: gy has the wrong shape")
    cols = np.zeros((C_in * K, nb * L_out), x.dtype)
    gyb = np.empty((C_out, nb * L_out), x.dtype)
    gw = np.zeros((C_out, C_in * K), x.dtype)
    for b0 in range(0, B, nb):
        n = min(nb, B - b0)
        _im2col(x, b0, n, stride, padding, L_out, K, cols)
        _gather_block(gy, b0, n, gyb)
        gw += gyb @ cols.T
    return gw.reshape(C_out, C_in, K)


def forward(x, w, stride, padding, bias=None):
    """y = conv1d(x, w) + bias on arrays, by whichever path is faster for w's shape."""
    return (blas_forward if uses_blas(w.shape) else forward_kernel)(x, w, stride, padding, bias)


def grad_input(gy, w, stride, padding, L):
    """The transposed convolution on arrays, by whichever path is faster for w's shape."""
    return (blas_grad_input if uses_blas(w.shape) else grad_input_kernel)(gy, w, stride, padding, L)


def grad_weight(x, gy, stride, padding, K):
    """The weight gradient on arrays, by whichever path is faster for the weight's shape."""
    wide = uses_blas((gy.shape[1], x.shape[1], K))
    return (blas_grad_weight if wide else grad_weight_kernel)(x, gy, stride, padding, K)


# ---------------------------------------------------------------------------
# The differentiable ops

def _contiguous(t):
    return np.ascontiguousarray(t.data)


def _check_conv(x, w, stride, padding):
    if x.ndim != 3 or w.ndim != 3 or x.shape[1] != w.shape[1]:
        raise ValueError(f"conv1d: input {x.shape} and weight {w.shape} must be (B, C_in, L) "
                         "and (C_out, C_in, K) with the same C_in")
    if int(stride) != stride or stride < 1 or int(padding) != padding or padding < 0:
        raise ValueError(f"conv1d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    if x.shape[2] + 2 * padding < w.shape[2]:
        raise ValueError(f"conv1d: kernel size {w.shape[2]} exceeds padded length "
                         f"{x.shape[2] + 2 * padding}")
    if x.dtype != w.dtype:
        raise TypeError(f"conv1d: input dtype {x.dtype} and weight dtype {w.dtype} differ")


def conv1d(x, w, stride=1, padding=0, bias=None, relu=False):
    """Cross-correlation, as torch.nn.functional.conv1d, then max(., 0) if relu.

    x: (B, C_in, L), w: (C_out, C_in, K), bias: None or (C_out, 1) (the
    shape that broadcasts over positions) -> (B, C_out, (L + 2p - K) // s + 1).
    With relu=True, a layer's whole forward is one op, and its backward
    masks the upstream gradient once: the mask is a constant (relu'' = 0).
    """
    x, w = ops.as_tensor(x), ops.as_tensor(w)
    _check_conv(x, w, stride, padding)
    length, size = x.shape[2], w.shape[2]
    inputs, vjps = [x, w], [lambda out, g: conv1d_grad_input(_masked(g, out, relu), w, stride, padding, length),
                            lambda out, g: conv1d_grad_weight(x, _masked(g, out, relu), stride, padding, size)]
    if bias is not None:
        bias = ops.as_tensor(bias)
        _check_conv_bias(bias, w)
        inputs.append(bias)
        vjps.append(lambda out, g: ops.sum_to(_masked(g, out, relu), bias.shape))
    raw_bias = None if bias is None else _contiguous(bias).reshape(-1)
    y = forward(_contiguous(x), _contiguous(w), stride, padding, raw_bias)
    if relu:
        np.maximum(y, 0, out=y)

    def on_arrays(out, g):
        """The first-order gradients straight from the kernels."""
        g = np.ascontiguousarray(g * (out > 0) if relu else g)
        return (grad_input(g, _contiguous(w), stride, padding, length) if x.requires_grad else None,
                grad_weight(_contiguous(x), g, stride, padding, size) if w.requires_grad else None,
                _bias_gradient(g) if bias is not None and bias.requires_grad else None)[:len(inputs)]
    return make_op("conv1d", y, inputs, vjps, first_order=on_arrays)


def _masked(g, out, relu):
    return g * (out.data > 0) if relu else g


def _bias_gradient(g):
    """g (B, C_out, L_out) summed to the bias's (C_out, 1), as ops.sum_to does."""
    return np.einsum(g, [0, 1, 2], [1]).reshape(-1, 1)


def _check_conv_bias(bias, w):
    if bias.shape != (w.shape[0], 1) or bias.dtype != w.dtype:
        raise ValueError(f"conv1d: bias must be a ({w.shape[0]}, 1) {w.dtype} array, "
                         f"got {bias.shape} {bias.dtype}")


def conv1d_grad_input(gy, w, stride, padding, length):
    """Transposed convolution: gy (B, C_out, L_out), w -> (B, C_in, length)."""
    gx = grad_input(_contiguous(gy), _contiguous(w), stride, padding, length)
    size = w.shape[2]
    return make_op("conv1d_grad_input", gx, (gy, w), (
        lambda out, c: conv1d(c, w, stride, padding),
        lambda out, c: conv1d_grad_weight(c, gy, stride, padding, size)))


def conv1d_grad_weight(x, gy, stride, padding, size):
    """Correlation of x (B, C_in, L) with gy (B, C_out, L_out) -> (C_out, C_in, size)."""
    gw = grad_weight(_contiguous(x), _contiguous(gy), stride, padding, size)
    length = x.shape[2]
    return make_op("conv1d_grad_weight", gw, (x, gy), (
        lambda out, c: conv1d_grad_input(gy, c, stride, padding, length),
        lambda out, c: conv1d(x, c, stride, padding)))
