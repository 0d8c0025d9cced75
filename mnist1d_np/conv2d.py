"""2-D convolution: conv1d's idea with one more axis.

What it computes: cross-correlation as ``torch.nn.functional.conv2d`` (no
dilation, groups=1), the same stride s >= 1 and zero padding p >= 0 on both
axes::

    y[b, o, i, j] = sum_{c, u, v} w[o, c, u, v] x_pad[b, c, i*s + u, j*s + v] (+ bias[o])
    x: (B, C_in, H, W), w: (C_out, C_in, KH, KW), y: (B, C_out, H_out, W_out),
    H_out = (H + 2p - KH) // s + 1, W_out = (W + 2p - KW) // s + 1

Every axis of the window is a 1-D convolution's: which output rows a tap u
reads inside x (not in the padding) is ``conv1d._valid_positions`` along
the height, and the same for a tap v along the width.

The same closed family
----------------------
conv1d.py explains it; nothing changes but the shapes. Three kernels::

    forward(x, w, s, p, bias=None) -> y
    grad_input(gy, w, s, p, (H, W)) -> gx (B, C_in, H, W)             transposed convolution
    grad_weight(x, gy, s, p, (KH, KW)) -> gw (C_out, C_in, KH, KW)    correlation

are slices of the trilinear form T(x, w, gy) = <forward(x, w), gy>, so the
vector-Jacobian product of each, in either of its arrays, is another member
(c the incoming cotangent)::

    forward(x, w)           VJP in x:  c -> grad_input(c, w)      VJP in w:  c -> grad_weight(x, c)
    grad_input(gy, w)       VJP in gy: c -> forward(c, w)         VJP in w:  c -> grad_weight(c, gy)
    grad_weight(x, gy)      VJP in x:  c -> grad_input(gy, c)     VJP in gy: c -> forward(x, c)

The ops ``conv2d``, ``conv2d_grad_input`` and ``conv2d_grad_weight`` wrap
the kernels with these rules, so conv2d is differentiable to any order.

How it is fast
--------------
One path: im2col matrices built by numba copy loops, and their products
(w (C_out, C_in*KH*KW) @ cols, its transpose, and cols @ gy.T) in NumPy's
BLAS: conv1d's "wide layers" path. An image has many positions, so even the
first layer of the MNIST CNN (1 channel, 25 taps, 13 x 13 outputs) gives
products ~17,000 columns wide per batch of 100, where BLAS runs near its
peak; conv1d's in-L1 block kernels, made for 5 to 19 positions, have no
advantage left here. What is left to make cheap is the copying, and the
trick is the batch axis: see "batch last" below. The forward of a training
step keeps its im2col matrices for the weight gradient, so each is built
once per step. ``benchmarks/bench_conv2d.py`` measures the rates and an
epoch's split between the products and the rest. float32 and float64 are
supported and preserved. Importing compiles nothing; the two copy loops
compile in a few seconds per dtype, once (numba's on-disk cache).
"""
import numpy as np
from numba import njit

from . import ops
from .conv1d import _contiguous, _masked, _valid_positions
from .tensor import is_grad_enabled, make_op

# A product's chunk of samples: a training batch of 100 MNIST images is one. Larger batches
# (evaluation's 1000) are cut into chunks of at most 128 samples: with whole-batch chunks a
# batch of 1000 took 1.4x as long per image as batches of 100 (activations out of cache),
# with chunks of 128 about as long (evaluation of the image CNN, alternated, 2026-12-02).
_CHUNK = 1 << 21          # im2col entries per product at most (8 MiB in float32) ...
_CHUNK_SAMPLES = 128      # ... and samples
_matmul = np.matmul   # every product goes through this name: benchmarks/bench_conv2d.py times them in place


# ---------------------------------------------------------------------------
# The kernels on arrays, batch last
#
# A chunk of n samples' im2col matrix has its samples innermost:
# cols[(c*KH + u)*KW + v, (i*W_out + j)*n + k] = x_pad[b0 + k, c, i*s + u, j*s + v].
# Read from x batch-last, xT (C, H, W, B), every copy is then one contiguous
# run of n samples (LLVM vectorises it), and the product w2 @ cols,
# (C_out, H_out*W_out*n), is already y batch-last. So the kernels return
# their results as (B, C, H, W) views of batch-last arrays (a transpose, no
# copy), and take any layout: for a view of a batch-last array, which is
# what the previous conv2d (or its gradient) returned, batch_last() is free.
# Copies with the batch first (runs of W_out = 4 to 13 along a row, read with
# stride s) took 3 to 10x as long as these at the CNN's layers, about as long as the products.

def output_size(size, kernel, stride, padding):
    """(H_out, W_out) of an input (H, W) and a kernel (KH, KW)."""
    return tuple((n + 2 * padding - k) // stride + 1 for n, k in zip(size, kernel))


def batch_last(a):
    """a (B, C, H, W) as a C-contiguous (C, H, W, B) array: a view when a's memory is already laid out so."""
    t = a.transpose(1, 2, 3, 0)
    return t if t.flags.c_contiguous else np.ascontiguousarray(t)


def _batch_first(t):
    """The (B, C, H, W) view of a batch-last array t (C, H, W, B)."""
    return t.transpose(3, 0, 1, 2)


def _chunks(batch, rows, positions):
    """(b0, n): samples [b0, b0 + n) per product: at most _CHUNK_SAMPLES, and an im2col
    matrix (rows, positions * n) of at most _CHUNK entries (or one sample)."""
    size = max(1, min(batch, _CHUNK_SAMPLES, _CHUNK // (rows * positions)))
    return [(b0, min(size, batch - b0)) for b0 in range(0, batch, size)]


class _Scratch:
    """Arrays reused by the chunks of one call (the first chunk is the largest): fresh
    memory for every chunk would be faulted in again every time."""

    def __init__(self, dtype):
        self.dtype, self.buffers = dtype, {}

    def get(self, name, rows, columns):
        """A (rows, columns) array: a contiguous prefix of the buffer `name`."""
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < rows * columns:
            buffer = self.buffers[name] = np.empty(rows * columns, self.dtype)
        return buffer[:rows * columns].reshape(rows, columns)


def _samples(aT, b0, n):
    """Samples [b0, b0 + n) of a batch-last aT (C, ..., B) as a (C, positions * n) matrix."""
    if n == aT.shape[-1]:
        return aT.reshape(aT.shape[0], -1)
    return np.ascontiguousarray(aT[..., b0:b0 + n]).reshape(aT.shape[0], -1)


def _im2col(xT, b0, n, stride, padding, H_out, W_out, KH, KW, cols):
    """cols[(c*KH + u)*KW + v, (i*W_out + j)*n + k] = x_pad[b0 + k, c, i*stride + u, j*stride + v]
    for samples k < n, from xT (C, H, W, B). Every entry is written, the padding as 0.

    Indices are unsigned, as in conv1d: numba then skips its negative-index
    wraparound, and the copies vectorise.
    """
    C, H, W = xT.shape[0], xT.shape[1], xT.shape[2]
    s, width, run, first = np.uint64(stride), np.uint64(W_out), np.uint64(n), np.uint64(b0)
    for u in range(KH):
        i0, ni, r0 = _valid_positions(u, stride, padding, H, H_out)
        for v in range(KW):
            j0, nj, q0 = _valid_positions(v, stride, padding, W, W_out)
            for c in range(C):
                dst, image = cols[(c * KH + u) * KW + v], xT[c]
                for i in range(np.uint64(H_out)):
                    for j in range(width):
                        m = (i * width + j) * run
                        if i0 <= i < i0 + ni and j0 <= j < j0 + nj:
                            src = image[r0 + (i - i0) * s, q0 + (j - j0) * s]
                            for k in range(run):
                                dst[m + k] = src[first + k]
                        else:
                            for k in range(run):
                                dst[m + k] = 0


def _col2im(cols, b0, n, stride, padding, H_out, W_out, KH, KW, gxT):
    """Adjoint of _im2col: gxT[c, i*stride + u - p, j*stride + v - p, b0 + k] += cols[(c*KH + u)*KW + v, (i*W_out + j)*n + k]."""
    C, H, W = gxT.shape[0], gxT.shape[1], gxT.shape[2]
    s, width, run, first = np.uint64(stride), np.uint64(W_out), np.uint64(n), np.uint64(b0)
    for u in range(KH):
        i0, ni, r0 = _valid_positions(u, stride, padding, H, H_out)
        for v in range(KW):
            j0, nj, q0 = _valid_positions(v, stride, padding, W, W_out)
            for c in range(C):
                src, image = cols[(c * KH + u) * KW + v], gxT[c]
                for i in range(ni):
                    for j in range(nj):
                        dst, m = image[r0 + i * s, q0 + j * s], ((i0 + i) * width + j0 + j) * run
                        for k in range(run):
                            dst[first + k] += src[m + k]


_im2col = njit(cache=True)(_im2col)
_col2im = njit(cache=True)(_col2im)


def forward(x, w, stride, padding, bias=None, keep=None):
    """y = conv2d(x, w) + bias: x (B, C_in, H, W), w (C_out, C_in, KH, KW), bias (C_out,) or None
    -> y (B, C_out, H_out, W_out), a view of a batch-last array.
    keep: None, or a list that receives each chunk's im2col matrix, for grad_weight(..., kept=keep)."""
    xT = batch_last(x)
    C_in, H, W, B = xT.shape
    C_out, _, KH, KW = w.shape
    H_out, W_out = output_size((H, W), (KH, KW), stride, padding)
    w2 = np.ascontiguousarray(w).reshape(C_out, C_in * KH * KW)
    yT, P, scratch = np.empty((C_out, H_out, W_out, B), x.dtype), H_out * W_out, _Scratch(x.dtype)
    for b0, n in _chunks(B, w2.shape[1], P):
        if keep is None:
            cols = scratch.get("cols", w2.shape[1], P * n)
        else:
            cols = np.empty((w2.shape[1], P * n), x.dtype)
            keep.append(cols)
        _im2col(xT, b0, n, stride, padding, H_out, W_out, KH, KW, cols)
        if n == B:
            _matmul(w2, cols, out=yT.reshape(C_out, -1))
        else:
            block = _matmul(w2, cols, out=scratch.get("y", C_out, P * n))
            yT[..., b0:b0 + n] = block.reshape(C_out, H_out, W_out, n)
    if bias is not None:
        yT += bias.reshape(C_out, 1, 1, 1)
    return _batch_first(yT)


def grad_input(gy, w, stride, padding, size):
    """Transposed convolution: gy (B, C_out, H_out, W_out), w (C_out, C_in, KH, KW) -> gx (B, C_in, *size)."""
    gyT = batch_last(gy)
    C_out, _, KH, KW = w.shape
    H_out, W_out = output_size(size, (KH, KW), stride, padding)
    B = gyT.shape[-1]
    if gyT.shape != (C_out, H_out, W_out, B):
        raise ValueError(f"conv2d grad_input: gy has shape {gy.shape}, expected {(B, C_out, H_out, W_out)}")
    w2t = np.ascontiguousarray(w).reshape(C_out, -1).T
    gxT, P, scratch = np.zeros((w.shape[1],) + tuple(size) + (B,), gy.dtype), H_out * W_out, _Scratch(gy.dtype)
    for b0, n in _chunks(B, w2t.shape[0], P):
        cols = _matmul(w2t, _samples(gyT, b0, n), out=scratch.get("cols", w2t.shape[0], P * n))
        _col2im(cols, b0, n, stride, padding, H_out, W_out, KH, KW, gxT)
    return _batch_first(gxT)


def grad_weight(x, gy, stride, padding, kernel, kept=None):
    """Weight gradient (a correlation): x (B, C_in, H, W), gy (B, C_out, H_out, W_out)
    -> gw (C_out, C_in, *kernel). kept: the im2col matrices that forward(x, ...) kept,
    used instead of building them again (the training step's forward has just built them)."""
    xT, gyT = batch_last(x), batch_last(gy)
    C_in, H, W, B = xT.shape
    KH, KW = kernel
    H_out, W_out = output_size((H, W), kernel, stride, padding)
    C_out = gyT.shape[0]
    if gyT.shape != (C_out, H_out, W_out, B):
        raise ValueError(f"conv2d grad_weight: gy has shape {gy.shape}, expected {(B, C_out, H_out, W_out)}")
    gwT = np.zeros((C_in * KH * KW, C_out), x.dtype)   # cols @ gy.T: BLAS was faster this way round
    P, scratch = H_out * W_out, _Scratch(x.dtype)
    for i, (b0, n) in enumerate(_chunks(B, gwT.shape[0], P)):
        if kept:
            cols = kept[i]
        else:
            cols = scratch.get("cols", gwT.shape[0], P * n)
            _im2col(xT, b0, n, stride, padding, H_out, W_out, KH, KW, cols)
        gwT += _matmul(cols, _samples(gyT, b0, n).T)
    return np.ascontiguousarray(gwT.T).reshape(C_out, C_in, KH, KW)


# ---------------------------------------------------------------------------
# The differentiable ops

def _check_conv(x, w, stride, padding):
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d: input {x.shape} and weight {w.shape} must be (B, C_in, H, W) "
                         "and (C_out, C_in, KH, KW) with the same C_in")
    if int(stride) != stride or stride < 1 or int(padding) != padding or padding < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    if any(n + 2 * padding < k for n, k in zip(x.shape[2:], w.shape[2:])):
        raise ValueError(f"conv2d: kernel {w.shape[2:]} exceeds the padded input "
                         f"{tuple(n + 2 * padding for n in x.shape[2:])}")
    if x.dtype != w.dtype:
        raise TypeError(f"conv2d: input dtype {x.dtype} and weight dtype {w.dtype} differ")


def conv2d(x, w, stride=1, padding=0, bias=None, relu=False):
    """Cross-correlation, as torch.nn.functional.conv2d, then max(., 0) if relu.

    x: (B, C_in, H, W), w: (C_out, C_in, KH, KW), bias: None or (C_out, 1, 1)
    (the shape that broadcasts over positions) -> (B, C_out, H_out, W_out),
    whose data is a view of a batch-last array (see "batch last" above).
    relu=True fuses the activation into the op, as conv1d's.
    """
    x, w = ops.as_tensor(x), ops.as_tensor(w)
    _check_conv(x, w, stride, padding)
    stride, padding, size, kernel = int(stride), int(padding), x.shape[2:], w.shape[2:]
    inputs, vjps = [x, w], [lambda out, g: conv2d_grad_input(_masked(g, out, relu), w, stride, padding, size),
                            lambda out, g: conv2d_grad_weight(x, _masked(g, out, relu), stride, padding, kernel)]
    if bias is not None:
        bias = ops.as_tensor(bias)
        _check_conv_bias(bias, w)
        inputs.append(bias)
        vjps.append(lambda out, g: ops.sum_to(_masked(g, out, relu), bias.shape))
    raw_bias = None if bias is None else _contiguous(bias).reshape(-1)
    kept = [] if w.requires_grad and is_grad_enabled() else None   # x's im2col, for the first-order backward
    y = forward(x.data, _contiguous(w), stride, padding, raw_bias, kept)
    if relu:
        np.maximum(y, 0, out=y)

    def on_arrays(out, g):
        """The first-order gradients straight from the kernels."""
        g = g * (out > 0) if relu else g
        return (grad_input(g, _contiguous(w), stride, padding, size) if x.requires_grad else None,
                grad_weight(x.data, g, stride, padding, kernel, kept) if w.requires_grad else None,
                g.sum(axis=(0, 2, 3)).reshape(bias.shape) if bias is not None and bias.requires_grad else None
                )[:len(inputs)]
    return make_op("conv2d", y, inputs, vjps, first_order=on_arrays)


def _check_conv_bias(bias, w):
    if bias.shape != (w.shape[0], 1, 1) or bias.dtype != w.dtype:
        raise ValueError(f"conv2d: bias must be a ({w.shape[0]}, 1, 1) {w.dtype} array, "
                         f"got {bias.shape} {bias.dtype}")


def conv2d_grad_input(gy, w, stride, padding, size):
    """Transposed convolution: gy (B, C_out, H_out, W_out), w -> (B, C_in, *size)."""
    gx = grad_input(gy.data, _contiguous(w), stride, padding, size)
    kernel = w.shape[2:]
    return make_op("conv2d_grad_input", gx, (gy, w), (
        lambda out, c: conv2d(c, w, stride, padding),
        lambda out, c: conv2d_grad_weight(c, gy, stride, padding, kernel)))


def conv2d_grad_weight(x, gy, stride, padding, kernel):
    """Correlation of x (B, C_in, H, W) with gy (B, C_out, H_out, W_out) -> (C_out, C_in, *kernel)."""
    gw = grad_weight(x.data, gy.data, stride, padding, kernel)
    size = x.shape[2:]
    return make_op("conv2d_grad_weight", gw, (x, gy), (
        lambda out, c: conv2d_grad_input(gy, c, stride, padding, size),
        lambda out, c: conv2d(x, c, stride, padding)))
