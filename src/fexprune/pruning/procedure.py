"""The paper's procedure (2.3): prune the least important kernel, evaluate, repeat until loss climbs.

Row 0 is the layer before this run of pruning; row k follows the k-th pruned kernel. Columns follow the
paper's table: `min_importance` is the least importance among the kernels left after the step (row 0:
the smallest of the unpruned layer), which is what the paper's numbers are (its row 0 is 0.528, row 1
0.579, so row k cannot be the kernel removed at step k); `removed_importance` is the score of the kernel
removed at that step. The step that raises train loss by more than `max_loss_increase` over the base
loss is recorded with `over_limit=True`, then undone: the paper's row 4.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from fexprune.pruning.criteria import Criterion
from fexprune.pruning.masking import ChannelMasks

Evaluate = Callable[[nn.Module], tuple[float, float]]  # model -> (train loss, train accuracy)
FineTune = Callable[[nn.Module, ChannelMasks], None]  # trains in place, keeping masks applied


@dataclass
class PruneStep:
    layer: str
    pruned: int  # kernels of this layer pruned so far
    channel: int | None  # the channel pruned at this step (None on row 0)
    train_loss: float
    train_accuracy: float
    min_importance: float
    removed_importance: float
    over_limit: bool = False
    loss_before_finetune: float | None = None


@dataclass
class LayerPruning:
    layer: str
    criterion: str
    base_loss: float
    steps: list[PruneStep] = field(default_factory=list)
    stopped_because: str = ""

    @property
    def pruned_channels(self) -> list[int]:
        return [s.channel for s in self.steps if s.channel is not None and not s.over_limit]

    @property
    def accepted(self) -> list[PruneStep]:
        return [s for s in self.steps if not s.over_limit]


def exceeds_limit(base_loss: float, loss: float, max_loss_increase: float) -> bool:
    """The paper's stopping rule: the step costs more than `max_loss_increase` of train loss (NaN does too).

    A 1e-9 slack keeps float rounding (1.1 - 1.0 > 0.1 in binary) from rejecting a step exactly at the limit.
    """
    return not (loss - base_loss <= max_loss_increase + 1e-9)


def _least(scores: np.ndarray, alive: np.ndarray) -> float:
    return float(np.min(scores[alive])) if alive.any() else math.nan


def prune_until(
    model: nn.Module,
    layer: str,
    criterion: Criterion,
    evaluate_train: Evaluate,
    sample_x: torch.Tensor | None = None,
    *,
    masks: ChannelMasks | None = None,
    max_loss_increase: float = 0.1,
    base_loss: float | None = None,
    finetune: FineTune | None = None,
    max_steps: int | None = None,
    min_channels: int = 1,
    on_step: Callable[[PruneStep], None] | None = None,
) -> LayerPruning:
    """Prunes `layer` of `model` in place, kernel by kernel, until the next step would cost too much.

    `masks` carries pruning already done (other layers) and is updated in place. `base_loss` is the loss
    the limit is measured from; by default the model's loss when called. `finetune(model, masks)` runs
    after each zeroing and before evaluating. At least `min_channels` channels are always kept.
    `on_step(step)` sees each step tried (progress only).
    """
    masks = masks if masks is not None else ChannelMasks()
    if layer not in masks.alive:
        masks.alive[layer] = np.ones(getattr(model, layer).out_channels, bool)
    masks.apply(model)
    alive = masks.alive[layer]
    loss, accuracy = evaluate_train(model)
    base = loss if base_loss is None else base_loss
    result = LayerPruning(layer, criterion.name, base)
    scores = criterion(model, layer, sample_x, alive.copy())
    result.steps.append(PruneStep(layer, int((~alive).sum()), None, loss, accuracy, _least(scores, alive), math.nan))
    while True:
        if alive.sum() <= min_channels:
            result.stopped_because = f"{min_channels} channel(s) left"
            break
        if max_steps is not None and len(result.accepted) - 1 >= max_steps:
            result.stopped_because = f"{max_steps} steps"
            break
        candidates = np.flatnonzero(alive)
        channel = int(candidates[np.argmin(scores[candidates])])
        removed_score = float(scores[channel])
        saved_state = copy.deepcopy(model.state_dict())
        saved_masks = masks.copy()
        masks.prune(model, layer, channel)
        before_finetune = None
        if finetune is not None:
            before_finetune, _ = evaluate_train(model)
            finetune(model, masks)
            masks.apply(model)
        loss, accuracy = evaluate_train(model)
        after_scores = criterion(model, layer, sample_x, masks.alive[layer].copy())
        step = PruneStep(
            layer, int((~masks.alive[layer]).sum()), channel, loss, accuracy,
            _least(after_scores, masks.alive[layer]), removed_score, False, before_finetune,
        )
        if on_step is not None:
            on_step(step)
        if exceeds_limit(base, loss, max_loss_increase):
            step.over_limit = True
            result.steps.append(step)
            model.load_state_dict(saved_state)
            masks.alive.update(saved_masks.alive)
            alive = masks.alive[layer]
            result.stopped_because = f"train loss +{loss - base:.4f} > {max_loss_increase}"
            break
        result.steps.append(step)
        alive = masks.alive[layer]
        scores = after_scores
    return result
