"""Pruning criteria as Torch-Pruning importances, for `tp.pruner.MetaPruner` or anyone's own Torch-Pruning
code (docs/pruning-api.md shows each in use).

An importance receives a dependency group (a layer's output channels and everything coupled to them: the
next layers' inputs, batch norms, residual partners) and returns one score per channel of the group;
Torch-Pruning removes the lowest. Registered names (`make_importance`, `IMPORTANCES`):

- "l2" `KernelL2Importance`: the paper's I_i = sqrt(sum of output kernel i's squared weights / k^2), k^2 the
  kernel's spatial size (1 for a linear layer), averaged over the group's conv and linear output layers.
- "l1" `KernelL1Importance`: Li et al. 2017, "Pruning filters for efficient ConvNets": sum of |w| of kernel i.
- "random" `SeededRandomImportance`: a seeded random order (tp's RandomImportance is unseeded).
- "taylor": Torch-Pruning's `GroupTaylorImportance` (Molchanov et al. 2019); run loss.backward() on a batch
  before each pruning step (`needs_backward`).
- "bn_scale": Torch-Pruning's `BNScaleImportance` (Liu et al. 2017, "Network slimming"): |gamma|.
- "fpgm": Torch-Pruning's `FPGMImportance` (He et al. 2019): distance to the other kernels.
- "distinctiveness" `DistinctivenessImportance` (fexprune.pruning.channel_distinctiveness): Gedeon & Harris's
  angles between what the channels send to the next layers, over a sample of inputs.

The weight criteria read output kernels only (no bias, no next-layer inputs), as the paper's formula does;
Torch-Pruning's MagnitudeImportance(p=2, group_reduction="first", normalizer=None) ranks a single-layer group
the same way as "l2" (the same sum of squares, without the square root and the 1/k^2) but differs where
layers are compared (global pruning: the 1/k^2) and on residual groups ("first" reads one layer, "l2" the
mean of all). `normalizer` (tp's: None, "mean", "max", "sum", ...) rescales each group's scores; None keeps
the documented values, "mean" makes layers comparable under global pruning.

A group an importance cannot score (no layer of the kind it reads) gets a warning naming its layer;
Torch-Pruning then leaves that group whole.
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from fexprune.pruning.channel_distinctiveness import DistinctivenessImportance, elimination_scores, normalize
from fexprune.pruning.consumer_moments import PRODUCER_FNS, ForwardFn, group_channels, layer_name

__all__ = ["IMPORTANCES", "DistinctivenessImportance", "KernelL1Importance", "KernelL2Importance",
           "SeededRandomImportance", "WarnIfUnscored", "elimination_scores", "make_importance", "needs_backward"]


def output_kernels(layer: nn.Module) -> torch.Tensor:
    """The layer's weights as (output channels, inputs per group, *kernel): a transposed conv stores
    (in, out / groups, *kernel), so its output kernels are gathered from dimension 1."""
    weight = layer.weight.detach()
    if not getattr(layer, "transposed", False):
        return weight
    groups = layer.groups
    in_per, out_per = weight.shape[0] // groups, weight.shape[1]
    grouped = weight.reshape(groups, in_per, out_per, *weight.shape[2:]).transpose(1, 2)
    return grouped.reshape(groups * out_per, in_per, *weight.shape[2:])


def _kernels(group) -> list[tuple[nn.Module, list[int], list[int]]]:
    """(layer, its channel indices, their positions in the group's score vector) of every conv or linear
    layer whose OUTPUT channels the group removes."""
    position = {root: k for k, root in enumerate(group_channels(group))}
    found = []
    for item in group:
        layer = item.dep.layer
        if item.dep.pruning_fn not in PRODUCER_FNS or not isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            continue
        roots = item.root_idxs
        if roots is None or any(r is None or r not in position for r in roots):
            continue
        found.append((layer, [int(i) for i in item.idxs], [position[r] for r in roots]))
    return found


def _mean_over_members(parts: list[tuple[torch.Tensor, list[int]]], n: int) -> torch.Tensor | None:
    if not parts:
        return None
    total = torch.zeros(n, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.float64)
    for scores, positions in parts:
        index = torch.tensor(positions)
        total.index_add_(0, index, scores.double().cpu())
        count.index_add_(0, index, torch.ones(len(positions), dtype=torch.float64))
    return (total / count.clamp_min(1)).float()


def _warn_unscored(criterion: str, group) -> None:
    warnings.warn(f"{criterion} cannot score {layer_name(group)}: the group has none of the layers it reads, so "
                  "Torch-Pruning leaves it whole", stacklevel=3)


class _KernelImportance(tp.importance.Importance):
    name = "kernel"

    def __init__(self, normalizer: str | None = None):
        self.normalizer = normalizer

    def kernel_scores(self, layer: nn.Module, kernels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        parts = [(self.kernel_scores(layer, output_kernels(layer)[idxs]), positions)
                 for layer, idxs, positions in _kernels(group)]
        scores = _mean_over_members(parts, len(group_channels(group)))
        if scores is None:
            _warn_unscored(self.name, group)
            return None
        return normalize(scores, self.normalizer)


class KernelL2Importance(_KernelImportance):
    """sqrt(sum w^2 / k^2) of each output kernel; k^2 is the kernel's spatial size (1 for a linear layer)."""

    name = "l2"

    def kernel_scores(self, layer, kernels):
        spatial = math.prod(layer.kernel_size) if isinstance(layer, nn.modules.conv._ConvNd) else 1
        return (kernels.double() ** 2).flatten(1).sum(1).div(spatial).sqrt()


class KernelL1Importance(_KernelImportance):
    """Sum of |w| of each output kernel."""

    name = "l1"

    def kernel_scores(self, layer, kernels):
        return kernels.double().abs().flatten(1).sum(1)


class SeededRandomImportance(tp.importance.Importance):
    """Scores drawn from a generator seeded by (seed, the group's root layer, its width): the same network
    state gives the same order every time (so a MACs search can try ratios), a new seed another order."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor:
        n = len(group_channels(group))
        root = group[0][0].target.module
        key = zlib.crc32(f"{type(root).__name__}{tuple(getattr(root, 'weight', torch.empty(0)).shape)}{group[0][0].target.name}".encode())
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, key, n]).generate_state(1)[0]))
        return torch.rand(n, generator=generator)


class WarnIfUnscored(tp.importance.Importance):
    """`importance` as it is, with a warning naming the layer of every group it gives no score (None), which
    Torch-Pruning would otherwise skip without a word (bn_scale on a layer without batch norm)."""

    def __init__(self, importance: tp.importance.Importance, name: str):
        self.importance = importance
        self.name = name

    def __call__(self, group) -> torch.Tensor | None:
        scores = self.importance(group)
        if scores is None:
            _warn_unscored(self.name, group)
        return scores


def needs_backward(importance: tp.importance.Importance) -> bool:
    """Whether `importance` reads gradients: run loss.backward() on a batch before each pruning step."""
    inner = getattr(importance, "importance", importance)
    return isinstance(inner, (tp.importance.GroupTaylorImportance, tp.importance.GroupHessianImportance))


IMPORTANCES = ("l2", "l1", "random", "taylor", "bn_scale", "distinctiveness", "fpgm")


def make_importance(name: str, *, model: nn.Module | None = None, sample_x=None, seed: int = 0,
                    normalizer: str | None = None, forward_fn: ForwardFn | None = None) -> tp.importance.Importance:
    """The importance registered under `name` (IMPORTANCES); distinctiveness needs `model` and `sample_x` (a
    tensor, a tuple/dict of inputs or a list of batches; `forward_fn(model, batch)` runs one)."""
    if name == "l2":
        return KernelL2Importance(normalizer)
    if name == "l1":
        return KernelL1Importance(normalizer)
    if name == "random":
        return SeededRandomImportance(seed)
    if name == "taylor":
        return WarnIfUnscored(tp.importance.GroupTaylorImportance(normalizer=normalizer), name)
    if name == "bn_scale":
        return WarnIfUnscored(tp.importance.BNScaleImportance(normalizer=normalizer), name)
    if name == "fpgm":
        return WarnIfUnscored(tp.importance.FPGMImportance(normalizer=normalizer), name)
    if name == "distinctiveness":
        if model is None or sample_x is None:
            raise ValueError("distinctiveness needs the model and a sample of its inputs")
        return DistinctivenessImportance(model, sample_x, forward_fn=forward_fn, normalizer=normalizer)
    raise ValueError(f"unknown importance {name!r} (choose from {', '.join(IMPORTANCES)})")
