"""The layer table against PyTorch: for each model text, the equivalent torch.nn.Sequential,
written out by hand here, has the state_dict names and shapes, and the per-layer output shapes,
that `test_layers --dump` prints from src/nn/layers.c.

Usage: layers_torch_check.py TEST_LAYERS_PROGRAM. Exits 77 (skipped) without torch."""
import subprocess
import sys

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: this python3 cannot import torch (install python3-torch)")
    sys.exit(77)

CASES = [
    ("conv2d(32,3,padding=1),batchnorm,relu,maxpool2d(2),conv2d(64,3,padding=1),batchnorm,relu,"
     "maxpool2d(2),flatten,linear(128),relu,dropout(0.5),linear", (1, 28, 28), 10,
     lambda: nn.Sequential(
         nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
         nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
         nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))),
    ("conv2d(4,kernel=3x5,stride=2x1,padding=1x2),tanh,avgpool2d(2,1),layernorm,flatten,linear", (3, 11, 9), 5,
     lambda: nn.Sequential(
         nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2)), nn.Tanh(), nn.AvgPool2d(2, 1),
         nn.LayerNorm([4, 5, 8]), nn.Flatten(), nn.Linear(160, 5))),
    ("maxpool2d(3,2),flatten,batchnorm,linear(6),layernorm,leaky_relu(0.2),linear", (2, 7, 6), 3,
     lambda: nn.Sequential(
         nn.MaxPool2d(3, 2), nn.Flatten(), nn.BatchNorm1d(12), nn.Linear(12, 6), nn.LayerNorm(6),
         nn.LeakyReLU(0.2), nn.Linear(6, 3))),
    ("linear(16),batchnorm,sigmoid,linear(8),batchnorm,sigmoid,linear", (4,), 3,
     lambda: nn.Sequential(
         nn.Linear(4, 16, bias=False), nn.BatchNorm1d(16), nn.Sigmoid(),
         nn.Linear(16, 8, bias=False), nn.BatchNorm1d(8), nn.Sigmoid(), nn.Linear(8, 3))),
    ("conv2d(5,2,3),batchnorm,relu,layernorm,flatten,dropout(0.1),linear", (2, 9, 10), 4,
     lambda: nn.Sequential(
         nn.Conv2d(2, 5, 2, 3, bias=False), nn.BatchNorm2d(5), nn.ReLU(), nn.LayerNorm([5, 3, 3]),
         nn.Flatten(), nn.Dropout(0.1), nn.Linear(45, 4))),
]


def main():
    program = sys.argv[1]
    failures = 0
    for text, shape, classes, build in CASES:
        out = subprocess.run([program, "--dump", text, ",".join(map(str, shape)), str(classes)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"FAIL {text}: {out.stderr.strip()}")
            failures += 1
            continue
        got_shapes, got_tensors = [], []
        for line in out.stdout.splitlines():
            kind, rest = line.split(" ", 1)
            if kind == "shape":
                got_shapes.append(tuple(int(v) for v in rest.split()[1:]))
            else:
                name, *dims = rest.split()
                got_tensors.append((name, tuple(int(v) for v in dims)))
        model = build().eval()
        x = torch.zeros((2,) + shape)
        want_shapes = []
        for layer in model:
            x = layer(x)
            want_shapes.append(tuple(x.shape[1:]))
        want_tensors = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        for what, got, want in (("shapes", got_shapes, want_shapes),
                                ("tensors", got_tensors, want_tensors)):
            if got != want:
                print(f"FAIL {text}: {what}\n  nabla:   {got}\n  PyTorch: {want}")
                failures += 1
        if failures == 0:
            print(f"ok {text}")
    sys.exit(1 if failures else 0)


main()
