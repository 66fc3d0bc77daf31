"""Known answers for Gedeon & Harris's angles, built from the definition (no published worked
example was found to test against; each expected value below is computed by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from fexprune.pruning.distinctiveness import (
    ZERO_VECTOR_ANGLE,
    complementary_pairs,
    dead_units,
    min_angle,
    most_similar_pair,
    pairwise_angles,
    similar_pairs,
)


def test_identical_units_are_zero_degrees_and_complements_180():
    a = np.random.default_rng(0).uniform(0.05, 0.95, size=50)
    angles = pairwise_angles(np.stack([a, a, 1 - a], axis=1))
    assert angles[0, 1] == pytest.approx(0.0, abs=1e-5)
    assert angles[0, 2] == pytest.approx(180.0, abs=1e-5)
    assert np.allclose(angles, angles.T)
    assert np.all(np.diag(angles) == 0)


def test_hand_computed_angles_use_vectors_centred_at_half():
    # Two patterns; centred at 0.5 the units are (0.4, 0.4), (0.4, 0), (0, -0.3), (-0.4, 0.4).
    acts = np.array([[0.9, 0.9, 0.5, 0.1], [0.9, 0.5, 0.2, 0.9]])
    angles = pairwise_angles(acts)
    assert angles[0, 1] == pytest.approx(45.0)
    assert angles[0, 2] == pytest.approx(135.0)
    assert angles[1, 2] == pytest.approx(90.0)
    assert angles[0, 3] == pytest.approx(90.0)
    assert angles[1, 3] == pytest.approx(135.0)
    # Without centring u and v would be 0.9*0.9 + ... : the 0.5 centre matters.
    assert pairwise_angles(acts, centre=0.0)[0, 1] == pytest.approx(np.degrees(np.arccos(
        (0.81 + 0.45) / (np.hypot(0.9, 0.9) * np.hypot(0.9, 0.5)))))


def test_rounding_never_gives_nan_and_zero_vector_gets_documented_angle():
    a = np.full(10, 0.3) + 1e-9 * np.arange(10)
    acts = np.stack([a, a * (1 + 1e-16), np.full(10, 0.5)], axis=1)
    angles = pairwise_angles(acts)
    assert not np.isnan(angles).any()
    assert angles[0, 2] == ZERO_VECTOR_ANGLE == angles[2, 1]


def test_pair_classification_and_dead_units():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.1, 0.9, size=40)
    b = rng.uniform(0.1, 0.9, size=40)
    acts = np.stack([a, b, np.clip(a + 0.01, 0, 1), 1 - b, np.full(40, 0.97)], axis=1)
    angles = pairwise_angles(acts)
    assert [(i, j) for i, j, _ in similar_pairs(angles)] == [(0, 2)]
    assert [(i, j) for i, j, _ in complementary_pairs(angles)] == [(1, 3)]
    assert most_similar_pair(angles)[:2] == (0, 2)
    assert min_angle(angles) == pytest.approx(angles[0, 2])
    assert dead_units(acts) == [4]
    assert similar_pairs(angles, below=0.0) == []
    assert dead_units(acts, tolerance=1.0) == [0, 1, 2, 3, 4]
