"""Merging on the real SFEW movie split: trained networks (one per seed) pruned to 30% of their MACs removed
WITHOUT fine-tuning (and, with --finetune N, after N epochs of the curve's own fine-tuning), each criterion cut
only and with Gedeon's merge (fexprune.pruning.merging), all on the same trained network of a seed (paired).

Each run is read as `fexprune prune --curve` reads it (fexprune.inference.trained_run.load_run: its model and its
own train/test split) and pruned as the curve prunes it (fexprune.pruning.structured, layers "all", one
step, local: every prunable conv loses the same fraction of its channels; for the best recipe's 3-member
ensemble that is every conv of every member, the members' classifiers kept). Under local pruning the widths
depend on the channel ratio alone, so the ratio that reaches the MACs target is searched once (prune_to_macs,
"l2") and every criterion prunes at that ratio (prune_by_ratio): the same widths and MACs for all, checked.

The sample for distinctiveness and for the merge's least squares: `--sample` images of the run's training
split (seeded by the run's seed). Test accuracy on the run's test split, plain forward pass.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src:/root/weightpkgs nice -n 10 python benchmarks/bench_merge_sfew.py \
        --name paper --finetune 3 --runs /root/evidence/paper-movie-s{0,1,2,3,4}

Writes (or replaces) its block for `--name` in benchmarks/RESULTS-merging.md; the text outside the blocks
is left as it is.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from fexprune.experiments.prune_curve import _recipe_augment, _train
from fexprune.inference.trained_run import load_run
from fexprune.pruning.measure import count_macs, tp_macs_and_params
from fexprune.pruning.structured import StructuredConfig, layer_widths, prune_by_ratio, prune_to_macs
from fexprune.training.loop import evaluate

RESULTS = Path(__file__).with_name("RESULTS-merging.md")
REFERENCE = "distinctiveness + merge"
VARIANTS = [(REFERENCE, "distinctiveness", True), ("distinctiveness, cut only", "distinctiveness", False),
            ("l2, cut only", "l2", False), ("l2 + merge", "l2", True),
            ("fpgm, cut only", "fpgm", False), ("fpgm + merge", "fpgm", True),
            ("random, cut only", "random", False), ("random + merge", "random", True)]
FINETUNED = [REFERENCE, "l2, cut only", "random, cut only"]


def accuracy(model, trained) -> float:
    return 100 * evaluate(model, trained.x_test, trained.y_test)[1]


@torch.no_grad()
def predictions(model, trained) -> torch.Tensor:
    return model.eval()(trained.x_test).argmax(1)


def agreement(model, trained, unpruned: torch.Tensor) -> float:
    """% of test frames given the unpruned network's class: how much of its function the pruning kept, with
    far less noise than accuracy over a few hundred frames."""
    return 100 * float((predictions(model, trained) == unpruned).float().mean())


def one_run(path: Path, target: float, sample_size: int, finetune_epochs: int) -> dict:
    started = time.perf_counter()
    trained = load_run(path)
    base = trained.model.eval()
    seed = trained.config.seed
    pick = torch.randperm(len(trained.x_train), generator=torch.Generator().manual_seed(seed))[:sample_size]
    sample, batch = trained.x_train[pick], (trained.x_train[pick], trained.y_train[pick])
    example = trained.x_test[:1]
    found = prune_to_macs(base, example, StructuredConfig(target_macs=1 - target, criterion="l2", seed=seed))
    ratio = found.steps[0]["channel_ratio"]
    macs, tp_macs = count_macs(base, example), tp_macs_and_params(copy.deepcopy(base), example)[0]
    scores = {"unpruned": accuracy(base, trained)}
    unpruned = predictions(base, trained)
    agreements = {"unpruned": 100.0}
    costs, tuned = {}, {}
    augment = _recipe_augment(trained)
    for label, criterion, merge in VARIANTS:
        config = StructuredConfig(target_macs=1 - target, criterion=criterion, seed=seed, merge=merge)
        pruned = prune_by_ratio(copy.deepcopy(base), example, ratio, config, sample_x=sample, batch=batch).eval()
        if layer_widths(pruned) != found.widths_after:
            raise AssertionError(f"{label}: widths {layer_widths(pruned)} differ from {found.widths_after}")
        costs[label] = (count_macs(pruned, example) / macs, tp_macs_and_params(copy.deepcopy(pruned), example)[0] / tp_macs)
        scores[label], agreements[label] = accuracy(pruned, trained), agreement(pruned, trained, unpruned)
        print(f"  {path.name} {label}: {scores[label]:.1f}% accuracy, {agreements[label]:.1f}% agreement", flush=True)
        if finetune_epochs and label in FINETUNED:
            # the curve's fine-tuning: AdamW 1e-3 on a cosine, batches of 32, the recipe's augmentation, the
            # unpruned network as teacher (0.7 of the loss, temperature 4)
            _train(pruned, trained.x_train, trained.y_train, finetune_epochs, 1e-3, 32, seed, augment_config=augment,
                   teacher=base, distill=0.7, temperature=4.0)
            name = f"{label}, fine-tuned {finetune_epochs} epochs"
            tuned[name], agreements[name] = accuracy(pruned, trained), agreement(pruned, trained, unpruned)
    scores.update(tuned)  # after every variant without fine-tuning, so each table lists those first
    majority = 100 * float((trained.y_test == torch.mode(trained.y_train).values).float().mean())
    return {"seed": seed, "scores": scores, "agreements": agreements, "costs": costs, "majority": majority,
            "ratio": ratio, "widths": found.widths_after,
            "n_train": len(trained.x_train), "n_test": len(trained.x_test), "sample": len(sample),
            "recipe": trained.config.recipe, "seconds": time.perf_counter() - started}


def _mean_sd(values: list[float], signed: bool = False) -> str:
    mean = f"{statistics.mean(values):+.1f}" if signed else f"{statistics.mean(values):.1f}"
    return f"{mean} ± {statistics.stdev(values):.1f}" if len(values) > 1 else mean  # one run: no spread


def table(per_run: list[dict], measure: str, unit: str) -> str:
    labels = list(per_run[0]["scores"])
    base = [r[measure]["unpruned"] for r in per_run]
    lines = [f"| | {unit}, mean ± sd | change against unpruned | "
             f"paired difference: {REFERENCE} minus this row | per seed |", "|---|---|---|---|---|"]
    for label in labels:
        values = [r[measure][label] for r in per_run]
        change = _mean_sd([v - b for v, b in zip(values, base)], signed=True) if label != "unpruned" else ""
        # a fine-tuned row is compared with distinctiveness + merge fine-tuned alike
        reference_label = REFERENCE + label[label.index(", fine-tuned"):] if ", fine-tuned" in label else REFERENCE
        reference = [r[measure][reference_label] for r in per_run]
        differences = [a - v for a, v in zip(reference, values)]
        paired = "" if label in (reference_label, "unpruned") else \
            f"{_mean_sd(differences, signed=True)} ({sum(d > 0 for d in differences)} of {len(differences)} ahead)"
        lines.append(f"| {label} | {_mean_sd(values)} | {change} | {paired} | " + " ".join(f"{v:.1f}" for v in values) + " |")
    return "\n".join(lines)


def section(name: str, per_run: list[dict], args) -> str:
    seconds = sum(r["seconds"] for r in per_run)
    first = per_run[0]
    macs = [c[0] for r in per_run for c in r["costs"].values()]
    tp = [c[1] for r in per_run for c in r["costs"].values()]
    widths = "/".join(str(w) for w in first["widths"].values())
    sizes = ", ".join(f"{r['n_train']} / {r['n_test']}" for r in per_run)
    text = [f"<!-- bench_merge_sfew.py {name} -->",
            f"## Real SFEW movie split, {first['recipe']} recipe: {100 * args.target:g}% of MACs removed (bench_merge_sfew.py)", "",
            f"{len(per_run)} trained run{'s' if len(per_run) > 1 else ''} (seeds {', '.join(str(r['seed']) for r in per_run)}; train / test frames "
            f"{sizes}); channel ratio {first['ratio']:.3f} per layer, widths "
            f"of the prunable convs after (seed {first['seed']}): {widths}. MACs kept: {min(macs):.3f}-{max(macs):.3f} (fexprune count_macs), "
            f"{min(tp):.3f}-{max(tp):.3f} (tp.utils.count_ops_and_params). Distinctiveness and merge sample: "
            f"{first['sample']} training images. {seconds / 60:.0f} min on one thread of {platform.processor() or platform.machine()}, "
            f"a shared 2-core machine. Always answering the training split's most frequent class scores "
            f"{_mean_sd([r['majority'] for r in per_run])}% on the test splits (chance 1/7: 14.3%).", "",
            f"    {args.command}", "",
            "Test accuracy (%):", "", table(per_run, "scores", "test accuracy %"), "",
            "Agreement with the unpruned network (% of test frames given its class):", "",
            table(per_run, "agreements", "agreement %"), "", f"<!-- end bench_merge_sfew.py {name} -->"]
    return "\n".join(text)


def write_section(name: str, block: str) -> None:
    text = RESULTS.read_text() if RESULTS.is_file() else ""
    start, end = f"<!-- bench_merge_sfew.py {name} -->", f"<!-- end bench_merge_sfew.py {name} -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="train run folders, one per seed")
    parser.add_argument("--name", required=True, help="the block's name in RESULTS-merging.md (e.g. paper, best)")
    parser.add_argument("--target", type=float, default=0.3, help="fraction of MACs removed")
    parser.add_argument("--sample", type=int, default=256, help="training images for distinctiveness and the merge")
    parser.add_argument("--finetune", type=int, default=0, help="also fine-tune three of the variants this many epochs")
    parser.add_argument("--cache", type=Path, default=None,
                        help="a JSON file of finished runs' numbers, read and extended: a rerun with more runs measures only the new ones")
    args = parser.parse_args()
    args.command = ("python benchmarks/bench_merge_sfew.py " + f"--name {args.name} --target {args.target} --sample {args.sample} "
                    f"--finetune {args.finetune} --runs " + " ".join(str(p) for p in args.runs))
    torch.set_num_threads(1)
    cache = json.loads(args.cache.read_text()) if args.cache is not None and args.cache.is_file() else {}
    per_run = []
    for path in args.runs:
        key = f"{path.resolve()} target {args.target} sample {args.sample} finetune {args.finetune}"
        print(path, "(cached)" if key in cache else "", flush=True)
        if key not in cache:
            cache[key] = one_run(path, args.target, args.sample, args.finetune)
            if args.cache is not None:
                args.cache.write_text(json.dumps(cache, indent=1))
        per_run.append(cache[key])
    block = section(args.name, per_run, args)
    write_section(args.name, block)
    print(block)


if __name__ == "__main__":
    main()
