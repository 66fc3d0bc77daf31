"""Importance criteria on hand-made kernels and crafted feature maps, with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.pruning.criteria import (
    DistinctivenessImportance,
    L1Importance,
    L2Importance,
    RandomImportance,
    channel_angles,
    distinctiveness_scores,
    get_criterion,
)

SMALL = CNNConfig(channels=(3, 4), input_size=(30, 24))


def small_model() -> ExpressionCNN:
    torch.manual_seed(0)
    return ExpressionCNN(SMALL)


def test_l2_is_the_papers_formula_on_hand_made_conv1_kernels():
    model = small_model()
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.weight[0].fill_(2.0)  # sqrt(25 * 4 / 25) = 2
        model.conv1.weight[1, 0, 0, 0] = 5.0  # sqrt(25 / 25) = 1
        model.conv1.weight[2, 0, :, 0] = torch.tensor([1.0, 2, 2, 4, 0])  # sqrt(25 / 25) = 1 ... sum sq 25
        model.conv1.weight[2, 0, 4, 4] = 5.0  # sum sq 50 -> sqrt(2)
    assert np.allclose(L2Importance()(model, "conv1", None), [2.0, 1.0, math.sqrt(2)])


def test_l2_on_conv2_divides_by_k_squared_only_as_design_says():
    model = small_model()
    with torch.no_grad():
        model.conv2.weight.fill_(1.0)  # 3 input channels * 25 weights of 1
        model.conv2.weight[3].fill_(0.5)
    scores = L2Importance()(model, "conv2", None)
    assert np.allclose(scores, [math.sqrt(3), math.sqrt(3), math.sqrt(3), math.sqrt(3 * 0.25)])


def test_l1_sums_absolute_weights():
    model = small_model()
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv1.weight[0, 0, 0, :] = torch.tensor([-1.0, 2, -3, 0, 0])
        model.conv1.weight[2].fill_(-0.1)
    assert np.allclose(L1Importance()(model, "conv1", None), [6.0, 0.0, 2.5])


def test_random_is_seeded():
    model = small_model()
    a = RandomImportance(3)(model, "conv2", None)
    assert np.array_equal(a, RandomImportance(3)(model, "conv2", None))
    assert not np.array_equal(a, RandomImportance(4)(model, "conv2", None))
    assert np.array_equal(get_criterion("random", 3)(model, "conv2", None), a)


def test_angles_identical_complementary_orthogonal_and_dead_maps():
    rng = np.random.default_rng(0)
    base = rng.random((5, 1, 4, 4))
    other = rng.random((5, 1, 4, 4))
    maps = np.concatenate([base, 3 * base + 1, other, np.full_like(base, 2.0), 1 - base], axis=1)
    angles, dead = channel_angles(maps)
    assert list(dead) == [False, False, False, True, False]
    assert angles[0, 1] == pytest.approx(0.0, abs=1e-5)  # affine copy: same direction after centring
    assert angles[0, 4] == pytest.approx(180.0, abs=1e-5)
    assert 30 < angles[0, 2] < 150
    assert np.isnan(angles[3]).all()


def test_distinctiveness_prunes_an_identical_pair_first_and_dead_before_all():
    rng = np.random.default_rng(1)
    maps = rng.random((6, 4, 5, 5))
    maps[:, 2] = maps[:, 0]  # channels 0 and 2 identical
    angles, dead = channel_angles(maps)
    scores = distinctiveness_scores(angles, dead, np.ones(4, bool))
    assert scores[0] == pytest.approx(0, abs=1e-5) and scores[2] == pytest.approx(0, abs=1e-5)
    assert min(scores[1], scores[3]) > 10
    alive = np.array([False, True, True, True])  # once 0 is pruned, 2 is as distinct as the others
    assert distinctiveness_scores(angles, dead, alive)[2] > 10
    maps[:, 3] = 0.0
    angles, dead = channel_angles(maps)
    assert distinctiveness_scores(angles, dead, np.ones(4, bool))[3] == 0.0


def test_distinctiveness_on_a_model_with_duplicated_conv1_kernels():
    model = small_model()
    with torch.no_grad():
        model.conv1.weight[2] = model.conv1.weight[0] * 2
        model.conv1.bias[2] = model.conv1.bias[0] * 2
    x = torch.randn(8, 1, 24, 30)
    scores = DistinctivenessImportance()(model, "conv1", x)
    assert np.argsort(scores)[:2].tolist() == [0, 2]
    assert scores[0] == pytest.approx(0, abs=1e-3)


def test_unknown_criterion_is_refused():
    with pytest.raises(ValueError, match="unknown criterion"):
        get_criterion("l3")
