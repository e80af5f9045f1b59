#!/usr/bin/env python3
"""Checks that a model file written by nabla loads into the equivalent torch.nn.Sequential.

    /usr/bin/python3 st_torch_check.py MODEL.safetensors [--resave OUT] [--seed N]

Reads the file with tests/safetensors_py.py (numpy; the layout checked strictly), builds the
Sequential that its __metadata__ describes (the model's text, tests/model_text_py.py; or for
files written before it, Linear, [BatchNorm1d], activation per hidden layer, then a last
Linear), and calls load_state_dict(strict=True): every name, shape and dtype must
match PyTorch's own state_dict. Exits 0 and prints one line on success, 1 with a message on
failure.

With --resave OUT it then re-initializes that Sequential the PyTorch way (seeded by --seed),
gives the batch-norm buffers non-trivial values, and writes its state_dict to OUT as
safetensors with the same metadata, so a test can check the other direction: a file written
by PyTorch loads into nabla.
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_text_py  # noqa: E402  (the model text as a Sequential)
import safetensors_py  # noqa: E402  (the shared reader and writer beside this file)



def read_safetensors(path):
    """Returns ({name: tensor}, metadata) from a safetensors file."""
    arrays, meta = safetensors_py.read(path)
    return {name: torch.from_numpy(a) for name, a in arrays.items()}, meta


def write_safetensors(path, tensors, meta):
    """Writes {name: tensor} in the given order."""
    safetensors_py.write(path, [(name, t.detach().numpy()) for name, t in tensors.items()], meta)


def model_of(meta):
    """(text, input shape, classes) of nabla's metadata: today's text form, or the hidden widths,
    activation and batch-norm flag of files written before it."""
    if "model" in meta:
        for key in ("input_shape", "classes"):
            if key not in meta:
                raise ValueError(f"__metadata__ has no {key!r}")
        return meta["model"], model_text_py.parse_shape(meta["input_shape"]), int(meta["classes"])
    for key in ("inputs", "classes", "layers", "activation", "leaky_slope", "batchnorm"):
        if key not in meta:
            raise ValueError(f"__metadata__ has no {key!r}")
    widths = [int(w) for w in meta["layers"].split(",")] if meta["layers"] else []
    text = model_text_py.mlp_text(widths, meta["activation"], float(meta["leaky_slope"]),
                                  meta["batchnorm"] == "1")
    return text, (int(meta["inputs"]),), int(meta["classes"])


def build_sequential(meta):
    """The torch.nn.Sequential that nabla's metadata describes."""
    text, shape, classes = model_of(meta)
    return model_text_py.sequential(text, shape, classes)


def check(path):
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "nabla":
        raise ValueError(f"__metadata__ format is {meta.get('format')!r}, not 'nabla'")
    model = build_sequential(meta)
    expected = model.state_dict()
    for name, t in tensors.items():
        if name in expected and expected[name].dtype != t.dtype:
            raise ValueError(f"tensor {name!r} is {t.dtype}, PyTorch has {expected[name].dtype}")
    model.load_state_dict(tensors, strict=True)
    loaded = model.state_dict()
    for name, t in tensors.items():
        if not torch.equal(loaded[name], t):
            raise ValueError(f"tensor {name!r} changed while loading")
        if t.dtype == torch.float32 and not torch.isfinite(t).all():
            raise ValueError(f"tensor {name!r} is not finite")
    if "normalize_mean" in meta:
        mean = json.loads(meta["normalize_mean"])
        std = json.loads(meta["normalize_std"])
        _, shape, _ = model_of(meta)
        features = 1
        for d in shape:
            features *= d
        if len(mean) != features or len(std) != features:
            raise ValueError("normalization arrays do not match the inputs")
    return model, meta


def resave(model, meta, out, seed):
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)):
            m.reset_parameters()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-1.0, 1.0)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    write_safetensors(out, model.state_dict(), meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--resave", metavar="OUT")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if sys.byteorder != "little":
        print("st_torch_check: this script assumes a little-endian host", file=sys.stderr)
        return 1
    try:
        model, meta = check(args.path)
        if args.resave:
            resave(model, meta, args.resave, args.seed)
    except Exception as e:  # any failure is a failed check, reported on one line
        message = " ".join(str(e).split())  # PyTorch's messages span lines
        print(f"st_torch_check: {args.path}: {type(e).__name__}: {message}", file=sys.stderr)
        return 1
    n = len(model.state_dict())
    print(f"ok: {args.path} loads into {type(model).__name__} with {len(model)} modules, "
          f"{n} tensors (strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
