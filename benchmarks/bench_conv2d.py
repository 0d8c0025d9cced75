"""Benchmark conv2d at the image CNN's sizes, and an MNIST-size epoch of each image model.

    python benchmarks/bench_conv2d.py [--repeats 20] [--epochs 3] [--skip-epochs] [--json]

1. conv2d's three kernels (forward, grad_input, grad_weight) on the layers of
   nn.ConvNet2d, batch 100, float32: 1 -> 25 channels (5x5, s2, p1) 28 -> 13,
   25 -> 25 (3x3, s2, p1) 13 -> 7 and 7 -> 4. Median ms per call over
   --repeats calls (after warm-up), the rate reached (GFLOP/s, 2 per
   multiply-add), the same call's BLAS product timed alone, and this core's
   float32 matrix-product peak (bench_double_descent.matmul_peak_gflops: one
   OpenBLAS thread, 1024^3), which no single-threaded kernel can beat.
2. One MNIST-size epoch of each image model (make_model(..., image_shape=(28, 28))):
   60,000 random 28 x 28 images in [0, 1), batch 100, so 600 steps of the
   paper's update (Adam lr 1e-2, fixed-order batches) through train.fit, no
   evaluation. Median wall and CPU seconds over --epochs epochs (after a
   warm-up of 20 steps), the rate from nn.flops_per_example, and for the CNN
   the split between its convolutions' matrix products and the rest: every
   product conv2d computes goes through conv2d._matmul, which the benchmark
   replaces by a timed np.matmul during the epochs, so the products are timed
   in place, with the caches as the training step leaves them. The rest is
   everything else: im2col and its adjoint, the ReLU masks, the linear layer
   (1 % of the FLOPs), the loss, Adam and the autodiff engine.
3. One evaluation pass over 70,000 images (the train and test sets; the
   paper's loop does one every 250 steps) per model: train.evaluate, batch
   1000, median of 3.

The machine this runs on is shared and noisy: medians, and CPU time beside
wall time (for these single-threaded loops load barely moves CPU time, while
wall time can vary several-fold between neighbouring runs). No timing here is
asserted anywhere in the tests.
"""
import argparse
import json
import time

import numpy as np

from bench_double_descent import matmul_peak_gflops
from mnist1d_np import Tensor, conv2d, nn, optim, train

BATCH, SIDE, DTYPE = 100, 28, np.float32
MODELS = ("logistic", "mlp", "cnn", "gru")


def median_ms(f, repeats):
    """Median wall ms of f() over `repeats` calls, after three warm-up calls."""
    for _ in range(3):
        f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def cnn_layers(model, batch):
    """[(name, x, w, gy, geometry)] for the conv layers of a ConvNet2d, random arrays of a batch's shapes.
    x is batch-last underneath from the second layer on, as the previous layer leaves it."""
    rng, size, layers = np.random.default_rng(0), model.image_shape, []
    for i, conv in enumerate((model.conv1, model.conv2, model.conv3)):
        c_out, c_in, k, _ = conv.weight.shape
        size_out = conv2d.output_size(size, (k, k), conv.stride, conv.padding)
        x = rng.random((batch, c_in) + size).astype(DTYPE)
        if i:
            x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0)
        gy = np.moveaxis(rng.standard_normal((c_out,) + size_out + (batch,)).astype(DTYPE), -1, 0)
        layers.append((f"{c_in:>2}x{size[0]}x{size[1]} k{k}", x, conv.weight.data, gy,
                       (conv.stride, conv.padding, size, (k, k))))
        size = size_out
    return layers


def bench_kernels(model, repeats):
    """{layer: {kernel: {ms, gflops, product_ms, product_gflops}}} for conv2d's three kernels."""
    rows = {}
    for name, x, w, gy, (stride, padding, size, kernel) in cnn_layers(model, BATCH):
        flop = 2 * gy.size * w[0].size
        rows_, positions = w[0].size, gy.size // w.shape[0]
        w2, cols = w.reshape(w.shape[0], -1), np.random.default_rng(1).random((rows_, positions)).astype(DTYPE)
        gy2 = np.ascontiguousarray(conv2d.batch_last(gy)).reshape(w.shape[0], -1)
        calls = {"forward": (lambda: conv2d.forward(x, w, stride, padding), lambda: w2 @ cols),
                 "grad_input": (lambda: conv2d.grad_input(gy, w, stride, padding, size), lambda: w2.T @ gy2),
                 "grad_weight": (lambda: conv2d.grad_weight(x, gy, stride, padding, kernel), lambda: cols @ gy2.T)}
        rows[name] = {}
        for kernel_name, (call, product) in calls.items():
            ms, product_ms = median_ms(call, repeats), median_ms(product, repeats)
            rows[name][kernel_name] = {"ms": ms, "gflops": flop / ms / 1e6,
                                       "product_ms": product_ms, "product_gflops": flop / product_ms / 1e6}
    return rows


class TimedProducts:
    """Stands in for conv2d._matmul while installed: the same products, their wall time summed."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        out = np.matmul(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        return out


def images(n, rng):
    """n random 28 x 28 images, row by row in [0, 1), and labels."""
    return rng.random((n, SIDE * SIDE), dtype=DTYPE), rng.integers(0, 10, n)


def epoch_seconds(name, x, y, epochs):
    """Median (wall, CPU, conv2d products) seconds of one epoch (len(x) / 100 steps) of
    train.fit, after a 20-step warm-up; and the model."""
    model = nn.make_model(name, np.random.default_rng(0), dtype=DTYPE, image_shape=(SIDE, SIDE))
    batches, rule = train.FixedOrder(x, y, BATCH), optim.adam(1e-2)
    train.fit(model, batches, rule, 20)
    wall, cpu, products = [], [], []
    for _ in range(epochs):
        conv2d._matmul = timed = TimedProducts()
        try:
            start, start_cpu = time.perf_counter(), time.process_time()
            train.fit(model, batches, rule, len(x) // BATCH)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        finally:
            conv2d._matmul = np.matmul
        products.append(timed.seconds)
    return float(np.median(wall)), float(np.median(cpu)), float(np.median(products)), model


def evaluation_seconds(model, x, y, x_test, y_test):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        train.evaluate(model, x, y)
        train.evaluate(model, x_test, y_test)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_epochs(epochs):
    """{model: {...}}: seconds per epoch and per evaluation, GFLOP/s; the CNN's product split."""
    rng = np.random.default_rng(0)
    (x, y), (x_test, y_test) = images(60_000, rng), images(10_000, rng)
    rows = {}
    for name in MODELS:
        wall, cpu, products, model = epoch_seconds(name, x, y, epochs)
        flops = nn.flops_per_example(model, (SIDE * SIDE,))
        epoch_flop = len(x) * (flops["forward"] + flops["backward"])
        rows[name] = {"seconds_per_epoch": wall, "cpu_seconds_per_epoch": cpu,
                      "flops_per_example": flops, "gflops": epoch_flop / wall / 1e9,
                      "evaluation_seconds_70000": evaluation_seconds(model, x, y, x_test, y_test)}
        if name == "cnn":
            rows[name].update(products_seconds_per_epoch=products, rest_seconds_per_epoch=wall - products,
                              products_share=products / wall)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="calls per kernel timing (default 20)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per model (default 3)")
    parser.add_argument("--skip-epochs", action="store_true", help="time the kernels only")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ns = parser.parse_args()
    for flag in ("repeats", "epochs"):
        if getattr(ns, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(ns, flag)}")
    cnn = nn.make_model("cnn", np.random.default_rng(0), dtype=DTYPE, image_shape=(SIDE, SIDE))
    result = {"matmul_peak_gflop_per_s": matmul_peak_gflops(), "repeats": ns.repeats,
              "kernels": bench_kernels(cnn, ns.repeats)}
    print(f"one-thread float32 matmul peak (1024^3): {result['matmul_peak_gflop_per_s']:.0f} GFLOP/s")
    print(f"conv2d, float32, batch {BATCH}: median ms per call (GFLOP/s), and its BLAS product alone")
    for layer, kernels in result["kernels"].items():
        print(f"  {layer}: " + "; ".join(f"{k} {r['ms']:.3f} ({r['gflops']:.0f}), product {r['product_ms']:.3f} "
                                          f"({r['product_gflops']:.0f})" for k, r in kernels.items()))
    if not ns.skip_epochs:
        result["epochs"] = bench_epochs(ns.epochs)
        print(f"one epoch = 60,000 images, batch {BATCH}, Adam; median of {ns.epochs}")
        for name, row in result["epochs"].items():
            split = (f"; conv2d's products {row['products_seconds_per_epoch']:.2f} s "
                     f"({100 * row['products_share']:.0f} %), the rest {row['rest_seconds_per_epoch']:.2f} s"
                     if "products_share" in row else "")
            print(f"  {name:8s} {row['seconds_per_epoch']:.2f} s per epoch (CPU {row['cpu_seconds_per_epoch']:.2f}), "
                  f"{row['gflops']:.1f} GFLOP/s{split}; evaluating 70,000 images "
                  f"{row['evaluation_seconds_70000']:.2f} s")
    if ns.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
