"""The GRU (mnist1d_np.gru): fused kernels against NumPy references and finite differences.

Runs with NUMBA_DISABLE_JIT=1 too (smaller batches). The seeded `rng`
fixture comes from conftest.py.
"""
import numba
import numpy as np
import pytest
from finite_differences import EPS, inner, numeric_gradient

JIT = not numba.config.DISABLE_JIT
BATCH = 100 if JIT else 4     # the paper's batch, or a small one in pure Python
from mnist1d_np import gru as G


# ---------------------------------------------------------------------------
# GRU

def gru_reference(x, W_ih, W_hh, b_ih, b_hh, reverse):
    """torch.nn.GRU's recurrences, one direction, h0 = 0: a plain loop over time."""
    B, T, _ = x.shape
    H = W_hh.shape[1]
    sigmoid = lambda a: 1 / (1 + np.exp(-a))
    h, hs = np.zeros((B, H)), np.empty((B, T, H))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        gi, gh = x[:, t] @ W_ih.T + b_ih, h @ W_hh.T + b_hh
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs[:, t] = h
    return hs


def gru_arrays(rng, B, T, I, H, dtype=np.float64):
    """Random x (B, T, I); weights uniform in +-2/sqrt(H), twice torch's init, so gates saturate somewhat."""
    x = rng.standard_normal((B, T, I))
    shapes = [(3 * H, I), (3 * H, H), (3 * H,), (3 * H,)]
    params = [rng.uniform(-1, 1, s) * 2 / np.sqrt(H) for s in shapes]
    return x.astype(dtype), tuple(p.astype(dtype) for p in params)


SMALL, PAPER, MULTI_CHUNK = (3, 5, 2, 4), (100, 40, 1, 6), (300 if JIT else 131, 7, 2, 3)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("size", [SMALL, PAPER, MULTI_CHUNK], ids=["small", "paper", "multi_chunk"])
def test_gru_forward_matches_reference(rng, size, reverse):
    x, params = gru_arrays(rng, *size)
    hs, _ = G.forward_kernel(x, *params, reverse)
    np.testing.assert_allclose(hs, gru_reference(x, *params, reverse), rtol=0, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_backward_matches_finite_differences_of_reference(rng, reverse):
    """Every gradient, element by element, against central differences of the NumPy reference."""
    x, params = gru_arrays(rng, *SMALL)
    g_hs = rng.standard_normal((*x.shape[:2], SMALL[3]))
    _, cache = G.forward_kernel(x, *params, reverse)
    grads = G.backward_kernel(g_hs, x, *params, reverse, cache)
    arrays = [x, *params]
    for k, grad in enumerate(grads):
        def loss(v, k=k):
            args = arrays[:k] + [v] + arrays[k + 1:]
            return inner(gru_reference(*args, reverse), g_hs)
        np.testing.assert_allclose(grad, numeric_gradient(loss, arrays[k].copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("size", [SMALL, PAPER, MULTI_CHUNK], ids=["small", "paper", "multi_chunk"])
def test_gru_backward_matches_directional_finite_differences(rng, size, reverse):
    """Random projection L = <hs, G>; directional central differences of the kernel forward."""
    x, params = gru_arrays(rng, *size)
    arrays = [x, *params]
    g_hs = rng.standard_normal((*x.shape[:2], size[3]))
    _, cache = G.forward_kernel(x, *arrays[1:], reverse)
    grads = G.backward_kernel(g_hs, *arrays, reverse, cache)
    directions = [rng.standard_normal(a.shape) for a in arrays]
    shifted = lambda step: [a + step * d for a, d in zip(arrays, directions)]
    loss = lambda step: inner(G.forward_kernel(*shifted(step), reverse)[0], g_hs)
    fd = (loss(EPS) - loss(-EPS)) / (2 * EPS)
    assert fd == pytest.approx(sum(inner(g, d) for g, d in zip(grads, directions)), rel=1e-6)


def test_gru_cache_layout(rng):
    """cache[c, t, :, j, l] = (r, z, n, W_hn h + b_hn, hs[c*Bc + l, t, j]) as documented."""
    B, T, I, H = MULTI_CHUNK
    x, (W_ih, W_hh, b_ih, b_hh) = gru_arrays(rng, B, T, I, H)
    hs, cache = G.forward_kernel(x, W_ih, W_hh, b_ih, b_hh, False)
    n_chunks, Bc = cache.shape[0], cache.shape[4]
    assert cache.shape == (n_chunks, T, 5, H, Bc) and n_chunks * Bc >= B and Bc % 8 == 0
    lanes = cache.transpose(0, 4, 1, 2, 3).reshape(n_chunks * Bc, T, 5, H)[:B]   # (B, T, 5, H)
    np.testing.assert_array_equal(lanes[:, :, 4], hs)
    h_prev = np.concatenate([np.zeros((B, 1, H)), hs[:, :-1]], axis=1)
    np.testing.assert_allclose(lanes[:, :, 3], h_prev @ W_hh[2 * H:].T + b_hh[2 * H:], atol=1e-12)
    r, z, n = lanes[:, :, 0], lanes[:, :, 1], lanes[:, :, 2]
    np.testing.assert_allclose((1 - z) * n + z * h_prev, hs, atol=1e-12)
    assert np.all((r > 0) & (r < 1) & (z > 0) & (z < 1) & (np.abs(n) < 1))


def test_gru_forward_without_cache(rng):
    x, params = gru_arrays(rng, *MULTI_CHUNK)
    hs, cache = G.forward_kernel(x, *params, True)
    hs_light, light = G.forward_kernel(x, *params, True, False)
    np.testing.assert_array_equal(hs_light, hs)
    assert light.shape == (1, *cache.shape[1:])


@pytest.mark.parametrize("backward", [False, True])
def test_gru_float32_in_float32_out(rng, backward):
    x, params = gru_arrays(rng, *SMALL)
    runs = []
    for dtype in (np.float32, np.float64):
        args = [a.astype(dtype) for a in [x, *params]]
        hs, cache = G.forward_kernel(*args, False)
        runs.append(G.backward_kernel(np.ones_like(hs), *args, False, cache) if backward else (hs,))
    for out32, out64 in zip(*runs):
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)


def test_gru_bidirectional_matches_two_directions(rng):
    """[forward | reverse] on the last axis; gradients are those of the two directions."""
    H = SMALL[3]
    x, params_f = gru_arrays(rng, *SMALL)
    _, params_r = gru_arrays(rng, *SMALL)
    hs, caches = G.bidirectional_forward_kernel(x, params_f, params_r, True)
    expected = np.concatenate([gru_reference(x, *params_f, False), gru_reference(x, *params_r, True)], axis=2)
    np.testing.assert_allclose(hs, expected, rtol=0, atol=1e-10)
    g = rng.standard_normal(hs.shape)
    gx, grads_f, grads_r = G.bidirectional_backward_kernel(g, x, params_f, params_r, caches)
    gx_f, *expected_f = G.backward_kernel(np.ascontiguousarray(g[:, :, :H]), x, *params_f, False, caches[0])
    gx_r, *expected_r = G.backward_kernel(np.ascontiguousarray(g[:, :, H:]), x, *params_r, True, caches[1])
    np.testing.assert_allclose(gx, gx_f + gx_r, atol=1e-14)
    for got, want in zip(grads_f + grads_r, expected_f + expected_r):
        np.testing.assert_array_equal(got, want)


def test_gru_rejects_bad_shapes(rng):
    x, (W_ih, W_hh, b_ih, b_hh) = gru_arrays(rng, *SMALL)
    with pytest.raises(ValueError, match="must have shapes"):
        G.gru(x, (W_ih[:, :1], W_hh, b_ih, b_hh))
    with pytest.raises(ValueError, match=r"input must be \(B, T, I\)"):
        G.gru(x[:, :, 0], (W_ih, W_hh, b_ih, b_hh))        # 2-D input: a shape message, no IndexError
    hs, cache = G.forward_kernel(x, W_ih, W_hh, b_ih, b_hh, False, True)
    with pytest.raises(ValueError):
        G.backward_kernel(np.ascontiguousarray(hs[:, :-1]), x, W_ih, W_hh, b_ih, b_hh, False, cache)
    params = (W_ih, W_hh, b_ih, b_hh)
    _, caches = G.bidirectional_forward_kernel(x, params, params, True)
    with pytest.raises(ValueError):
        G.bidirectional_backward_kernel(hs, x, params, params, caches)       # (B, T, H), not (B, T, 2H)
