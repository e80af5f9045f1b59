"""The model text of nabla (`--layers`, the "model" metadata) as a torch.nn.Sequential, for the
tests and benchmarks that compare nabla with PyTorch. An independent reading of the text form:
layer names and arguments as README.md documents them, positional or by name.

    resolve(text, input_shape, classes) -> [Layer]  (shapes and arguments; no torch needed)
    sequential(text, input_shape, classes) -> torch.nn.Sequential
    init_like_nabla(model, text, input_shape, classes, generator=None)
    parse_shape("1x28x28") -> (1, 28, 28)
"""
import re
from dataclasses import dataclass

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
WEIGHTED = {"linear", "conv2d"}


@dataclass(frozen=True)
class Layer:
    """One layer with its arguments resolved: `out` (linear, conv2d), `kernel`, `stride`,
    `padding` (pairs), `p` (dropout), `slope` (leaky_relu); `bias`: whether a linear or conv2d
    layer has one (not when batchnorm follows it); the sample shapes it takes and gives."""
    name: str
    shape_in: tuple
    shape_out: tuple
    out: int = None
    kernel: tuple = None
    stride: tuple = None
    padding: tuple = None
    p: float = None
    slope: float = None
    bias: bool = None


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


def resolve(text, input_shape, classes):
    """The layers of the text, each with its arguments and its input and output shapes."""
    parsed = parse(text)
    shape = tuple(input_shape)
    layers = []
    for i, (name, args) in enumerate(parsed):
        followed_by_bn = i + 1 < len(parsed) and parsed[i + 1][0] == "batchnorm"
        extra = {}
        if name == "linear":
            out = int(args["out"]) if "out" in args else classes
            extra = dict(out=out, bias=not followed_by_bn)
            new = (out,)
        elif name == "conv2d":
            k, s, p = pair(args["kernel"]), pair(args.get("stride", "1")), pair(args.get("padding", "0"))
            out = int(args["out"])
            extra = dict(out=out, kernel=k, stride=s, padding=p, bias=not followed_by_bn)
            new = (out, (shape[1] + 2 * p[0] - k[0]) // s[0] + 1,
                   (shape[2] + 2 * p[1] - k[1]) // s[1] + 1)
        elif name in ("maxpool2d", "avgpool2d"):
            k = pair(args["kernel"])
            s = pair(args.get("stride")) or k
            extra = dict(kernel=k, stride=s)
            new = (shape[0], (shape[1] - k[0]) // s[0] + 1, (shape[2] - k[1]) // s[1] + 1)
        elif name == "flatten":
            n = 1
            for d in shape:
                n *= d
            new = (n,)
        else:
            if name == "dropout":
                extra = dict(p=float(args["p"]))
            elif name == "leaky_relu":
                extra = dict(slope=float(args.get("slope", "0.01")))
            new = shape
        layers.append(Layer(name, shape, new, **extra))
        shape = new
    if not any(layer.name == "linear" for layer in layers):
        raise ValueError(f"{text!r}: no linear layer")
    return layers


def sequential(text, input_shape, classes):
    from torch import nn  # only here: resolve() serves programs without torch

    modules = []
    for layer in resolve(text, input_shape, classes):
        name, shape = layer.name, layer.shape_in
        if name == "linear":
            modules.append(nn.Linear(shape[0], layer.out, bias=layer.bias))
        elif name == "conv2d":
            modules.append(nn.Conv2d(shape[0], layer.out, layer.kernel, stride=layer.stride,
                                     padding=layer.padding, bias=layer.bias))
        elif name in ("maxpool2d", "avgpool2d"):
            pool = nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d
            modules.append(pool(layer.kernel, stride=layer.stride))
        elif name == "flatten":
            modules.append(nn.Flatten())
        elif name == "batchnorm":
            bn = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
            modules.append(bn(shape[0], eps=1e-5, momentum=0.1))
        elif name == "layernorm":
            modules.append(nn.LayerNorm(list(shape), eps=1e-5))
        elif name == "dropout":
            modules.append(nn.Dropout(layer.p))
        elif name == "relu":
            modules.append(nn.ReLU())
        elif name == "leaky_relu":
            modules.append(nn.LeakyReLU(layer.slope))
        elif name == "tanh":
            modules.append(nn.Tanh())
        elif name == "sigmoid":
            modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def init_std(layers, i):
    """The standard deviation nabla draws layer i's weights with (nb_model_build in
    include/nabla.h): He normal (gain corrected for a leaky slope) when the activation its
    initialization is for is in the relu family, Xavier normal for tanh and sigmoid. That
    activation is the first after the layer, before the next weighted layer; for the last
    layer, the closest before it; relu's in a model without any."""
    def fans(layer):
        k = layer.kernel[0] * layer.kernel[1] if layer.name == "conv2d" else 1
        return layer.shape_in[0] * k, layer.out * k

    after = next((l for l in layers[i + 1:] if l.name in ACTIVATIONS | WEIGHTED), None)
    if after is None or after.name in WEIGHTED:
        after = next((l for l in reversed(layers[:i]) if l.name in ACTIVATIONS), None)
    fan_in, fan_out = fans(layers[i])
    if after is None or after.name == "relu":
        return (2.0 / fan_in) ** 0.5
    if after.name == "leaky_relu":
        return (2.0 / ((1.0 + after.slope ** 2) * fan_in)) ** 0.5
    return (2.0 / (fan_in + fan_out)) ** 0.5


def init_like_nabla(model, text, input_shape, classes, generator=None):
    """Draws model's weights as nabla does (the same distributions, not the same numbers):
    init_std's normal for linear and conv2d weights, biases 0. Norm layers keep PyTorch's
    defaults, which are nabla's (weight 1, bias 0, running mean 0 and variance 1)."""
    import torch  # only here, as in sequential()

    layers = resolve(text, input_shape, classes)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            if layer.name in WEIGHTED:
                model[i].weight.normal_(0.0, init_std(layers, i), generator=generator)
                if model[i].bias is not None:
                    model[i].bias.zero_()


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
