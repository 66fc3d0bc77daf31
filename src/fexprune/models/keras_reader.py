"""A Keras 2 HDF5 model (functional, conv layers only) rebuilt as a PyTorch module, read with h5py so
TensorFlow is never imported.

`read_keras_model` gives the layer list (simplified specs, JSON-safe, so a checkpoint can keep it and
rebuild the network without the file) and the weights; `KerasGraph` runs that list. Keras details kept
exactly: 'same' padding puts the odd pixel at the bottom/right (PyTorch would pad symmetrically), max
pooling pads with -inf, batch norm uses epsilon 1e-3 and the stored moving statistics, separable
convolution is depthwise then pointwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fexprune.errors import InputError

KNOWN_LAYERS = ("InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
                "MaxPooling2D", "Add", "GlobalAveragePooling2D", "Dropout")


@dataclass
class KerasModel:
    """What the HDF5 file holds: the layers in order (simplified specs) and their weights by role."""

    layers: list[dict]
    weights: dict[str, dict[str, np.ndarray]]  # layer name -> {"kernel", "bias", "gamma", ...}


def _layer_spec(layer: dict, path: Path) -> dict:
    kind, config = layer["class_name"], layer["config"]
    if kind not in KNOWN_LAYERS:
        raise InputError(f"layer {layer['name']!r} is a {kind}, which the PyTorch rebuild does not handle", path)
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise InputError(f"layer {layer['name']!r} is applied {len(nodes)} times; only single use is handled", path)
    spec = {"name": layer["name"], "kind": kind, "inputs": [node[0] for node in nodes[0]] if nodes else []}
    if kind == "InputLayer":
        spec["shape"] = list(config["batch_input_shape"][1:])  # (H, W, C)
    if kind in ("Conv2D", "SeparableConv2D"):
        spec.update(filters=int(config["filters"]), kernel=list(config["kernel_size"]), strides=list(config["strides"]),
                    padding=config["padding"], use_bias=bool(config["use_bias"]), activation=config["activation"],
                    depth_multiplier=int(config.get("depth_multiplier", 1)))
        if list(config.get("dilation_rate", [1, 1])) != [1, 1]:
            raise InputError(f"layer {layer['name']!r} is dilated, which the PyTorch rebuild does not handle", path)
    if kind == "MaxPooling2D":
        spec.update(pool=list(config["pool_size"]), strides=list(config["strides"] or config["pool_size"]), padding=config["padding"])
    if kind == "BatchNormalization":
        if config.get("axis", -1) not in (-1, 3) or not config.get("center", True) or not config.get("scale", True):
            raise InputError(f"layer {layer['name']!r}: only channel-last batch norm with scale and centre is handled", path)
        spec["epsilon"] = float(config["epsilon"])
    if kind == "Activation":
        spec["activation"] = config["activation"]
    if spec.get("activation") not in (None, "linear", "relu", "softmax"):
        raise InputError(f"layer {layer['name']!r} uses activation {spec['activation']!r}, which is not handled", path)
    return spec


def read_keras_model(path: str | Path,
                     h5py_missing: str = "reading a Keras HDF5 model needs h5py: pip install h5py") -> KerasModel:
    """Parse the Keras HDF5 file (architecture from `model_config`, weights from `model_weights`);
    `h5py_missing`: the InputError's message where h5py is not installed."""
    path = Path(path)
    try:
        import h5py
    except ImportError:
        raise InputError(h5py_missing) from None
    try:
        with h5py.File(path, "r") as handle:
            if "model_config" not in handle.attrs:
                raise InputError("not a saved Keras model (no model_config attribute)", path)
            raw = handle.attrs["model_config"]
            model_config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            group = handle["model_weights"] if "model_weights" in handle else handle
            weights = {}
            for name in group:
                names = [n.decode() if isinstance(n, bytes) else n for n in group[name].attrs.get("weight_names", [])]
                if names:
                    weights[name] = {n.split("/")[-1].split(":")[0]: np.asarray(group[name][n], dtype=np.float32) for n in names}
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"not a readable Keras HDF5 model ({str(error).strip().splitlines()[0]})", path) from None
    if model_config.get("class_name") not in ("Model", "Functional"):
        raise InputError(f"expected a functional Keras Model, found {model_config.get('class_name')!r}", path)
    layers = [_layer_spec(layer, path) for layer in model_config["config"]["layers"]]
    return KerasModel(layers, weights)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': output ceil(size / stride); the odd padded pixel goes after (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padding(size: tuple[int, int], kernel: list[int], strides: list[int], padding: str) -> tuple[tuple[int, ...], tuple[int, int]]:
    """(F.pad's (left, right, top, bottom), output (H, W)) of a Keras window on a (H, W) map."""
    if padding == "valid":
        return (0, 0, 0, 0), ((size[0] - kernel[0]) // strides[0] + 1, (size[1] - kernel[1]) // strides[1] + 1)
    top, bottom = _same_padding(size[0], kernel[0], strides[0])
    left, right = _same_padding(size[1], kernel[1], strides[1])
    return (left, right, top, bottom), (-(-size[0] // strides[0]), -(-size[1] // strides[1]))


def _pool_plan(size: tuple[int, int], pool: list[int], strides: list[int], pads: tuple[int, ...],
               out: tuple[int, int]) -> tuple[tuple[int, int], bool] | None:
    """max_pool2d's (padding, ceil_mode) giving Keras's windows, or None where none does. Window i
    starts at i * stride - before in both, and both ignore pixels outside the map, so the windows agree
    wherever the number of windows does (ceil mode adds the one TensorFlow's extra pixel after makes)."""
    left, right, top, bottom = pads
    if top > pool[0] // 2 or left > pool[1] // 2:  # PyTorch's limit on padding
        return None
    ceil = bottom > top or right > left
    for n, k, s, p, want in zip(size, pool, strides, (top, left), out):
        got = -(-(n + 2 * p - k) // s) + 1 if ceil else (n + 2 * p - k) // s + 1
        if ceil and (got - 1) * s >= n + p:  # PyTorch drops a last window that would start in the padding
            got -= 1
        if got != want:
            return None
    return (top, left), ceil


class KerasConv(nn.Module):
    """Conv2D or SeparableConv2D (depthwise, then pointwise) with Keras padding, fixed for its map size
    (the Keras input size is fixed too): symmetric padding is the conv's own, uneven padding a pad first."""

    def __init__(self, spec: dict, in_channels: int, pads: tuple[int, ...]):
        super().__init__()
        self.spec = spec
        left, right, top, bottom = pads
        symmetric = left == right and top == bottom
        self.pads = (0, 0, 0, 0) if symmetric else pads
        own = (top, left) if symmetric else (0, 0)
        k, s = spec["kernel"], spec["strides"]
        if spec["kind"] == "SeparableConv2D":
            middle = in_channels * spec["depth_multiplier"]
            self.depthwise = nn.Conv2d(in_channels, middle, tuple(k), tuple(s), own, groups=in_channels, bias=False)
            self.pointwise = nn.Conv2d(middle, spec["filters"], 1, bias=spec["use_bias"])
        else:
            self.conv = nn.Conv2d(in_channels, spec["filters"], tuple(k), tuple(s), own, bias=spec["use_bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        x = self.pointwise(self.depthwise(x)) if self.spec["kind"] == "SeparableConv2D" else self.conv(x)
        return torch.relu(x) if self.spec["activation"] == "relu" else x  # a softmax here is refused by `output_layers`

    def load_keras(self, weights: dict[str, np.ndarray]) -> None:
        """Keras kernels are (H, W, in, out); PyTorch's (out, in, H, W). A depthwise kernel (H, W, C, m)
        becomes (C*m, 1, H, W): Keras and PyTorch both number its outputs c*m + j."""
        with torch.no_grad():
            if self.spec["kind"] == "SeparableConv2D":
                depthwise = weights["depthwise_kernel"]
                kh, kw = depthwise.shape[:2]
                self.depthwise.weight.copy_(torch.from_numpy(depthwise.reshape(kh, kw, -1).transpose(2, 0, 1)[:, None].copy()))
                self.pointwise.weight.copy_(torch.from_numpy(weights["pointwise_kernel"].transpose(3, 2, 0, 1).copy()))
                target = self.pointwise
            else:
                self.conv.weight.copy_(torch.from_numpy(weights["kernel"].transpose(3, 2, 0, 1).copy()))
                target = self.conv
            if target.bias is not None:
                target.bias.copy_(torch.from_numpy(weights["bias"]))


def _batch_norm(spec: dict, channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=spec["epsilon"])  # momentum PyTorch's 0.1, not Keras's 0.01: fine-tuning on new data adapts faster


class KerasGraph(nn.Module):
    """The Keras functional graph, run in the order the layers are listed (Keras lists them so)."""

    def __init__(self, layers: list[dict], output: str):
        super().__init__()
        self.specs = [dict(spec) for spec in layers]
        self.output = output
        self.layers = nn.ModuleDict()
        self.pads: dict[str, tuple[int, ...]] = {}  # pooling layers' (left, right, top, bottom)
        self.pooling: dict[str, tuple[tuple[int, int], bool] | None] = {}  # max_pool2d's (padding, ceil_mode), None: pad first
        channels: dict[str, int] = {}
        sizes: dict[str, tuple[int, int]] = {}  # (H, W) of every layer's output map
        for spec in self.specs:
            kind, name = spec["kind"], spec["name"]
            inputs = [channels[i] for i in spec["inputs"]]
            size = sizes[spec["inputs"][0]] if spec["inputs"] else None
            channels[name], sizes[name] = (inputs[0] if inputs else None), size
            if kind == "InputLayer":
                channels[name], sizes[name] = int(spec["shape"][2]), (int(spec["shape"][0]), int(spec["shape"][1]))
            elif kind in ("Conv2D", "SeparableConv2D"):
                pads, sizes[name] = _padding(size, spec["kernel"], spec["strides"], spec["padding"])
                self.layers[name] = KerasConv(spec, inputs[0], pads)
                channels[name] = spec["filters"]
            elif kind == "MaxPooling2D":
                self.pads[name], sizes[name] = _padding(size, spec["pool"], spec["strides"], spec["padding"])
                self.pooling[name] = _pool_plan(size, spec["pool"], spec["strides"], self.pads[name], sizes[name])
            elif kind == "BatchNormalization":
                self.layers[name] = _batch_norm(spec, inputs[0])
            elif kind == "GlobalAveragePooling2D":
                sizes[name] = None
        self.channels, self.sizes = channels, sizes

    def forward(self, x: torch.Tensor, until: str | None = None) -> torch.Tensor:
        """(B, C, H, W) -> the output of layer `until` (default: the graph's output)."""
        until = until or self.output
        values: dict[str, torch.Tensor] = {}
        for spec in self.specs:
            name, kind = spec["name"], spec["kind"]
            inputs = [values[i] for i in spec["inputs"]]
            if kind == "InputLayer":
                out = x
            elif kind in ("Conv2D", "SeparableConv2D", "BatchNormalization"):
                out = self.layers[name](inputs[0])
            elif kind == "Activation":
                out = {"relu": torch.relu, "softmax": lambda t: t.softmax(1), "linear": lambda t: t}[spec["activation"]](inputs[0])
            elif kind == "MaxPooling2D":
                plan = self.pooling[name]
                if plan is None:  # Keras ignores padded pixels: pad with -inf
                    out = F.max_pool2d(F.pad(inputs[0], self.pads[name], value=-math.inf), tuple(spec["pool"]), tuple(spec["strides"]))
                else:  # the same windows from max_pool2d's own padding (-inf) and ceil mode: no pad op
                    out = F.max_pool2d(inputs[0], tuple(spec["pool"]), tuple(spec["strides"]), plan[0], ceil_mode=plan[1])
            elif kind == "Add":
                out = inputs[0]
                for other in inputs[1:]:
                    out = out + other
            elif kind == "GlobalAveragePooling2D":
                out = inputs[0].mean(dim=(2, 3))
            else:  # Dropout: identity at inference; this network has none
                out = inputs[0]
            values[name] = out
            if name == until:
                return out
        raise KeyError(until)

    def load_keras(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        for name, module in self.layers.items():
            if name not in weights:
                raise KeyError(f"no weights for layer {name}")
            if isinstance(module, KerasConv):
                module.load_keras(weights[name])
            else:
                with torch.no_grad():
                    for role, tensor in (("gamma", module.weight), ("beta", module.bias),
                                         ("moving_mean", module.running_mean), ("moving_variance", module.running_var)):
                        tensor.copy_(torch.from_numpy(weights[name][role]))


def output_layers(layers: list[dict]) -> tuple[str, str]:
    """(logits layer, classifier layer): the last layer before a final softmax, and the last conv."""
    last = layers[-1]
    logits = last["inputs"][0] if last["kind"] == "Activation" and last["activation"] == "softmax" else last["name"]
    convs = [spec["name"] for spec in layers if spec["kind"] in ("Conv2D", "SeparableConv2D")]
    if not convs or any(spec.get("activation") == "softmax" for spec in layers[:-1]):
        raise ValueError("expected a conv network ending in a softmax layer")
    return logits, convs[-1]
