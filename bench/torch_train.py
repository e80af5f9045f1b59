#!/usr/bin/python3
"""The PyTorch side of nabla's comparisons: trains a model given by its text, as `nabla train
--layers` takes it (tests/model_text_py.py builds the torch.nn.Sequential), on Fashion-MNIST
(the Debian package's IDX files), and prints a JSON summary like nabla's summary.json.

    /usr/bin/python3 bench/torch_train.py --epochs 1 --threads 2 \
        [--layers "flatten,linear(256),relu,linear(128),relu,linear"] [--input-shape 1x28x28]
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import model_text_py  # noqa: E402  (a model's text as a torch.nn.Sequential)

DATA = "/usr/share/datasets/fashion-mnist"
DEFAULT_MODEL = "flatten,linear(256),relu,linear(128),relu,linear"  # nabla's default network


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    images = read_idx(os.path.join(DATA, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA, f"{split}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(images.reshape(len(images), -1).copy()), \
        torch.from_numpy(labels.astype(np.int64))


def as_batch(rows, shape):
    """Image bytes to the model's input, one batch at a time (as nabla forms its batches)."""
    return (rows.float() / 255.0).view(len(rows), *shape)


def evaluate(model, x, y, shape, batch_size):
    """Loss and accuracy in evaluation mode, in batches of the training batch size (as nabla
    evaluates), so that the test set does not add a whole-set forward pass to the peak memory."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for first in range(0, len(y), batch_size):
            logits = model(as_batch(x[first:first + batch_size], shape))
            labels = y[first:first + batch_size]
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
    model.train()
    return loss_sum / len(y), correct / len(y)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--layers", default=DEFAULT_MODEL, help=f"the model's text [{DEFAULT_MODEL}]")
    p.add_argument("--input-shape", default="1x28x28", type=model_text_py.parse_shape,
                   help="one sample's shape, C,H,W or N; 784 elements [1x28x28]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", choices=["nabla", "torch"], default="nabla",
                   help="weights drawn as nabla draws them (the default: He or Xavier normal as "
                        "nb_model_build says, biases 0) or PyTorch's own initialization (uniform, "
                        "about 2.4 times narrower for a dense layer, which trains more slowly in "
                        "the first epoch)")
    a = p.parse_args()
    shape = a.input_shape
    if int(np.prod(shape)) != 28 * 28:
        p.error(f"--input-shape {'x'.join(map(str, shape))}: a Fashion-MNIST image has 784 "
                "values")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    model = model_text_py.sequential(a.layers, shape, 10)
    if a.init == "nabla":
        model_text_py.init_like_nabla(model, a.layers, shape, 10)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()

    n, seconds, steps = len(ytr), 0.0, 0
    for epoch in range(a.epochs):
        order = torch.randperm(n)
        start = time.perf_counter()
        for first in range(0, n, a.batch_size):
            idx = order[first:first + a.batch_size]
            loss = loss_fn(model(as_batch(xtr[idx], shape)), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        seconds += time.perf_counter() - start
    test_loss, test_accuracy = evaluate(model, xte, yte, shape, a.batch_size)
    print(json.dumps({"test_accuracy": test_accuracy, "test_loss": test_loss, "epochs": a.epochs,
                      "steps": steps, "train_seconds": seconds,
                      "samples_per_second": n * a.epochs / seconds,
                      "parameters": sum(t.numel() for t in model.parameters()),
                      "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
