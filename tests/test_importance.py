"""The criteria as Torch-Pruning importances: each ranks as documented on a hand-built layer, and each
works inside Torch-Pruning's own pruners."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torch_pruning as tp
from torch import nn

from fexprune.models.best_cnn import BestCNN, BestCNNConfig
from fexprune.pruning.importance import (IMPORTANCES, DistinctivenessImportance, KernelL1Importance, KernelL2Importance,
                                         SeededRandomImportance, elimination_scores, make_importance, needs_backward)
from fexprune.pruning.structured import StructuredConfig, prune_by_ratio


def _net(batch_norm: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(2, 3, 3, padding=1, bias=False)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(3))
    return nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(3, 2, 1))


def _group(model: nn.Sequential):
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 2, 5, 5))
    return graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=[0, 1, 2])


def _weights(model: nn.Sequential) -> torch.Tensor:
    weight = torch.zeros(3, 2, 3, 3)
    weight[0, 0, 0, 0] = 3.0  # L2 sqrt(9/9) = 1, L1 3
    weight[1] = 0.5  # 18 weights of 0.5: L2 sqrt(4.5/9) = 0.707, L1 9
    weight[2, 1, :2, :2] = -2.0  # L2 sqrt(16/9) = 1.333, L1 8
    with torch.no_grad():
        model[0].weight.copy_(weight)
    return weight


def test_paper_l2_and_l1_score_each_kernel_as_documented():
    model = _net()
    _weights(model)
    group = _group(model)
    l2 = KernelL2Importance()(group)
    assert l2.tolist() == pytest.approx([1.0, math.sqrt(0.5), 4 / 3], rel=1e-6)  # divided by k^2 = 9 only
    assert KernelL1Importance()(group).tolist() == pytest.approx([3.0, 9.0, 8.0])
    assert KernelL2Importance("max")(group).max().item() == pytest.approx(1.0)  # tp's normalizers apply
    # the same order as Torch-Pruning's magnitude importance on the first layer
    magnitude = tp.importance.MagnitudeImportance(p=2, group_reduction="first", normalizer=None)(group)
    assert magnitude.argsort().tolist() == l2.argsort().tolist()


def _single_layer_group(layer: nn.Module, x: torch.Tensor):
    model = nn.Sequential(layer)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    n = layer.out_channels
    return graph.get_pruning_group(layer, tp.prune_conv_out_channels, idxs=list(range(n)))


@pytest.mark.parametrize("layer, x", [
    (nn.Conv1d(2, 3, 5), torch.zeros(1, 2, 9)),
    (nn.Conv3d(2, 3, (1, 2, 3)), torch.zeros(1, 2, 4, 4, 4)),
    (nn.ConvTranspose2d(2, 3, 3), torch.zeros(1, 2, 4, 4)),
    (nn.ConvTranspose2d(4, 6, 3, groups=2), torch.zeros(1, 4, 4, 4)),
])
def test_l2_and_l1_score_every_conv_kind_on_its_output_kernels(layer, x):
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(0)))
    weight = layer.weight.detach().double()
    if isinstance(layer, nn.ConvTranspose2d):  # (in, out / groups, k, k): output j reads column j of its group
        in_per, out_per = layer.in_channels // layer.groups, layer.out_channels // layer.groups
        kernels = [weight[(j // out_per) * in_per:(j // out_per + 1) * in_per, j % out_per] for j in range(layer.out_channels)]
    else:
        kernels = list(weight)
    spatial = math.prod(layer.kernel_size)
    group = _single_layer_group(layer, x)
    expected_l2 = [math.sqrt(float((k ** 2).sum()) / spatial) for k in kernels]
    assert KernelL2Importance()(group).tolist() == pytest.approx(expected_l2, rel=1e-6)
    assert KernelL1Importance()(group).tolist() == pytest.approx([float(k.abs().sum()) for k in kernels], rel=1e-6)


def test_l2_prunes_a_transposed_conv_network_as_asked():
    """Reading a transposed conv's weight on the wrong dimension once scored it as unprunable, and the pruner
    then cut another layer to 2 of 16 channels."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.ConvTranspose2d(16, 16, 3), nn.ReLU(), nn.Conv2d(16, 4, 1))
    x = torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every group scored
        tp.pruner.MetaPruner(model, x[:1], make_importance("l2"), pruning_ratio=0.5, ignored_layers=[model[4]]).step()
    assert (model[0].out_channels, model[2].out_channels) == (8, 8)
    assert model(x).shape == (2, 4, 8, 8)



def test_random_is_seeded():
    group = _group(_net())
    first, again, other = (SeededRandomImportance(s)(group) for s in (0, 0, 1))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_bn_scale_ranks_by_gamma_and_warns_on_groups_without_batch_norm():
    model = _net(batch_norm=True)
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -2.0, 0.1]))
    assert make_importance("bn_scale")(_group(model)).argsort().tolist() == [2, 0, 1]
    with pytest.warns(UserWarning, match="bn_scale cannot score 0"):  # module "0" of the Sequential
        assert make_importance("bn_scale")(_group(_net())) is None


def test_weight_criteria_warn_naming_a_group_without_conv_or_linear_layers():
    model = nn.Sequential(nn.BatchNorm2d(3))
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(2, 3, 4, 4))
    group = graph.get_pruning_group(model[0], tp.prune_batchnorm_out_channels, idxs=[0, 1, 2])
    for name in ("l2", "l1", "fpgm"):
        with pytest.warns(UserWarning, match=f"{name} cannot score 0"):
            assert make_importance(name)(group) is None


def test_taylor_is_weight_times_gradient():
    model = _net()
    _weights(model)
    x = torch.randn(4, 2, 5, 5)
    model(x).pow(2).sum().backward()
    group = _group(model)
    scores = make_importance("taylor")(group)
    assert torch.allclose(scores, tp.importance.GroupTaylorImportance(normalizer=None)(group))  # tp's own, unnormalised
    own = (model[0].weight * model[0].weight.grad).abs().flatten(1).sum(1)  # its output-kernel part
    assert scores.shape == (3,) and torch.all(scores >= own * 0.999 / 2)  # the mean of the kernel and next-layer terms
    assert needs_backward(make_importance("taylor")) and not needs_backward(make_importance("l2"))


def test_distinctiveness_drops_one_of_two_maps_that_point_the_same_way():
    model = _net()
    with torch.no_grad():
        weight = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(0))
        weight[1] = 2 * weight[0]  # channel 1 is channel 0 scaled: after ReLU the same direction
        model[0].weight.copy_(weight)
    x = torch.randn(16, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    scores = DistinctivenessImportance(model, x)(_group(model))
    assert scores.argmin().item() == 0  # the lower index of the identical pair goes first
    assert scores[0] < 1e-3 and scores[1] > scores[0] and scores[2] > scores[0]  # and its twin is then kept


def test_elimination_order_puts_dead_channels_first():
    angles = np.array([[0, 10, 80], [10, 0, 70], [80, 70, 0]], float)
    dead = np.array([False, False, False])
    scores = elimination_scores(angles, dead)
    assert scores.argsort().tolist()[0] == 0 and scores[0] == pytest.approx(10, abs=1e-6)
    angles[2, :] = angles[:, 2] = np.nan
    assert elimination_scores(angles, np.array([False, False, True])).argmin() == 2


@pytest.mark.parametrize("name", IMPORTANCES)
@pytest.mark.parametrize("pruner", [tp.pruner.MetaPruner, tp.pruner.BasePruner])
def test_each_importance_runs_in_torch_pruning(name, pruner):
    torch.manual_seed(0)
    model = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(24, 30), pooled=(2, 2)))
    x = torch.randn(4, 1, 30, 24)
    importance = make_importance(name, model=model, sample_x=x)
    if needs_backward(importance):
        model(x).sum().backward()
    pruner(model, x[:1], importance, pruning_ratio=0.5, ignored_layers=[model.fc]).step()
    assert [block[0].out_channels for block in model.blocks] == [2, 3, 4]
    assert model(x).shape == (4, 7)


def test_removing_zeroed_channels_next_to_hog_features_changes_nothing():
    """The flatten of the last block is concatenated with HOG features before the classifier: the removed
    channels' columns of the linear layer must be exactly theirs."""
    torch.manual_seed(0)
    model = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(24, 30), pooled=(2, 2), hog=True)).eval()
    with torch.no_grad():
        model.blocks[2][1].weight[[1, 4, 6, 7]] = 0.0  # batch norm gamma and beta 0: these channels output 0
        model.blocks[2][1].bias[[1, 4, 6, 7]] = 0.0
    x = torch.randn(3, 1, 30, 24)
    pruned = prune_by_ratio(copy.deepcopy(model), x[:1], {"blocks.2.0": 0.5}, StructuredConfig(criterion="bn_scale"))
    assert pruned.blocks[2][0].out_channels == 4
    assert torch.allclose(pruned(x), model(x), atol=1e-6)


def _elimination_by_brute_force(angles, dead):
    n = len(angles)
    alive = np.ones(n, bool)
    finite = np.where(np.isnan(angles), np.inf, angles)
    np.fill_diagonal(finite, np.inf)
    scores, level = np.zeros(n), 0.0
    for rank in range(n):
        nearest = np.where(alive[None, :], finite, np.inf).min(1)
        nearest = np.where(dead, -1.0, np.where(np.isfinite(nearest), nearest, 180.0))
        nearest[~alive] = np.inf
        pick = int(np.argmin(nearest))
        level = max(level, max(float(nearest[pick]), 0.0))
        scores[pick] = level + rank * 1e-9
        alive[pick] = False
    return scores


@pytest.mark.parametrize("seed", range(4))
def test_elimination_matches_the_definition_with_ties_and_dead_channels(seed):
    rng = np.random.default_rng(seed)
    n = 40
    angles = rng.integers(0, 12, (n, n)).astype(float) * 7.5  # many ties
    angles = np.triu(angles, 1) + np.triu(angles, 1).T
    dead = rng.random(n) < 0.1
    angles[dead, :] = angles[:, dead] = np.nan
    assert np.array_equal(elimination_scores(angles, dead), _elimination_by_brute_force(angles, dead))


@pytest.mark.parametrize("name", ["l2", "l1", "distinctiveness"])
def test_a_group_of_some_channels_gets_one_score_per_channel_in_its_order(name):
    """Torch-Pruning's own example scores a group built for channels [2, 6, 9] of a layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 4, 1))
    x = torch.randn(8, 3, 6, 6)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x[:1])
    importance = make_importance(name, model=model, sample_x=x)
    full = importance(graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=list(range(12))))
    some = importance(graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=[9, 2, 6]))
    assert some.shape == (3,)
    if name != "distinctiveness":  # distinctiveness compares the channels asked about with each other only
        assert torch.allclose(some, full[[9, 2, 6]])
