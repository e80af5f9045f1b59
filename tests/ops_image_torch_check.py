"""The image ops against PyTorch: for fixed inputs, conv2d, max and average pooling, and a
conv2d -> relu -> maxpool2d -> flatten -> matmul chain give the same outputs and gradients (of
the mean squared error against a fixed target) as torch.nn.functional, to 1e-5 relative: the
largest difference of a tensor over its largest magnitude. Several shapes each: strides,
paddings, odd sizes, non-square kernels, a kernel the size of the input, 1x1 kernels, and
max pooling of small integers, whose many ties must send the gradient where PyTorch does.

`test_ops_image --torch THREADS` computes each case (the case on stdin, see tests/test_ops_image.c),
on 1 thread and on 3.

Usage: ops_image_torch_check.py TEST_OPS_IMAGE_PROGRAM. Exits 77 (skipped) without torch."""
import subprocess
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skipped: this python3 cannot import torch (install python3-torch)")
    sys.exit(77)

TOLERANCE = 1e-5

# conv2d: B C H W O kh kw sh sw ph pw bias
CONV = [
    (3, 1, 28, 28, 4, 3, 3, 1, 1, 1, 1, 1),    # the reference CNN's first conv, fewer kernels
    (2, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 0),  # its second conv, batch 2
    (2, 3, 9, 7, 5, 3, 5, 2, 1, 1, 2, 1),      # non-square kernel, stride and padding
    (4, 2, 8, 8, 3, 2, 2, 2, 2, 0, 0, 0),
    (1, 4, 5, 6, 2, 5, 6, 1, 1, 0, 0, 1),      # kernel == input
    (3, 3, 6, 5, 4, 1, 1, 1, 1, 0, 0, 1),      # 1x1: no columns
    (2, 2, 7, 7, 3, 1, 1, 2, 2, 0, 0, 1),      # 1x1 with a stride
    (5, 2, 10, 9, 3, 3, 3, 3, 3, 2, 2, 0),     # stride 3: the last rows and columns unused
    (2, 1, 3, 4, 2, 3, 3, 2, 1, 3, 1, 1),      # padding larger than the kernel
    # 3x3, stride 1, 8 channels or more in: Winograd's method
    (3, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1),    # 256 tiles a sample: a chunk is one sample
    (30, 8, 5, 5, 10, 3, 3, 1, 1, 1, 1, 0),    # 9 tiles a sample: chunks of 28 samples
    (2, 16, 7, 6, 12, 3, 3, 1, 1, 2, 1, 1),    # an odd output height, padding 2x1
    (2, 8, 3, 3, 8, 3, 3, 1, 1, 3, 3, 1),      # padding larger than the kernel
    (3, 8, 6, 7, 2, 3, 3, 1, 1, 1, 1, 1),      # two channels out
]
# pools: B C H W kh kw sh sw integers (small integers: ties)
POOLS = [
    (2, 3, 28, 28, 2, 2, 2, 2, False),
    (3, 2, 7, 5, 3, 2, 2, 1, False),
    (1, 1, 6, 6, 3, 3, 1, 1, False),           # overlapping windows
    (2, 2, 5, 5, 5, 5, 5, 5, False),           # kernel == input
    (2, 2, 9, 8, 2, 3, 3, 4, False),           # stride > kernel: gaps
    (3, 2, 8, 8, 2, 2, 2, 2, True),
    (2, 3, 7, 6, 3, 3, 1, 2, True),            # overlapping windows full of ties
]
# chain: B C H W O kh kw sh sw ph pw pool_k pool_s classes
CHAIN = [
    (3, 2, 12, 11, 4, 3, 3, 1, 1, 1, 1, 2, 2, 5),
    (2, 3, 9, 10, 3, 3, 2, 2, 1, 0, 1, 3, 2, 4),
]


def numbers(*tensors):
    return " ".join(f"{v:.9g}" for t in tensors for v in t.detach().reshape(-1).tolist())


def run(program, threads, header, tensors):
    text = header + "\n" + numbers(*tensors) + "\n"
    out = subprocess.run([program, "--torch", str(threads)], input=text, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{program} --torch failed ({out.returncode}): {out.stderr.strip()}")
    got = {}
    for line in out.stdout.splitlines():
        name, *values = line.split()
        got[name] = torch.tensor([float(v) for v in values], dtype=torch.float32)
    return got


def relative_error(got, want):
    want = want.detach().reshape(-1)
    if got.numel() != want.numel():
        return float("inf")
    scale = want.abs().max().item()
    return (got - want).abs().max().item() / (scale if scale > 0 else 1.0)


def compare(program, label, header, inputs, output, grads):
    """Runs the case on 1 and 3 threads and compares with PyTorch's output and gradients."""
    failures = 0
    got, got3 = (run(program, threads, header, inputs) for threads in (1, 3))
    if got.keys() != got3.keys() or any(not torch.equal(got[k], got3[k]) for k in got):
        print(f"FAIL {label}: 1 and 3 threads differ")
        failures += 1
    worst = []
    for name, want in [("y", output)] + grads:
        e = relative_error(got.get(name, torch.empty(0)), want)
        worst.append(f"{name} {e:.1e}")
        if not e <= TOLERANCE:
            print(f"FAIL {label}: {name} differs from PyTorch by {e:.3g} (relative)")
            failures += 1
    print(f"{'ok  ' if failures == 0 else 'FAIL'} {label}: {', '.join(worst)}")
    return failures


def mse_backward(y, target, leaves):
    loss = ((y - target) ** 2).mean()
    loss.backward()
    return [leaf.grad for leaf in leaves]


def conv_case(program, case, gen):
    b, c, h, w, o, kh, kw, sh, sw, ph, pw, bias = case
    x = torch.randn(b, c, h, w, generator=gen, requires_grad=True)
    weight = (torch.randn(o, c, kh, kw, generator=gen) * 0.3).requires_grad_()
    bvec = (torch.randn(o, generator=gen)).requires_grad_() if bias else None
    y = F.conv2d(x, weight, bvec, stride=(sh, sw), padding=(ph, pw))
    target = torch.randn(y.shape, generator=gen)
    leaves = [x, weight] + ([bvec] if bias else [])
    grads = mse_backward(y, target, leaves)
    inputs = [x, weight] + ([bvec] if bias else []) + [target]
    names = ["dx", "dw", "db"][:len(grads)]
    return compare(program, f"conv2d {case}", "conv2d " + " ".join(map(str, case)), inputs, y,
                   list(zip(names, grads)))


def pool_case(program, kind, case, gen):
    b, c, h, w, kh, kw, sh, sw, integers = case
    if integers:
        x = torch.randint(0, 3, (b, c, h, w), generator=gen).float().requires_grad_()
    else:
        x = torch.randn(b, c, h, w, generator=gen, requires_grad=True)
    pool = F.max_pool2d if kind == "maxpool2d" else F.avg_pool2d
    y = pool(x, (kh, kw), (sh, sw))
    target = torch.randn(y.shape, generator=gen)
    (dx,) = mse_backward(y, target, [x])
    header = f"{kind} {b} {c} {h} {w} {kh} {kw} {sh} {sw}"
    return compare(program, f"{kind} {case}", header, [x, target], y, [("dx", dx)])


def chain_case(program, case, gen):
    b, c, h, w, o, kh, kw, sh, sw, ph, pw, pk, ps, classes = case
    x = torch.randn(b, c, h, w, generator=gen, requires_grad=True)
    weight = (torch.randn(o, c, kh, kw, generator=gen) * 0.3).requires_grad_()
    bvec = torch.randn(o, generator=gen).requires_grad_()
    z = F.conv2d(x, weight, bvec, stride=(sh, sw), padding=(ph, pw))
    z = torch.flatten(F.max_pool2d(F.relu(z), pk, ps), 1)
    w2 = (torch.randn(classes, z.shape[1], generator=gen) * 0.3).requires_grad_()
    y = z @ w2.t()
    target = torch.randn(y.shape, generator=gen)
    grads = mse_backward(y, target, [x, weight, bvec, w2])
    return compare(program, f"chain {case}", "chain " + " ".join(map(str, case)),
                   [x, weight, bvec, w2, target], y, list(zip(["dx", "dw", "db", "dw2"], grads)))


def main():
    program = sys.argv[1]
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(14)
    failures = 0
    for case in CONV:
        failures += conv_case(program, case, gen)
    for kind in ("maxpool2d", "avgpool2d"):
        for case in POOLS:
            failures += pool_case(program, kind, case, gen)
    for case in CHAIN:
        failures += chain_case(program, case, gen)
    if failures:
        print(f"{failures} difference(s) from PyTorch")
        sys.exit(1)
    print("all image ops match PyTorch")


if __name__ == "__main__":
    main()
