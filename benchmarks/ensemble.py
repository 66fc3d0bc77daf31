"""R repeats of the paper's CNN trained together as one network, each exactly as if trained alone.

Repeat r's conv layers become group r of grouped convolutions (groups=R) and its linear layer slice r
of a batched one; its images are input channel r. The loss is the sum of the repeats' mean
cross-entropies, so each repeat's parameters get exactly its own gradient, and Adam, being elementwise,
moves them exactly as a separate Adam would. Only the summation order inside the kernels differs:
per-repeat losses and weights match one-by-one training to ~1e-5 (tests/test_ensemble.py).

Repeats may have different training sets (their own splits) of different sizes: shorter ones are
padded with zero-weight images, which add nothing to any gradient.
Speed (benchmarks/RESULTS.md): per repeat about the cost of the fast single-model loop; the gain over
one process per repeat is one process, one data copy and one thread pool for all repeats.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fexprune.models.cnn import ExpressionCNN, MaxPoolReLU
from fexprune.training.loop import FULL_BATCH_CHUNK, GradientSum
from fexprune.training.speed import fast_input, prepare_training


class EnsembleCNN(nn.Module):
    """R ExpressionCNNs of one config side by side; input (N, R, H, W), logits (N, R, classes)."""

    def __init__(self, models: Sequence[ExpressionCNN]):
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.config = models[0].config
        if any(m.config != self.config for m in models):
            raise ValueError("every repeat of an ensemble must have the same CNNConfig")
        self.repeats = r = len(models)
        c1, c2 = self.config.channels
        k = self.config.kernel_size
        self.conv1 = nn.Conv2d(r, r * c1, k, groups=r)
        self.conv2 = nn.Conv2d(r * c1, r * c2, k, groups=r)
        self.pool1 = MaxPoolReLU(self.config.pools[0])
        self.pool2 = MaxPoolReLU(self.config.pools[1])
        n_features, n_classes = models[0].fc.in_features, models[0].fc.out_features
        self.fc_weight = nn.Parameter(torch.empty(r, n_classes, n_features))  # (R, classes, features)
        self.fc_bias = nn.Parameter(torch.empty(r, n_classes))
        with torch.no_grad():
            for name in ("conv1", "conv2"):
                getattr(self, name).weight.copy_(torch.cat([getattr(m, name).weight for m in models]))
                getattr(self, name).bias.copy_(torch.cat([getattr(m, name).bias for m in models]))
            self.fc_weight.copy_(torch.stack([m.fc.weight for m in models]))
            self.fc_bias.copy_(torch.stack([m.fc.bias for m in models]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        features = self.pool2(self.conv2(self.pool1(self.conv1(x))))  # (N, R*c2, h, w), ReLU applied
        features = features.reshape(n, self.repeats, -1)  # (N, R, c2*h*w), each repeat in NCHW order
        return torch.einsum("nrf,rkf->nrk", features, self.fc_weight) + self.fc_bias  # (N, R, classes)

    def to_models(self) -> list[ExpressionCNN]:
        """The repeats as separate ExpressionCNNs (NCHW weights, state_dict names conv1/conv2/fc)."""
        c1, c2 = self.config.channels
        models = []
        for r in range(self.repeats):
            model = ExpressionCNN(self.config)
            with torch.no_grad():
                model.conv1.weight.copy_(self.conv1.weight[r * c1 : (r + 1) * c1])
                model.conv1.bias.copy_(self.conv1.bias[r * c1 : (r + 1) * c1])
                model.conv2.weight.copy_(self.conv2.weight[r * c2 : (r + 1) * c2])
                model.conv2.bias.copy_(self.conv2.bias[r * c2 : (r + 1) * c2])
                model.fc.weight.copy_(self.fc_weight[r])
                model.fc.bias.copy_(self.fc_bias[r])
            models.append(model)
        return models


def stack_repeats(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-repeat (N_r, 1, H, W) images and (N_r,) labels -> (N, R, H, W), (N, R) and the (N, R) loss
    weights 1/N_r (0 for padding), N = max N_r."""
    n = max(len(x) for x in xs)
    height, width = xs[0].shape[-2:]
    images = torch.zeros(n, len(xs), height, width)
    labels = torch.zeros(n, len(xs), dtype=torch.long)
    weights = torch.zeros(n, len(xs))
    for r, (x, y) in enumerate(zip(xs, ys)):
        images[: len(x), r] = x[:, 0]
        labels[: len(y), r] = y
        weights[: len(y), r] = 1.0 / max(len(y), 1)
    return images, labels, weights


def _losses(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-repeat mean cross-entropy (R,) and per-repeat accuracy (R,), padding excluded."""
    per_image = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    losses = (per_image.reshape(labels.shape) * weights).sum(0)
    correct = (logits.argmax(-1) == labels).to(weights.dtype)
    return losses, (correct * weights).sum(0)


@torch.no_grad()
def evaluate_ensemble(ensemble: EnsembleCNN, images: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> list[tuple[float, float]]:
    """(loss, accuracy) per repeat, without autograd (inputs as `stack_repeats` returns them)."""
    losses, accuracies = _losses(ensemble(fast_input(images)), labels, weights)
    return list(zip(losses.tolist(), accuracies.tolist()))


def fit_ensemble(
    models: Sequence[ExpressionCNN],
    xs: Sequence[torch.Tensor],
    ys: Sequence[torch.Tensor],
    *,
    epochs: int,
    lr: float = 1e-3,
    x_tests: Sequence[torch.Tensor] | None = None,
    y_tests: Sequence[torch.Tensor] | None = None,
    eval_every: int = 10,
    on_epoch: Callable[[int, list[dict]], None] | None = None,
    chunk_size: int = FULL_BATCH_CHUNK,
) -> list[list[dict]]:
    """Train `models` (repeat r on xs[r], ys[r]) together, full batch; copies the trained weights back
    into `models` and returns each repeat's metrics rows exactly as `fit` would (row k = weights after
    k epochs, test metrics every `eval_every` epochs and at the end). `on_epoch(epoch, rows)` sees the
    rows of one epoch, one per repeat.
    """
    ensemble = EnsembleCNN(models)
    images, labels, weights = stack_repeats(xs, ys)
    images, = prepare_training(ensemble, images)
    test = stack_repeats(x_tests, y_tests) if x_tests is not None else None
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr)
    history: list[list[dict]] = [[] for _ in models]

    def record(epoch: int, train: list[tuple[float, float]]) -> None:
        rows = [{"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy} for loss, accuracy in train]
        if test is not None and (epoch % eval_every == 0 or epoch == epochs):
            for row, (loss, accuracy) in zip(rows, evaluate_ensemble(ensemble, *test)):
                row["test_loss"], row["test_accuracy"] = loss, accuracy
        for repeat, row in zip(history, rows):
            repeat.append(row)
        if on_epoch is not None:
            on_epoch(epoch, rows)

    ensemble.train()
    for epoch in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        losses = torch.zeros(len(models))
        accuracies = torch.zeros(len(models))
        gradient = GradientSum(ensemble.parameters())
        for start in range(0, len(images), chunk_size):  # as fit: a full-batch gradient, chunk by chunk
            part = slice(start, start + chunk_size)
            chunk_losses, chunk_accuracies = _losses(ensemble(images[part]), labels[part], weights[part])  # (R,), (R,)
            chunk_losses.sum().backward()  # repeat r's parameters see only d(loss_r)
            gradient.add()
            losses += chunk_losses.detach()
            accuracies += chunk_accuracies
        gradient.write()
        record(epoch, list(zip(losses.tolist(), accuracies.tolist())))
        optimizer.step()
    record(epochs, evaluate_ensemble(ensemble, images, labels, weights))
    for model, trained in zip(models, ensemble.to_models()):
        model.load_state_dict(trained.state_dict())
    return history
