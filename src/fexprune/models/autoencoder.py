"""The PIC autoencoder (paper Fig. 2): linear input, one sigmoid hidden layer, linear output.

An 11-N-11 network trained to reproduce its input; the hidden layer is the "compressed" code
whose units distinctiveness pruning removes. Training is plain full-batch back-propagation on
the mean squared reconstruction error (Adam; seeded), the same loss every table reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class Autoencoder(nn.Module):
    def __init__(self, n_inputs: int = 11, n_hidden: int = 10):
        super().__init__()
        if n_hidden < 1:
            raise ValueError("an autoencoder needs at least one hidden unit")
        self.encoder = nn.Linear(n_inputs, n_hidden)
        self.decoder = nn.Linear(n_hidden, n_inputs)

    @property
    def n_hidden(self) -> int:
        return self.encoder.out_features

    @property
    def n_inputs(self) -> int:
        return self.encoder.in_features

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x))  # (patterns, hidden), each in (0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.hidden(x))  # (patterns, inputs)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 2000
    learning_rate: float = 0.01  # full-batch Adam: one step per epoch over all training patterns


def reconstruction_loss(model: Autoencoder, x: np.ndarray | torch.Tensor) -> float:
    """Mean squared error over all patterns and all outputs (the "loss" of every table)."""
    x = torch.as_tensor(x, dtype=torch.float32, device=model.encoder.weight.device)
    with torch.no_grad():
        return float(torch.mean((model(x) - x) ** 2))


def hidden_activations(model: Autoencoder, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """(patterns, hidden) sigmoid outputs, float64, for distinctiveness."""
    x = torch.as_tensor(x, dtype=torch.float32, device=model.encoder.weight.device)
    with torch.no_grad():
        return model.hidden(x).double().cpu().numpy()


def fit(model: Autoencoder, x_train: np.ndarray | torch.Tensor, settings: TrainSettings) -> list[float]:
    """Full-batch Adam on MSE; returns the loss before each step. Deterministic given torch's seed."""
    x = torch.as_tensor(x_train, dtype=torch.float32, device=model.encoder.weight.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    losses = []
    for _ in range(settings.epochs):
        optimizer.zero_grad()
        loss = torch.mean((model(x) - x) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
