"""The plain way: the paper's training step as a student writes it in PyTorch, the baseline the
benchmarks measure against. ReLU before max-pool, NCHW tensors, default allocator, one Adam step per
epoch on the full batch, the loss read back every epoch.

Built with the same layer order as fexprune's ExpressionCNN, so the same seed gives the same weights.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn


class StudentCNN(nn.Module):
    def __init__(self, channels=(16, 32), kernel_size=5, pools=(2, 3), input_size=(90, 72), n_classes=7):
        super().__init__()
        c1, c2 = channels
        width, height = input_size
        self.conv1 = nn.Conv2d(1, c1, kernel_size)
        self.pool1 = nn.MaxPool2d(pools[0])
        self.conv2 = nn.Conv2d(c1, c2, kernel_size)
        self.pool2 = nn.MaxPool2d(pools[1])
        h = ((height - kernel_size + 1) // pools[0] - kernel_size + 1) // pools[1]
        w = ((width - kernel_size + 1) // pools[0] - kernel_size + 1) // pools[1]
        self.fc = nn.Linear(c2 * h * w, n_classes)

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        return self.fc(x.view(x.size(0), -1))


def train_reference(x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int, channels=(16, 32), n_classes: int = 7) -> tuple[list[float], list[float]]:
    """Losses (row k: weights after k epochs) and wall seconds of each epoch."""
    torch.manual_seed(seed)
    model = StudentCNN(channels=channels, input_size=(x.shape[3], x.shape[2]), n_classes=n_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    losses, seconds = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        seconds.append(time.perf_counter() - start)
    return losses, seconds
