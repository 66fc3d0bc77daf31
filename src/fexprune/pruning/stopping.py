"""The paper's stopping rule for any network and any Torch-Pruning pruner: prune step by step until the loss on
a given batch rises by more than a budget over the unpruned network's, undo that last step, stop.

    pruner = tp.pruner.MetaPruner(model, example, tp.importance.MagnitudeImportance(p=2),
                                  pruning_ratio=0.8, iterative_steps=16, ignored_layers=[model.fc])
    result = prune_until_loss_rises(pruner, model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y),
                                    budget=0.1, example_inputs=example)

`model` is the pruner's model; on return it is, in place, the network after the last step kept (the same
object, its pruned layers resized back where the undone step had cut them), so optimisers and references to
its modules stay valid for the modules the undone step left alone. `result.steps` holds one record per step
tried: row 0 the network before pruning, the last one the undone step when the budget stopped it.

The loss is whatever `loss_fn(model, batch)` returns, measured in eval mode without gradients: `batch` may be
of any structure (several inputs, keyword inputs), as the function unpacks it. fexprune's own table (`fexprune
prune`, pruning/procedure.py) applies the same rule kernel by kernel with masks; this one takes whole
Torch-Pruning steps, so its granularity is the pruner's schedule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch_pruning as tp
from torch import nn

LossFn = Callable[[nn.Module, Any], "float | torch.Tensor"]
_WIDTH_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass
class StopStep:
    step: int  # 0: before pruning
    loss: float
    macs: int | None  # tp.utils.count_ops_and_params, when example inputs are known
    parameters: int
    channels: dict[str, int]  # output channels (features) of every conv and linear layer, by module path
    over_budget: bool = False  # this step raised the loss past the budget and was undone


@dataclass
class StopResult:
    base_loss: float
    budget: float
    steps: list[StopStep] = field(default_factory=list)
    stopped_because: str = ""

    @property
    def kept(self) -> list[StopStep]:
        """The records of the network as returned and of the steps that led to it."""
        return [s for s in self.steps if not s.over_budget]

    @property
    def steps_kept(self) -> int:
        return self.kept[-1].step


def exceeds_budget(base_loss: float, loss: float, budget: float) -> bool:
    """True when `loss` is more than `budget` above `base_loss` (NaN too); the paper's rule, with the same
    1e-9 slack as fexprune.pruning.procedure.exceeds_limit, so a step exactly at the budget is kept."""
    return not (loss - base_loss <= budget + 1e-9)


def channel_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv (any dimension, transposed too) and output features of every linear layer."""
    return {name: (m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features)
            for name, m in model.named_modules() if isinstance(m, _WIDTH_LAYERS)}


def _measure(model: nn.Module, loss_fn: LossFn, batch) -> float:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss = loss_fn(model, batch)
    finally:
        model.train(was_training)
    return float(loss)


def _record(step: int, model: nn.Module, loss: float, example_inputs) -> StopStep:
    macs = None
    if example_inputs is not None:
        macs = int(tp.utils.count_ops_and_params(model, example_inputs)[0])
    return StopStep(step, loss, macs, sum(p.numel() for p in model.parameters()), channel_widths(model))


def _state(module: nn.Module) -> dict:
    """What a pruning step changes in one module: its parameters, buffers and public attributes (widths,
    groups). Submodules and hooks are left out: pruning keeps the module tree as it is."""
    return {k: v for k, v in vars(module).items() if k in ("_parameters", "_buffers") or not k.startswith("_")}


def _shapes(state: dict) -> dict:
    described = {}
    for key, value in state.items():
        if key in ("_parameters", "_buffers"):
            described[key] = {n: None if t is None else tuple(t.shape) for n, t in value.items()}
        elif isinstance(value, (int, float, str, bool, tuple, type(None))):
            described[key] = value
    return described


def _restore(model: nn.Module, snapshot: nn.Module) -> None:
    """Put `snapshot`'s parameters, buffers and widths back into `model`'s own module objects, module by module,
    for the modules whose shapes or widths differ (the ones the step pruned)."""
    for live, saved in zip(model.modules(), snapshot.modules()):
        before = _state(saved)
        if _shapes(_state(live)) != _shapes(before):
            vars(live).update(before)


def prune_until_loss_rises(pruner: tp.pruner.BasePruner, model: nn.Module, loss_fn: LossFn, batch, *,
                           budget: float = 0.1, max_steps: int | None = None, example_inputs=None,
                           before_step: Callable[[nn.Module], None] | None = None,
                           on_group: Callable[[Any], None] | None = None) -> StopResult:
    """Steps `pruner` (which prunes `model`) until a step raises `loss_fn(model, batch)` by more than `budget`
    over the loss before pruning; that step is undone in place and pruning stops. Also stops when the pruner's
    schedule is done (`pruner.iterative_steps` steps), after `max_steps` steps, or when a step removed nothing.

    `before_step(model)` runs before each step (a backward pass for a gradient importance such as Taylor's).
    `on_group(group)`, when given, runs the step interactively (`pruner.step(interactive=True)`) and sees each
    group before it is pruned. `example_inputs` (as Torch-Pruning takes them) let each record count MACs.
    After an undone step the pruner's step counter and pruning history are set back as well.
    """
    base = _measure(model, loss_fn, batch)
    result = StopResult(base, budget, [_record(0, model, base, example_inputs)])
    step = 0
    while True:
        if max_steps is not None and step >= max_steps:
            result.stopped_because = f"{max_steps} steps"
            break
        if pruner.current_step >= pruner.iterative_steps:
            result.stopped_because = f"the pruner's schedule is done ({pruner.iterative_steps} steps)"
            break
        snapshot = copy.deepcopy(model)
        history = list(pruner.DG.pruning_history())
        if before_step is not None:
            before_step(model)
        if on_group is None:
            pruner.step()
        else:
            for group in pruner.step(interactive=True):
                on_group(group)
                group.prune()
        model.zero_grad(set_to_none=True)
        step += 1
        loss = _measure(model, loss_fn, batch)
        record = _record(step, model, loss, example_inputs)
        if exceeds_budget(base, loss, budget):
            record.over_budget = True
            result.steps.append(record)
            _restore(model, snapshot)
            pruner.current_step -= 1
            pruner.DG._pruning_history = history
            result.stopped_because = f"loss +{loss - base:.4f} > budget {budget}"
            break
        result.steps.append(record)
        if record.parameters == result.steps[-2].parameters:
            result.stopped_because = "the step removed nothing"
            break
    return result
