"""What removal buys: parameters, FLOPs and measured CPU latency of a model.

FLOPs are counted from the layers' shapes with forward hooks: a conv or linear output element costs
in_channels * k * k (or in_features) multiply-adds; FLOPs = 2 * MACs. ReLU and pooling are not
counted (as in most pruning papers), though they take real time; see the benchmark.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of conv and linear layers for ONE image shaped like x[0]."""
    total = [0]

    def conv_hook(module: nn.Conv2d, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        total[0] += output.numel() * (module.in_channels // module.groups) * k

    def linear_hook(module: nn.Linear, inputs, output):
        total[0] += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        model(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def tp_macs_and_params(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """MACs and parameters as Torch-Pruning's `tp.utils.count_ops_and_params` counts them for ONE image shaped
    like x[0]: the count pruning papers built on Torch-Pruning report. It counts more layer types than
    `count_macs` (batch norm, pooling, activations), so its ratios after pruning differ a little."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, x[:1])
    return int(macs), int(params)


@torch.inference_mode()
def paired_latency_samples(models: list[Callable], x, repeats: int = 20, warmup: int = 2) -> list[list[float]]:
    """Seconds of every forward pass of each model (a module, or any callable that runs one, such as an ONNX
    Runtime session), calls interleaved (a, b, a, b, ...): sample i of every model comes from the same round,
    so differences between models can be taken round by round (paired).

    On a shared machine the speed drifts by tens of percent within seconds; interleaving lets the drift
    hit every model alike, so the ratios between them hold even when the absolute numbers wander.
    """
    for model in models:
        if isinstance(model, nn.Module):
            model.eval()
        for _ in range(warmup):
            model(x)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for model, spent in zip(models, times):
            start = time.perf_counter()
            model(x)
            spent.append(time.perf_counter() - start)
    return times


def paired_latency(models: list[Callable], x, repeats: int = 20, warmup: int = 2) -> list[float]:
    """Median seconds per forward pass of each model, calls interleaved (`paired_latency_samples`)."""
    return [statistics.median(spent) for spent in paired_latency_samples(models, x, repeats, warmup)]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile), linearly interpolated (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0], ordered[0], ordered[0]
    q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, q2, q3


def latency_change(base: list[float], other: list[float]) -> dict:
    """`other` against `base` from paired rounds (`paired_latency_samples`): the median and interquartile range
    of the per-round relative change (other - base) / base (-0.2: 20% faster), and whether that change is within
    noise: its interquartile range wider than its median's distance from zero (the spread exceeds the effect)."""
    changes = [(o - b) / b for b, o in zip(base, other)]
    q1, median, q3 = quartiles(changes)
    return {"latency_change": median, "latency_change_iqr": q3 - q1, "latency_within_noise": (q3 - q1) > abs(median)}


def model_costs(models: list[nn.Module], x_full: torch.Tensor, repeats: int = 20,
                repeats_full: int | None = None) -> list[dict]:
    """For each model: parameters, FLOPs per image, and median CPU latency at batch 1 and over all of
    `x_full`, measured interleaved with the other models (see `paired_latency`)."""
    batch1 = paired_latency(models, x_full[:1], repeats)
    full = paired_latency(models, x_full, repeats_full or max(3, repeats // 4))
    costs = []
    for model, one, many in zip(models, batch1, full):
        macs = count_macs(model, x_full)
        costs.append({
            "parameters": count_parameters(model),
            "macs_per_image": macs,
            "flops_per_image": 2 * macs,
            "latency_batch1_ms": 1000 * one,
            "latency_full_batch_ms": 1000 * many,
            "full_batch_size": len(x_full),
            "threads": torch.get_num_threads(),
        })
    return costs


def model_cost(model: nn.Module, x_full: torch.Tensor, repeats: int = 20, repeats_full: int | None = None) -> dict:
    """`model_costs` of one model."""
    return model_costs([model], x_full, repeats, repeats_full)[0]


def vector_width() -> int:
    """Floats in one SIMD register of this CPU, as PyTorch detects it (AVX-512: 16, AVX2: 8, else 4). The fast
    CPU runtimes (oneDNN under PyTorch, ONNX Runtime's NCHWc layout) compute channels in blocks of this many."""
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return 16 if "AVX512" in capability else 8 if ("AVX2" in capability or "SVE256" in capability) else 4


def blocks_lost(before: dict[str, int], after: dict[str, int], width: int) -> dict[str, int]:
    """{layer: vector blocks of `width` channels it no longer fills} for each layer in both; a layer of 16
    channels cut to 13 still fills one block of 16 and loses none."""
    return {name: -(-before[name] // width) - -(-after[name] // width) for name in before if name in after}


def flop_drop_not_speed(before: dict[str, int], after: dict[str, int], flop_drop: float,
                        width: int | None = None) -> str | None:
    """A sentence saying a removal's FLOP drop is no speed-up when no layer loses a whole vector block of
    channels (each keeps ceil(c / width) blocks, which blocked runtimes compute whole); None when one does."""
    width = width or vector_width()
    lost = blocks_lost(before, after, width)
    if flop_drop <= 0 or any(v > 0 for v in lost.values()):
        return None
    shapes = ", ".join(f"{name} {before[name]} -> {after[name]}" for name in before if name in after)
    single = [name for name in before if before[name] <= width]
    why = (f" {' and '.join(single)} {'is' if len(single) == 1 else 'are'} a single block: rounding channel counts to "
           f"{width} could only keep {'it' if len(single) == 1 else 'them'} whole or remove {'it' if len(single) == 1 else 'them'}."
           if single else "")
    return (f"the {100 * flop_drop:.1f}% FLOP drop is not a speed-up: {shapes} channels leave every layer the same number "
            f"of {width}-float blocks (this CPU's vector width), which the fast CPU runtimes (oneDNN under PyTorch, ONNX "
            f"Runtime's NCHWc) compute whole; count latency, not FLOPs (benchmarks/RESULTS-removal.md).{why}")


def cost_change(before: dict, after: dict) -> dict:
    """Relative drops (0.5 = halved) of each cost, and latency drop over FLOP drop."""
    keys = ["parameters", "flops_per_image", "latency_batch1_ms", "latency_full_batch_ms"]
    drop = {f"{k}_drop": 1 - after[k] / before[k] if before[k] else 0.0 for k in keys}
    flop_drop = drop["flops_per_image_drop"]
    for k in ("latency_batch1_ms", "latency_full_batch_ms"):
        drop[f"{k}_drop_over_flop_drop"] = drop[f"{k}_drop"] / flop_drop if flop_drop else float("nan")
    return drop
