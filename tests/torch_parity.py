#!/usr/bin/python3
"""Step-for-step parity of `nabla train` with PyTorch.

For each case, the same float32 data, the same initial weights (written by this script) and the
same hyperparameters go to `nabla train` and to an equivalent torch.nn.Sequential trained by
torch.optim; then every tensor of the state_dict (weights, biases, batch-norm running statistics
and num_batches_tracked) must agree to 1e-4 of the tensor's own scale:

    max|nabla - torch| / max(max|torch|, 1e-6) <= 1e-4

The models are the MLP of LAYERS (every optimizer, with and without batch norm and weight
decay, three activations, a decaying schedule) and the convolutional networks of CNN_MODELS on
2x7x9 images read with --input-shape (conv2d with padding, strides and a non-square kernel,
both poolings, BatchNorm2d, layer norm; every optimizer on the first), each given as a model's
text that tests/model_text_py.py turns into the equivalent torch.nn.Sequential.

Batches are taken in file order (--no-shuffle), the last partial batch included, and training
stops after --max-steps steps, which crosses epoch boundaries so per-epoch learning-rate
schedules are exercised. Each case also checks that it can fail: training must move the weights
far from their initial values, and weight decay must change the result by far more than the
tolerance (otherwise a nabla that ignored --weight-decay would pass).

Safetensors are read and written here in plain Python (no safetensors package needed).

Usage: /usr/bin/python3 torch_parity.py --nabla PATH/TO/nabla [--print-command] [--only SUBSTR]
Exit status: 0 if every case passed, 1 otherwise, 2 on bad usage, 77 (CTest's usual "skipped")
when numpy or torch is missing.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:  # pragma: no cover - environment problem, not a test failure
    sys.stderr.write("torch_parity.py: needs numpy and torch (python3-torch): %s\n" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_text_py  # noqa: E402  (a model's text as a torch.nn.Sequential)
import safetensors_py  # noqa: E402  (the shared reader and writer beside this file)

TOLERANCE = 1e-4

# The data set: 200 samples leave a partial last batch of 8 with batches of 32, so one epoch is
# 7 steps and 20 steps end in the middle of epoch 2 (epochs 0, 1, 2: two boundaries crossed).
SAMPLES, FEATURES, CLASSES = 200, 12, 4
LAYERS = (32, 16)
BATCH_SIZE, EPOCHS, MAX_STEPS = 32, 3, 20
WEIGHT_DECAY = 0.05

# Learning rates large enough to move every tensor well beyond the tolerance in 20 steps.
BASE_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "rmsprop": 0.001, "adam": 0.003,
           "adamw": 0.003}
BETA, BETA2, EPS = 0.9, 0.999, 1e-8


# ---- data and model -------------------------------------------------------------------------

# The convolutional cases' samples: images of 2 channels, 7x9 (odd sides), as CSV rows of
# 2*7*9 features read with --input-shape.
IMAGE = (2, 7, 9)


def make_dataset(features=FEATURES):
    """Gaussian clusters, one per class, in float32; labels not sorted so every batch mixes them."""
    rng = np.random.RandomState(1234)
    centers = rng.normal(0.0, 1.5, size=(CLASSES, features))
    y = rng.randint(0, CLASSES, size=SAMPLES)
    x = centers[y] + rng.normal(0.0, 1.0, size=(SAMPLES, features))
    return x.astype(np.float32), y.astype(np.int64)


def write_csv(path, x, y):
    with open(path, "w") as f:
        f.write(",".join(["f%d" % i for i in range(x.shape[1])] + ["label"]) + "\n")
        for row, label in zip(x, y):
            # '%.9g' round-trips every float32 exactly.
            f.write(",".join("%.9g" % v for v in row) + ",%d\n" % label)


def make_model(case, seed):
    """torch.nn.Sequential of nabla's shape; batch-norm tensors perturbed away from their
    defaults so that loading them (and not just starting from 1/0) is checked too."""
    torch.manual_seed(seed)
    if case.model:
        model = model_text_py.sequential(case.model, IMAGE, CLASSES)
    else:
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[case.activation]
        layers, width = [], FEATURES
        for h in LAYERS:
            layers.append(nn.Linear(width, h, bias=not case.batchnorm))
            if case.batchnorm:
                layers.append(nn.BatchNorm1d(h, eps=1e-5, momentum=0.1))
            layers.append(act())
            width = h
        layers.append(nn.Linear(width, CLASSES))
        model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.uniform_(-0.3, 0.3)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(3)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.uniform_(-0.3, 0.3)
    return model


def state_arrays(model):
    out = []
    for name, t in model.state_dict().items():
        arr = t.detach().cpu().numpy()
        out.append((name, arr.astype(np.int64 if t.dtype == torch.int64 else np.float32)))
    return out


# ---- the cases ------------------------------------------------------------------------------

class Case:
    def __init__(self, optimizer, batchnorm=False, weight_decay=0.0, activation="relu",
                 bias_correction=False, lr_decay=None, model=None):
        self.model = model  # a model's text on IMAGE samples, or None: the MLP of LAYERS
        self.optimizer = optimizer
        self.batchnorm = batchnorm
        self.weight_decay = weight_decay
        self.activation = activation
        self.bias_correction = bias_correction
        self.lr_decay = lr_decay
        self.lr = BASE_LR[optimizer]

    def label(self):
        name = self.optimizer + ("+bias-correction" if self.bias_correction else "")
        extra = ""
        if self.activation != "relu":
            extra += " act=" + self.activation
        if self.lr_decay:
            extra += " lr-decay=" + self.lr_decay
        if self.model:
            return "%s wd=%g %s" % (name, self.weight_decay, self.model)
        return "%s bn=%d wd=%g%s" % (name, int(self.batchnorm), self.weight_decay, extra)

    def without_weight_decay(self):
        return Case(self.optimizer, self.batchnorm, 0.0, self.activation, self.bias_correction,
                    self.lr_decay, self.model)

    def lr_at(self, epoch):
        if self.lr_decay == "inverse":
            return self.lr / (1.0 + 1.0 * epoch)
        return self.lr

    def nabla_command(self, nabla, data, init, out_weights, out_dir):
        if self.model:
            cmd = [nabla, "train", "--data", data, "--layers", self.model,
                   "--input-shape", ",".join(map(str, IMAGE))]
        else:
            # The features as they are, as the PyTorch side reads them (not standardized).
            cmd = [nabla, "train", "--data", data, "--layers", ",".join(map(str, LAYERS)),
                   "--activation", self.activation, "--normalize", "none"]
        if self.batchnorm:
            cmd.append("--batchnorm")
        cmd += ["--optimizer", self.optimizer, "--lr", repr(self.lr), "--beta", repr(BETA),
                "--beta2", repr(BETA2), "--eps", repr(EPS),
                "--weight-decay", repr(self.weight_decay)]
        if self.bias_correction:
            cmd.append("--bias-correction")
        cmd += ["--batch-size", str(BATCH_SIZE), "--epochs", str(EPOCHS),
                "--max-steps", str(MAX_STEPS), "--no-shuffle"]
        if self.lr_decay:
            cmd += ["--lr-decay", self.lr_decay, "--decay-rate", "1"]
        cmd += ["--init-weights", init, "--save-weights", out_weights, "--out", out_dir,
                "--quiet", "--threads", "1"]
        return cmd


def all_cases():
    cases = []
    for opt in ("sgd", "momentum", "momentum+bc", "nesterov", "rmsprop", "adam", "adamw"):
        for bn in (False, True):
            for wd in (0.0, WEIGHT_DECAY):
                if opt == "momentum+bc":
                    cases.append(Case("momentum", bn, wd, bias_correction=True))
                else:
                    cases.append(Case(opt, bn, wd))
    for act in ("tanh", "sigmoid"):
        for bn in (False, True):
            cases.append(Case("adam", bn, 0.0, activation=act))
    cases.append(Case("sgd", False, 0.0, lr_decay="inverse"))
    cases.append(Case("momentum", True, WEIGHT_DECAY, lr_decay="inverse"))
    cases.append(Case("adam", True, 0.0, lr_decay="inverse"))
    # Convolutional networks on 2x7x9 images: conv2d with padding, a non-square kernel and
    # strides, both poolings (one overlapping), BatchNorm2d, layer norm over an image and over
    # a vector; 3x3 convolutions by Winograd's method; every optimizer on the first.
    for opt in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"):
        for wd in (0.0, WEIGHT_DECAY):
            cases.append(Case(opt, weight_decay=wd, model=CNN_MODELS[0]))
    cases.append(Case("momentum", bias_correction=True, model=CNN_MODELS[0]))
    for text in CNN_MODELS[1:]:
        for opt in ("sgd", "adam"):
            cases.append(Case(opt, model=text))
    return cases


CNN_MODELS = [
    "conv2d(4,3,padding=1),batchnorm,relu,maxpool2d(2),conv2d(6,3x2,stride=2),relu,flatten,"
    "linear(10),relu,linear",
    "conv2d(5,2,stride=2,padding=1),tanh,avgpool2d(2,stride=1),layernorm,flatten,linear",
    "conv2d(3,kernel=1x3,padding=0x1),sigmoid,maxpool2d(3,stride=2),flatten,linear(16),"
    "layernorm,leaky_relu(0.1),linear",
    # the second conv (3x3, stride 1, 8 channels in) by Winograd's method, with a bias
    # and an odd output (5x7)
    "conv2d(8,3,padding=1),batchnorm,relu,conv2d(8,3),relu,maxpool2d(2),flatten,linear",
]


# ---- the torch side -------------------------------------------------------------------------

def torch_optimizer(case, params):
    """The torch.optim equivalent of nabla's optimizer (DESIGN.md, "Exact semantics"), or None
    for momentum with bias correction, which torch lacks and train_torch does by hand."""
    wd = case.weight_decay
    if case.optimizer == "sgd":
        return torch.optim.SGD(params, lr=case.lr, weight_decay=wd)
    if case.optimizer == "momentum" and not case.bias_correction:
        # v = beta*v + (1-beta)*g, w -= lr*v  ==  buf = beta*buf + g, w -= lr*(1-beta)*buf
        return torch.optim.SGD(params, lr=case.lr * (1 - BETA), momentum=BETA,
                               weight_decay=wd)
    if case.optimizer == "nesterov":
        return torch.optim.SGD(params, lr=case.lr * (1 - BETA), momentum=BETA, nesterov=True,
                               weight_decay=wd)
    if case.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=case.lr, alpha=BETA2, eps=EPS, weight_decay=wd)
    if case.optimizer == "adam":
        return torch.optim.Adam(params, lr=case.lr, betas=(BETA, BETA2), eps=EPS,
                                weight_decay=wd)
    if case.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=case.lr, betas=(BETA, BETA2), eps=EPS,
                                 weight_decay=wd)
    return None


def set_lr(opt, case, lr):
    scale = (1 - BETA) if case.optimizer in ("momentum", "nesterov") else 1.0
    for group in opt.param_groups:
        group["lr"] = lr * scale


def train_torch(case, model, x, y):
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    if case.model:
        x_t = x_t.reshape(-1, *IMAGE)
    params = list(model.parameters())
    opt = torch_optimizer(case, params)
    velocity = [torch.zeros_like(p) for p in params]  # the hand-made momentum's state
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    steps = 0
    for epoch in range(EPOCHS):
        lr = case.lr_at(epoch)
        if opt is not None:
            set_lr(opt, case, lr)
        for first in range(0, SAMPLES, BATCH_SIZE):
            if steps >= MAX_STEPS:
                return
            model.zero_grad(set_to_none=False)
            loss = loss_fn(model(x_t[first:first + BATCH_SIZE]), y_t[first:first + BATCH_SIZE])
            loss.backward()
            steps += 1
            if opt is not None:
                opt.step()
                continue
            # Momentum (course form) with bias correction: v = beta*v + (1-beta)*(g + wd*w),
            # w -= lr * v / (1 - beta^t).
            scale = lr / (1.0 - BETA ** steps)
            with torch.no_grad():
                for p, v in zip(params, velocity):
                    g = p.grad + case.weight_decay * p
                    v.mul_(BETA).add_(g, alpha=1 - BETA)
                    p.sub_(v, alpha=scale)


# ---- comparison -----------------------------------------------------------------------------

def rel_diff(a, b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = max(float(np.max(np.abs(b64))) if b64.size else 0.0, 1e-6)
    return float(np.max(np.abs(a64 - b64))) / scale if b64.size else 0.0


def compare(nabla_state, torch_state):
    """Returns (worst ratio, name of the worst tensor, list of problems)."""
    problems, worst, worst_name = [], 0.0, "-"
    for name, ref in torch_state:
        got = nabla_state.get(name)
        if got is None:
            problems.append("%s missing from nabla's weights" % name)
            continue
        if got.shape != ref.shape or got.dtype != ref.dtype:
            problems.append("%s: nabla has %s %s, torch %s %s" % (name, got.dtype,
                                                                  list(got.shape), ref.dtype,
                                                                  list(ref.shape)))
            continue
        r = rel_diff(got, ref)
        if r > worst or worst_name == "-":
            worst, worst_name = r, name
        if not r <= TOLERANCE:  # NaN fails too
            problems.append("%s: rel diff %.3g (max|torch| %.3g)" % (
                name, r, float(np.max(np.abs(ref.astype(np.float64))))))
    extra = sorted(set(nabla_state) - {n for n, _ in torch_state})
    if extra:
        problems.append("nabla wrote tensors torch does not have: %s" % ", ".join(extra))
    return worst, worst_name, problems


def run_case(case, args, workdir, data, torch_results):
    csv_path, x, y = data["image" if case.model else "vector"]
    tag = case.label().replace(" ", "_").replace("=", "").replace("+", "_")
    init_path = os.path.join(workdir, tag + ".init.safetensors")
    out_path = os.path.join(workdir, tag + ".out.safetensors")
    run_dir = os.path.join(workdir, tag + ".run")

    model = make_model(case, seed=7)
    initial = state_arrays(model)
    safetensors_py.write(init_path, initial)

    cmd = case.nabla_command(args.nabla, csv_path, init_path, out_path, run_dir)
    if args.print_command:
        print("$ " + " ".join(shlex.quote(c) for c in cmd))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          universal_newlines=True, timeout=120)
    problems = []
    if proc.returncode != 0:
        problems.append("nabla exited %d: %s" % (proc.returncode, proc.stderr.strip()[-500:]))

    train_torch(case, model, x, y)
    trained = state_arrays(model)
    torch_results[case.label()] = trained

    # The test must be able to fail: training moves the weights far beyond the tolerance ...
    moved = max(rel_diff(b, a) for (_, a), (_, b) in zip(initial, trained)
                if a.dtype == np.float32)
    if moved < 100 * TOLERANCE:
        problems.append("insensitive case: torch training moved the weights by only %.3g" % moved)
    # ... and weight decay changes the result by far more than the tolerance.
    if case.weight_decay > 0:
        base = torch_results.get(case.without_weight_decay().label())
        if base is not None:
            effect = max(rel_diff(a, b) for (_, a), (_, b) in zip(trained, base)
                         if a.dtype == np.float32)
            if effect < 10 * TOLERANCE:
                problems.append("insensitive case: weight decay changed torch's weights by only "
                                "%.3g" % effect)

    worst, worst_name = float("nan"), "-"
    if proc.returncode == 0:
        try:
            got, _ = safetensors_py.read(out_path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append("cannot read nabla's weights: %s" % e)
        else:
            worst, worst_name, diffs = compare(got, trained)
            problems += diffs
    return worst, worst_name, problems


def main():
    parser = argparse.ArgumentParser(description="Compare `nabla train` with PyTorch, step for "
                                                 "step, on every optimizer.")
    parser.add_argument("--nabla", required=True, help="path to the nabla program")
    parser.add_argument("--print-command", action="store_true",
                        help="print the nabla command of each case")
    parser.add_argument("--only", default=None,
                        help="run only the cases whose label contains this text")
    parser.add_argument("--keep", default=None,
                        help="write the files into this directory and keep them")
    args = parser.parse_args()
    if not os.access(args.nabla, os.X_OK):
        sys.stderr.write("torch_parity.py: %s is not an executable\n" % args.nabla)
        return 2
    args.nabla = os.path.abspath(args.nabla)

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    cases = all_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.label()]
    start = time.time()
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="nabla-parity-") as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        data = {}
        for kind, features in (("vector", FEATURES), ("image", int(np.prod(IMAGE)))):
            x, y = make_dataset(features)
            csv_path = os.path.join(workdir, kind + ".csv")
            write_csv(csv_path, x, y)
            data[kind] = (csv_path, x, y)
        torch_results = {}
        for case in cases:
            worst, worst_name, problems = run_case(case, args, workdir, data, torch_results)
            status = "OK" if not problems else "FAILED"
            print("%s: worst rel diff %.2g (%s) %s" % (case.label(), worst, worst_name, status))
            for p in problems:
                print("    " + p)
            sys.stdout.flush()
            if problems:
                failed += 1
            else:
                passed += 1
    print("torch parity: %d cases in %.1f s" % (len(cases), time.time() - start))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main())
