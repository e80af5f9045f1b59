"""The model text of nabla (`--layers`, the "model" metadata) as a torch.nn.Sequential, for the
tests that compare nabla with PyTorch. An independent reading of the text form: layer names and
arguments as README.md documents them, positional or by name.

    sequential(text, input_shape, classes) -> torch.nn.Sequential
    parse_shape("1x28x28") -> (1, 28, 28)
"""
import re

from torch import nn

SIGNATURES = {
    "linear": ["out"],
    "conv2d": ["out", "kernel", "stride", "padding"],
    "maxpool2d": ["kernel", "stride"],
    "avgpool2d": ["kernel", "stride"],
    "flatten": [],
    "batchnorm": [],
    "layernorm": [],
    "dropout": ["p"],
    "relu": [],
    "leaky_relu": ["slope"],
    "tanh": [],
    "sigmoid": [],
}
ACTIVATIONS = {"relu", "leaky_relu", "tanh", "sigmoid"}


def parse_shape(text):
    return tuple(int(d) for d in re.split("[x,]", text))


def parse(text):
    """[(name, {arg: value string})] in order."""
    layers = []
    for m in re.finditer(r"\s*([a-z0-9_]+)\s*(?:\(([^)]*)\))?\s*(?:,|$)", text):
        if not m.group(1):
            continue
        name, args = m.group(1), {}
        if name not in SIGNATURES:
            raise ValueError(f"unknown layer {name!r}")
        given = [a.strip() for a in (m.group(2) or "").split(",") if a.strip()]
        for i, a in enumerate(given):
            key, _, value = a.partition("=")
            if value:
                args[key.strip()] = value.strip()
            else:
                args[SIGNATURES[name][i]] = a
        layers.append((name, args))
    return layers


def pair(value):
    if value is None:
        return None
    h, _, w = value.partition("x")
    return (int(h), int(w or h))


def sequential(text, input_shape, classes):
    layers = parse(text)
    shape = tuple(input_shape)
    modules = []
    last_linear = max(i for i, (n, _) in enumerate(layers) if n == "linear")
    for i, (name, args) in enumerate(layers):
        followed_by_bn = i + 1 < len(layers) and layers[i + 1][0] == "batchnorm"
        if name == "linear":
            out = int(args["out"]) if "out" in args else classes
            modules.append(nn.Linear(shape[0], out, bias=not followed_by_bn))
            shape = (out,)
        elif name == "conv2d":
            k, s, p = pair(args["kernel"]), pair(args.get("stride", "1")), pair(args.get("padding", "0"))
            out = int(args["out"])
            modules.append(nn.Conv2d(shape[0], out, k, stride=s, padding=p, bias=not followed_by_bn))
            shape = (out, (shape[1] + 2 * p[0] - k[0]) // s[0] + 1,
                     (shape[2] + 2 * p[1] - k[1]) // s[1] + 1)
        elif name in ("maxpool2d", "avgpool2d"):
            k = pair(args["kernel"])
            s = pair(args.get("stride")) or k
            modules.append((nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d)(k, stride=s))
            shape = (shape[0], (shape[1] - k[0]) // s[0] + 1, (shape[2] - k[1]) // s[1] + 1)
        elif name == "flatten":
            modules.append(nn.Flatten())
            n = 1
            for d in shape:
                n *= d
            shape = (n,)
        elif name == "batchnorm":
            bn = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
            modules.append(bn(shape[0], eps=1e-5, momentum=0.1))
        elif name == "layernorm":
            modules.append(nn.LayerNorm(list(shape), eps=1e-5))
        elif name == "dropout":
            modules.append(nn.Dropout(float(args["p"])))
        elif name == "relu":
            modules.append(nn.ReLU())
        elif name == "leaky_relu":
            modules.append(nn.LeakyReLU(float(args.get("slope", "0.01"))))
        elif name == "tanh":
            modules.append(nn.Tanh())
        elif name == "sigmoid":
            modules.append(nn.Sigmoid())
    assert last_linear >= 0
    return nn.Sequential(*modules)


def mlp_text(widths, activation, slope, batchnorm):
    """The text of a model file written before the text form (hidden widths, one activation)."""
    act = f"leaky_relu({slope:g})" if activation == "leaky_relu" and slope != 0.01 else activation
    parts = []
    for w in widths:
        parts.append(f"linear({w})")
        if batchnorm:
            parts.append("batchnorm")
        parts.append(act)
    parts.append("linear")
    return ",".join(parts)
