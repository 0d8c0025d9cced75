"""A linear layer that computes only with its kept weights (numba kernels).

A pruned weight matrix W: (in, out) with mask M keeps its kept entries as a
vector `values`, in row-major order (the order of np.nonzero(M)). At 92 %
sparsity that is 12x fewer multiply-adds than the dense `x @ W`, which
mostly multiplies zeros.

Two tricks make the loops fast:

- Activations are kept *transposed*, (features, batch). A kept weight
  w = W[i, j] then touches two contiguous rows, so each of its updates is a
  vector operation over the batch, which the compiler vectorises:

      forward   yT[j, :] += w * xT[i, :]
      backward  dxT[i, :] += w * dyT[j, :]        (input gradient)
                dW[i, j]   = xT[i, :] . dyT[j, :]  (weight gradient, kept entries only)

- Four kept weights at a time share one output row: the forward walks the
  weights column by column (the weights feeding output j) and the backward
  row by row (the weights leaving input i), so a row of results is loaded
  and stored once per four multiply-adds instead of once per one.

`linear(x, pattern, values, bias)` is the differentiable op: its
first-order rule runs the kernels; its Tensor rule (used when a backward is
itself recorded, create_graph=True) writes the same products with a dense
W scattered from `values`, so gradients of gradients work too.

Kernels are plain Python functions, jitted on a separate line (cache=True);
with NUMBA_DISABLE_JIT=1 the plain functions run.
"""
from collections import namedtuple

import numpy as np
from numba import njit

from . import ops
from .tensor import make_op

Pattern = namedtuple("Pattern", "rows cols row_starts col_starts by_col")
Pattern.__doc__ = """Where the kept weights of an (in, out) mask are.

rows, cols: (nnz,) int32 coordinates in row-major order (the order of values);
row_starts: (in + 1,) kept weights of input i are values[row_starts[i]:row_starts[i + 1]];
col_starts: (out + 1,) and by_col: (nnz,) the same by column: the weights
feeding output j are values[by_col[col_starts[j]:col_starts[j + 1]]]."""


def pattern(mask):
    """The Pattern of a bool mask: (in, out)."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = (a.astype(np.int32) for a in np.nonzero(mask))
    by_col = np.argsort(cols, kind="stable").astype(np.int32)
    row_starts = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    col_starts = np.concatenate([[0], np.cumsum(mask.sum(axis=0))]).astype(np.int32)
    return Pattern(rows, cols, row_starts, col_starts, by_col)


def _forward(xT, rows, col_starts, by_col, values, bias, outT):
    """outT: (out, B) <- bias + W^T x over the kept weights; xT: (in, B)."""
    batch = outT.shape[1]
    for j in range(outT.shape[0]):
        out = outT[j]
        for b in range(batch):
            out[b] = bias[j]
        k, end = col_starts[j], col_starts[j + 1]
        while k + 4 <= end:
            k0, k1, k2, k3 = by_col[k], by_col[k + 1], by_col[k + 2], by_col[k + 3]
            w0, w1, w2, w3 = values[k0], values[k1], values[k2], values[k3]
            x0, x1, x2, x3 = xT[rows[k0]], xT[rows[k1]], xT[rows[k2]], xT[rows[k3]]
            for b in range(batch):
                out[b] += w0 * x0[b] + w1 * x1[b] + w2 * x2[b] + w3 * x3[b]
            k += 4
        for kk in range(k, end):
            w, x = values[by_col[kk]], xT[rows[by_col[kk]]]
            for b in range(batch):
                out[b] += w * x[b]


def _backward(xT, dyT, cols, row_starts, values, dxT, dvalues, input_grad):
    """dvalues[k] = xT[rows[k]] . dyT[cols[k]]; dxT: (in, B) = W dyT if input_grad."""
    batch = dyT.shape[1]
    for i in range(xT.shape[0]):
        x, dx = xT[i], dxT[i if input_grad else 0]
        if input_grad:
            dx[:] = 0
        k, end = row_starts[i], row_starts[i + 1]
        while k + 4 <= end:
            d0, d1, d2, d3 = dyT[cols[k]], dyT[cols[k + 1]], dyT[cols[k + 2]], dyT[cols[k + 3]]
            s0 = s1 = s2 = s3 = 0.0
            for b in range(batch):
                s0 += x[b] * d0[b]
                s1 += x[b] * d1[b]
                s2 += x[b] * d2[b]
                s3 += x[b] * d3[b]
            dvalues[k], dvalues[k + 1], dvalues[k + 2], dvalues[k + 3] = s0, s1, s2, s3
            if input_grad:
                w0, w1, w2, w3 = values[k], values[k + 1], values[k + 2], values[k + 3]
                for b in range(batch):
                    dx[b] += w0 * d0[b] + w1 * d1[b] + w2 * d2[b] + w3 * d3[b]
            k += 4
        for kk in range(k, end):
            d, total = dyT[cols[kk]], 0.0
            for b in range(batch):
                total += x[b] * d[b]
            dvalues[kk] = total
            if input_grad:
                for b in range(batch):
                    dx[b] += values[kk] * d[b]


# fastmath lets the dot products above be vectorised (a reordered, but fixed, sum).
forward_kernel = njit(cache=True, fastmath=True)(_forward)
backward_kernel = njit(cache=True, fastmath=True)(_backward)


def forward(xT, pattern, values, bias):
    """xT: (in, B) -> (out, B), out = len(bias)."""
    outT = np.empty((bias.shape[0], xT.shape[1]), dtype=values.dtype)
    forward_kernel(xT, pattern.rows, pattern.col_starts, pattern.by_col, values, bias, outT)
    return outT


def backward(xT, dyT, pattern, values, input_grad=True):
    """Gradients for dyT: (out, B) -> (dxT: (in, B) or None, dvalues: like values)."""
    dvalues = np.empty_like(values)
    dxT = np.empty_like(xT) if input_grad else np.empty((1, xT.shape[1]), dtype=xT.dtype)
    backward_kernel(xT, dyT, pattern.cols, pattern.row_starts, values, dxT, dvalues, input_grad)
    return (dxT if input_grad else None), dvalues


# ---------------------------------------------------------------- the op

def shape_of(pattern):
    """(in, out) of the weight matrix a Pattern describes."""
    return len(pattern.row_starts) - 1, len(pattern.col_starts) - 1


def dense_weight(values, pattern):
    """The (in, out) weight matrix, zero where pruned: a Tensor op (backward: a gather)."""
    return ops.scatter_add(values, (pattern.rows, pattern.cols), shape_of(pattern))


def linear(x, pattern, values, bias, relu=False):
    """x @ W + bias (then max(., 0) if relu) for the pruned W: (in, out) whose kept
    entries, at `pattern`, are `values`.

    x: (B, in), values: (nnz,), bias: (out,), Tensors of one float dtype ->
    (B, out). The kernels work on transposed activations; the output is a
    transposed view, so the next layer's transpose costs nothing.
    """
    x, values, bias = (ops.as_tensor(t) for t in (x, values, bias))
    n_in, n_out = shape_of(pattern)
    if x.ndim != 2 or x.shape[1] != n_in or values.shape != pattern.rows.shape or bias.shape != (n_out,):
        raise ValueError(f"sparse_linear.linear: x {x.shape}, values {values.shape}, bias {bias.shape} "
                         f"do not fit a ({n_in}, {n_out}) pattern with {len(pattern.rows)} kept weights")
    xT = np.ascontiguousarray(x.data.T)
    outT = forward(xT, pattern, values.data, bias.data)
    if relu:
        np.maximum(outT, 0, out=outT)

    def vjp(out, g):
        if relu:
            g = g * (out.data > 0)  # relu's slope: a constant mask
        weight = dense_weight(values, pattern)
        return (ops.matmul(g, weight.T) if x.requires_grad else None,
                ops.getitem(ops.matmul(x.T, g), (pattern.rows, pattern.cols)) if values.requires_grad else None,
                ops.sum(g, axis=0) if bias.requires_grad else None)

    def on_arrays(out, g):
        gT = np.ascontiguousarray(g.T)
        if relu:
            gT = gT * (out.T > 0)
        dxT, dvalues = backward(xT, gT, pattern, values.data, input_grad=x.requires_grad)
        return (None if dxT is None else dxT.T, dvalues if values.requires_grad else None,
                gT.sum(axis=1) if bias.requires_grad else None)
    return make_op("sparse_linear", outT.T, (x, values, bias), vjp, first_order=on_arrays)
