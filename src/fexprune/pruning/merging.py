"""Gedeon's merge inside a Torch-Pruning step: a removed channel's job is handed to the kept channel most
parallel to it, so the pruned network computes nearly what the unpruned one did, without retraining.

Over a sample, the least-squares fit a_removed ~ s * a_kept + c (what each consumer layer receives from the
two channels: fexprune.pruning.consumer_moments) gives, for every consumer:
  kept channel's outgoing weights += s * removed channel's outgoing weights,
  consumer bias                   += c * removed channel's outgoing weights summed over the kernel.
The kept partner is the one with the largest |correlation| over all consumers (so a near-negated copy is
merged too, with s < 0); a channel constant over the sample (dead) has s = 0 and folds its mean into the
bias only. On the PIC autoencoder's sigmoid units, `fit="add"` is Gedeon & Harris's rule exactly (s = 1,
c = 0: the kept unit takes the removed one's weights unchanged), and least squares gives the same for two
identical units.

Exact where the consumer is a linear layer or a 1x1 conv without padding (an MLP, the classifier after a
flatten): a removed channel that equals s * kept + c changes nothing. For a conv with zero padding, a
strided transposed conv, or a consumer that also reaches the channels through another path, the bias term
is exact away from the borders only. A grouped conv cannot move weights between its groups: where the
partner lies in another group, that consumer gets the mean fold (s = 0) instead. A consumer without a bias
gets one (zeros) when the fold needs it.

Two ways in:
- `merge_before_pruning(group, activations)` before `group.prune()` (DependencyGraph.get_pruning_group);
- `MergingPruner`: Torch-Pruning's MetaPruner whose `step()` merges every group before pruning it.
"""

from __future__ import annotations

import warnings

import torch
import torch_pruning as tp
from torch import nn

from fexprune.pruning.channel_distinctiveness import DistinctivenessImportance, covariance
from fexprune.pruning.consumer_moments import (ChannelMoments, ConsumerActivations, ForwardFn, Tap, consumer_taps,
                                               group_channels, layer_name)

FITS = ("least_squares", "add")


def _activations(source) -> ConsumerActivations:
    return source.activations if isinstance(source, DistinctivenessImportance) else source


def partners(cov: torch.Tensor, removed: list[int], kept: list[int]) -> dict[int, int | None]:
    """Each removed channel's kept channel of largest |correlation| (None for a dead one or with no live kept)."""
    std = cov.diagonal().clamp_min(0).sqrt()
    live = std > 0
    corr = cov / torch.outer(torch.where(live, std, 1.0), torch.where(live, std, 1.0))
    candidates = [k for k in kept if live[k]]
    found: dict[int, int | None] = {}
    for r in removed:
        if not live[r] or not candidates:
            found[r] = None
            continue
        strength = corr[r, candidates].abs()
        found[r] = candidates[int(torch.argmax(strength))]
    return found


def _full_group(group):
    graph = getattr(group, "_DG", None)
    if graph is None:
        raise ValueError("merging needs a group from a DependencyGraph (DG.get_pruning_group or a pruner's step)")
    module, handler = group[0].dep.target.module, group[0].dep.handler
    n = graph.get_out_channels(module) if graph.is_out_channel_pruning_fn(handler) else graph.get_in_channels(module)
    return graph.get_pruning_group(module, handler, list(range(n))), n


@torch.no_grad()
def merge_before_pruning(group, activations, *, fit: str = "least_squares") -> dict[int, int | None]:
    """Fold every channel `group` is about to remove into its kept partner, in every consumer layer of the
    network as it is now; call `group.prune()` next. `activations`: a ConsumerActivations or the
    DistinctivenessImportance whose sample to use. Returns {removed channel: kept partner or None}."""
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r} (choose from {', '.join(FITS)})")
    full, n = _full_group(group)
    removed = sorted(set(group_channels(group)))
    kept = [c for c in range(n) if c not in set(removed)]
    if not removed or not kept:
        return {}
    taps = consumer_taps(full)
    if not taps:
        warnings.warn(f"nothing to merge into for {layer_name(group)}: no conv or linear layer receives its "
                      "channels; they are only cut", stacklevel=2)
        return {r: None for r in removed}
    moments = _activations(activations).moments(taps)
    chosen = partners(covariance(taps, moments, n), removed, kept)
    for tap, moment in zip(taps, moments):
        _fold_tap(tap, moment, chosen, fit)
    return chosen


def _fold_tap(tap: Tap, moment: ChannelMoments, chosen: dict[int, int | None], fit: str) -> None:
    column = {channel: c for c, channel in enumerate(tap.channels)}
    for removed, kept in chosen.items():
        if removed not in column:
            continue
        r = column[removed]
        k = column.get(kept) if kept is not None else None
        mean_r = float(moment.mean[r])
        for position in tap.index:
            source = position[r]
            target = position[k] if k is not None else None
            if target is not None and _same_group(tap.layer, source, target):
                if fit == "add":
                    scale, offset = 1.0, 0.0
                else:
                    variance = float(moment.scatter[k, k])
                    scale = float(moment.scatter[r, k]) / variance if variance > 0 else 0.0
                    offset = mean_r - scale * float(moment.mean[k])
                _add_input(tap.layer, source, target, scale)
            else:
                offset = mean_r
            _add_to_bias(tap.layer, source, offset)


def _same_group(layer: nn.Module, a: int, b: int) -> bool:
    if isinstance(layer, nn.Linear) or layer.groups == 1:
        return True
    per_group = layer.in_channels // layer.groups
    return a // per_group == b // per_group


def _input_slices(layer: nn.Module, channel: int) -> tuple[torch.Tensor, tuple]:
    """(the weights that read input `channel`, as (outputs it reaches, kernel...)), and those outputs' rows."""
    weight = layer.weight
    if isinstance(layer, nn.Linear):
        return weight[:, channel], slice(None)
    per_in = layer.in_channels // layer.groups
    per_out = layer.out_channels // layer.groups
    g, local = divmod(channel, per_in)
    rows = slice(g * per_out, (g + 1) * per_out)
    if layer.transposed:  # (in, out / groups, *kernel)
        return weight[channel], rows
    return weight[rows, local], rows  # (out, in / groups, *kernel)


def _add_input(layer: nn.Module, source: int, target: int, scale: float) -> None:
    weights, _ = _input_slices(layer, source)
    addition = scale * weights.detach().clone()
    if isinstance(layer, nn.Linear):
        layer.weight[:, target] += addition
    elif layer.transposed:
        layer.weight[target] += addition
    else:
        per_in = layer.in_channels // layer.groups
        _, rows = _input_slices(layer, target)
        layer.weight[rows, target % per_in] += addition


def _add_to_bias(layer: nn.Module, source: int, offset: float) -> None:
    if offset == 0.0:
        return
    weights, rows = _input_slices(layer, source)
    shift = offset * (weights.detach().reshape(weights.shape[0], -1).sum(1) if weights.dim() > 1 else weights.detach())
    if layer.bias is None:
        outputs = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        layer.bias = nn.Parameter(torch.zeros(outputs, dtype=layer.weight.dtype, device=layer.weight.device))
    layer.bias[rows] += shift


class MergingPruner(tp.pruner.MetaPruner):
    """Torch-Pruning's MetaPruner (every option as there) that merges each group's removed channels into
    their kept partners just before pruning it. `sample` / `forward_fn`: the inputs to fit the merge on;
    left out, the DistinctivenessImportance's own. `fit`: "least_squares" or "add" (Gedeon's s = 1)."""

    def __init__(self, model: nn.Module, example_inputs, importance: tp.importance.Importance, *, sample=None,
                 forward_fn: ForwardFn | None = None, fit: str = "least_squares", **kwargs):
        if fit not in FITS:
            raise ValueError(f"unknown fit {fit!r} (choose from {', '.join(FITS)})")
        super().__init__(model, example_inputs, importance, **kwargs)
        if sample is not None:
            self.activations = ConsumerActivations(model, sample, forward_fn)
        elif isinstance(importance, DistinctivenessImportance):
            self.activations = importance.activations
        else:
            raise ValueError("merging needs a sample of inputs: pass sample=, or use a DistinctivenessImportance")
        self.fit = fit
        self.merges: list[dict[int, int | None]] = []  # {removed: kept} of every group pruned, in order

    def step(self, interactive: bool = False):
        groups = super().step(interactive=True)
        if interactive:
            return (self._merging(group) for group in groups)
        for group in groups:
            self.merges.append(merge_before_pruning(group, self.activations, fit=self.fit))
            group.prune()

    def _merging(self, group):
        """The group, whose prune() merges first (interactive steps)."""
        prune = group.prune

        def merged_prune(idxs=None, record_history=True):
            target = group if idxs is None else group._DG.get_pruning_group(group[0].dep.target.module,
                                                                            group[0].dep.handler, idxs)
            self.merges.append(merge_before_pruning(target, self.activations, fit=self.fit))
            (prune if idxs is None else target.prune)(record_history=record_history)

        group.prune = merged_prune
        return group
