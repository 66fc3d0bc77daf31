"""How a structurally pruned network is saved: its layers' shapes beside the unpruned architecture's config.

Channel pruning (fexprune.pruning.structured) narrows convs, batch norms and linear layers wherever the
dependency graph couples them: inside residual blocks, across depthwise convs, into the classifier. Rather
than teach each architecture's config (the paper CNN's `channels`, BestCNN's per-block widths, an ensemble
whose members may end up different, the transfer network's Keras layer list) every way it can shrink, the
checkpoint keeps the config of the network it was pruned from and adds `layer_shapes`: for every conv,
batch norm and linear layer, by module path, the sizes that define its parameters. `build_model` builds the
unpruned network, then `resize_layers` gives those layers the stored sizes (empty weights, filled by
`load_state_dict`). Forward passes never read widths from the configs, so the result runs as pruned.
A model with no `layer_shapes` in its config loads exactly as before.
"""

from __future__ import annotations

import torch
from torch import nn

KEY = "layer_shapes"


def layer_shapes(model: nn.Module) -> dict[str, dict[str, int]]:
    """{module path: its sizes} of every Conv2d, BatchNorm2d and Linear of `model`."""
    shapes: dict[str, dict[str, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            shapes[name] = {"in": module.in_channels, "out": module.out_channels, "groups": module.groups}
        elif isinstance(module, nn.BatchNorm2d):
            shapes[name] = {"features": module.num_features}
        elif isinstance(module, nn.Linear):
            shapes[name] = {"in": module.in_features, "out": module.out_features}
    return shapes


def _empty_like(tensor: torch.Tensor | None, shape: tuple[int, ...]):
    if tensor is None:
        return None
    return torch.empty(shape, dtype=tensor.dtype, device=tensor.device)


@torch.no_grad()
def resize_layers(model: nn.Module, shapes: dict[str, dict[str, int]]) -> nn.Module:
    """Give `model`'s layers the sizes in `shapes` (in place; the weights are left uninitialised)."""
    for name, shape in shapes.items():
        module = model.get_submodule(name)
        if isinstance(module, nn.Conv2d):
            module.in_channels, module.out_channels, module.groups = shape["in"], shape["out"], shape["groups"]
            module.weight = nn.Parameter(_empty_like(module.weight, (shape["out"], shape["in"] // shape["groups"], *module.kernel_size)))
            if module.bias is not None:
                module.bias = nn.Parameter(_empty_like(module.bias, (shape["out"],)))
        elif isinstance(module, nn.BatchNorm2d):
            n = shape["features"]
            module.num_features = n
            if module.weight is not None:
                module.weight = nn.Parameter(_empty_like(module.weight, (n,)))
                module.bias = nn.Parameter(_empty_like(module.bias, (n,)))
            if module.running_mean is not None:
                module.running_mean = _empty_like(module.running_mean, (n,))
                module.running_var = _empty_like(module.running_var, (n,))
        elif isinstance(module, nn.Linear):
            module.in_features, module.out_features = shape["in"], shape["out"]
            module.weight = nn.Parameter(_empty_like(module.weight, (shape["out"], shape["in"])))
            if module.bias is not None:
                module.bias = nn.Parameter(_empty_like(module.bias, (shape["out"],)))
        else:
            raise TypeError(f"{name} is a {type(module).__name__}, which has no stored shape")
    model.layer_shapes = dict(shapes)
    return model
