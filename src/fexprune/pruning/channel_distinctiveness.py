"""Gedeon & Harris's distinctiveness as a Torch-Pruning importance, for any group Torch-Pruning prunes.

A channel (a conv's feature map, a linear layer's hidden unit) is the vector of what its consumers receive
from it over a sample of inputs (fexprune.pruning.consumer_moments). Centred on its own mean, two channels
at angle 0 are a*x + b of each other with a > 0, at 180 with a < 0: either way a consumer can take one's
job over by scaling the other's weights and shifting its bias (fexprune.pruning.merging does exactly
that), so one of the pair is redundant. Gedeon's sigmoid units were centred on 0.5 instead; a ReLU or
batch-normed channel has no fixed middle, so the channel's own mean is used.

Scores follow Gedeon's one-at-a-time elimination (`elimination_scores`) on min(angle, 180 - angle)
(`redundancy_angles`): of two identical channels one goes and the other stays, which one-shot minimum
angles (both 0) would not do.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from fexprune.pruning.consumer_moments import (ChannelMoments, ConsumerActivations, ForwardFn, Tap, consumer_taps,
                                               group_channels, layer_name, producer_taps)

GROUP_REDUCTIONS = ("concat", "mean", "sum", "max", "prod", "first")
DEAD_TOLERANCE = 1e-7  # a channel whose standard deviation is below this fraction of the largest is dead
normalize = tp.importance.GroupMagnitudeImportance()._normalize  # tp's normalizers: None, "mean", "max", "sum", ...


def redundancy_angles(angles: np.ndarray) -> np.ndarray:
    """Angle between the lines the vectors span: min(angle, 180 - angle). A consumer absorbs a copy of either
    sign alike (s < 0 in the merge), as Gedeon removed complementary pairs as well as similar ones."""
    return np.minimum(angles, 180.0 - angles)


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
    nearest, partner = finite.min(1), finite.argmin(1)  # over the live channels, kept up to date below
    scores = np.zeros(n)
    level = 0.0
    for rank in range(n):
        value = np.where(dead, -1.0, np.where(np.isfinite(nearest), nearest, 180.0))
        value[~alive] = np.inf
        pick = int(np.argmin(value))
        level = max(level, max(float(value[pick]), 0.0))
        scores[pick] = level + rank * 1e-9
        alive[pick] = False
        stale = alive & (partner == pick)  # only rows whose nearest was the removed channel can change
        if stale.any():
            masked = np.where(alive[None, :], finite[stale], np.inf)
            nearest[stale], partner[stale] = masked.min(1), masked.argmin(1)
    return scores


def covariance(taps: list[Tap], moments: list[ChannelMoments], n: int) -> torch.Tensor:
    """(n, n) sum over taps of each tap's covariance (scatter / count), on the group's channels: every
    consumer counts once, however many spatial positions its input has."""
    total = torch.zeros(n, n, dtype=torch.float64)
    for tap, moment in zip(taps, moments):
        if moment.count:
            index = torch.tensor(tap.channels)
            total[index.unsqueeze(1), index.unsqueeze(0)] += moment.scatter / moment.count
    return total


def angles_from_covariance(cov: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Angles in degrees between the centred channel vectors, and which channels are dead (constant over the
    sample: their angles are NaN)."""
    std = cov.diagonal().clamp_min(0).sqrt()
    largest = float(std.max()) if len(std) else 0.0
    dead = (std <= DEAD_TOLERANCE * largest) if largest > 0 else torch.ones(len(std), dtype=torch.bool)
    safe = torch.where(dead, torch.ones_like(std), std)
    cosine = (cov / torch.outer(safe, safe)).clamp(-1.0, 1.0)
    angles = torch.rad2deg(torch.arccos(cosine)).numpy().copy()
    dead = dead.numpy()
    angles[dead, :] = np.nan
    angles[:, dead] = np.nan
    return angles, dead


def _reduce(parts: list[tuple[np.ndarray, tuple[int, ...]]], n: int, how: str) -> np.ndarray:
    stacked = np.full((len(parts), n), np.nan)
    for row, (scores, channels) in enumerate(parts):
        stacked[row, list(channels)] = scores
    if how == "first":
        return np.nan_to_num(stacked[0], nan=0.0)
    reduce = {"mean": np.nanmean, "sum": np.nansum, "max": np.nanmax, "prod": np.nanprod}[how]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel no tap covers: NaN, then 0 below
        return np.nan_to_num(reduce(stacked, axis=0), nan=0.0)


def scoring_taps(group) -> list[Tap]:
    """The consumers' inputs; the producers' outputs too where some channel reaches no consumer Torch-Pruning
    can map (such a channel would otherwise look constant, and go first)."""
    taps = consumer_taps(group)
    covered = {c for tap in taps for c in tap.channels}
    if len(covered) < len(group_channels(group)):
        taps += producer_taps(group)
    return taps


def _all_taps(group) -> list[Tap]:
    """Every group's taps in the group's dependency graph (measured in the same pass as the asked group's)."""
    graph = getattr(group, "_DG", None)
    if graph is None:
        return []
    taps = []
    for other in graph.get_all_groups(root_module_types=(nn.modules.conv._ConvNd, nn.Linear)):
        taps += scoring_taps(other)
    return taps


class DistinctivenessImportance(tp.importance.Importance):
    """Least distinct channels first (Gedeon & Harris 1991, carried to any conv or linear layer).

    - `model`: the network the groups belong to (Torch-Pruning hands an importance the group only).
    - `sample`: inputs to measure activations on: a tensor (one batch), a tuple or dict (one batch of a
      multi-input model's positional or keyword inputs), or a list / DataLoader of batches.
    - `forward_fn(model, batch)`: how to run one batch (default: model(x), model(*tuple), model(**dict)).
    - `group_reduction`: "concat" (default) scores each channel by the angles of its vector over all the
      group's consumers at once; "mean", "sum", "max", "prod", "first" score each consumer's input
      separately and reduce them as Torch-Pruning's GroupMagnitudeImportance does.
    - `normalizer`: Torch-Pruning's (None, "mean", "max", "sum", "standarization", ...); None keeps degrees.

    No backward pass is needed. A group no conv or linear layer consumes is scored on its producers' outputs;
    one with neither is left unscored with a warning naming it."""

    def __init__(self, model: nn.Module, sample, *, forward_fn: ForwardFn | None = None,
                 group_reduction: str = "concat", normalizer: str | None = None):
        if group_reduction not in GROUP_REDUCTIONS:
            raise ValueError(f"unknown group_reduction {group_reduction!r} (choose from {', '.join(GROUP_REDUCTIONS)})")
        self.activations = ConsumerActivations(model, sample, forward_fn)
        self.group_reduction = group_reduction
        self.normalizer = normalizer

    @property
    def model(self) -> nn.Module:
        return self.activations.model

    def taps(self, group) -> list[Tap]:
        return scoring_taps(group)

    def angles(self, group) -> tuple[np.ndarray, np.ndarray]:
        """(angles in degrees, dead) between the group's channels, all consumers together."""
        taps = self.taps(group)
        n = len(group_channels(group))
        return angles_from_covariance(covariance(taps, self.activations.moments(taps, also=lambda: _all_taps(group)), n))

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        taps = self.taps(group)
        if not taps:
            warnings.warn(f"distinctiveness cannot score {layer_name(group)}: no conv or linear layer produces or "
                          "receives its channels, so Torch-Pruning leaves the group whole", stacklevel=2)
            return None
        n = len(group_channels(group))
        moments = self.activations.moments(taps, also=lambda: _all_taps(group))
        if self.group_reduction == "concat":
            angles, dead = angles_from_covariance(covariance(taps, moments, n))
            scores = elimination_scores(redundancy_angles(angles), dead)
        else:
            parts = []
            for tap, moment in zip(taps, moments):
                angles, dead = angles_from_covariance(moment.scatter / max(moment.count, 1))
                parts.append((elimination_scores(redundancy_angles(angles), dead), tap.channels))
            scores = _reduce(parts, n, self.group_reduction)
        return normalize(torch.from_numpy(scores), self.normalizer)  # float64: the rank term must survive

