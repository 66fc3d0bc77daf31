"""The paper's stopping rule over any Torch-Pruning pruner (fexprune.pruning.stopping), on small real networks."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from fexprune.pruning.stopping import channel_widths, prune_until_loss_rises


class ResidualNet(nn.Module):
    """A conv stem with batch norm, a residual block written with an in-place addition, a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        out = self.bn2(self.conv(x))
        out += x
        return self.fc(torch.relu(out).mean((2, 3)))


def _network(seed: int = 0):
    torch.manual_seed(seed)
    model = ResidualNet().eval()
    for bn in (model.bn, model.bn2):  # distinct running statistics, so a restored buffer is visible
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(16, 1, 10, 10)
    y = torch.randint(0, 4, (16,))
    return model, x, y


def _pruner(model, x, steps=8):
    return tp.pruner.MetaPruner(model, x[:1], tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.75,
                                iterative_steps=steps, ignored_layers=[model.fc])


def _width_loss(model, batch):
    """A loss that only counts removed stem channels: 0.03 per channel."""
    return 0.03 * (16 - model.stem.out_channels)


def test_stops_at_the_first_step_over_budget_and_returns_the_step_before():
    model, x, y = _network()
    pruner = _pruner(model, x)  # 8 steps to 75%: the stem loses 1-2 channels a step (16 -> 4 overall)
    reference = copy.deepcopy(model)
    reference_pruner = _pruner(reference, x)
    widths = [16]
    for _ in range(8):
        reference_pruner.step()
        widths.append(reference.stem.out_channels)
    # the known answer: the first step k whose removed channels cost more than 0.1 (more than 3 channels)
    k = next(i for i, w in enumerate(widths) if 0.03 * (16 - w) > 0.1 + 1e-9)
    assert 1 < k < 8

    model_id, stem_id = id(model), id(model.stem)
    result = prune_until_loss_rises(pruner, model, _width_loss, None, budget=0.1, example_inputs=x[:1])
    assert [s.step for s in result.steps] == list(range(k + 1))
    assert [s.over_budget for s in result.steps] == [False] * k + [True]
    assert result.steps_kept == k - 1 and "budget" in result.stopped_because
    assert [s.channels["stem"] for s in result.steps] == widths[: k + 1]
    assert id(model) == model_id and id(model.stem) == stem_id  # the user's objects, pruned in place

    # the model as returned is the network after step k-1: same shapes and the same outputs
    after = copy.deepcopy(_network()[0])
    after_pruner = _pruner(after, x)
    for _ in range(k - 1):
        after_pruner.step()
    assert channel_widths(model) == channel_widths(after)
    assert {n: p.shape for n, p in model.state_dict().items()} == {n: p.shape for n, p in after.state_dict().items()}
    assert torch.allclose(model(x), after(x), atol=1e-6)
    assert result.steps[-2].macs == tp.utils.count_ops_and_params(model, x[:1])[0]
    assert result.steps[-2].parameters == sum(p.numel() for p in model.parameters())
    # the pruner is set back too: its next step redoes the undone one
    assert pruner.current_step == k - 1
    pruner.step()
    assert model.stem.out_channels == widths[k]


def _mlp(seed: int = 1):
    """Gedeon's own setting: hidden layers of a Linear-only network."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(100, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    return model, torch.randn(16, 1, 10, 10), torch.randint(0, 4, (16,))


def _fit(model, x, y, steps=150):
    """The network fitted to its batch, so that pruning it costs loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("network", ["residual", "mlp"])
def test_real_loss_with_an_iterative_schedule_and_interactive_steps(network):
    """Cross-entropy of a real network on its batch: the first step over the budget is undone, the steps
    before it kept; an interactive run (each group seen before it is pruned) makes the same choices, and the
    network returned is the one a fresh pruner gives after the steps kept."""
    def loss_fn(model, batch):
        return F.cross_entropy(model(batch[0]), batch[1])

    fitted, x, y = _network(1) if network == "residual" else _mlp()
    torch.manual_seed(0)
    _fit(fitted, x, y)

    def build():
        model = copy.deepcopy(fitted)
        head = model.fc if network == "residual" else model[-1]
        pruner = tp.pruner.MetaPruner(model, x[:1], tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.75,
                                      iterative_steps=12, ignored_layers=[head])
        return model, pruner, x, y

    trace, trace_pruner, _, _ = build()
    base = loss_fn(trace, (x, y)).item()
    losses = []
    for _ in range(12):
        trace_pruner.step()
        losses.append(loss_fn(trace.eval(), (x, y)).item())
    budget = max(losses[:3]) - base  # the first three steps are within it, so at least three are kept
    k = 1 + next(i for i, loss in enumerate(losses) if loss - base > budget + 1e-6)
    assert 3 < k <= 12

    seen = []
    model, pruner, _, _ = build()
    result = prune_until_loss_rises(pruner, model, loss_fn, (x, y), budget=budget,
                                    on_group=lambda group: seen.append(len(group[0][1])))
    assert seen  # the interactive path ran
    assert result.steps[-1].step == k and result.steps[-1].over_budget
    assert [s.loss for s in result.steps[1:]] == pytest.approx(losses[:k], abs=1e-5)
    assert all(s.loss - base <= budget for s in result.kept)
    reference, reference_pruner, _, _ = build()
    for _ in range(k - 1):
        reference_pruner.step()
    assert channel_widths(model) == channel_widths(reference) != channel_widths(build()[0])
    assert torch.allclose(model(x), reference(x), atol=1e-6)


def test_stops_when_the_schedule_ends_or_at_max_steps():
    model, x, y = _network()
    result = prune_until_loss_rises(_pruner(model, x, steps=3), model, _width_loss, None, budget=10.0)
    assert result.steps_kept == 3 and "schedule" in result.stopped_because
    assert not any(s.over_budget for s in result.steps)
    model, x, y = _network()
    result = prune_until_loss_rises(_pruner(model, x), model, _width_loss, None, budget=10.0, max_steps=2)
    assert result.steps_kept == 2 and result.stopped_because == "2 steps"
    assert result.steps[0].macs is None  # no example inputs: no MACs count
