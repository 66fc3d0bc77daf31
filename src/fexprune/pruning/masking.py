"""Channel masks: which output channels of each conv layer are pruned, and zeroing them in a model.

Pruning a channel zeroes its kernel and its bias, so its ReLU output is exactly 0 everywhere; the
network then computes what the same network without that channel computes, which is what lets
`removal` cut the channel out with identical outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class ChannelMasks:
    """`alive[layer][c]` is False once output channel c of that layer is pruned."""

    alive: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def for_model(cls, model: nn.Module, layers: list[str] | tuple[str, ...]) -> "ChannelMasks":
        return cls({name: np.ones(getattr(model, name).out_channels, bool) for name in layers})

    def copy(self) -> "ChannelMasks":
        return ChannelMasks({name: mask.copy() for name, mask in self.alive.items()})

    def pruned(self, layer: str) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.alive[layer])]

    def prune(self, model: nn.Module, layer: str, channel: int) -> None:
        """Marks `channel` pruned and zeroes it in `model`."""
        self.alive[layer][channel] = False
        self.apply(model)

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zeroes every pruned kernel and bias; called again after each fine-tuning step."""
        for name, alive in self.alive.items():
            if alive.all():
                continue
            conv = getattr(model, name)
            dead = torch.from_numpy(~alive)
            conv.weight[dead] = 0.0
            if conv.bias is not None:
                conv.bias[dead] = 0.0

    def to_dict(self) -> dict[str, list[int]]:
        return {name: self.pruned(name) for name in self.alive}
