"""The network of the `best` recipe: the paper's idea (conv, pool, classify) made deeper and regularised.

Three conv blocks (conv -> batch norm -> ReLU -> max-pool 2), average pooling to a grid, dropout, one
linear layer. Batch norm lets mini-batch Adam use a high learning rate; the grid keeps where on the face a
feature is (mouth or brows: global pooling lost that and learned slowly). The best recipe asks for the
whole 9x11 last map; a checkpoint that names no grid was trained on 4x5. With `hog`, a fixed HOG layer (fexprune.models.hog) of the input sits beside the conv
blocks and its histograms join their features before the classifier.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from fexprune.models.hog import HOGFeatures

ARCHITECTURES = ("paper", "best", "fer_transfer", "fer_probe")


@dataclass(frozen=True)
class BestCNNConfig:
    channels: tuple[int, ...] = (16, 32, 64)
    first_kernel: int = 5
    dropout: float = 0.3
    pooled: tuple[int, int] = (4, 5)  # (height, width) grid the last feature maps are averaged to
    input_size: tuple[int, int] = (90, 72)  # (width, height)
    n_classes: int = 7
    hog: bool = False  # a HOG branch beside the conv blocks (False in checkpoints made before it)
    members: int = 1  # > 1: a BestEnsemble of that many networks of this shape
    architecture: str = "best"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "BestCNNConfig":
        return cls(
            channels=tuple(values["channels"]), first_kernel=int(values["first_kernel"]),
            dropout=float(values["dropout"]), pooled=tuple(values.get("pooled", (4, 5))), input_size=tuple(values["input_size"]), n_classes=int(values["n_classes"]),
            hog=bool(values.get("hog", False)), members=int(values.get("members", 1)),
        )


def _block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class BestCNN(nn.Module):
    def __init__(self, config: BestCNNConfig = BestCNNConfig()):
        super().__init__()
        self.config = config
        widths = (1, *config.channels)
        self.blocks = nn.Sequential(*[
            _block(widths[i], widths[i + 1], config.first_kernel if i == 0 else 3) for i in range(len(config.channels))
        ])
        self.pool = nn.AdaptiveAvgPool2d(config.pooled)
        self.dropout = nn.Dropout(config.dropout)
        n_features = config.channels[-1] * config.pooled[0] * config.pooled[1]
        self.hog = HOGFeatures() if config.hog else None
        if self.hog is not None:
            width, height = config.input_size
            n_features += math.prod(self.hog.output_shape(height, width))
        self.fc = nn.Linear(n_features, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (B, c_last, H / 2^blocks, W / 2^blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.features(x)).flatten(1)  # (B, c_last * grid)
        if self.hog is not None:
            pooled = torch.cat([pooled, self.hog(x).flatten(1)], 1)  # (B, c_last * grid + bins * cells)
        return self.fc(self.dropout(pooled))  # (B, classes) logits


class BestEnsemble(nn.Module):
    """`config.members` BestCNNs trained from different initialisations, as one model whose logits are the
    log of the members' mean probability: argmax, softmax and cross-entropy read it as one network's.
    Averaging cancels much of what one network learns by chance from a few hundred frames."""

    def __init__(self, config: BestCNNConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(BestCNN(replace(config, members=1)) for _ in range(config.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([member(x).softmax(1) for member in self.members]).mean(0)  # (B, classes)
        return probabilities.clamp_min(1e-12).log()

