"""Does real removal buy real speed? Prune the paper's 16/32 network (half of both layers, half of one,
the paper's 3 conv1 kernels), remove the channels with Torch-Pruning, and measure FLOP drop against CPU
latency drop in one run, at batch 1 and over a full batch of 540 90x72 images, in four CPU runtimes:
PyTorch eager (NCHW, as `fexprune prune` measures; and channels_last, as training runs), and ONNX
Runtime with and without its blocked channel layout (NCHWc). A 32/64 network halved to 16/32 shows what
happens when every channel count stays a multiple of the 16-float AVX-512 vector.

The claim checked: latency drop >= 80% of FLOP drop for the headline pruning (half of both layers), at
both batch sizes, in the fastest runtime. Writes benchmarks/RESULTS-removal.md; exit 1 when not met.

    python benchmarks/bench_removal.py [--threads 1] [--repeats 40]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import sys
from pathlib import Path

import torch

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.pruning.criteria import L2Importance
from fexprune.pruning.masking import ChannelMasks
from fexprune.pruning.measure import count_macs, paired_latency
from fexprune.pruning.removal import remove_pruned_channels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import load, machine  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS-removal.md")

# name -> (base channels, kernels pruned in conv1 and conv2, lowest L2 first); the first is the headline.
PRUNINGS = {
    "half of conv1 and conv2 (16/32 -> 8/16)": ((16, 32), (8, 16)),
    "half of conv1 (16/32 -> 8/32)": ((16, 32), (8, 0)),
    "half of conv2 (16/32 -> 16/16)": ((16, 32), (0, 16)),
    "the paper's 3 conv1 kernels (16/32 -> 13/32)": ((16, 32), (3, 0)),
    "half of both, multiples of 16 (32/64 -> 16/32)": ((32, 64), (16, 32)),
}


def lowest_l2(model: ExpressionCNN, counts: tuple[int, int]) -> ChannelMasks:
    """Masks for the `counts` lowest-L2 kernels of conv1 and conv2."""
    masks = ChannelMasks.for_model(model, ["conv1", "conv2"])
    for layer, count in zip(("conv1", "conv2"), counts):
        scores = L2Importance()(model, layer, None)
        for channel in scores.argsort()[:count]:
            masks.prune(model, layer, int(channel))
    return masks


def eager(model: torch.nn.Module, channels_last: bool):
    """A callable running the model in PyTorch eager mode (inference mode) on an NCHW tensor."""
    model = copy.deepcopy(model).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run(x: torch.Tensor):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return model(x)

    return run


def onnx_runtime(model: torch.nn.Module, blocked_layout: bool, threads: int):
    """A callable running the model's ONNX export in ONNX Runtime (CPU). ORT_ENABLE_ALL adds the NCHWc
    layout (channels in blocks of the vector width); ORT_ENABLE_EXTENDED keeps NCHW (im2col + GEMM)."""
    import onnxruntime

    from fexprune.inference.export import INPUT_NAME, onnx_bytes

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    level = "ORT_ENABLE_ALL" if blocked_layout else "ORT_ENABLE_EXTENDED"
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, level)
    session = onnxruntime.InferenceSession(onnx_bytes(model, 72, 90), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x.numpy()})


def runtimes(threads: int) -> dict:
    found = {
        "PyTorch eager, NCHW": lambda m: eager(m, channels_last=False),
        "PyTorch eager, channels_last": lambda m: eager(m, channels_last=True),
    }
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        found["ONNX Runtime, NCHWc (all optimisations)"] = lambda m: onnx_runtime(m, True, threads)
        found["ONNX Runtime, NCHW (no layout blocking)"] = lambda m: onnx_runtime(m, False, threads)
    return found


def build_models(x: torch.Tensor) -> tuple[dict, list[dict], float]:
    """The base networks and, per pruning, the removed network; FLOPs; largest removed-vs-masked gap."""
    bases, pairs, worst = {}, [], 0.0
    for name, (channels, counts) in PRUNINGS.items():
        if channels not in bases:
            torch.manual_seed(0)
            bases[channels] = ExpressionCNN(CNNConfig(channels=channels)).eval()
        masked = copy.deepcopy(bases[channels])
        removed = remove_pruned_channels(masked, lowest_l2(masked, counts))
        with torch.no_grad():
            worst = max(worst, (removed(x[:64]) - masked(x[:64])).abs().max().item())
        pairs.append({"name": name, "base": channels, "removed": removed, "channels": tuple(removed.config.channels),
                      "flop_drop": 1 - count_macs(removed, x) / count_macs(bases[channels], x)})
    return bases, pairs, worst


def median_of_rounds(callables: list, x, repeats: int, rounds: int = 3) -> list[float]:
    """Interleaved medians (see paired_latency), then the median over a few rounds of them."""
    measured = [paired_latency(callables, x, repeats) for _ in range(rounds)]
    return [statistics.median(column) for column in zip(*measured)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40, help="batch-1 repeats per round (full batch: a quarter)")
    parser.add_argument("--batch", type=int, default=540)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 1, 72, 90, generator=torch.Generator().manual_seed(0))
    bases, pairs, worst = build_models(x)
    load_before, info = load(), machine()

    results = {}  # runtime -> {model key -> (batch-1 ms, full-batch ms)}
    for runtime, make in runtimes(args.threads).items():
        keys = [("base", c) for c in bases] + [("removed", p["name"]) for p in pairs]
        callables = [make(m) for m in bases.values()] + [make(p["removed"]) for p in pairs]
        one = median_of_rounds(callables, x[:1], args.repeats)
        full = median_of_rounds(callables, x, max(3, args.repeats // 4))
        results[runtime] = {key: (1000 * a, 1000 * b) for key, a, b in zip(keys, one, full)}

    lines = [
        "# Removal benchmark: FLOP drop against measured latency drop\n",
        f"`python benchmarks/bench_removal.py --threads {args.threads} --repeats {args.repeats}` on "
        f"{info['date']}; CPU {info['cpu']}, torch {info['torch']}, {args.threads} thread(s), Python {info['python']}; "
        f"load average before {load_before}, after {load()}.\n",
        "Networks with random weights (latency does not depend on them); the lowest-L2 kernels pruned, then "
        f"removed with Torch-Pruning (largest output difference removed vs masked: {worst:.1e}). Latency: "
        "median of interleaved calls of every model in the runtime (so drift hits them alike), median of 3 rounds. "
        "Ratio = latency drop / FLOP drop; 1.00 means latency falls as much as FLOPs.\n",
    ]
    ratios = {}  # runtime -> pruning name -> (batch-1 ratio, full-batch ratio)
    for runtime, measured in results.items():
        lines += [f"## {runtime}\n",
                  f"| pruning | channels | FLOP drop | batch 1 (ms) before -> after | drop | ratio "
                  f"| batch {args.batch} (ms) before -> after | drop | ratio |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for pair in pairs:
            before, after = measured[("base", pair["base"])], measured[("removed", pair["name"])]
            drops = [1 - a / b for a, b in zip(after, before)]
            ratios.setdefault(runtime, {})[pair["name"]] = [d / pair["flop_drop"] for d in drops]
            r = ratios[runtime][pair["name"]]
            lines.append(
                f"| {pair['name']} | {'/'.join(map(str, pair['base']))} -> {'/'.join(map(str, pair['channels']))} "
                f"| {100 * pair['flop_drop']:.1f}% | {before[0]:.3f} -> {after[0]:.3f} | {100 * drops[0]:.1f}% | {r[0]:.2f} "
                f"| {before[1]:.1f} -> {after[1]:.1f} | {100 * drops[1]:.1f}% | {r[1]:.2f} |")
        lines.append("")
    headline, aligned = pairs[0]["name"], pairs[-1]["name"]
    fastest = min(results, key=lambda r: results[r][("base", pairs[0]["base"])][0])
    met = min(ratios[fastest][headline]) >= 0.8
    lines += [
        f"Fastest runtime for the unpruned 16/32 at batch 1: {fastest}.",
        f"- Headline, {headline}: ratios {', '.join(f'{v:.2f}' for v in ratios[fastest][headline])} (batch 1, full); "
        f"latency drop >= 80% of FLOP drop at both batch sizes: **{'MET' if met else 'NOT MET'}**.",
        f"- {aligned}: ratios {', '.join(f'{v:.2f}' for v in ratios[fastest][aligned])}.",
        "- Smallest headline ratio per runtime: " + "; ".join(f"{r}: {min(v[headline]):.2f}" for r, v in ratios.items()) + ".\n",
        "Reading it: the fast CPU runtimes (oneDNN under PyTorch, ONNX Runtime's NCHWc) compute channels in blocks "
        "of the vector width (16 floats with AVX-512), so a layer of 13 channels costs about what 16 cost and one of 8 "
        "fills half of each vector; conv1 (one input channel) and the max-pools are memory-bound and fall with the "
        "channel count, not with FLOPs. FLOPs count none of this. Where every count stays a multiple of 16 (32/64 -> "
        "16/32) latency does fall with FLOPs; the paper's 16/32 network is too narrow for that (its conv1 cannot lose "
        "a block). Without channel blocking (ONNX Runtime's NCHW im2col + GEMM) latency follows FLOPs more closely, "
        "at about twice the absolute latency.",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
