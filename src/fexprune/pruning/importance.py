"""The project's pruning criteria as Torch-Pruning importances, for `tp.pruner.MetaPruner` (BasePruner) or
anyone's own Torch-Pruning code.

An importance receives a dependency group (a conv's output channels and everything coupled to them: the
next layers' inputs, batch norms, residual partners) and returns one score per channel of the group;
Torch-Pruning removes the lowest. A group with several output layers (coupled by a residual addition)
gets the mean of its members' scores. Sources, one line each:

- `PaperL2Importance` ("l2"): the paper's I_i = sqrt(sum of kernel i's squared weights / k^2), as in
  fexprune.pruning.criteria (the sum over all k*k*in weights, the division by k^2 only).
- `L1Importance` ("l1"): Li et al. 2017, "Pruning filters for efficient ConvNets": sum of |w| of kernel i.
- `SeededRandomImportance` ("random"): a seeded random order (tp's RandomImportance is unseeded).
- `TaylorImportance` ("taylor"): Molchanov et al. 2017/2019, first-order Taylor |w * dL/dw|: tp's
  GroupTaylorImportance; the caller runs loss.backward() on a batch before each pruning step.
- `BNScaleImportance` ("bn_scale"): Liu et al. 2017, "Network slimming": |gamma| of the batch norm:
  tp's own; a group without batch norm gets None, which Torch-Pruning skips.
- `DistinctivenessImportance` ("distinctiveness"): Gedeon & Harris 1991 carried to feature maps: the
  angle between channels' centred activation vectors over a sample of training images
  (fexprune.pruning.criteria.channel_angles); channels that point the same way as another are redundant.

Weight criteria use output kernels only (no bias, no next-layer inputs), as the paper's formula does.
`normalizer` (tp's: None, "mean", "max", "sum", ...) rescales each group's scores; None (the default) keeps
the documented values, "mean" makes layers comparable under global pruning.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from fexprune.pruning.criteria import channel_angles

OUT_CHANNELS = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
_NORMALIZE = tp.importance.GroupMagnitudeImportance()._normalize  # tp's normalizers: None, "mean", "max", "sum", ...


def _kernels(group) -> list[tuple[nn.Module, list[int], list[int]]]:
    """(layer, its channel indices, their positions in the group's score vector) of every conv or linear
    layer whose OUTPUT channels the group removes."""
    found = []
    for i, (dep, idxs) in enumerate(group):
        if dep.pruning_fn in OUT_CHANNELS and isinstance(dep.layer, (nn.Conv2d, nn.Linear)):
            root = group[i].root_idxs
            if any(r is None for r in root):
                continue
            found.append((dep.layer, list(idxs), list(root)))
    return found


def _mean_over_members(parts: list[tuple[torch.Tensor, list[int]]], n: int) -> torch.Tensor | None:
    if not parts:
        return None
    total = torch.zeros(n, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.float64)
    for scores, root in parts:
        index = torch.tensor(root)
        total.index_add_(0, index, scores.double().cpu())
        count.index_add_(0, index, torch.ones(len(root), dtype=torch.float64))
    return (total / count.clamp_min(1)).float()


def _group_size(group) -> int:
    return len(group[0][1])


class _KernelImportance(tp.importance.Importance):
    def __init__(self, normalizer: str | None = None):
        self.normalizer = normalizer

    def kernel_scores(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        parts = [(self.kernel_scores(layer.weight.detach()[idxs]), root) for layer, idxs, root in _kernels(group)]
        scores = _mean_over_members(parts, _group_size(group))
        if scores is None:
            return None
        return _NORMALIZE(scores, self.normalizer)


class PaperL2Importance(_KernelImportance):
    """sqrt(sum w^2 / k^2) of each output kernel (k^2 = 1 for a linear layer)."""

    def kernel_scores(self, weight):
        k_squared = weight[0, 0].numel() if weight.dim() == 4 else 1
        return (weight.double() ** 2).flatten(1).sum(1).div(k_squared).sqrt()


class L1Importance(_KernelImportance):
    """Sum of |w| of each output kernel."""

    def kernel_scores(self, weight):
        return weight.double().abs().flatten(1).sum(1)


class SeededRandomImportance(tp.importance.Importance):
    """Scores drawn from a generator seeded by (seed, the group's root layer, its width): the same network
    state gives the same order every time (so a MACs search can try ratios), a new seed another order."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor:
        n = _group_size(group)
        root = group[0][0].target.module
        key = zlib.crc32(f"{type(root).__name__}{tuple(getattr(root, 'weight', torch.empty(0)).shape)}{group[0][0].target.name}".encode())
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, key, n]).generate_state(1)[0]))
        return torch.rand(n, generator=generator)


class TaylorImportance(tp.importance.GroupTaylorImportance):
    """tp's first-order Taylor importance; needs gradients from a backward pass before each step."""

    needs_gradients = True

    def __init__(self, normalizer: str | None = None):
        super().__init__(normalizer=normalizer)


class BNScaleImportance(tp.importance.BNScaleImportance):
    """tp's batch-norm scale importance: |gamma|; None for a group without batch norm."""

    def __init__(self, normalizer: str | None = None):
        super().__init__(normalizer=normalizer)


def elimination_scores(angles: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Scores whose order is Gedeon's one-at-a-time elimination: repeatedly drop the live channel with the
    smallest angle to any other live one (dead channels first, lower index on ties). A channel's score is
    the largest such angle met up to its removal (degrees, non-decreasing along the order, plus a tiny
    rank term), so the k lowest are exactly the first k removed and scores compare across layers.

    One-shot scores (each channel's minimum angle) would give two identical channels both 0 and prune
    both; the elimination keeps one, as the paper's procedure re-scores after every removal."""
    n = len(angles)
    alive = np.ones(n, bool)
    finite = np.where(np.isnan(angles), np.inf, angles)
    np.fill_diagonal(finite, np.inf)
    scores = np.zeros(n)
    level = 0.0
    for rank in range(n):
        masked = np.where(alive[None, :], finite, np.inf)
        nearest = masked.min(1)
        nearest = np.where(dead, -1.0, np.where(np.isfinite(nearest), nearest, 180.0))
        nearest[~alive] = np.inf
        pick = int(np.argmin(nearest))
        level = max(level, max(float(nearest[pick]), 0.0))
        scores[pick] = level + rank * 1e-9
        alive[pick] = False
    return scores


class DistinctivenessImportance(tp.importance.Importance):
    """Channels' activation maps over `sample_x` (the model's input, a few training images): the output
    of the group's batch norm where it has one, else of its conv, through a ReLU (what the next layer
    sees, up to pooling). Scores: `elimination_scores` of their angles (channel_angles); the least
    distinct go first. Needs `model`, as Torch-Pruning hands an importance the group only."""

    def __init__(self, model: nn.Module, sample_x: torch.Tensor):
        self.model = model
        self.sample_x = sample_x
        self._outputs: dict[int, torch.Tensor] | None = None

    @torch.no_grad()
    def maps(self, modules: list[nn.Module]) -> list[torch.Tensor]:
        """ReLU of each module's output over the sample. One forward pass records every conv and batch norm
        of the model the first time: Torch-Pruning scores all groups before it prunes any, so the network
        is the same for every group of one step, and a pass per group (a dozen for the transfer network,
        in each of the MACs search's attempts) gave the same maps at many times the cost."""
        if self._outputs is None or any(id(m) not in self._outputs for m in modules):
            captured: dict[int, torch.Tensor] = {}
            watched = {id(m): m for m in self.model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))}
            watched.update({id(m): m for m in modules})
            handles = [m.register_forward_hook(lambda mod, i, out, k=k: captured.__setitem__(k, out.detach()))
                       for k, m in watched.items()]
            was_training = self.model.training
            self.model.eval()
            try:
                self.model(self.sample_x)
            finally:
                for handle in handles:
                    handle.remove()
                self.model.train(was_training)
            self._outputs = captured
        return [torch.relu(self._outputs[id(m)]) for m in modules]

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        norms = []
        for i, (dep, idxs) in enumerate(group):
            if dep.pruning_fn == tp.prune_batchnorm_out_channels and not any(r is None for r in group[i].root_idxs):
                norms.append((dep.layer, list(idxs), list(group[i].root_idxs)))
        members = norms or [m for m in _kernels(group) if isinstance(m[0], nn.Conv2d)]
        if not members:
            return None
        parts = []
        for (layer, idxs, root), maps in zip(members, self.maps([m[0] for m in members])):
            angles, dead = channel_angles(maps[:, idxs].double().cpu().numpy())
            parts.append((torch.from_numpy(elimination_scores(angles, dead)), root))
        return _mean_over_members(parts, _group_size(group))


IMPORTANCES = ("l2", "l1", "random", "taylor", "bn_scale", "distinctiveness")


def make_importance(name: str, *, model: nn.Module | None = None, sample_x: torch.Tensor | None = None,
                    seed: int = 0, normalizer: str | None = None) -> tp.importance.Importance:
    """The importance registered under `name` (IMPORTANCES); distinctiveness needs `model` and `sample_x`."""
    if name == "l2":
        return PaperL2Importance(normalizer)
    if name == "l1":
        return L1Importance(normalizer)
    if name == "random":
        return SeededRandomImportance(seed)
    if name == "taylor":
        return TaylorImportance(normalizer)
    if name == "bn_scale":
        return BNScaleImportance(normalizer)
    if name == "distinctiveness":
        if model is None or sample_x is None:
            raise ValueError("distinctiveness needs the model and a sample of training images")
        return DistinctivenessImportance(model, sample_x)
    raise ValueError(f"unknown importance {name!r} (choose from {', '.join(IMPORTANCES)})")
