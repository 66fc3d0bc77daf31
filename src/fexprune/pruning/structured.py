"""Structured channel pruning of any network fexprune trains (paper CNN, best, transfer) to a MACs target.

Torch-Pruning's DependencyGraph finds which channels are coupled by tracing the network, not by layer
names: a conv's outputs with its batch norm and the next conv's inputs, the flattened grid into the
linear classifier, every branch of a residual addition, a depthwise conv with the pointwise conv before it.
`tp.pruner.MetaPruner` removes the lowest-scoring channels of each group (fexprune.pruning.importance).

- Target: a fraction of the unpruned network's multiply-adds (fexprune.pruning.measure.count_macs: conv
  and linear layers, one image). Torch-Pruning takes channel ratios, so each step searches (bisection)
  the ratio whose pruned network has the largest MACs not above the step's target.
- Local (default): every selected layer loses the same fraction of its channels. Global: one ranking over
  all selected layers (scores rescaled per group by the importance's normalizer; "mean" is advised).
- Iterative: `steps` steps, the MACs target falling linearly from 1 to the goal; `finetune(model, step)`
  runs after each one.
- `layers`: module paths of the convs whose output channels may be chosen for removal, or "all"; the
  classifier (the last layer, whose outputs are the classes) is never. Channels of other layers still go
  where the graph couples them to a selected one.
- `round_to`: channel counts a multiple of this (None: any count).
- `merge`: each removed channel is first folded into its most correlated kept channel over `sample_x`
  (Gedeon's merge, fexprune.pruning.merging), with any criterion.
The result is a smaller module of the same class; its `layer_shapes` (fexprune.models.layer_shapes) let
models/checkpoint.py save and load it.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from fexprune.models.layer_shapes import layer_shapes
from fexprune.pruning.importance import make_importance, needs_backward
from fexprune.pruning.measure import count_macs, count_parameters
from fexprune.pruning.merging import MergingPruner


def classifier_layers(model: nn.Module) -> list[nn.Module]:
    """The layers whose outputs are the classes: `fc` of the paper CNN and BestCNN (each member's in an
    ensemble), the transfer network's class-map conv; otherwise the last conv or linear layer."""
    network = getattr(model, "network", None)
    if network is not None and hasattr(model, "classifier"):  # FERTransfer
        return [network.layers[model.classifier].conv]
    found = [module.fc for module in model.modules() if isinstance(getattr(module, "fc", None), nn.Linear)]
    if found:
        return found
    return [[m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]]


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{module path: conv} of every conv whose output channels can be pruned (all but the classifier)."""
    heads = {id(m) for m in classifier_layers(model)}
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and id(m) not in heads}


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every prunable conv, by module path."""
    return {name: m.out_channels for name, m in prunable_layers(model).items()}


def select_layers(model: nn.Module, layers: str | tuple[str, ...] | list[str]) -> list[str]:
    available = prunable_layers(model)
    if layers == "all" or layers == ("all",) or layers == ["all"]:
        return list(available)
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise ValueError(f"not a prunable conv: {', '.join(unknown)} (choose from {', '.join(available)}, all)")
    return list(layers)


@dataclass
class StructuredConfig:
    target_macs: float = 0.5  # fraction of the unpruned network's MACs to keep
    criterion: str = "l2"  # fexprune.pruning.importance.IMPORTANCES
    global_pruning: bool = False
    steps: int = 1
    round_to: int | None = None
    layers: str | tuple[str, ...] = "all"
    seed: int = 0
    normalizer: str | None = None  # the importance's per-group rescaling (global pruning: "mean")
    max_layer_ratio: float = 0.9  # no layer loses more than this fraction of its channels
    search_iterations: int = 12
    merge: bool = False  # fold removed channels into kept partners (needs sample_x)

    def check(self) -> None:
        if not 0 < self.target_macs <= 1:
            raise ValueError(f"target MACs must be a fraction in (0, 1], got {self.target_macs}")
        if self.steps < 1:
            raise ValueError("need at least one pruning step")
        if self.round_to is not None and self.round_to < 1:
            raise ValueError("round_to must be a positive channel count")


@dataclass
class StructuredResult:
    model: nn.Module
    macs_before: int
    macs_after: int
    parameters_before: int
    parameters_after: int
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    steps: list[dict] = field(default_factory=list)

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / self.macs_before


def _gradients(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    if batch is None:
        raise ValueError("the taylor importance needs a batch of training images and labels for its gradients")
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()  # batch-norm statistics stay as they are
    F.cross_entropy(model(batch[0]), batch[1]).backward()
    model.train(was_training)


def prune_by_ratio(model: nn.Module, example: torch.Tensor, ratio: float | dict[str, float], config: StructuredConfig,
                   sample_x: torch.Tensor | None = None, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> nn.Module:
    """`model` pruned in place: each selected layer loses `ratio` of its channels (a dict: layer path ->
    ratio, only those layers), or that fraction of all selected channels when `config.global_pruning`."""
    model.eval()
    selected = list(ratio) if isinstance(ratio, dict) else select_layers(model, config.layers)
    convs = prunable_layers(model)
    chosen = {id(convs[name]) for name in selected}
    ignored = classifier_layers(model) + [m for m in model.modules()
                                         if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in chosen]
    importance = make_importance(config.criterion, model=model, sample_x=sample_x, seed=config.seed,
                                 normalizer=config.normalizer)
    if needs_backward(importance):
        _gradients(model, batch)
    if not isinstance(ratio, dict) and not config.global_pruning:
        ratio = {name: float(ratio) for name in selected}
    if isinstance(ratio, dict):
        ratios = {convs[name]: _keep_one_block(convs[name].out_channels, r, config.round_to) for name, r in ratio.items()}
        if set(ratio) != set(convs):  # some layers only: the others get ratio 0 rather than being ignored (below)
            ratios = _over_coupled_convs(model, example, ratios)
        # Ignoring the other convs would drop every group that holds one of them: a layer feeding a depthwise
        # conv, or one side of a residual addition, could then not be pruned at all (the transfer network's
        # sensitivity scan pruned only its first conv). With ratio 0 they keep their own channels and lose
        # only those the graph couples to a selected layer.
        ignored = classifier_layers(model)
        kwargs = {"pruning_ratio_dict": ratios, "pruning_ratio": 0.0}
    else:
        kwargs = {"pruning_ratio": float(ratio)}
    if config.merge:
        if sample_x is None:
            raise ValueError("merging needs a sample of training images")
        pruner_class = functools.partial(MergingPruner, sample=sample_x)
    else:
        pruner_class = tp.pruner.MetaPruner
    pruner = pruner_class(model, example, importance, global_pruning=config.global_pruning and not isinstance(ratio, dict),
                                  ignored_layers=ignored, round_to=config.round_to,
                                  max_pruning_ratio=config.max_layer_ratio, **kwargs)
    _fix_flatten_strides(pruner.DG)
    pruner.step()
    model.zero_grad(set_to_none=True)
    model.layer_shapes = layer_shapes(model)
    return model


def _over_coupled_convs(model: nn.Module, example: torch.Tensor, ratios: dict[nn.Module, float]) -> dict[nn.Module, float]:
    """`ratios` given also to every conv whose output channels are coupled to a selected conv's (the same
    Torch-Pruning group): the group takes the ratio of its root, which may be any of them."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    _fix_flatten_strides(graph)
    spread = dict(ratios)
    for conv, ratio in ratios.items():
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
        for dep, _ in group:
            module = dep.target.module
            if isinstance(module, nn.Conv2d) and graph.is_out_channel_pruning_fn(dep.handler):
                spread[module] = max(spread.get(module, 0.0), ratio)
    return spread


def _keep_one_block(channels: int, ratio: float, round_to: int | None) -> float:
    """`ratio` capped so the layer keeps at least one block of `round_to` channels (one channel without it).
    Torch-Pruning rounds the channels kept down to a multiple of round_to, and skips a layer whose count
    would round to 0, leaving it whole: a larger ratio then pruned less (16 channels at 0.9 kept all 16),
    which broke the search for a MACs target. A layer no wider than one block is not pruned."""
    block = round_to or 1
    if channels <= block:
        return 0.0
    return min(ratio, 1 - (block + 0.5) / channels)  # Torch-Pruning keeps int(channels * (1 - ratio)) = block


def _fix_flatten_strides(graph: tp.DependencyGraph) -> None:
    """A flatten of (B, C, h, w) maps channel c to features c*h*w ... (c+1)*h*w - 1. Torch-Pruning infers
    h*w as the next layer's inputs over C, which is wrong when the flattened maps are concatenated with
    other features first (BestCNN's HOG branch); the traced input shape gives it exactly. Torch-Pruning
    recomputes its mappings on every group request, reading `_saved_self_sizes` of the node's autograd
    function where it exists (older torch); the node is given that shape, so its own check then leaves
    a concatenated flatten alone, and the right stride is set here."""
    from types import SimpleNamespace

    from torch_pruning.dependency.index_mapping import _FlattenIndexMapping

    for node in graph.module2node.values():
        if node.type != tp.ops.OPTYPE.RESHAPE:
            continue
        size = getattr(node.grad_fn, "_saved_self_sym_sizes", None)
        if size is None or len(size) != 4:
            continue
        stride = int(size[2]) * int(size[3])
        node.grad_fn = SimpleNamespace(_saved_self_sizes=tuple(int(v) for v in size))
        for in_node in node.inputs:
            for dep in node.dependencies:
                if dep.target == in_node:
                    dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=True)
            for dep in in_node.dependencies:
                if dep.target == node:
                    dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=False)


def _to_macs(model: nn.Module, example: torch.Tensor, goal: int, config: StructuredConfig, sample_x, batch) -> tuple[nn.Module, float]:
    """The pruned copy of `model` with the largest MACs <= goal (the most pruned one if none reaches it)."""
    def attempt(ratio: float) -> tuple[nn.Module, int]:
        candidate = prune_by_ratio(copy.deepcopy(model), example, ratio, config, sample_x, batch)
        return candidate, count_macs(candidate, example)

    if count_macs(model, example) <= goal:
        return copy.deepcopy(model), 0.0
    low, high = 0.0, config.max_layer_ratio
    best, smallest = None, attempt(high) + (high,)  # smallest: the fewest MACs seen, kept if none reaches the goal
    for _ in range(config.search_iterations):
        middle = (low + high) / 2
        candidate, macs = attempt(middle)
        if macs < smallest[1]:
            smallest = (candidate, macs, middle)
        if macs <= goal:
            best, high = (candidate, middle), middle
        else:
            low = middle
    if best is None and smallest[1] <= goal:
        best = (smallest[0], smallest[2])
    return best if best is not None else (smallest[0], smallest[2])


def prune_to_macs(model: nn.Module, example: torch.Tensor, config: StructuredConfig, *,
                  sample_x: torch.Tensor | None = None, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                  finetune: Callable[[nn.Module, int], None] | None = None) -> StructuredResult:
    """A pruned copy of `model` with at most `config.target_macs` of its MACs (`model` is left as it is).
    `example`: one input image (1, 1, H, W); `sample_x`: images for distinctiveness; `batch`: (x, y) for
    Taylor's gradients. Pruning runs on the CPU (tracing and the search); the result is on the CPU."""
    config.check()
    device = example.device
    example = example[:1].cpu()
    sample_x = None if sample_x is None else sample_x.cpu()
    batch = None if batch is None else (batch[0].cpu(), batch[1].cpu())
    current = copy.deepcopy(model).cpu().eval()
    macs_before, params_before = count_macs(current, example), count_parameters(current)
    widths_before = layer_widths(current)
    steps = []
    for step in range(1, config.steps + 1):
        fraction = 1 - (1 - config.target_macs) * step / config.steps
        goal = int(fraction * macs_before)
        current, ratio = _to_macs(current, example, goal, config, sample_x, batch)
        macs = count_macs(current, example)
        steps.append({"step": step, "target_macs_ratio": fraction, "channel_ratio": ratio,
                      "macs_ratio": macs / macs_before, "parameters": count_parameters(current)})
        if finetune is not None:
            current.to(device)
            finetune(current, step)
            current.cpu().eval()
    current.layer_shapes = layer_shapes(current)
    return StructuredResult(current.eval(), macs_before, count_macs(current, example), params_before,
                            count_parameters(current), widths_before, layer_widths(current), steps)


@torch.no_grad()
def reinitialise(model: nn.Module, seed: int = 0) -> nn.Module:
    """`model` with fresh weights (each layer's own reset): the pruned architecture trained from scratch
    (Liu et al. 2019) starts here."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            module.reset_parameters()
    return model
