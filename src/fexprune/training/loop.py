"""The training loop: plain, linear, full-batch by default (one Adam step per epoch, as the paper).

Row k of the returned metrics describes the weights after k epochs: in full-batch mode the forward
pass of step k+1 already computes that loss, so the curve costs no extra pass; the last row needs one
evaluation. In mini-batch mode each row is a no-autograd pass over the whole training set.

Speed without other math (see training/speed.py and benchmarks/RESULTS.md): the allocator keeps
activation buffers between steps, model and images are channels_last, the images never ask for a
gradient, evaluation runs without autograd, and the full-batch gradient is accumulated over chunks of
`FULL_BATCH_CHUNK` images, so each chunk's activations stay in cache (still one step per epoch; chunk
gradients summed in float64, so the loss matches a single full-batch pass to float32 rounding).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fexprune.training.minibatch import check_finite_loss, train_epoch
from fexprune.training.speed import fast_input, prepare_training

FULL_BATCH_CHUNK = 20  # images per chunk; 20 measured fastest of 5-540 on the 2-core machine


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, without autograd."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    x = fast_input(x)
    step = batch_size or len(x)
    for start in range(0, len(x), step):
        logits = model(x[start : start + step])
        target = y[start : start + step]
        total_loss += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    n = max(len(x), 1)
    return total_loss / n, correct / n


class GradientSum:
    """Sums the chunks' gradients in float64, then hands the parameters their float32 total.

    Adding 27 float32 chunk gradients in `.grad` drifted the 20-epoch loss curve 1.1e-4 from the plain
    full-batch loop, 4x the plain loop's own float32 noise (2.7e-5, the same batch in another order);
    float64 sums bring it to 2.6e-5, inside that noise, at the same epoch time (benchmarks/RESULTS.md).
    """

    def __init__(self, parameters):
        self.parameters = [p for p in parameters if p.requires_grad]
        self.sums: list[torch.Tensor | None] = [None] * len(self.parameters)

    def add(self) -> None:
        """Take the gradient the last backward left in `.grad`."""
        for i, p in enumerate(self.parameters):
            if p.grad is not None:
                self.sums[i] = p.grad.double() if self.sums[i] is None else self.sums[i].add_(p.grad)
                p.grad = None

    def write(self) -> None:
        """A parameter no chunk reached keeps no gradient, as after a plain backward (Adam skips it)."""
        for total, p in zip(self.sums, self.parameters):
            p.grad = None if total is None else total.to(p.dtype)


def accumulate_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk_size: int) -> tuple[float, float]:
    """Set .grad to the gradient of the mean cross-entropy over all of x, computed chunk by chunk;
    returns that loss and the accuracy, both from the same forward passes."""
    gradient = GradientSum(model.parameters())
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.long)
    for start in range(0, len(x), chunk_size):
        logits = model(x[start : start + chunk_size])  # (chunk, classes)
        target = y[start : start + chunk_size]
        loss = F.cross_entropy(logits, target, reduction="sum") / len(x)
        loss.backward()
        gradient.add()
        total_loss += loss.detach()
        correct += (logits.detach().argmax(1) == target).sum()
    gradient.write()
    return total_loss.item(), correct.item() / max(len(x), 1)


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int | None = None,
    seed: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    start_epoch: int = 0,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    eval_every: int = 10,
    on_epoch: Callable[[dict], None] | None = None,
    end_of_epoch: Callable[[int], None] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    chunk_size: int = FULL_BATCH_CHUNK,
) -> list[dict]:
    """Train `model` in place from `start_epoch` to `epochs`; returns one metrics row per epoch.

    `optimizer` and `generator` (mini-batch order) are passed in by callers that checkpoint them.
    `on_epoch(row)` sees each metrics row; `end_of_epoch(epochs_done)` runs when the weights are those
    after `epochs_done` epochs, the moment to checkpoint (rows with epoch < epochs_done are final then).
    `after_step(model)` runs after every optimizer step (pruning re-applies its masks there).
    `chunk_size`: images per forward/backward pass within a full-batch step (speed only).
    """
    optimizer = optimizer or make_optimizer(model, lr)
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    full_batch = batch_size is None or batch_size >= len(x)
    x, x_test = prepare_training(model, x, x_test)
    rows: list[dict] = []

    def record(epoch: int, loss: float, accuracy: float) -> None:
        row = {"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy}
        check_finite_loss(row)
        if x_test is not None and (epoch % eval_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = evaluate(model, x_test, y_test)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)

    model.train()
    for epoch in range(start_epoch, epochs):
        if full_batch:
            optimizer.zero_grad(set_to_none=True)
            record(epoch, *accumulate_gradient(model, x, y, chunk_size))  # row k: weights after k epochs
            optimizer.step()
            if after_step is not None:
                after_step(model)
            if end_of_epoch is not None:
                end_of_epoch(epoch + 1)
        else:
            if epoch == start_epoch:
                record(epoch, *evaluate(model, x, y, batch_size))
            train_epoch(model, x, y, optimizer, generator, batch_size, after_step=after_step)
            if epoch + 1 < epochs:
                record(epoch + 1, *evaluate(model, x, y, batch_size))
            if end_of_epoch is not None:
                end_of_epoch(epoch + 1)
    if start_epoch < epochs or not rows:
        record(epochs, *evaluate(model, x, y, None if full_batch else batch_size))
    return rows
