"""One pass of mini-batch training: the loop every recipe's mini-batch mode runs.

Shuffle with the caller's generator, optionally augment and mix up each batch, learn from a teacher's soft
targets as well as the labels (distillation, as a pruned network's fine-tuning does), step the optimizer (and
its schedule), and re-apply pruning masks after each step when asked. Every random number comes from the
generator, and a knob that is off draws nothing, so a seed gives the same batches whatever else is set.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fexprune.data.augment import AugmentConfig, augment
from fexprune.errors import InputError


def train_epoch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, generator: torch.Generator,
    batch_size: int, *, schedule=None, augment_config: AugmentConfig | None = None, label_smoothing: float = 0.0,
    mixup: float = 0.0, min_batch: int = 1, after_step: Callable[[nn.Module], None] | None = None,
    teacher: nn.Module | None = None, distill: float = 0.0, temperature: float = 4.0,
) -> dict:
    """One shuffled pass over (x, y); the caller sets train or eval mode (the teacher's too). Batches smaller
    than `min_batch` are skipped (batch norm needs two samples). With a teacher and distill > 0 the loss is
    distill x KL(teacher || model) at `temperature` (times T^2, Hinton et al. 2015) plus (1 - distill) x the
    labels' loss, the teacher seeing the images the model sees. Returns the mean loss and accuracy seen."""
    order = torch.randperm(len(x), generator=generator)
    total, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]
        if len(index) < min_batch:
            continue
        inputs = x[index] if augment_config is None else augment(x[index], generator, augment_config)
        if mixup > 0:  # each batch blended with a shuffled copy of itself, weight ~ Beta(mixup, mixup)
            weight = float(np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=generator))).beta(mixup, mixup))
            partner = torch.randperm(len(index), generator=generator)
            inputs = weight * inputs + (1 - weight) * inputs[partner]
            logits = model(inputs)
            loss = (weight * F.cross_entropy(logits, y[index], label_smoothing=label_smoothing)
                    + (1 - weight) * F.cross_entropy(logits, y[index][partner], label_smoothing=label_smoothing))
        else:
            logits = model(inputs)
            loss = F.cross_entropy(logits, y[index], label_smoothing=label_smoothing)
        if teacher is not None and distill > 0:
            loss = distill * distillation_loss(logits, teacher, inputs, temperature) + (1 - distill) * loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if after_step is not None:
            after_step(model)
        total += loss.item() * len(index)
        correct += (logits.argmax(1) == y[index]).sum().item()
    return {"train_loss": total / len(x), "train_accuracy": correct / len(x)}


def distillation_loss(logits: torch.Tensor, teacher: nn.Module, inputs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || model) at `temperature`, times T^2 (Hinton et al. 2015) so that its gradients keep their
    scale whatever the temperature; the teacher is run on `inputs` without gradients."""
    with torch.no_grad():
        target = F.softmax(teacher(inputs) / temperature, dim=1)
    return F.kl_div(F.log_softmax(logits / temperature, dim=1), target, reduction="batchmean") * temperature ** 2


def check_finite_loss(row: dict) -> None:
    """Stop a training whose loss became NaN or infinite: every later epoch would be NaN too, and a run
    that finishes so reports a meaningless accuracy. Reads a number already computed; changes none."""
    loss = row["train_loss"]
    if not math.isfinite(loss):
        raise InputError(f"training diverged: the training loss is {loss} at epoch {row['epoch']} "
                         "(a smaller --lr, or check the inputs for extreme values)")
