#!/usr/bin/env python3
"""Checks that a model file written by nabla loads into the equivalent torch.nn.Sequential.

    /usr/bin/python3 st_torch_check.py MODEL.safetensors [--resave OUT] [--seed N]

Reads the file with the standard library only (struct + json) and torch.frombuffer, builds the
Sequential that its __metadata__ describes (Linear, [BatchNorm1d], activation per hidden layer,
then a last Linear), and calls load_state_dict(strict=True): every name, shape and dtype must
match PyTorch's own state_dict. Exits 0 and prints one line on success, 1 with a message on
failure.

With --resave OUT it then re-initializes that Sequential the PyTorch way (seeded by --seed),
gives the batch-norm buffers non-trivial values, and writes its state_dict to OUT as
safetensors with the same metadata, so a test can check the other direction: a file written
by PyTorch loads into nabla.
"""
import argparse
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "I64": torch.int64}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) from a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"header length {n} larger than the file")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name!r}: unsupported dtype {info['dtype']}")
        shape = info["shape"]
        chunk = bytearray(data[base + begin : base + end])  # writable copy for frombuffer
        if not chunk:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            tensors[name] = torch.frombuffer(chunk, dtype=dtype).reshape(shape)
    return tensors, meta


def write_safetensors(path, tensors, meta):
    """Writes {name: tensor} in the given order, header padded to a multiple of 8."""
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, t in tensors.items():
        blob = t.detach().contiguous().numpy().tobytes()  # little-endian host, checked in main
        header[name] = {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def build_sequential(meta):
    """The torch.nn.Sequential that nabla's metadata describes."""
    for key in ("inputs", "classes", "layers", "activation", "leaky_slope", "batchnorm"):
        if key not in meta:
            raise ValueError(f"__metadata__ has no {key!r}")
    fan_in = int(meta["inputs"])
    classes = int(meta["classes"])
    widths = [int(w) for w in meta["layers"].split(",")] if meta["layers"] else []
    batchnorm = meta["batchnorm"] == "1"
    slope = float(meta["leaky_slope"])
    activations = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(slope),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
    if meta["activation"] not in activations:
        raise ValueError(f"unknown activation {meta['activation']!r}")
    modules = []
    for width in widths:
        modules.append(nn.Linear(fan_in, width, bias=not batchnorm))
        if batchnorm:
            modules.append(nn.BatchNorm1d(width, eps=1e-5, momentum=0.1))
        modules.append(activations[meta["activation"]]())
        fan_in = width
    modules.append(nn.Linear(fan_in, classes))
    return nn.Sequential(*modules)


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
        if len(mean) != int(meta["inputs"]) or len(std) != int(meta["inputs"]):
            raise ValueError("normalization arrays do not match the inputs")
    return model, meta


def resave(model, meta, out, seed):
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
        elif isinstance(m, nn.BatchNorm1d):
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
