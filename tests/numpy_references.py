"""Plain NumPy references of the 2-D layers, shared by the tests that check them."""
import numpy as np


def conv2d_reference(x, w, stride, padding):
    """y[b, o, i, j] = sum_{c, u, v} w[o, c, u, v] x_pad[b, c, i*s + u, j*s + v], by einsum per output position."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    KH, KW = w.shape[2:]
    H_out, W_out = (xp.shape[2] - KH) // stride + 1, (xp.shape[3] - KW) // stride + 1
    y = np.empty((x.shape[0], w.shape[0], H_out, W_out), np.result_type(x, w))
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
            y[:, :, i, j] = np.einsum("bcuv,ocuv->bo", window, w)
    return y


def max_pool2d_reference(x, size, stride):
    """The largest entry of every size x size window, windows starting every `stride` rows and columns."""
    H_out, W_out = (x.shape[2] - size) // stride + 1, (x.shape[3] - size) // stride + 1
    y = np.empty(x.shape[:2] + (H_out, W_out), x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            y[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return y
