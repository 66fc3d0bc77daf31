"""What the layers that receive a Torch-Pruning group's channels actually see, kept as running moments.

A group removes channels of one or more producers (a conv's outputs, a linear layer's hidden units, both
sides of a residual addition) and the matching inputs of its consumers: every conv or linear layer whose
INPUT channels the group prunes (`tp.prune_conv_in_channels`, `tp.prune_linear_in_channels`). A consumer
receives the channels after whatever lies between (batch norm, any activation, pooling, an addition, a
concatenation, a flatten), so its input is what a channel contributes to the rest of the network: no
activation function is assumed.

A `Tap` says where in a consumer's input each of the group's channels lies. A linear layer after a flatten
receives a channel at several input features (one per spatial position), a conv after a concatenation of
a tensor with a function of itself at several input channels: those are the tap's `positions`, and the
channel's activation vector runs over the sample, the spatial positions of a conv's input and the tap's
positions.

`ChannelMoments` holds, per tap, the count, the per-channel mean and the centred scatter matrix
(X - mean)^T (X - mean), merged batch by batch (Chan et al.'s pairwise update): its size depends on the
number of channels only, never on the sample. `ConsumerActivations` runs the model over a sample with
forward PRE-hooks on the consumers and accumulates inside the hook (each hook copies what it needs before
the layer runs, so an in-place `out += identity` later cannot change it). It recomputes whenever the
network has changed: results are cached only under a fingerprint of every parameter and buffer (identity,
shape, version counter and sums), so a pruning step, a fine-tuning step or a merge invalidates them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

CONSUMER_FNS = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)
PRODUCER_FNS = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)

ForwardFn = Callable[[nn.Module, object], object]


@dataclass(frozen=True)
class Tap:
    """Group channel `channels[c]` reaches input `index[p][c]` of `layer` (a channel of a conv, a feature of
    a linear layer) at position p. `at_output`: the producer's own output instead (a group no layer consumes)."""

    layer: nn.Module
    channels: tuple[int, ...]  # positions in the group's score vector
    index: tuple[tuple[int, ...], ...]  # (positions, channels)
    at_output: bool = False

    @property
    def key(self) -> tuple:
        return (id(self.layer), self.channels, self.index, self.at_output)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """(samples x spatial x positions, channels) copy of the tap's part of `x` (the layer's input
        or output: (B, C, ...) for a conv, (..., F) for a linear layer)."""
        flat = torch.tensor([i for row in self.index for i in row], device=x.device)
        positions, channels = len(self.index), len(self.channels)
        if isinstance(self.layer, nn.Linear):
            picked = x.index_select(-1, flat).reshape(-1, positions * channels)
        else:
            picked = x.index_select(1, flat)  # (B, P*N, *spatial)
            picked = picked.reshape(picked.shape[0], positions * channels, -1).transpose(1, 2).reshape(-1, positions * channels)
        return picked.reshape(-1, positions, channels).reshape(-1, channels)


def _plain(values) -> list[int]:
    return [int(getattr(v, "idx", v)) for v in values]


def _tap(layer: nn.Module, idxs, root_idxs, position: dict[int, int], at_output: bool = False) -> Tap | None:
    """The tap for one group member, or None where Torch-Pruning cannot map its indices to the group's
    channels, or a channel reaches it at an uneven number of positions."""
    if root_idxs is None or any(r is None for r in root_idxs):
        return None
    by_channel: dict[int, list[int]] = {}
    for idx, root in zip(_plain(idxs), _plain(root_idxs)):
        if root not in position:
            return None
        by_channel.setdefault(position[root], []).append(idx)
    counts = {len(v) for v in by_channel.values()}
    if len(counts) != 1:
        return None
    channels = tuple(sorted(by_channel))
    columns = [sorted(by_channel[c]) for c in channels]
    index = tuple(zip(*columns))
    return Tap(layer, channels, index, at_output)


def group_channels(group) -> list[int]:
    """The group's channels in score order: the root member's indices."""
    return _plain(group[0].idxs)


def layer_name(group) -> str:
    """The group's root layer, as Torch-Pruning names it (for messages)."""
    dep = group[0].dep
    graph = getattr(group, "_DG", None)
    module = dep.target.module
    name = graph._module2name.get(module) if graph is not None else None
    return name or str(module)


def consumer_taps(group) -> list[Tap]:
    """Where the layers whose inputs the group prunes receive its channels (see the module docstring)."""
    position = {root: k for k, root in enumerate(group_channels(group))}
    taps = []
    for item in group:
        if item.dep.pruning_fn in CONSUMER_FNS and isinstance(item.dep.layer, (nn.modules.conv._ConvNd, nn.Linear)):
            tap = _tap(item.dep.layer, item.idxs, item.root_idxs, position)
            if tap is not None:
                taps.append(tap)
    return taps


def producer_taps(group) -> list[Tap]:
    """The outputs of the conv or linear layers whose output channels the group prunes: what is scored for
    a group whose channels no prunable layer consumes (they leave through some other operation)."""
    position = {root: k for k, root in enumerate(group_channels(group))}
    taps = []
    for item in group:
        layer = item.dep.layer
        if item.dep.pruning_fn in PRODUCER_FNS and isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            tap = _tap(layer, item.idxs, item.root_idxs, position, at_output=True)
            if tap is not None:
                taps.append(tap)
    return taps


class ChannelMoments:
    """Count, mean and centred scatter matrix of the rows added so far (one column per channel)."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.scatter = torch.zeros(channels, channels, dtype=torch.float64)

    def add(self, rows: torch.Tensor) -> None:
        rows = rows.detach().to(torch.float64)
        m = rows.shape[0]
        if m == 0:
            return
        batch_mean = rows.mean(0)
        centred = rows - batch_mean
        batch_scatter = (centred.T @ centred).cpu()  # reduced where the rows are; only channels^2 numbers move
        batch_mean = batch_mean.cpu()
        if self.count == 0:
            self.mean, self.scatter = batch_mean, batch_scatter
        else:
            total = self.count + m
            delta = batch_mean - self.mean
            self.scatter = self.scatter + batch_scatter + torch.outer(delta, delta) * (self.count * m / total)
            self.mean = self.mean + delta * (m / total)
        self.count += m

    @property
    def nbytes(self) -> int:
        return self.mean.numel() * 8 + self.scatter.numel() * 8


def _accumulate(taps: list[Tap], found: dict[tuple, ChannelMoments], output: bool):
    """A hook that adds each tap's rows of the layer's input (or output) to its moments at once, so nothing
    is kept between batches and a later in-place change of the tensor is never seen."""
    def pre_hook(module, args):
        for tap in taps:
            found[tap.key].add(tap.rows(args[0]))

    def hook(module, args, out):
        for tap in taps:
            found[tap.key].add(tap.rows(out))

    return hook if output else pre_hook


def _fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, resized or written (in place or through .data)."""
    parts = []
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        data = tensor.detach()
        if data.is_floating_point():
            sums = (float(data.sum(dtype=torch.float64)), float(torch.linalg.vector_norm(data, dtype=torch.float64)))
        else:
            sums = (float(data.sum()),)
        parts.append((name, id(tensor), tuple(data.shape), tensor._version, sums))
    return tuple(parts)


def call_model(model: nn.Module, batch) -> object:
    """Torch-Pruning's convention for example inputs: a tensor is the input, a tuple or list the positional
    inputs, a dict the keyword inputs; tensors are moved to the model's device."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    batch = _to(batch, device)
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    return value


def as_batches(sample) -> list | Iterable:
    """`sample` as something that yields batches again at every pass: a tensor, a tuple or a dict is one
    batch (a tuple or dict: the inputs of a multi-input model); a list, a DataLoader or any re-iterable
    is a sequence of batches; a one-shot iterator (a generator) is read once into a list."""
    if isinstance(sample, (torch.Tensor, tuple, Mapping)):
        return [sample]
    if isinstance(sample, Iterator):
        return list(sample)
    if isinstance(sample, Iterable):
        return sample
    raise TypeError(f"cannot read batches from a {type(sample).__name__}: give a tensor, a tuple or dict of "
                    "inputs, or a list or DataLoader of batches")


class ConsumerActivations:
    """Moments of what each tap's layer receives over `sample`, for the network as it is when asked.

    `forward_fn(model, batch)` runs the model on one batch (default `call_model`): give one for a DataLoader
    of (inputs, labels) pairs, e.g. `lambda model, batch: model(batch[0])`."""

    def __init__(self, model: nn.Module, sample, forward_fn: ForwardFn | None = None):
        self.model = model
        self.batches = as_batches(sample)
        self.forward_fn = forward_fn or call_model
        self._state: tuple | None = None
        self._moments: dict[tuple, ChannelMoments] = {}

    def moments(self, taps: list[Tap], also: Callable[[], list[Tap]] | None = None) -> list[ChannelMoments]:
        """One `ChannelMoments` per tap. On a pass over the sample, the taps `also()` returns are measured too
        (one pass for every group of a pruning step, where the network does not change between groups)."""
        state = _fingerprint(self.model)
        if state != self._state:
            self._state, self._moments = state, {}
        missing = [t for t in taps if t.key not in self._moments]
        if missing:
            extra = [t for t in (also() if also is not None else []) if t.key not in self._moments]
            self._measure({t.key: t for t in missing + extra}.values())
            self._state = _fingerprint(self.model)  # eval() and hooks leave the weights alone
        return [self._moments[t.key] for t in taps]

    @torch.no_grad()
    def _measure(self, taps: Iterable[Tap]) -> None:
        taps = list(taps)
        found = {t.key: ChannelMoments(len(t.channels)) for t in taps}
        handles = []
        for layer in {id(t.layer): t.layer for t in taps}.values():
            inputs = [t for t in taps if t.layer is layer and not t.at_output]
            outputs = [t for t in taps if t.layer is layer and t.at_output]
            if inputs:
                handles.append(layer.register_forward_pre_hook(_accumulate(inputs, found, output=False)))
            if outputs:
                handles.append(layer.register_forward_hook(_accumulate(outputs, found, output=True)))
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in self.batches:
                self.forward_fn(self.model, batch)
        finally:
            for handle in handles:
                handle.remove()
            self.model.train(was_training)
        empty = [t for t in taps if found[t.key].count == 0]
        if empty:
            warnings.warn(f"{len(empty)} layer(s) saw no input over the sample (first: {empty[0].layer}); "
                          "their channels look dead", stacklevel=3)
        self._moments.update(found)
