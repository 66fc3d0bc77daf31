"""Gedeon & Harris's distinctiveness: angles between hidden units' activation vectors.

Each hidden unit's sigmoid outputs over the training patterns form one vector in pattern space.
Centred at 0.5 (the sigmoid's midpoint; Gedeon and Harris "normalise to 0.5"), two units that
always agree point the same way (0 degrees), and a unit and its complement (a and 1 - a) point
in opposite directions (180 degrees). Small angles mean one unit can take over the other's job;
angles near 180 mean the pair adds a near-constant to the next layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Angle given to any pair that involves a zero vector (a unit whose output is 0.5 on every
#: pattern): such a unit carries no direction, so it is treated as orthogonal to every other
#: unit, and never as similar or complementary. Dead units are found by `dead_units` instead.
ZERO_VECTOR_ANGLE = 90.0


@dataclass(frozen=True)
class AngleRules:
    """Gedeon & Harris's thresholds (the paper uses 15 and 165 degrees)."""

    similar_below: float = 15.0
    complementary_above: float = 165.0
    dead_tolerance: float = 1e-3  # a unit whose output range over all patterns is below this is dead


def pairwise_angles(activations: np.ndarray, centre: float = 0.5) -> np.ndarray:
    """(patterns, units) sigmoid outputs -> (units, units) angles in degrees, 0..180.

    The cosine is clipped to [-1, 1] before arccos so rounding never yields NaN. Pairs with a
    zero vector get `ZERO_VECTOR_ANGLE` (90); the diagonal is 0.
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"activations must be (patterns, units), got shape {a.shape}")
    centred = a - centre  # (P, U)
    norms = np.linalg.norm(centred, axis=0)  # (U,)
    zero = norms <= 1e-12 * max(1.0, float(np.sqrt(a.shape[0])))
    safe = np.where(zero, 1.0, norms)
    cosine = (centred.T @ centred) / np.outer(safe, safe)
    angles = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    angles[zero, :] = ZERO_VECTOR_ANGLE
    angles[:, zero] = ZERO_VECTOR_ANGLE
    np.fill_diagonal(angles, 0.0)
    return angles


def _upper_pairs(angles: np.ndarray) -> list[tuple[int, int, float]]:
    rows, cols = np.triu_indices(angles.shape[0], k=1)
    return [(int(i), int(j), float(angles[i, j])) for i, j in zip(rows, cols)]


def similar_pairs(angles: np.ndarray, below: float = 15.0) -> list[tuple[int, int, float]]:
    """Pairs (i, j, angle) with i < j and angle < `below`, most similar first."""
    return sorted((p for p in _upper_pairs(angles) if p[2] < below), key=lambda p: p[2])


def complementary_pairs(angles: np.ndarray, above: float = 165.0) -> list[tuple[int, int, float]]:
    """Pairs (i, j, angle) with i < j and angle > `above`, most complementary first."""
    return sorted((p for p in _upper_pairs(angles) if p[2] > above), key=lambda p: -p[2])


def most_similar_pair(angles: np.ndarray) -> tuple[int, int, float]:
    """The pair with the smallest angle (ties: lowest indices). Needs at least two units."""
    pairs = _upper_pairs(angles)
    if not pairs:
        raise ValueError("need at least two units to form a pair")
    return min(pairs, key=lambda p: p[2])


def min_angle(angles: np.ndarray) -> float:
    """Smallest angle between two different units (NaN with fewer than two units)."""
    pairs = _upper_pairs(angles)
    return min(p[2] for p in pairs) if pairs else float("nan")


def dead_units(activations: np.ndarray, tolerance: float = 1e-3) -> list[int]:
    """Units whose output is constant over all patterns: max - min below `tolerance`.

    Gedeon and Harris remove units whose outputs are "all zero"; a constant output of any value
    is equally useless (it only shifts the next layer's biases), so any constant counts.
    """
    a = np.asarray(activations, dtype=np.float64)
    spread = a.max(axis=0) - a.min(axis=0)
    return [int(u) for u in np.flatnonzero(spread < tolerance)]
