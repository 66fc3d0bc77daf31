"""Kernel (output channel) importance criteria behind one interface, as Torch-Pruning's `Importance`.

A criterion scores every output channel of one conv layer; lower scores are pruned first. Channels
already pruned are passed as `alive=False` and their scores are ignored by the procedure.

- `l2`: the paper's importance, I_i = sqrt((1/k^2) * sum of the squared weights of kernel i). Following
  DESIGN literally, the sum runs over all the kernel's weights (k*k*in_channels) but the division is by
  k^2 only: for conv1 (one input channel) that is the RMS of the kernel, for conv2 it is sqrt(in) times
  the RMS. Within a layer the ranking is the same either way; only the printed numbers differ.
- `l1`: Li et al. 2017, sum of absolute weights of the kernel.
- `distinctiveness`: Gedeon's angles carried to feature maps (see `channel_angles`).
- `random`: a seeded random order, the baseline every criterion should beat.
Biases are not part of any weight criterion: the paper's formula names only the kernel's weights.
"""

from __future__ import annotations

import zlib
from typing import Callable

import numpy as np
import torch
from torch import nn

# The pooling module whose output the next layer sees, for each conv layer of ExpressionCNN.
POOL_AFTER = {"conv1": "pool1", "conv2": "pool2"}
DEAD_TOLERANCE = 1e-8


class Criterion:
    """One score per output channel of `layer_name`; lower = pruned first."""

    name = "criterion"

    def __call__(
        self, model: nn.Module, layer_name: str, sample_x: torch.Tensor | None, alive: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError


def conv_weight(model: nn.Module, layer_name: str) -> np.ndarray:
    """The layer's weights as float64, (out_channels, in_channels, k, k)."""
    return getattr(model, layer_name).weight.detach().double().cpu().numpy()


class L2Importance(Criterion):
    name = "l2"

    def __call__(self, model, layer_name, sample_x=None, alive=None):
        weight = conv_weight(model, layer_name)
        k_squared = weight.shape[2] * weight.shape[3]
        return np.sqrt((weight**2).reshape(len(weight), -1).sum(1) / k_squared)


class L1Importance(Criterion):
    name = "l1"

    def __call__(self, model, layer_name, sample_x=None, alive=None):
        weight = conv_weight(model, layer_name)
        return np.abs(weight).reshape(len(weight), -1).sum(1)


class RandomImportance(Criterion):
    """The same seed and layer always give the same scores, so the pruning order is a fixed permutation."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def __call__(self, model, layer_name, sample_x=None, alive=None):
        n = getattr(model, layer_name).out_channels
        return np.random.default_rng([self.seed, zlib.crc32(layer_name.encode())]).random(n)


@torch.no_grad()
def feature_maps(model: nn.Module, layer_name: str, x: torch.Tensor) -> torch.Tensor:
    """What the next layer sees from `layer_name`: ReLU then max-pool, (B, C, h, w)."""
    captured: list[torch.Tensor] = []
    pool = getattr(model, POOL_AFTER[layer_name])
    handle = pool.register_forward_hook(lambda module, inputs, output: captured.append(output))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return captured[0]


def channel_angles(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angles in degrees between channels' activation vectors, and which channels are dead.

    `maps` is (B, C, h, w). Each channel's vector runs over all images and positions. Centring: Gedeon
    subtracts 0.5, the middle of the sigmoid's range, so a unit at rest sits at the origin. A ReLU has no
    middle; we subtract each channel's own mean over the sample. The angle is then arccos of the Pearson
    correlation, and angle 0 means one map is a*other + b with a > 0: exactly what the next layer can
    absorb (scale into its weights, the constant into its bias; max-pooling commutes with it), so such a
    channel is redundant. A channel constant over the sample (zero after centring) is dead: its angles are
    NaN and it is reported in the second array.
    """
    vectors = np.moveaxis(maps, 1, 0).reshape(maps.shape[1], -1).astype(np.float64)  # (C, B*h*w)
    vectors = vectors - vectors.mean(1, keepdims=True)
    norms = np.linalg.norm(vectors, axis=1)
    dead = norms <= DEAD_TOLERANCE * max(1.0, float(norms.max(initial=0.0)))
    unit = vectors / np.where(dead, 1.0, norms)[:, None]
    cosine = np.clip(unit @ unit.T, -1.0, 1.0)
    angles = np.degrees(np.arccos(cosine))
    angles[dead, :] = np.nan
    angles[:, dead] = np.nan
    return angles, dead


def distinctiveness_scores(angles: np.ndarray, dead: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Each live channel's minimum angle to any other live channel; dead channels score 0 (pruned first).

    Complementary pairs (angles near 180) are not treated as redundant: after ReLU and max-pooling a
    negated map cannot be folded into the other one, unlike Gedeon's sigmoid units.
    """
    n = len(angles)
    scores = np.full(n, 180.0)
    for i in range(n):
        if dead[i]:
            scores[i] = 0.0
            continue
        others = [j for j in range(n) if j != i and alive[j] and not dead[j]]
        if others:
            scores[i] = float(np.min(angles[i, others]))
    return scores


class DistinctivenessImportance(Criterion):
    """Least distinct first: a channel's score is its minimum angle to any other live channel.

    Of two identical channels both score 0 and the lower index goes first; once it is pruned the other
    one is scored again against the channels left, so it is kept unless it resembles another one too.
    """

    name = "distinctiveness"

    def __call__(self, model, layer_name, sample_x, alive=None):
        if sample_x is None:
            raise ValueError("distinctiveness needs a sample of training images")
        maps = feature_maps(model, layer_name, sample_x).cpu().numpy()
        alive = np.ones(maps.shape[1], bool) if alive is None else np.asarray(alive, bool)
        angles, dead = channel_angles(maps)
        return distinctiveness_scores(angles, dead, alive)


CRITERIA: dict[str, Callable[[int], Criterion]] = {
    "l2": lambda seed: L2Importance(),
    "l1": lambda seed: L1Importance(),
    "distinctiveness": lambda seed: DistinctivenessImportance(),
    "random": lambda seed: RandomImportance(seed),
}


def get_criterion(name: str, seed: int = 0) -> Criterion:
    """The criterion registered under `name` (`l2`, `l1`, `distinctiveness`, `random`)."""
    try:
        return CRITERIA[name](seed)
    except KeyError:
        raise ValueError(f"unknown criterion {name!r} (choose from {', '.join(CRITERIA)})") from None
