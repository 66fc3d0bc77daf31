"""Real removal: the smaller model computes what the masked model computes; costs are counted right."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.pruning.masking import ChannelMasks
from fexprune.pruning.measure import cost_change, count_macs, count_parameters, model_cost
from fexprune.pruning.removal import remove_pruned_channels

CONFIG = CNNConfig(channels=(6, 8), input_size=(36, 30))


def masked_model(pruned: dict[str, list[int]]) -> tuple[ExpressionCNN, ChannelMasks]:
    torch.manual_seed(1)
    model = ExpressionCNN(CONFIG).eval()
    masks = ChannelMasks.for_model(model, ["conv1", "conv2"])
    for layer, channels in pruned.items():
        for c in channels:
            masks.prune(model, layer, c)
    return model, masks


@pytest.mark.parametrize(
    "pruned, channels",
    [({"conv1": [0, 4]}, (4, 8)), ({"conv2": [1, 2, 7]}, (6, 5)), ({"conv1": [5, 2, 3], "conv2": [0, 6]}, (3, 6))],
)
def test_removed_model_equals_masked_model(pruned, channels):
    model, masks = masked_model(pruned)
    smaller = remove_pruned_channels(model, masks)
    assert smaller.config.channels == channels
    assert smaller.conv1.out_channels == channels[0] and smaller.conv2.in_channels == channels[0]
    x = torch.randn(9, 1, 30, 36)
    with torch.no_grad():
        assert torch.allclose(smaller(x), model(x), atol=1e-5, rtol=0)
    # the original is untouched, and the smaller model round-trips through its config
    assert model.config.channels == (6, 8) and model.conv1.out_channels == 6
    rebuilt = ExpressionCNN(CNNConfig.from_dict(smaller.config.to_dict()))
    rebuilt.load_state_dict(smaller.state_dict())
    assert count_parameters(smaller) < count_parameters(model)


def test_macs_are_counted_from_shapes_and_agree_with_torch_pruning():
    model = ExpressionCNN(CONFIG)
    x = torch.zeros(2, 1, 30, 36)
    conv1 = 6 * 26 * 32 * 25  # out channels * output h*w * k*k*in
    conv2 = 8 * 9 * 12 * 6 * 25  # pool1 -> 13x16, conv2 -> 9x12
    fc = 7 * 8 * 3 * 4
    assert count_macs(model, x) == conv1 + conv2 + fc
    ops, params = tp.utils.count_ops_and_params(model, x[:1])
    assert params == count_parameters(model)
    assert abs(ops - (conv1 + conv2 + fc)) / ops < 0.05  # torch-pruning also counts biases, ReLU, pooling


def test_cost_report_has_both_latencies_and_drops():
    model, masks = masked_model({"conv1": [0, 1, 2], "conv2": [0, 1, 2, 3]})
    x = torch.randn(4, 1, 30, 36)
    before = model_cost(model, x, repeats=3)
    after = model_cost(remove_pruned_channels(model, masks), x, repeats=3)
    change = cost_change(before, after)
    assert before["flops_per_image"] == 2 * before["macs_per_image"]
    assert 0.5 < change["flops_per_image_drop"] < 1 and 0.4 < change["parameters_drop"] < 1
    assert after["latency_batch1_ms"] > 0 and after["latency_full_batch_ms"] > 0
