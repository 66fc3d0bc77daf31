"""The paper's LeNet-like expression CNN (Fig. 1).

conv1 (1->c1) -> ReLU -> max-pool p1 -> conv2 (c1->c2) -> ReLU -> max-pool p2 -> linear -> classes.

ReLU and max-pooling commute (both are monotone: max(relu(a), relu(b)) = relu(max(a, b)), ties and
gradients included), so the pool modules apply ReLU after pooling: the same outputs and gradients, with
ReLU running on p^2 times fewer values. `pool1`/`pool2` still output what the next layer sees (pruning
hooks them), and the state_dict keeps the names conv1/conv2/fc.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CNNConfig:
    channels: tuple[int, int] = (16, 32)
    kernel_size: int = 5
    pools: tuple[int, int] = (2, 3)
    input_size: tuple[int, int] = (90, 72)  # (width, height), as the paper writes 90*72
    n_classes: int = 7

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CNNConfig":
        return cls(
            channels=tuple(values["channels"]),
            kernel_size=int(values["kernel_size"]),
            pools=tuple(values["pools"]),
            input_size=tuple(values["input_size"]),
            n_classes=int(values["n_classes"]),
        )


class MaxPoolReLU(nn.MaxPool2d):
    """relu(max_pool(x)), equal to max_pool(relu(x)) but cheaper (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().forward(x))


def _feature_size(config: CNNConfig) -> tuple[int, int]:
    width, height = config.input_size
    k = config.kernel_size
    p1, p2 = config.pools
    h = ((height - k + 1) // p1 - k + 1) // p2
    w = ((width - k + 1) // p1 - k + 1) // p2
    if h < 1 or w < 1:
        raise ValueError(f"input {config.input_size} is too small for kernel {k} and pools {config.pools}")
    return h, w


class ExpressionCNN(nn.Module):
    def __init__(self, config: CNNConfig = CNNConfig()):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, config.kernel_size)
        self.pool1 = MaxPoolReLU(config.pools[0])
        self.conv2 = nn.Conv2d(c1, c2, config.kernel_size)
        self.pool2 = MaxPoolReLU(config.pools[1])
        h, w = _feature_size(config)
        self.fc = nn.Linear(c2 * h * w, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))  # (B, c1, (H-k+1)/p1, (W-k+1)/p1), ReLU applied
        return self.pool2(self.conv2(x))  # (B, c2, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))  # (B, classes) logits
