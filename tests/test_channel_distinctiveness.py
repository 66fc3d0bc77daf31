"""Distinctiveness as a Torch-Pruning importance on any graph: which channels it picks (known answers), that
it reads what the next layers receive from the network as it is now, and that its memory does not grow
with the sample."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch_pruning as tp
from torch import nn

from fexprune.pruning import DistinctivenessImportance, MergingPruner
from fexprune.pruning.consumer_moments import ConsumerActivations, consumer_taps


def _seeded(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _group(model, layer, x, fn=tp.prune_conv_out_channels):
    """The full group of `layer`'s output channels; `x`: a batch (a tensor) or a tuple of inputs."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x if isinstance(x, tuple) else x[:1])
    n = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    return graph.get_pruning_group(layer, fn, idxs=list(range(n)))


def _strict():
    """Every group scored: a warning (a group left unscored) fails the test."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")
    return context


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))


def test_a_linear_mlp_is_pruned_and_a_scaled_copy_unit_goes_first():
    model = _mlp()
    with torch.no_grad():  # unit 4 is 2 x unit 1 before the ReLU, so 2 x unit 1 after it
        model[0].weight[4] = 2 * model[0].weight[1]
        model[0].bias[4] = 2 * model[0].bias[1]
    x = _seeded((300, 8), 1)
    scores = DistinctivenessImportance(model, x)(_group(model, model[0], x, tp.prune_linear_out_channels))
    assert scores.argmin().item() == 1 and scores[1] < 1e-4  # the lower index of the pair
    assert sorted(scores.tolist())[1] > 1.0  # and its twin is then as distinct as any other unit
    context = _strict()
    try:
        tp.pruner.MetaPruner(model, x[:1], DistinctivenessImportance(model, x), pruning_ratio=0.5,
                             ignored_layers=[model[2]]).step()
    finally:
        context.__exit__(None, None, None)
    assert model[0].out_features == 3 and model[2].in_features == 3


def test_scores_come_from_the_network_as_it_is_at_each_step():
    """One object reused across an iterative pruner's steps ranks exactly as a fresh object would."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 6 * 6, 4))
    x = _seeded((24, 3, 6, 6), 2)
    reused_model, fresh_model = copy.deepcopy(model), copy.deepcopy(model)
    reused = tp.pruner.MetaPruner(reused_model, x[:1], DistinctivenessImportance(reused_model, x),
                                  pruning_ratio=0.75, iterative_steps=3, ignored_layers=[reused_model[5]])
    fresh = tp.pruner.MetaPruner(fresh_model, x[:1], DistinctivenessImportance(fresh_model, x),
                                 pruning_ratio=0.75, iterative_steps=3, ignored_layers=[fresh_model[5]])
    for _ in range(3):
        reused.step()
        fresh.importance = DistinctivenessImportance(fresh_model, x)
        fresh.step()
        with torch.no_grad():  # a fine-tuning step between pruning steps: weights written in place
            for m in (reused_model, fresh_model):
                m[2].weight.mul_(torch.linspace(0.5, 1.5, m[2].weight.shape[0]).view(-1, 1, 1, 1))
    assert reused_model[0].out_channels == 4
    for a, b in zip(reused_model.state_dict().values(), fresh_model.state_dict().values()):
        assert torch.equal(a, b)


class Residual(nn.Module):
    def __init__(self, in_place: bool):
        super().__init__()
        self.in_place = in_place
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        identity = torch.relu(self.stem(x))
        out = self.norm(self.conv(identity))
        if self.in_place:
            out += identity
        else:
            out = out + identity
        return self.head(torch.relu(out))


def test_in_place_addition_gives_the_same_ranking():
    torch.manual_seed(0)
    in_place, plain = Residual(True).eval(), Residual(False).eval()
    with torch.no_grad():
        in_place.norm.running_mean.uniform_(-1, 1)
    plain.load_state_dict(in_place.state_dict())
    x = _seeded((8, 3, 6, 6), 3)
    for layer in ("stem", "conv"):
        a = DistinctivenessImportance(in_place, x)(_group(in_place, getattr(in_place, layer), x))
        b = DistinctivenessImportance(plain, x)(_group(plain, getattr(plain, layer), x))
        assert torch.allclose(a, b)


def test_it_reads_what_the_next_layer_receives_not_a_relu_of_the_conv():
    """Channel 1 is channel 0 negated. With no ReLU between (a linear bottleneck) the next layer receives
    an exact copy up to the sign, which it can absorb (merging with s = -1): one of the two is redundant."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 3, 1))
    with torch.no_grad():
        model[0].weight[1] = -model[0].weight[0]
        model[0].bias[1] = -model[0].bias[0]
    x = _seeded((16, 2, 5, 5), 4)
    importance = DistinctivenessImportance(model, x)
    scores = importance(_group(model, model[0], x))
    assert scores.argmin().item() == 0 and scores[0] < 1e-4
    angles, _ = importance.angles(_group(model, model[0], x))
    assert angles[0, 1] == pytest.approx(180.0, abs=1e-3)


@pytest.mark.parametrize("build, x", [
    (lambda: nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU(), nn.Conv1d(6, 3, 3)), (10, 2, 12)),
    (lambda: nn.Sequential(nn.Conv3d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv3d(6, 3, 1)), (6, 2, 4, 4, 4)),
    (lambda: nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.ConvTranspose2d(6, 6, 3), nn.ReLU(), nn.Conv2d(6, 3, 1)),
     (6, 2, 6, 6)),
    (lambda: nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=6),
                           nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=2), nn.Conv2d(6, 3, 1)), (6, 2, 6, 6)),
])
def test_every_conv_kind_is_pruned_and_a_duplicated_channel_goes_first(build, x):
    torch.manual_seed(0)
    model = build()
    first = model[0]
    with torch.no_grad():  # channel 5 = channel 2, also through a depthwise conv (which mixes no channels)
        for layer in model:
            if layer is first or isinstance(layer, nn.Conv2d) and layer.groups == layer.out_channels > 1:
                layer.weight[5] = layer.weight[2]
                layer.bias[5] = layer.bias[2]
    x = _seeded(x, 5)
    scores = DistinctivenessImportance(model, x)(_group(model, first, x))
    assert scores.argmin().item() == 2 and scores[2] < 1e-4 and sorted(scores.tolist())[1] > 1e-3
    widths = [m.out_channels for m in model if isinstance(m, nn.modules.conv._ConvNd)]
    context = _strict()
    try:
        tp.pruner.MetaPruner(model, x[:1], DistinctivenessImportance(model, x), pruning_ratio=0.5,
                             ignored_layers=[model[-1]]).step()
    finally:
        context.__exit__(None, None, None)
    after = [m.out_channels for m in model if isinstance(m, nn.modules.conv._ConvNd)]
    assert all(a < w for a, w in zip(after[:-1], widths[:-1])) and model(x).shape[0] == x.shape[0]


class Concatenated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.mix = nn.Conv2d(8, 5, 1)
        self.fc = nn.Linear(5 * 4 * 4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.mix(torch.cat([torch.relu(self.a(x)), self.b(x)], 1))).flatten(1))


def test_concatenated_branches_and_a_flatten_into_a_linear_layer():
    torch.manual_seed(0)
    model = Concatenated()
    with torch.no_grad():  # b's channel 3 is b's channel 1 scaled
        model.b.weight[3] = 3 * model.b.weight[1]
        model.b.bias[3] = 3 * model.b.bias[1]
    x = _seeded((12, 3, 4, 4), 6)
    importance = DistinctivenessImportance(model, x)
    group = _group(model, model.b, x)
    taps = consumer_taps(group)
    assert [t.layer for t in taps] == [model.mix] and taps[0].index == ((4, 5, 6, 7),)  # b sits after a's 4
    assert importance(group).argmin().item() == 1
    fc_group = _group(model, model.mix, x)
    (tap,) = consumer_taps(fc_group)  # 5 channels x 16 positions of the flatten
    assert tap.layer is model.fc and len(tap.index) == 16 and tap.index[0] == (0, 16, 32, 48, 64)
    assert importance(fc_group).shape == (5,)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Linear(4, 6)
        self.right = nn.Linear(3, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, a, b, scale=1.0):
        return self.out(torch.relu(self.left(a) + self.right(b)) * scale)


def test_a_model_with_two_inputs_and_keyword_inputs():
    torch.manual_seed(0)
    model = TwoInputs()
    a, b = _seeded((40, 4), 7), _seeded((40, 3), 8)
    group = _group(model, model.left, (a[:1], b[:1]), tp.prune_linear_out_channels)
    positional = DistinctivenessImportance(model, (a, b))(group)
    keyword = DistinctivenessImportance(model, {"a": a, "b": b, "scale": 1.0})(group)
    loader = [((a[:20], b[:20]), "labels"), ((a[20:], b[20:]), "labels")]
    batched = DistinctivenessImportance(model, loader, forward_fn=lambda m, batch: m(*batch[0]))(group)
    assert positional.shape == (6,) and torch.allclose(positional, keyword) and torch.allclose(positional, batched)
    tp.pruner.MetaPruner(model, (a[:1], b[:1]), DistinctivenessImportance(model, (a, b)), pruning_ratio=0.5,
                         ignored_layers=[model.out]).step()
    assert model.left.out_features == model.right.out_features == 3


def test_memory_does_not_grow_with_the_sample_and_no_hook_is_left():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    one = [_seeded((4, 3, 8, 8), 9)]
    many = [_seeded((4, 3, 8, 8), 10 + i) for i in range(20)]
    group = _group(model, model[0], one[0])
    taps = consumer_taps(group)
    small, large = ConsumerActivations(model, one), ConsumerActivations(model, many)
    (a,), (b,) = small.moments(taps), large.moments(taps)
    assert b.count == 20 * a.count and a.nbytes == b.nbytes == (8 + 8 * 8) * 8
    tensors = [v for v in vars(large).values() if isinstance(v, torch.Tensor)]
    assert not tensors  # only the moments, whose size is fixed by the channels
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_moments_of_batches_equal_those_of_the_whole_sample():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2))
    x = _seeded((90, 5), 11) * 3 + 10  # far from zero: the pairwise update must stay exact
    taps = consumer_taps(_group(model, model[0], x, tp.prune_linear_out_channels))
    (whole,), (parts,) = ConsumerActivations(model, x).moments(taps), ConsumerActivations(model, list(x.split(7))).moments(taps)
    assert torch.allclose(whole.mean, parts.mean) and torch.allclose(whole.scatter, parts.scatter, atol=1e-9)


def test_merging_pruner_uses_the_importance_sample():
    model = _mlp(1)
    x = _seeded((100, 8), 12)
    pruner = MergingPruner(model, x[:1], DistinctivenessImportance(model, x), pruning_ratio=0.5, ignored_layers=[model[2]])
    pruner.step()
    assert model[0].out_features == 3 and len(pruner.merges) == 1 and len(pruner.merges[0]) == 3
    assert set(pruner.merges[0].values()) <= set(range(6)) - set(pruner.merges[0])


@pytest.mark.parametrize("reduction", ["mean", "max", "first"])
def test_group_reductions_and_normalizer(reduction):
    torch.manual_seed(0)
    model = Residual(False).eval()
    x = _seeded((8, 3, 6, 6), 13)
    group = _group(model, model.stem, x)
    scores = DistinctivenessImportance(model, x, group_reduction=reduction, normalizer="max")(group)
    assert scores.shape == (8,) and scores.max().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="group_reduction"):
        DistinctivenessImportance(model, x, group_reduction="median")


def test_a_group_it_cannot_score_is_named_in_a_warning():
    model = nn.Sequential(nn.BatchNorm2d(3))
    x = torch.randn(4, 3, 2, 2)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    group = graph.get_pruning_group(model[0], tp.prune_batchnorm_out_channels, idxs=[0, 1, 2])
    with pytest.warns(UserWarning, match="distinctiveness cannot score 0"):
        assert DistinctivenessImportance(model, x)(group) is None
