"""PyTorch's side of bench/conv_bench.c: torch.nn.functional.conv2d forward and backward on the
same two convolutions, batch 64, no bias, the weight's gradient always and the input's for conv2
only, and max_pool2d(2) on the two convs' outputs; backward from a gradient of ones. Times 7
blocks of about SECONDS after a warm-up and prints one JSON line per op, with the same fields as
conv_bench.

Usage: conv_torch.py [--threads 2] [--seconds 0.3]"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

BATCH = 64
BLOCKS = 7
SHAPES = [  # name, pool, channels, size, out, kernel, padding, input_grad
    ("conv1", False, 1, 28, 32, 3, 1, False),
    ("conv2", False, 32, 14, 64, 3, 1, True),
    ("pool1", True, 32, 28, 32, 2, 0, True),
    ("pool2", True, 64, 14, 64, 2, 0, True),
]


def timed_block(op, x, w, ones, seconds):
    forward = backward = 0.0
    steps = 0
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        y = op(x, w)
        t1 = time.perf_counter()
        y.backward(ones)
        t2 = time.perf_counter()
        forward += t1 - t0
        backward += t2 - t1
        steps += 1
        if w is not None:
            w.grad = None
        x.grad = None
        if t2 - start >= seconds:
            return forward / steps, backward / steps


def bench(shape, threads, seconds):
    name, pool, channels, size, out, kernel, padding, input_grad = shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, channels, size, size, generator=gen, requires_grad=input_grad)
    if pool:
        w = None
        def op(x, w):
            return F.max_pool2d(x, kernel)
    else:
        w = (0.1 * torch.randn(out, channels, kernel, kernel, generator=gen)).requires_grad_()
        def op(x, w):
            return F.conv2d(x, w, None, 1, padding)
    with torch.no_grad():
        y = op(x, w)
    ones = torch.ones_like(y)
    timed_block(op, x, w, ones, seconds)  # warm-up
    blocks = [timed_block(op, x, w, ones, seconds) for _ in range(BLOCKS)]
    steps = sorted(f + b for f, b in blocks)
    macs = BATCH * out * y.shape[2] * y.shape[3] * channels * kernel * kernel
    products = 0 if pool else 3 if input_grad else 2
    flops = 2.0 * macs * products
    return {"op": name, "kind": "maxpool2d" if pool else "conv2d", "x": list(x.shape),
            "kernel": kernel, "padding": padding,
            "input_grad": input_grad, "threads": threads, "products": products,
            "mflop_per_step": round(flops * 1e-6, 1),
            "forward_ms": round(min(f for f, _ in blocks) * 1e3, 3),
            "backward_ms": round(min(b for _, b in blocks) * 1e3, 3),
            "step_ms": round(steps[0] * 1e3, 3),
            "median_step_ms": round(statistics.median(steps) * 1e3, 3),
            "gflops": round(flops / steps[0] * 1e-9, 1),
            "median_gflops": round(flops / statistics.median(steps) * 1e-9, 1),
            "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for shape in SHAPES:
        print(json.dumps(bench(shape, args.threads, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
