"""Gedeon's merge inside a Torch-Pruning step: which partner a removed channel folds into, that a channel
which is a linear function of a kept one is removed with no change to the output, and that on the PIC
autoencoder it is the PIC experiment's own rule."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch_pruning as tp
from torch import nn

from fexprune.models.autoencoder import Autoencoder, hidden_activations
from fexprune.pruning import ConsumerActivations, DistinctivenessImportance, MergingPruner, merge_before_pruning
from fexprune.pruning.autoencoder_ops import merge_similar, remove_dead


def _seeded(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _graph(model, example):
    return tp.DependencyGraph().build_dependency(model, example_inputs=example)


def _prune_with_merge(model, layer, channels, x, fn, fit="least_squares"):
    group = _graph(model, x[:1]).get_pruning_group(layer, fn, idxs=channels)
    chosen = merge_before_pruning(group, ConsumerActivations(model, x), fit=fit)
    group.prune()
    return chosen


def test_an_identical_sigmoid_unit_is_merged_with_no_output_change():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.Sigmoid(), nn.Linear(6, 3))
    x = _seeded((200, 8), 1)
    with torch.no_grad():  # unit 4 = unit 1
        model[0].weight[4] = model[0].weight[1]
        model[0].bias[4] = model[0].bias[1]
    before = model(x)
    chosen = _prune_with_merge(model, model[0], [4], x, tp.prune_linear_out_channels)
    assert chosen == {4: 1}
    assert model[0].out_features == 5 and torch.allclose(model(x), before, atol=1e-5)


def test_a_relu_unit_that_is_twice_another_plus_nothing_merges_exactly_and_cutting_does_not():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x = _seeded((200, 8), 2)
    with torch.no_grad():  # relu(2z) = 2 relu(z): unit 3 is unit 0 scaled by 2
        model[0].weight[3] = 2 * model[0].weight[0]
        model[0].bias[3] = 2 * model[0].bias[0]
    before = model(x)
    cut = copy.deepcopy(model)
    _graph(cut, x[:1]).get_pruning_group(cut[0], tp.prune_linear_out_channels, idxs=[3]).prune()
    assert (cut(x) - before).abs().max() > 1e-2
    assert _prune_with_merge(model, model[0], [3], x, tp.prune_linear_out_channels) == {3: 0}
    assert torch.allclose(model(x), before, atol=1e-5)


def test_a_negated_shifted_unit_merges_with_a_negative_scale():
    """Sigmoid units a and 1 - a (Gedeon's complementary pair): least squares gives s = -1, c = 1."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 2))
    x = _seeded((100, 5), 3)
    with torch.no_grad():  # sigmoid(-z) = 1 - sigmoid(z)
        model[0].weight[2] = -model[0].weight[1]
        model[0].bias[2] = -model[0].bias[1]
    before = model(x)
    assert _prune_with_merge(model, model[0], [2], x, tp.prune_linear_out_channels) == {2: 1}
    assert torch.allclose(model(x), before, atol=1e-5)


def test_two_duplicated_conv_channels_one_goes_and_the_merge_reproduces_the_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2)).eval()
    with torch.no_grad():
        model[0].weight[4] = model[0].weight[2]
        model[0].bias[4] = model[0].bias[2]
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_mean[4] = model[1].running_mean[2]
    x = _seeded((16, 3, 5, 5), 4)
    before = model(x)
    importance = DistinctivenessImportance(model, x)
    pruner = MergingPruner(model, x[:1], importance, pruning_ratio=1 / 6, ignored_layers=[model[3], model[6]])
    pruner.step()
    assert model[0].out_channels == 5 and pruner.merges == [{2: 4}]  # the lower index of the pair goes
    assert torch.allclose(model(x), before, atol=1e-5)


def test_merging_across_a_flatten_folds_every_spatial_position():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    with torch.no_grad():  # channel 1 = 3 x channel 0
        model[0].weight[1] = 3 * model[0].weight[0]
        model[0].bias[1] = 3 * model[0].bias[0]
    x = _seeded((20, 2, 3, 3), 5)
    before = model(x)
    assert _prune_with_merge(model, model[0], [1], x, tp.prune_conv_out_channels) == {1: 0}
    assert model[3].in_features == 27 and torch.allclose(model(x), before, atol=1e-5)


def test_a_dead_channel_folds_its_constant_into_the_bias_of_a_consumer_without_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 3, 1, bias=False))
    with torch.no_grad():
        model[0].weight[2] = 0.0
        model[0].bias[2] = 0.7  # constant 0.7 after the ReLU
    x = _seeded((10, 2, 4, 4), 6)
    before = model(x)
    assert _prune_with_merge(model, model[0], [2], x, tp.prune_conv_out_channels) == {2: None}
    assert model[2].bias is not None and torch.allclose(model(x), before, atol=1e-5)


def test_merging_reduces_the_consumer_error_against_cutting_on_an_ordinary_network():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 3), nn.ReLU(), nn.Conv2d(12, 5, 1))
    x = _seeded((32, 3, 7, 7), 7)
    before = model(x)
    cut, merged = copy.deepcopy(model), copy.deepcopy(model)
    _graph(cut, x[:1]).get_pruning_group(cut[0], tp.prune_conv_out_channels, idxs=[0, 3, 5, 7]).prune()
    _prune_with_merge(merged, merged[0], [0, 3, 5, 7], x, tp.prune_conv_out_channels)
    assert (merged(x) - before).pow(2).mean() < 0.8 * (cut(x) - before).pow(2).mean()


def test_grouped_consumer_merges_within_its_group_and_folds_the_mean_across_groups():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1, groups=2))
    with torch.no_grad():  # the consumer's groups read channels (0, 1) and (2, 3)
        model[0].weight[1] = 2 * model[0].weight[0]
        model[0].bias[1] = 2 * model[0].bias[0]
        model[0].weight[2] = 3 * model[0].weight[0]
        model[0].bias[2] = 3 * model[0].bias[0]
    x = _seeded((10, 2, 3, 3), 8)
    before = model(x)
    graph = _graph(model, x[:1])
    chosen = merge_before_pruning(graph.get_pruning_group(model[0], tp.prune_conv_out_channels, idxs=[1, 2]),
                                  ConsumerActivations(model, x))
    assert chosen == {1: 0, 2: 0}
    with torch.no_grad():  # cut channels 1 and 2 (zero outputs) as the pruning would
        model[0].weight[[1, 2]] = 0.0
        model[0].bias[[1, 2]] = 0.0
    after = model(x)
    assert torch.allclose(after[:, :2], before[:, :2], atol=1e-5)  # within the group: exact
    assert not torch.allclose(after[:, 2:], before[:, 2:], atol=1e-3)  # across: the mean only
    assert torch.allclose(after[:, 2:].mean((0, 2, 3)), before[:, 2:].mean((0, 2, 3)), atol=1e-5)


def test_interactive_steps_merge_when_the_group_is_pruned():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    with torch.no_grad():
        model[0].weight[2] = 0.5 * model[0].weight[4]
        model[0].bias[2] = 0.5 * model[0].bias[4]
    x = _seeded((64, 6), 9)
    before = model(x)
    pruner = MergingPruner(model, x[:1], DistinctivenessImportance(model, x), pruning_ratio=0.2,
                           ignored_layers=[model[2]])
    for group in pruner.step(interactive=True):
        group.prune()
    assert pruner.merges == [{2: 4}] and torch.allclose(model(x), before, atol=1e-5)


def test_it_needs_a_sample():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="sample"):
        MergingPruner(model, torch.zeros(1, 3), tp.importance.MagnitudeImportance(), pruning_ratio=0.5)


# The PIC autoencoder: the generic merge is the PIC experiment's rule.

def _autoencoder(seed=0):
    torch.manual_seed(seed)
    return Autoencoder(11, 10)


X = torch.as_tensor(np.random.default_rng(0).normal(size=(64, 11)), dtype=torch.float32)


def _generic(model, units, fit="least_squares"):
    merged = copy.deepcopy(model)
    chosen = _prune_with_merge(merged, merged.encoder, units, X, tp.prune_linear_out_channels, fit=fit)
    return merged, chosen


def _same_weights(a, b):
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_on_two_identical_autoencoder_units_it_is_merge_similar():
    model = _autoencoder()
    with torch.no_grad():
        model.encoder.weight[7] = model.encoder.weight[2]
        model.encoder.bias[7] = model.encoder.bias[2]
    merged, chosen = _generic(model, [7])
    assert chosen == {7: 2}
    assert _same_weights(merged, merge_similar(model, keep=2, drop=7))


def test_with_fit_add_it_is_merge_similar_on_any_pair():
    model = _autoencoder(1)
    merged, chosen = _generic(model, [5], fit="add")
    (partner,) = chosen.values()
    assert _same_weights(merged, merge_similar(model, keep=partner, drop=5))
    acts = hidden_activations(model, X)
    assert partner == int(np.argmax([abs(np.corrcoef(acts[:, 5], acts[:, k])[0, 1]) if k != 5 else -1 for k in range(10)]))


def test_on_a_dead_autoencoder_unit_it_is_remove_dead():
    model = _autoencoder(2)
    with torch.no_grad():
        model.encoder.weight[4] = 0.0
        model.encoder.bias[4] = 1.3  # constant sigmoid(1.3)
    merged, chosen = _generic(model, [4])
    assert chosen == {4: None}
    assert _same_weights(merged, remove_dead(model, 4, hidden_activations(model, X)))


def test_structured_pruning_to_a_macs_target_can_merge():
    from fexprune.models.best_cnn import BestCNN, BestCNNConfig
    from fexprune.pruning.structured import StructuredConfig, prune_to_macs

    torch.manual_seed(0)
    model = BestCNN(BestCNNConfig(channels=(8, 12, 16), input_size=(24, 30), pooled=(2, 2))).eval()
    x = _seeded((32, 1, 30, 24), 10)
    results = {merge: prune_to_macs(model, x[:1], StructuredConfig(target_macs=0.6, criterion="l2", merge=merge),
                                    sample_x=x) for merge in (False, True)}
    cut, merged = results[False].model, results[True].model
    assert results[False].widths_after == results[True].widths_after
    with torch.no_grad():
        reference = model(x)
        assert (merged(x) - reference).pow(2).mean() < (cut(x) - reference).pow(2).mean()
    with pytest.raises(ValueError, match="sample"):
        prune_to_macs(model, x[:1], StructuredConfig(target_macs=0.6, merge=True))
