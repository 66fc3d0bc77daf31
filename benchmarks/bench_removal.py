"""Does real removal buy real speed? Prune half of conv1 and conv2 of the paper's 16/32 network (and, for
context, half of one layer, and the paper's 3 conv1 kernels), remove the channels, and measure FLOP drop
and CPU latency drop in one run (full batch of 540 90x72 images, and batch 1). The claim checked on the
first: latency drop >= 80% of FLOP drop. Writes benchmarks/RESULTS-removal.md; exit 1 when not met.

    python benchmarks/bench_removal.py [--threads 1] [--repeats 30]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import platform
from pathlib import Path

import torch

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.pruning.criteria import L2Importance
from fexprune.pruning.masking import ChannelMasks
from fexprune.pruning.measure import cost_change, model_costs
from fexprune.pruning.removal import remove_pruned_channels

RESULTS = Path(__file__).with_name("RESULTS-removal.md")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# name -> kernels pruned (lowest L2 first) in conv1 and conv2; the first one is the headline check.
PRUNINGS = {
    "half of conv1 and conv2 (8/16)": (8, 16),
    "half of conv1 (8/32)": (8, 0),
    "half of conv2 (16/16)": (0, 16),
    "the paper's 3 conv1 kernels (13/32)": (3, 0),
}


def lowest_l2(model: ExpressionCNN, counts: tuple[int, int]) -> ChannelMasks:
    """Masks for the `counts` lowest-L2 kernels of conv1 and conv2."""
    masks = ChannelMasks.for_model(model, ["conv1", "conv2"])
    for layer, count in zip(("conv1", "conv2"), counts):
        scores = L2Importance()(model, layer, None)
        for channel in scores.argsort()[:count]:
            masks.prune(model, layer, int(channel))
    return masks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40, help="batch-1 repeats (full batch: a quarter)")
    parser.add_argument("--batch", type=int, default=540)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ExpressionCNN(CNNConfig(channels=(16, 32))).eval()
    x = torch.randn(args.batch, 1, 72, 90)
    smaller, differences = [], []
    for counts in PRUNINGS.values():
        masked = copy.deepcopy(model)
        masks = lowest_l2(masked, counts)
        smaller.append(remove_pruned_channels(masked, masks))
        with torch.no_grad():
            differences.append((smaller[-1](x[:64]) - masked(x[:64])).abs().max().item())
    costs = model_costs([model, *smaller], x, args.repeats, max(5, args.repeats // 4))
    before = costs[0]

    lines = [
        "# Removal benchmark: FLOP drop against measured latency drop\n",
        f"`python benchmarks/bench_removal.py --threads {args.threads} --repeats {args.repeats}` on "
        f"{datetime.date.today().isoformat()}; CPU {cpu_name()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), Python {platform.python_version()}, eager PyTorch, inference mode.\n",
        "Network 16/32 (90x72 input, random weights: latency does not depend on them); the lowest-L2 kernels "
        "pruned, then removed with Torch-Pruning. Largest output difference removed vs masked: "
        f"{max(differences):.1e}. Latency: median of repeats, all models' calls interleaved so the drift of a "
        "shared machine hits them alike.\n",
        f"| pruning | parameters | MFLOPs / image | FLOP drop | batch 1 (ms) | drop | batch {args.batch} (ms) | drop "
        "| latency drop / FLOP drop (batch 1, full) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| none (16/32) | {before['parameters']} | {before['flops_per_image'] / 1e6:.2f} | | "
        f"{before['latency_batch1_ms']:.3f} | | {before['latency_full_batch_ms']:.1f} | | |",
    ]
    verdicts = []
    for name, cost in zip(PRUNINGS, costs[1:]):
        change = cost_change(before, cost)
        ratios = (change["latency_batch1_ms_drop_over_flop_drop"], change["latency_full_batch_ms_drop_over_flop_drop"])
        verdicts.append(all(r >= 0.8 for r in ratios))
        lines.append(
            f"| {name} | {cost['parameters']} | {cost['flops_per_image'] / 1e6:.2f} | "
            f"{100 * change['flops_per_image_drop']:.1f}% | {cost['latency_batch1_ms']:.3f} | "
            f"{100 * change['latency_batch1_ms_drop']:.1f}% | {cost['latency_full_batch_ms']:.1f} | "
            f"{100 * change['latency_full_batch_ms_drop']:.1f}% | {ratios[0]:.2f}, {ratios[1]:.2f} |"
        )
    lines += ["", f"Headline ({next(iter(PRUNINGS))}): latency drop >= 80% of FLOP drop at both batch sizes: "
              f"{'MET' if verdicts[0] else 'NOT MET'}.", "",
              "Why latency falls less than FLOPs here: conv1 (one input channel), the ReLUs and the max-pools are "
              "memory-bound (writing and page-faulting fresh activation buffers); their time scales with the "
              "number of channels (-50% for half), not with FLOPs. Only conv2 is compute-bound, and its FLOPs "
              "fall by 75% when both its inputs and outputs are halved. FLOPs count none of the memory traffic, "
              "so they overstate the speed-up of pruning this small network on a CPU.", ""]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    print(text)
    return 0 if verdicts[0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
