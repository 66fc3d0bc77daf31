"""Does removal buy speed for the networks people deploy: the `best` recipe's ensemble and the `transfer`
recipe's FER2013 mini-Xception, each pruned to about half its MACs (l2, same ratio per layer, Torch-Pruning's
dependency graph, fexprune.pruning.structured) with and without `round_to` = the vector width (16 floats
with AVX-512). Latency at batch 1 and at a full batch of 540 90x72 images, in PyTorch eager (NCHW, as
`fexprune prune` measures) and in ONNX Runtime, the runtime `fexprune export` writes for, with and without
its blocked channel layout (NCHWc).

The claim checked: with round_to = 16, latency drop >= 0.8 x FLOP drop for both networks at both batch
sizes in the fastest runtime. Rewrites the section between the markers in benchmarks/RESULTS-removal.md;
exit 1 when not met.

    python benchmarks/bench_removal_recipes.py --transfer-run RUNS/transfer-... [--best-run RUNS/best-...]

Without --best-run the best recipe's default network (3 members, 16/32/64, the whole 9x11 last map) is
built with random weights; latency does not depend on weights, and which channels go does not change the
shapes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

from fexprune.models.best_cnn import BestCNNConfig, BestEnsemble
from fexprune.models.checkpoint import load_model
from fexprune.pruning.measure import count_macs, vector_width
from fexprune.pruning.structured import StructuredConfig, layer_widths, prune_to_macs
from fexprune.recipes.best import last_map_size

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_removal import eager, median_of_rounds, onnx_runtime  # noqa: E402
from bench_training import load, machine  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS-removal.md")
BEGIN, END = "<!-- bench_removal_recipes: begin -->", "<!-- bench_removal_recipes: end -->"


def networks(args) -> dict[str, torch.nn.Module]:
    found = {}
    if args.best_run:
        found["best"] = load_model(Path(args.best_run) / "model.pt")[0]
    else:
        torch.manual_seed(0)
        found["best"] = BestEnsemble(BestCNNConfig(members=3, pooled=last_map_size(72, 90, 3), input_size=(90, 72)))
    found["transfer"] = load_model(Path(args.transfer_run) / "model.pt")[0]
    return {name: model.eval() for name, model in found.items()}


def widths(model) -> str:
    """Output channels of the prunable convs in order, runs collapsed (8,8,8,16 -> 8x3/16); an ensemble: one member."""
    values = list(layer_widths(model).values())
    members = getattr(model, "members", None)
    suffix = ""
    if members is not None and len(members) > 1:
        values, suffix = values[: len(values) // len(members)], f" (each of {len(members)})"
    runs: list[list[int]] = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return "/".join(f"{v}x{n}" if n > 1 else str(v) for v, n in runs) + suffix


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfer-run", required=True, help="a finished `fexprune train --recipe transfer` run")
    parser.add_argument("--best-run", help="a finished `fexprune train --recipe best` run (default: the default network, random weights)")
    parser.add_argument("--target", type=float, default=0.5, help="fraction of MACs removed (default 0.5)")
    parser.add_argument("--round-to", type=int, default=None, help="default: this CPU's vector width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40, help="batch-1 repeats per round (full batch: a quarter)")
    parser.add_argument("--batch", type=int, default=540)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width = args.round_to or vector_width()
    x = torch.randn(args.batch, 1, 72, 90, generator=torch.Generator().manual_seed(0))
    example = x[:1]
    load_before, info = load(), machine()

    pairs = []  # per network and rounding: base, pruned, FLOP drop
    for name, model in networks(args).items():
        for round_to in (None, width):
            result = prune_to_macs(model, example, StructuredConfig(target_macs=1 - args.target, criterion="l2", round_to=round_to))
            with torch.no_grad():
                result.model(x[:8])  # runs
            pairs.append({"network": name, "round_to": round_to, "base": model, "pruned": result.model,
                          "flop_drop": 1 - result.macs_ratio, "widths": (widths(model), widths(result.model))})
    runtimes = {"PyTorch eager, NCHW": lambda m: eager(m, channels_last=False)}
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        runtimes["ONNX Runtime, NCHWc (all optimisations)"] = lambda m: onnx_runtime(m, True, args.threads)
        runtimes["ONNX Runtime, NCHW (no layout blocking)"] = lambda m: onnx_runtime(m, False, args.threads)

    measured = {}  # runtime -> [(base ms, pruned ms) per pair] for batch 1 and full batch
    for runtime, make in runtimes.items():
        bases = {p["network"]: p["base"] for p in pairs}
        callables = [make(m) for m in bases.values()] + [make(p["pruned"]) for p in pairs]
        one = median_of_rounds(callables, x[:1], args.repeats, args.rounds)
        full = median_of_rounds(callables, x, max(3, args.repeats // 4), args.rounds)
        index = {name: i for i, name in enumerate(bases)}
        measured[runtime] = [((1000 * one[index[p["network"]]], 1000 * one[len(bases) + k]),
                              (1000 * full[index[p["network"]]], 1000 * full[len(bases) + k])) for k, p in enumerate(pairs)]

    lines = [
        BEGIN,
        f"## The best and transfer networks pruned to about {100 * args.target:.0f}% fewer MACs, with and without round_to {width}\n",
        f"`python benchmarks/bench_removal_recipes.py --transfer-run RUN{' --best-run RUN' if args.best_run else ''} "
        f"--threads {args.threads} --repeats {args.repeats}` on {info['date']}; CPU {info['cpu']} "
        f"(torch CPU capability {torch.backends.cpu.get_cpu_capability()}, vector width {width} floats), torch {info['torch']}, "
        f"{args.threads} thread(s), Python {info['python']}; load average before {load_before}, after {load()} "
        "(2 cores shared with another agent's benchmarks).\n",
        f"best: {'the run given' if args.best_run else 'the recipe default network (3 members of 16/32/64, whole 9x11 last map), random weights'}; "
        f"transfer: the trained `--recipe transfer` run given ({Path(args.transfer_run).name}). Pruned with l2, the same ratio per "
        f"layer, to the largest network at or under {100 * (1 - args.target):.0f}% of the MACs (the classifier never pruned). "
        "Latency: median of interleaved calls, median of "
        f"{args.rounds} rounds. Ratio = latency drop / FLOP drop.\n",
    ]
    ratios = {}
    for runtime, rows in measured.items():
        lines += [f"### {runtime}\n",
                  f"| network | round_to | channels (prunable convs) | FLOP drop | batch 1 (ms) before -> after | drop | ratio "
                  f"| batch {args.batch} (ms) before -> after | drop | ratio |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for pair, (one, full) in zip(pairs, rows):
            drops = [1 - after / before for before, after in (one, full)]
            r = [d / pair["flop_drop"] for d in drops]
            ratios.setdefault(runtime, []).append(r)
            lines.append(f"| {pair['network']} | {pair['round_to'] or '-'} | {pair['widths'][0]} -> {pair['widths'][1]} "
                         f"| {100 * pair['flop_drop']:.1f}% | {one[0]:.3f} -> {one[1]:.3f} | {100 * drops[0]:.1f}% | {r[0]:.2f} "
                         f"| {full[0]:.1f} -> {full[1]:.1f} | {100 * drops[1]:.1f}% | {r[1]:.2f} |")
        lines.append("")
    fastest = min(measured, key=lambda rt: sum(one[0] for one, _ in measured[rt]))
    rounded = [k for k, p in enumerate(pairs) if p["round_to"]]
    met = all(min(ratios[fastest][k]) >= 0.8 for k in rounded)
    lines += [f"Fastest runtime (unpruned networks, batch 1): {fastest}."]
    for k in rounded:
        p = pairs[k]
        lines.append(f"- {p['network']}, round_to {p['round_to']}: FLOP drop {100 * p['flop_drop']:.1f}%, ratios "
                     f"{', '.join(f'{v:.2f}' for v in ratios[fastest][k])} (batch 1, full): "
                     f"**{'MET' if min(ratios[fastest][k]) >= 0.8 else 'NOT MET'}**")
    for k, p in enumerate(pairs):
        if not p["round_to"]:
            lines.append(f"- {p['network']}, any channel count: FLOP drop {100 * p['flop_drop']:.1f}%, ratios "
                         f"{', '.join(f'{v:.2f}' for v in ratios[fastest][k])} (batch 1, full)")
    lines += ["", END]
    section = "\n".join(lines)
    text = RESULTS.read_text() if RESULTS.is_file() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    print(section)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
