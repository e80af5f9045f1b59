"""BatchNorm2d (and BatchNorm1d on [B, C, L]) and LayerNorm against PyTorch, forward and
backward, through `test_ops_norm --torch` (tests/test_ops_norm.c).

For each case, this script draws the op's weight and bias and, for each step, an input x and a
target t; nabla and torch both compute y = op(x) and loss = mean((y - t)^2) and its gradients.
Batch norm runs several steps in training mode (the running statistics move from step to step,
num_batches_tracked counts them) and then steps in inference mode; layer norm alternates the
modes (it must not care). Every tensor of every step must agree with torch's to

    max|nabla - torch| / max(max|torch|, 1e-6) <= 1e-5

and the test also checks that it can fail: the same comparison against torch with a different
eps, or with the running variance updated with the biased variance, must exceed the tolerance.

Usage: norm_torch_check.py TEST_OPS_NORM_PROGRAM. Exits 77 (skipped) without torch."""
import subprocess
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError:
    print("skipped: this python3 cannot import torch and numpy (install python3-torch)")
    sys.exit(77)

TOLERANCE = 1e-5

# (shape, training steps, inference steps); [B, C, L] is BatchNorm1d's per-channel case.
BATCHNORM_CASES = [
    ((4, 3, 5, 5), 3, 2),
    ((2, 2, 7, 3), 3, 1),
    ((1, 4, 3, 3), 2, 1),      # a batch of one image: still H·W values per channel
    ((3, 2, 1, 17), 2, 1),     # H·W not a multiple of the 16 lanes
    ((8, 1, 4, 4), 2, 1),      # one channel
    ((6, 16, 9, 11), 2, 1),
    ((5, 3, 7), 3, 1),         # [B, C, L]
    ((4, 2, 6, 6), 2, 1, 100.0),  # values far from 0 next to their spread: no cancellation
]
LAYERNORM_CASES = [
    ((4, 10), 4),
    ((3, 2, 5, 5), 4),
    ((2, 3, 7), 2),
    ((1, 33), 2),
    ((5, 16, 6, 6), 2),
]
MOMENTUM, EPS = 0.1, 1e-5


def distance(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-6)
    return float(np.max(np.abs(got - want))) / scale if want.size else 0.0


def run_nabla(program, args, inputs):
    out = subprocess.run([program, "--torch"] + [str(a) for a in args],
                         input=b"".join(a.astype("<f4").tobytes() for a in inputs),
                         capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("test_ops_norm --torch %s: %s" % (" ".join(map(str, args)),
                                                             out.stderr.decode().strip()))
    return np.frombuffer(out.stdout, dtype="<f4")


def reader(flat):
    at = [0]

    def take(n):
        part = flat[at[0]:at[0] + n]
        if part.size != n:
            raise RuntimeError("nabla wrote too little")
        at[0] += n
        return part
    return take


def torch_step(module, x, t):
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    loss = torch.mean((y - torch.tensor(t)) ** 2)
    module.zero_grad()
    loss.backward()
    return {"y": y.detach().numpy().ravel(), "loss": np.array([loss.item()]),
            "dx": xt.grad.numpy().ravel(), "dweight": module.weight.grad.numpy().ravel(),
            "dbias": module.bias.grad.numpy().ravel()}


def check(name, got, want, failures):
    worst = max(distance(got[k], want[k]) for k in want)
    if worst > TOLERANCE:
        bad = [k for k in want if distance(got[k], want[k]) > TOLERANCE]
        failures.append("%s: %s differ from PyTorch by %.3g of their scale" % (name, bad, worst))
    return worst


def batchnorm_case(program, shape, train_steps, infer_steps, rng, failures, eps_torch=EPS,
                   unbiased=True, offset=0.5):
    channels = shape[1]
    weight = rng.standard_normal(channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    steps = [((rng.standard_normal(shape) * 2 + offset).astype(np.float32),
              rng.standard_normal(shape).astype(np.float32)) for _ in range(train_steps + infer_steps)]
    flat = run_nabla(program, ["batchnorm", MOMENTUM, EPS, train_steps, infer_steps] + list(shape),
                     [weight, bias] + [a for pair in steps for a in pair])
    module = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(channels, eps=eps_torch,
                                                                     momentum=MOMENTUM)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight))
        module.bias.copy_(torch.tensor(bias))
    take = reader(flat)
    size, worst = int(np.prod(shape)), 0.0
    for k, (x, t) in enumerate(steps):
        module.train(k < train_steps)
        before = module.running_var.clone()
        want = torch_step(module, x, t)
        if not unbiased and k < train_steps:
            # What a wrong running variance (the biased one) would give: the check must see it.
            dims = [0] + list(range(2, len(shape)))
            biased = torch.tensor(x).var(dim=dims, unbiased=False)
            module.running_var.copy_((1 - MOMENTUM) * before + MOMENTUM * biased)
        want["running_mean"] = module.running_mean.numpy().ravel()
        want["running_var"] = module.running_var.numpy().ravel()
        want["num_batches_tracked"] = np.array([float(module.num_batches_tracked)])
        got = {"y": take(size), "loss": take(1), "dx": take(size), "dweight": take(channels),
               "dbias": take(channels), "running_mean": take(channels),
               "running_var": take(channels), "num_batches_tracked": take(1)}
        mode = "train" if k < train_steps else "eval"
        worst = max(worst, check("batchnorm %s step %d (%s)" % (shape, k, mode), got, want,
                                 failures))
    return worst


def layernorm_case(program, shape, steps_count, rng, failures, eps_torch=EPS):
    sample = shape[1:]
    weight = rng.standard_normal(sample).astype(np.float32)
    bias = rng.standard_normal(sample).astype(np.float32)
    steps = [(rng.standard_normal(shape).astype(np.float32) * 3 - 1,
              rng.standard_normal(shape).astype(np.float32)) for _ in range(steps_count)]
    flat = run_nabla(program, ["layernorm", EPS, steps_count] + list(shape),
                     [weight, bias] + [a for pair in steps for a in pair])
    module = nn.LayerNorm(list(sample), eps=eps_torch)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight))
        module.bias.copy_(torch.tensor(bias))
    take = reader(flat)
    size, params, worst = int(np.prod(shape)), int(np.prod(sample)), 0.0
    for k, (x, t) in enumerate(steps):
        want = torch_step(module, x, t)
        got = {"y": take(size), "loss": take(1), "dx": take(size), "dweight": take(params),
               "dbias": take(params)}
        worst = max(worst, check("layernorm %s step %d" % (shape, k), got, want, failures))
    return worst


def main():
    if len(sys.argv) != 2:
        print("usage: norm_torch_check.py TEST_OPS_NORM_PROGRAM")
        sys.exit(2)
    program = sys.argv[1]
    torch.set_num_threads(1)
    failures = []
    for shape, train_steps, infer_steps, *offset in BATCHNORM_CASES:
        worst = batchnorm_case(program, shape, train_steps, infer_steps,
                               np.random.default_rng(len(shape) * 100 + shape[0]), failures,
                               offset=offset[0] if offset else 0.5)
        print("batchnorm %-16s %d+%d steps: largest difference %.2g of the scale"
              % (shape, train_steps, infer_steps, worst))
    for shape, steps in LAYERNORM_CASES:
        worst = layernorm_case(program, shape, steps,
                               np.random.default_rng(len(shape) * 100 + shape[0] + 7), failures)
        print("layernorm %-16s %d steps: largest difference %.2g of the scale" % (shape, steps, worst))
    # The comparison can fail: an eps a hundred times larger, or the biased running variance.
    for what, run in (
            ("batchnorm with eps 1e-3", lambda f: batchnorm_case(
                program, (1, 2, 2, 2), 1, 1, np.random.default_rng(1), f, eps_torch=1e-3)),
            ("batchnorm with the biased running variance", lambda f: batchnorm_case(
                program, (2, 2, 3, 3), 2, 0, np.random.default_rng(2), f, unbiased=False)),
            ("layernorm with eps 1e-3", lambda f: layernorm_case(
                program, (2, 2, 2), 1, np.random.default_rng(3), f, eps_torch=1e-3))):
        spoiled = []
        worst = run(spoiled)
        if not spoiled:
            failures.append("the check does not see %s (largest difference %.3g)" % (what, worst))
        else:
            print("a spoiled reference (%s) is caught: difference %.2g" % (what, worst))
    for f in failures:
        print("FAIL " + f)
    sys.exit(1 if failures else 0)


main()
