#!/usr/bin/python3
"""The PyTorch side of nabla's comparisons: trains the same dense classifier on Fashion-MNIST
(the Debian package's IDX files) and prints a JSON summary like nabla's summary.json.

    /usr/bin/python3 bench/torch_train.py --epochs 1 --threads 2 [--batchnorm] [--layers 256,128]
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    images = read_idx(os.path.join(DATA, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA, f"{split}-labels-idx1-ubyte.gz"))
    return images.reshape(len(images), -1), labels.astype(np.int64)


def build(layers, batchnorm, init, classes=10, inputs=784):
    """The same stack as nabla's. With init "nabla" (the default), the weights start as nabla's
    do, He normal (std sqrt(2/in)) with zero biases, so that the two programs train the same
    configuration; "torch" keeps torch.nn.Linear's own initialization (uniform, about 2.4 times
    narrower), which trains more slowly in the first epoch."""
    modules, width = [], inputs
    for h in layers:
        modules.append(nn.Linear(width, h, bias=not batchnorm))
        if batchnorm:
            modules.append(nn.BatchNorm1d(h))
        modules.append(nn.ReLU())
        width = h
    modules.append(nn.Linear(width, classes))
    if init == "nabla":
        for m in modules:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, (2.0 / m.in_features) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return nn.Sequential(*modules)


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return loss, accuracy


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--layers", default="256,128")
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=["nabla", "torch"], default="nabla",
                   help="weight initialization: nabla's He normal (default) or torch's own")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    # Bytes stay bytes until a batch is formed, as in nabla.
    xtr, ytr = torch.from_numpy(xtr.copy()), torch.from_numpy(ytr)
    xte = torch.from_numpy(xte.copy()).float() / 255.0
    yte = torch.from_numpy(yte)
    model = build([int(w) for w in a.layers.split(",")], a.batchnorm, a.init)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()

    n, seconds, steps = len(ytr), 0.0, 0
    for epoch in range(a.epochs):
        order = torch.randperm(n)
        start = time.perf_counter()
        for first in range(0, n, a.batch_size):
            idx = order[first:first + a.batch_size]
            x = xtr[idx].float() / 255.0
            loss = loss_fn(model(x), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        seconds += time.perf_counter() - start
    test_loss, test_accuracy = evaluate(model, xte, yte)
    print(json.dumps({"test_accuracy": test_accuracy, "test_loss": test_loss, "epochs": a.epochs,
                      "steps": steps, "train_seconds": seconds,
                      "samples_per_second": n * a.epochs / seconds,
                      "parameters": sum(t.numel() for t in model.parameters()),
                      "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
