"""Benchmark the numba kernels at the paper's sizes, and their compile costs.

Prints median times per call (after a warm-up) and minor page faults per call for:
* the paper's CNN convolutions, batch 100: (1, 40) -> 25 ch x 19 -> 10 -> 5,
  kernel 5 then 3, stride 2, padding 1: forward, input and weight gradients;
* the paper's GRU, batch 100, T = 40, I = 1, H = 6: one direction, both
  directions, and bidirectional inference on 5000 examples;
then the compile costs, measured in fresh subprocesses: cold (empty
NUMBA_CACHE_DIR) and warm (the same directory again).

    python benchmarks/bench_kernels.py [--repeats 300] [--top-pad 64] [--skip-compile] [--json]
    python benchmarks/bench_kernels.py --compare-paths [--repeats 300] [--json]

--compare-paths times conv1d's two ways of computing the same kernels, the
numba block kernels and the whole-batch BLAS products, on a layer of the
paper's CNN (C channels x 19 positions -> C x 10, kernel 3, stride 2,
padding 1, batch 100) for a range of widths C; conv1d.BLAS_FROM was chosen
from it (the width where the BLAS path starts to win).

--top-pad MB calls glibc's mallopt(M_TOP_PAD) first. Without it, glibc may
return freed heap memory to the OS after every call and fault it back in on
the next (each GRU cache is ~0.5 MB in float32, ~1 MB in float64), which can
cost more than the kernels themselves.
"""
import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

CONV_LAYERS = [(1, 40, 5), (25, 19, 3), (25, 10, 3)]    # (C_in, L, K); C_out = 25, stride 2, padding 1
BATCH, T, HIDDEN, EVAL_EXAMPLES = 100, 40, 6, 5000


def timed_calls(f, *args, repeats):
    """(median wall time in us, minor page faults per call) of f(*args), after five warm-up calls."""
    for _ in range(5):
        f(*args)
    faults, times = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, []
    for _ in range(repeats):
        start = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats
    return 1e6 * float(np.median(times)), faults


def conv_arrays(rng, dtype, C_in, L, K):
    """x (B, C_in, L), w (25, C_in, K), gy (B, 25, L_out) for one paper layer."""
    shapes = [(BATCH, C_in, L), (25, C_in, K), (BATCH, 25, (L + 2 - K) // 2 + 1)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def gru_arrays(rng, dtype, B):
    """x (B, T, 1) and a tuple (W_ih, W_hh, b_ih, b_hh) for one direction, at torch's init scale."""
    bound = 1 / np.sqrt(HIDDEN)
    shapes = [(3 * HIDDEN, 1), (3 * HIDDEN, HIDDEN), (3 * HIDDEN,), (3 * HIDDEN,)]
    return rng.standard_normal((B, T, 1)).astype(dtype), tuple(rng.uniform(-bound, bound, s).astype(dtype) for s in shapes)


def bench_conv(K, dtype, repeats):
    """{layer: {kernel: (us, faults)}}, and the whole step: 3 forwards then 5 gradients (not layer 1's grad_input)."""
    rng, rows, layers = np.random.default_rng(0), {}, []
    for C_in, L, K_ in CONV_LAYERS:
        x, w, gy = conv_arrays(rng, dtype, C_in, L, K_)
        layers.append((x, w, gy, L, K_))
        rows[f"{C_in:>2}x{L:<2} k{K_}"] = {
            "forward": timed_calls(K.conv1d_forward, x, w, 2, 1, repeats=repeats),
            "grad_input": timed_calls(K.conv1d_grad_input, gy, w, 2, 1, L, repeats=repeats),
            "grad_weight": timed_calls(K.conv1d_grad_weight, x, gy, 2, 1, K_, repeats=repeats)}

    def step():
        ys = [K.conv1d_forward(x, w, 2, 1) for x, w, _, _, _ in layers]
        for i, (x, w, gy, L, K_) in reversed(list(enumerate(layers))):
            K.conv1d_grad_weight(x, gy, 2, 1, K_)
            if i:
                K.conv1d_grad_input(gy, w, 2, 1, L)
        return ys
    return rows, timed_calls(step, repeats=repeats)


def bench_gru(K, dtype, repeats):
    """{name: (us, faults)}: one direction, both directions, a training step, and bidirectional inference."""
    rng = np.random.default_rng(0)
    (x, p_f), (_, p_r) = gru_arrays(rng, dtype, BATCH), gru_arrays(rng, dtype, BATCH)
    hs, cache = K.gru_forward(x, *p_f, False, True)
    hs2, caches = K.gru_bidirectional_forward(x, p_f, p_r, True)
    g, g2 = rng.standard_normal(hs.shape).astype(dtype), rng.standard_normal(hs2.shape).astype(dtype)
    x_eval = rng.standard_normal((EVAL_EXAMPLES, T, 1)).astype(dtype)

    def step():   # forward, backward, and the caches freed, as in training
        return K.gru_bidirectional_backward(g2, x, p_f, p_r, K.gru_bidirectional_forward(x, p_f, p_r, True)[1])
    return {"one direction forward": timed_calls(K.gru_forward, x, *p_f, False, True, repeats=repeats),
            "one direction backward": timed_calls(K.gru_backward, g, x, *p_f, False, cache, repeats=repeats),
            "bidirectional forward": timed_calls(K.gru_bidirectional_forward, x, p_f, p_r, True, repeats=repeats),
            "bidirectional backward": timed_calls(K.gru_bidirectional_backward, g2, x, p_f, p_r, caches,
                                                  repeats=repeats),
            "bidirectional step": timed_calls(step, repeats=repeats),
            f"inference, {EVAL_EXAMPLES} examples": timed_calls(K.gru_bidirectional_forward, x_eval, p_f, p_r, False,
                                                                repeats=max(5, repeats // 20))}


def kernels():
    """The conv1d and GRU kernels, under the names this benchmark prints."""
    from mnist1d_np import conv1d, gru
    return types.SimpleNamespace(
        conv1d_forward=conv1d.forward_kernel, conv1d_grad_input=conv1d.grad_input_kernel,
        conv1d_grad_weight=conv1d.grad_weight_kernel, gru_forward=gru.forward_kernel,
        gru_backward=gru.backward_kernel, gru_bidirectional_forward=gru.bidirectional_forward_kernel,
        gru_bidirectional_backward=gru.bidirectional_backward_kernel)


def report_speed(repeats):
    """Prints the kernels' times; returns them as {dtype: {'conv': ..., 'cnn_step_us': ..., 'gru': ...}}."""
    K, out = kernels(), {}
    for dtype in (np.float32, np.float64):
        print(f"\n== {dtype.__name__}, batch {BATCH}: median us per call [page faults per call]")
        rows, (step_us, step_pf) = bench_conv(K, dtype, repeats)
        print(f"{'conv layer':10s}" + "".join(f"{k:>22s}" for k in next(iter(rows.values()))))
        for name, cells in rows.items():
            print(f"{name:10s}" + "".join(f"{us:15.1f} [{pf:4.0f}]" for us, pf in cells.values()))
        layers = list(rows.values())
        fwd = sum(r["forward"][0] for r in layers)
        bwd = sum(r["grad_weight"][0] for r in layers) + sum(r["grad_input"][0] for r in layers[1:])
        print(f"CNN convs: forward {fwd:.0f} + backward {bwd:.0f} = {fwd + bwd:.0f} us (no layer-1 grad_input); "
              f"as one step {step_us:.0f} us [{step_pf:.0f}]")
        gru = bench_gru(K, dtype, repeats)
        for name, (us, pf) in gru.items():
            print(f"GRU {name:28s} {us:9.1f} [{pf:4.0f}]")
        out[dtype.__name__] = {"conv": rows, "cnn_step_us": step_us, "gru": gru}
        evals = 4 * gru[f"inference, {EVAL_EXAMPLES} examples"][0]
        print(f"GRU kernels for 1000 training steps + 4 evaluations: "
              f"{(1000 * gru['bidirectional step'][0] + evals) / 1e6:.2f} s")
    return out


def probe(dtype_name):
    """Child process: times the import and each kernel's first call; prints JSON."""
    out = {}

    def timed(name, call):
        start = time.perf_counter()
        result = call()
        out[name] = time.perf_counter() - start
        return result
    K = timed("import", kernels)
    dtype, rng = getattr(np, dtype_name), np.random.default_rng(0)
    x, w, gy = conv_arrays(rng, dtype, *CONV_LAYERS[1])
    (xg, p_f), (_, p_r) = gru_arrays(rng, dtype, BATCH), gru_arrays(rng, dtype, BATCH)
    timed("conv1d_forward", lambda: K.conv1d_forward(x, w, 2, 1))
    timed("conv1d_grad_input", lambda: K.conv1d_grad_input(gy, w, 2, 1, 19))
    timed("conv1d_grad_weight", lambda: K.conv1d_grad_weight(x, gy, 2, 1, 3))
    hs, caches = timed("gru_bidirectional_forward", lambda: K.gru_bidirectional_forward(xg, p_f, p_r, True))
    timed("gru_bidirectional_backward", lambda: K.gru_bidirectional_backward(hs, xg, p_f, p_r, caches))
    hs, cache = timed("gru_forward", lambda: K.gru_forward(xg, *p_f, False, True))
    timed("gru_backward", lambda: K.gru_backward(hs, xg, *p_f, False, cache))
    out["all first calls"] = sum(v for k, v in out.items() if k != "import")
    print(json.dumps(out))


def run_probe(dtype_name, cache_dir):
    """Runs probe() in a subprocess with NUMBA_CACHE_DIR=cache_dir; adds the whole process's wall time."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--probe", dtype_name], env=env,
                            capture_output=True, text=True, check=True)
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    timings["whole process"] = time.perf_counter() - start
    return timings


def report_compile():
    """Prints the compile costs; returns {dtype: {'cold': ..., 'warm': ...}}."""
    print("\n== compile costs (s) in fresh subprocesses: cold = empty NUMBA_CACHE_DIR, warm = cached")
    out = {}
    for dtype_name in ("float32", "float64"):
        with tempfile.TemporaryDirectory() as cache_dir:
            cold, warm = run_probe(dtype_name, cache_dir), run_probe(dtype_name, cache_dir)
        print(f"{dtype_name:28s} {'cold':>7s} {'warm':>7s}")
        for k in cold:
            print(f"  {k:26s} {cold[k]:7.2f} {warm[k]:7.2f}")
        out[dtype_name] = {"cold": cold, "warm": warm}
    return out


def compare_paths(repeats, widths=(8, 16, 25, 32, 40, 48, 56, 64, 100)):
    """Median us per call of the block kernels and the BLAS path, per width, float32:
    printed, and returned as {C: {kernel: [blocks us, BLAS us]}}."""
    from mnist1d_np import conv1d
    rng, out = np.random.default_rng(0), {}
    print(f"\n== conv1d paths, float32, batch {BATCH}, C x 19 -> C x 10, kernel 3: median us per call "
          f"(BLAS path from C_out*C_in*K >= {conv1d.BLAS_FROM})")
    print(f"{'C':>4s} {'C*C*K':>7s}" + "".join(f"{name:>26s}" for name in ("forward", "grad_input", "grad_weight")))
    for C in widths:
        x, w, gy = [rng.standard_normal(s).astype(np.float32) for s in [(BATCH, C, 19), (C, C, 3), (BATCH, C, 10)]]
        pairs = [(conv1d.forward_kernel, conv1d.blas_forward, (x, w, 2, 1)),
                 (conv1d.grad_input_kernel, conv1d.blas_grad_input, (gy, w, 2, 1, 19)),
                 (conv1d.grad_weight_kernel, conv1d.blas_grad_weight, (x, gy, 2, 1, 3))]
        cells, out[C] = [], {}
        for name, (blocks, blas_path, args) in zip(("forward", "grad_input", "grad_weight"), pairs):
            t_blocks, t_blas = (timed_calls(f, *args, repeats=repeats)[0] for f in (blocks, blas_path))
            cells.append(f"{t_blocks:8.0f} {t_blas:8.0f} ({t_blas / t_blocks:4.2f}x)")
            out[C][name] = [t_blocks, t_blas]
        print(f"{C:4d} {C * C * 3:7d}" + "".join(f"{c:>26s}" for c in cells))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per kernel")
    parser.add_argument("--top-pad", type=int, metavar="MB", help="call mallopt(M_TOP_PAD, MB) first")
    parser.add_argument("--skip-compile", action="store_true", help="skip the compile-cost subprocesses")
    parser.add_argument("--compare-paths", action="store_true",
                        help="only compare conv1d's block kernels with its BLAS path, over widths")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe(args.probe)
    if args.compare_paths:
        paths = compare_paths(args.repeats)
        if args.json:
            print(json.dumps({"repeats": args.repeats, "compare_paths_us": paths}))
        return
    if args.top_pad:
        ctypes.CDLL("libc.so.6").mallopt(-2, args.top_pad << 20)   # -2 is M_TOP_PAD in glibc's malloc.h
    print(f"numpy {np.__version__}, {os.cpu_count()} cpus, M_TOP_PAD {args.top_pad or 'default'}; "
          f"medians of {args.repeats} calls")
    result = {"repeats": args.repeats, "speed_us_and_faults": report_speed(args.repeats)}
    if not args.skip_compile:
        result["compile_s"] = report_compile()
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
