"""Real removal: a smaller ExpressionCNN without the pruned channels, same outputs as the masked one.

Torch-Pruning's DependencyGraph does the surgery: it follows conv1's outputs into conv2's inputs, and
conv2's outputs through ReLU, max-pool and the flatten into the matching columns of the linear layer.
The result is then rebuilt as an ExpressionCNN with the smaller `CNNConfig`, so it saves and loads
like any trained model (`fexprune.models.checkpoint.load_model`).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
import torch_pruning as tp

from fexprune.models.cnn import ExpressionCNN
from fexprune.pruning.masking import ChannelMasks

LAYERS = ("conv1", "conv2")


def remove_pruned_channels(model: ExpressionCNN, masks: ChannelMasks) -> ExpressionCNN:
    """A new, smaller model; `model` is left as it is."""
    pruned = copy.deepcopy(model).cpu().eval()
    masks.apply(pruned)
    height_width = (pruned.config.input_size[1], pruned.config.input_size[0])
    example = torch.zeros(1, 1, *height_width)
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example, verbose=False)
    for name in LAYERS:
        channels = masks.pruned(name) if name in masks.alive else []
        if not channels:
            continue
        group = graph.get_pruning_group(getattr(pruned, name), tp.prune_conv_out_channels, idxs=channels)
        if not graph.check_pruning_group(group):
            raise ValueError(f"cannot remove channels {channels} of {name}")
        group.prune()
    config = replace(model.config, channels=(pruned.conv1.out_channels, pruned.conv2.out_channels))
    smaller = ExpressionCNN(config)
    smaller.load_state_dict(pruned.state_dict())
    return smaller.eval()
