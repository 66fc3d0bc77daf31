"""`--recipe probe` on the random and the movie split, several seeds, each run paired with the FER2013
network's zero-shot accuracy on the same test split (results.json's zero_shot_test_accuracy: the pretrained
classifier, its rows matched by class name, one cut, no mirror). Runs one after another in this process
(1 thread); prints one line per run and writes a markdown table (per seed, mean +- sd per split, and the
paired difference with its standard error) to --out.

    python benchmarks/bench_probe.py --data ~/sfew/Images [--seeds 0 1 2 3 4] [--detectors ...] [--eye-align] [--out /tmp/probe.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="image folder (default: the built-in synthetic data)")
    parser.add_argument("--splits", nargs="+", default=["random", "movie"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--detectors", help="face-detection chain (default: the library's)")
    parser.add_argument("--eye-align", action=argparse.BooleanOptionalAction, default=None,
                        help="align each found face (default: the recipe's)")
    parser.add_argument("--runs", type=Path, default=Path("runs") / "bench-probe")
    parser.add_argument("--out", type=Path, default=Path("RESULTS-probe.md"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from fexprune.experiments.train import TrainConfig, train
    from fexprune.recipes import recipe_defaults

    rows, started = [], time.perf_counter()
    for split in args.splits:
        for seed in args.seeds:
            faces = {**({"detectors": tuple(args.detectors.split(","))} if args.detectors else {}),
                     **({"eye_align": args.eye_align} if args.eye_align is not None else {})}
            config = TrainConfig(data=args.data, recipe="probe", face_crop=True, split=split, seed=seed,
                                 **{**recipe_defaults("probe"), **faces})
            r = train(config, out=args.runs / f"probe-{split}-{seed}", progress=False).results
            row = {"split": split, "seed": seed, "test": r["test_accuracy"], "zero_shot": r["zero_shot_test_accuracy"],
                   "C": r["training"]["C"], "train": r["train_accuracy"], "n_test": r["n_test"], "seconds": r["seconds"],
                   "provenance": r["provenance"]}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "provenance"}), flush=True)
            print(f"[{len(rows)}, {(time.perf_counter() - started) / 60:.1f} min] {split} seed {seed}: probe {100 * row['test']:.1f}%, "
                  f"zero-shot {100 * row['zero_shot']:.1f}%", file=sys.stderr, flush=True)
    lines = ["| split | seed | probe test % | zero-shot test % | C | train % | n test | s |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['split']} | {r['seed']} | {100 * r['test']:.1f} | {100 * r['zero_shot']:.1f} | {r['C']:g} | {100 * r['train']:.1f} | "
              f"{r['n_test']} | {r['seconds']:.0f} |" for r in rows]
    lines += ["", "| split | probe, mean +- sd % | zero-shot, mean +- sd % | paired difference (se) |", "|---|---|---|---|"]
    for split in args.splits:
        mine = [r for r in rows if r["split"] == split]
        probe, zero = [100 * r["test"] for r in mine], [100 * r["zero_shot"] for r in mine]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        diff = [a - b for a, b in zip(probe, zero)]
        lines.append(f"| {split} | {statistics.mean(probe):.1f} +- {sd(probe):.1f} | {statistics.mean(zero):.1f} +- {sd(zero):.1f} | "
                     f"{statistics.mean(diff):+.1f} ({sd(diff) / len(diff) ** 0.5:.1f}) |")
    lines += ["", f"Weights: {rows[0]['provenance']}.", f"Total {(time.perf_counter() - started) / 60:.1f} min."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
