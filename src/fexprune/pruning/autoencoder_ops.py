"""Distinctiveness pruning operations on the PIC autoencoder; each returns a new, smaller network.

With hidden outputs a_k and outgoing weight columns w_k, output = b + sum_k w_k a_k. So:
- similar pair (a_j ~ a_i): drop j and add w_j to w_i (exact when a_j == a_i);
- complementary pair (a_j ~ 1 - a_i): drop both and move their contribution into b. The joint
  contribution w_i a_i + w_j (1 - a_i) is only constant when w_i == w_j, so we fold in its *mean
  over the given patterns* (exact for exactly complementary units with equal outgoing weights,
  the least-squares constant otherwise);
- dead unit (a_k constant = c): drop it and add w_k c to b (exact on the patterns it was dead on).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from fexprune.models.autoencoder import Autoencoder


def remove_units(model: Autoencoder, units: Sequence[int], bias_shift: torch.Tensor | None = None) -> Autoencoder:
    """A copy of `model` without hidden `units`; `bias_shift` (outputs,) is added to the output bias."""
    drop = set(int(u) for u in units)
    keep = [k for k in range(model.n_hidden) if k not in drop]
    if len(drop) != len(units) or not drop <= set(range(model.n_hidden)):
        raise ValueError(f"bad units {list(units)} for {model.n_hidden} hidden units")
    if not keep:
        raise ValueError("cannot remove every hidden unit")
    smaller = Autoencoder(model.n_inputs, len(keep)).to(model.encoder.weight.device)
    with torch.no_grad():
        smaller.encoder.weight.copy_(model.encoder.weight[keep])
        smaller.encoder.bias.copy_(model.encoder.bias[keep])
        smaller.decoder.weight.copy_(model.decoder.weight[:, keep])
        smaller.decoder.bias.copy_(model.decoder.bias)
        if bias_shift is not None:
            smaller.decoder.bias.add_(bias_shift.to(smaller.decoder.bias.device, smaller.decoder.bias.dtype))
    return smaller


def merge_similar(model: Autoencoder, keep: int, drop: int) -> Autoencoder:
    """Drop unit `drop`, adding its outgoing weights to those of unit `keep`."""
    if keep == drop:
        raise ValueError("a unit cannot be merged with itself")
    merged = remove_units(model, [drop])
    kept_index = keep - (1 if drop < keep else 0)
    with torch.no_grad():
        merged.decoder.weight[:, kept_index] += model.decoder.weight[:, drop]
    return merged


def remove_complementary(model: Autoencoder, i: int, j: int, activations: np.ndarray) -> Autoencoder:
    """Drop units i and j; their mean joint contribution over `activations` (patterns, hidden) moves to the bias."""
    if i == j:
        raise ValueError("a complementary pair needs two different units")
    mean = torch.as_tensor(np.asarray(activations, dtype=np.float64).mean(axis=0), device=model.decoder.weight.device)
    w = model.decoder.weight.detach().double()
    shift = w[:, i] * mean[i] + w[:, j] * mean[j]
    return remove_units(model, [i, j], bias_shift=shift)


def remove_dead(model: Autoencoder, unit: int, activations: np.ndarray) -> Autoencoder:
    """Drop a unit with constant output, folding that constant (its mean over `activations`) into the bias."""
    constant = float(np.asarray(activations, dtype=np.float64)[:, unit].mean())
    shift = model.decoder.weight.detach().double()[:, unit] * constant
    return remove_units(model, [unit], bias_shift=shift)
