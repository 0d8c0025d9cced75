"""The shared numeric tricks (mnist1d_np.fastmath), each against the plain formula it replaces."""
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

from mnist1d_np import fastmath as F

JIT = not numba.config.DISABLE_JIT


@pytest.mark.skipif(not JIT, reason="needs the JIT")
@pytest.mark.parametrize("module", ["fastmath", "conv1d", "conv2d", "gru", "learned_activation"])
def test_import_compiles_nothing(module):
    code = (f"import numba, mnist1d_np.{module} as M; print(sum(len(f.signatures) for f in vars(M).values()"
            " if isinstance(f, numba.core.dispatcher.Dispatcher)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-7), (np.float64, 4e-16)])
def test_gate_nonlinearities(dtype, tol):
    """The vectorisable sigmoid and tanh: absolute error ~ eps, saturation, NaN kept."""
    @numba.njit(error_model="numpy")
    def gates(a):
        s, t = np.empty_like(a), np.empty_like(a)
        for i in range(a.size):
            s[i], t[i] = F.sigmoid(a[i]), F.tanh(a[i])
        return s, t
    a = np.concatenate([np.linspace(-60, 60, 4001), np.linspace(-1e-3, 1e-3, 101)]).astype(dtype)
    s, t = gates(a)
    assert s.dtype == t.dtype == dtype
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-a.astype(np.float64))), rtol=0, atol=tol)
    np.testing.assert_allclose(t, np.tanh(a.astype(np.float64)), rtol=0, atol=2 * tol)
    s, t = gates(np.array([np.inf, -np.inf, np.nan, 1e30, -1e30], dtype))
    np.testing.assert_array_equal(t, [1, -1, np.nan, 1, -1])
    assert s[0] == s[3] == 1 and np.isnan(s[2])
    assert 0 < s[1] < 1e-30 and 0 < s[4] < 1e-30    # exp's argument is clamped to [-80, 80]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_fraction_is_exp(dtype):
    @numba.njit
    def exp_of(a):
        out = np.empty_like(a)
        for i in range(a.size):
            p, q = F.exp_fraction(a[i])
            out[i] = p / q
        return out
    a = np.linspace(-30, 30, 2001).astype(dtype)
    np.testing.assert_allclose(exp_of(a), np.exp(a.astype(np.float64)), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("n, q, m", [(1, 1, 1), (3, 4, 5), (5, 7, 33), (2, 9, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_gemms_are_matrix_products(rng, n, q, m, dtype):
    """gemm_nn: c += a @ b; gemm_nt: c += a @ b.T; every remainder of their unrolling."""
    tol = 1e-5 if dtype == np.float32 else 1e-12
    a, b, c = (rng.normal(size=s).astype(dtype) for s in ((n, q), (q, m), (n, m)))
    expected = c + a @ b
    F.gemm_nn(a, b, c)
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)
    a, b, c = (rng.normal(size=s).astype(dtype) for s in ((n, m), (q, m), (n, q)))
    expected = c + a @ b.T
    F.gemm_nt(a, b, c)
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


def test_padded_rounds_up():
    assert [F.padded(n, 8) for n in (0, 1, 8, 9, 16)] == [0, 8, 8, 16, 16]


# ---------------------------------------------------------------------------
# ThreadChooser

def sleepy_kernel(slow_threads):
    """A stand-in kernel that is slow with `slow_threads` threads; it returns the thread count it ran with."""
    def kernel(size):
        threads = numba.get_num_threads()
        time.sleep(0.003 if threads == slow_threads else 0.0)
        return threads
    return kernel


@pytest.mark.skipif(not JIT or numba.config.NUMBA_NUM_THREADS < 2, reason="needs the JIT and 2 numba threads")
@pytest.mark.parametrize("slow", ["all", "one"])
def test_thread_chooser_keeps_the_faster_setting(slow):
    most = numba.config.NUMBA_NUM_THREADS
    slow_threads, fast_threads = (most, 1) if slow == "all" else (1, most)
    chooser = F.ThreadChooser(sleepy_kernel(slow_threads), key=lambda size: size, every=10, trials=2)
    before = numba.get_num_threads()
    used = [chooser(100) for _ in range(10)]
    assert used[0] == most                       # the warm-up call: untimed, default
    assert used[1:5] == [1, most, 1, most]       # the probe alternates
    assert used[5:] == [fast_threads] * 5        # then the faster one, until the next probe
    assert chooser(7) == most                    # another size is timed on its own
    assert numba.get_num_threads() == before     # the thread count is restored


def test_thread_chooser_calls_straight_through_without_threads(monkeypatch):
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    chooser = F.ThreadChooser(lambda size: size * 2, key=lambda size: size)
    assert [chooser(3) for _ in range(5)] == [6] * 5 and chooser.calls == {}


@pytest.mark.skipif(not JIT or numba.config.NUMBA_NUM_THREADS < 2, reason="needs the JIT and 2 numba threads")
def test_learned_activation_kernels_do_not_depend_on_the_thread_count(rng):
    """What makes the chooser safe: one thread or all, the same numbers."""
    from mnist1d_np import learned_activation as L
    z = rng.standard_normal(3000).astype(np.float32)
    w, c, a, up = (rng.standard_normal(n).astype(np.float32) for n in (20, 20, 20, 3000))
    results = {}
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        results[threads] = (L.forward_kernel(z, w, c, a, np.float32(0.5)), L.param_vjp_kernel(z, w, c, a, up),
                            L.slope_vjp_kernel(z, w, c, a, up))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for one, every in zip(*results.values()):
        for x, y in zip(one, every):
            np.testing.assert_array_equal(x, y)


FRESH_VS_CACHED = {
    "gru": """
from mnist1d_np import gru
rng = np.random.default_rng(0)
x = rng.normal(size=(20, 9, 2)).astype(np.float32)
w = [rng.normal(size=s).astype(np.float32) for s in ((12, 2), (12, 4), (12,), (12,))]
hs, cache = gru.forward_kernel(x, *w, False, True)
out = (hs,) + gru.backward_kernel(rng.normal(size=hs.shape).astype(np.float32), x, *w, False, cache)
""",
    "learned_activation": """
from mnist1d_np import learned_activation as M
rng = np.random.default_rng(0)
z, h = rng.normal(size=(2, 3000)).astype(np.float32)
w, c, a = rng.uniform(-1, 1, size=(3, 50)).astype(np.float32)
out = M.forward_kernel(z, w, c, a, np.float32(0.1)) + M.param_vjp_kernel(z, w, c, a, h) + M.slope_vjp_kernel(z, w, c, a, h)
""",
    "sparse_linear": """
from mnist1d_np import sparse_linear
rng = np.random.default_rng(0)
pattern = sparse_linear.pattern(rng.random((60, 50)) < 0.3)
values = rng.normal(size=pattern.rows.size).astype(np.float32)
xT, dyT = rng.normal(size=(60, 100)).astype(np.float32), rng.normal(size=(50, 100)).astype(np.float32)
bias = rng.normal(size=50).astype(np.float32)
out = (sparse_linear.forward(xT, pattern, values, bias),) + tuple(sparse_linear.backward(xT, dyT, pattern, values))
""",
}


@pytest.mark.skipif(not JIT, reason="needs the JIT")
@pytest.mark.parametrize("module", FRESH_VS_CACHED)
def test_a_freshly_compiled_kernel_equals_its_cached_copy(module, tmp_path):
    """Same seed, same numbers, whether numba compiled the kernels in this process
    or loaded them from its cache (fastmath 'contract' once broke this)."""
    code = ("import sys, numpy as np\n" + FRESH_VS_CACHED[module]
            + "np.savez(sys.argv[1], *out)\n")
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    runs = []
    for name in ("fresh", "cached"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{name}.npz")], env=env, check=True)
        runs.append(np.load(tmp_path / f"{name}.npz"))
    for key in runs[0].files:
        np.testing.assert_array_equal(runs[0][key], runs[1][key], err_msg=key)
