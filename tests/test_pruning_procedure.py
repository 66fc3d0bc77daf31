"""The paper's pruning procedure: order, stopping rule on a crafted loss sequence, masks, fine-tuning."""

from __future__ import annotations

import math

import numpy as np
import torch

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.pruning.criteria import Criterion, L2Importance, RandomImportance
from fexprune.pruning.masking import ChannelMasks
from fexprune.pruning.procedure import exceeds_limit, prune_until

SMALL = CNNConfig(channels=(5, 4), input_size=(30, 24))


class FixedScores(Criterion):
    name = "fixed"

    def __init__(self, scores):
        self.scores = np.asarray(scores, float)

    def __call__(self, model, layer_name, sample_x=None, alive=None):
        return self.scores.copy()


def crafted_losses(losses):
    """An evaluator that returns the next loss of the sequence on each call (accuracy = 1 - loss)."""
    sequence = iter(losses)

    def evaluate(model):
        loss = next(sequence)
        return loss, 1 - loss

    return evaluate


def model() -> ExpressionCNN:
    torch.manual_seed(0)
    return ExpressionCNN(SMALL)


def test_stopping_rule_matches_the_papers_table():
    # The paper's losses: 0.2831 x3, 0.3295 (+0.046, kept), 0.5569 (+0.27, rejected).
    net = model()
    original = net.conv1.weight.detach().clone()
    result = prune_until(
        net, "conv1", FixedScores([0.7116, 0.528, 0.7119, 0.579, 0.7413]),
        crafted_losses([0.2831, 0.2831, 0.2831, 0.3295, 0.5569]), max_loss_increase=0.1,
    )
    assert [s.pruned for s in result.steps] == [0, 1, 2, 3, 4]
    assert [s.over_limit for s in result.steps] == [False, False, False, False, True]
    assert [s.channel for s in result.steps] == [None, 1, 3, 0, 2]
    assert [s.min_importance for s in result.steps] == [0.528, 0.579, 0.7116, 0.7119, 0.7413]
    assert math.isnan(result.steps[0].removed_importance) and result.steps[1].removed_importance == 0.528
    assert result.pruned_channels == [1, 3, 0]
    # the rejected step is undone: kernel 2 keeps its weights, the accepted ones are zero
    assert torch.equal(net.conv1.weight[2], original[2]) and torch.equal(net.conv1.weight[4], original[4])
    assert net.conv1.weight[[0, 1, 3]].abs().sum() == 0 and net.conv1.bias[[0, 1, 3]].abs().sum() == 0


def test_limit_is_measured_from_the_base_loss_not_the_previous_step():
    result = prune_until(
        model(), "conv1", FixedScores([1, 2, 3, 4, 5]), crafted_losses([1.0, 1.06, 1.12]), max_loss_increase=0.1
    )
    assert [s.over_limit for s in result.steps] == [False, False, True]
    assert result.pruned_channels == [0]
    assert exceeds_limit(1.0, 1.1000001, 0.1) and not exceeds_limit(1.0, 1.1, 0.1)
    assert exceeds_limit(1.0, float("nan"), 0.1)


def test_never_prunes_the_last_channel_and_respects_max_steps():
    result = prune_until(model(), "conv1", FixedScores([5, 4, 3, 2, 1]), crafted_losses([0.5] * 10))
    assert result.pruned_channels == [4, 3, 2, 1] and "left" in result.stopped_because
    result = prune_until(model(), "conv1", FixedScores([5, 4, 3, 2, 1]), crafted_losses([0.5] * 10), max_steps=2)
    assert result.pruned_channels == [4, 3]


def test_real_loss_with_l2_prunes_smallest_kernels_first_and_random_is_reproducible():
    x = torch.randn(16, 1, 24, 30)
    y = torch.randint(0, 7, (16,))

    def evaluate(net):
        with torch.no_grad():
            logits = net(x)
        return torch.nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    net = model()
    norms = net.conv1.weight.detach().pow(2).flatten(1).sum(1)
    result = prune_until(net, "conv1", L2Importance(), evaluate, max_loss_increase=10.0)
    assert result.pruned_channels == torch.argsort(norms)[:4].tolist()
    orders = [prune_until(model(), "conv2", RandomImportance(7), evaluate, max_loss_increase=10.0).pruned_channels
              for _ in range(2)]
    assert orders[0] == orders[1] and len(set(orders[0])) == 3
    scores = RandomImportance(7)(net, "conv2", None)
    assert orders[0] == np.argsort(scores)[:3].tolist()


def test_finetune_keeps_pruned_kernels_at_zero():
    x = torch.randn(16, 1, 24, 30)
    y = torch.randint(0, 7, (16,))

    def evaluate(net):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(net(x), y).item(), 0.0

    def finetune(net, masks: ChannelMasks):
        optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            masks.apply(net)

    net = model()
    before = net.conv1.weight.detach().clone()
    result = prune_until(net, "conv1", L2Importance(), evaluate, finetune=finetune, max_steps=2, max_loss_increase=10)
    pruned = result.pruned_channels
    assert len(pruned) == 2 and net.conv1.weight[pruned].abs().sum() == 0
    kept = [c for c in range(5) if c not in pruned]
    assert not torch.equal(net.conv1.weight[kept], before[kept])  # fine-tuning did train
    assert result.steps[1].loss_before_finetune is not None
