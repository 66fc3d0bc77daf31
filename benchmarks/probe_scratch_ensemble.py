"""The pretrained probe and the from-scratch best network averaged: for each split and seed, the test
probabilities of a `--recipe probe` run and a `--recipe best` run on the same test frames (each scored as its
recipe scores: as cut, mirrored, cut at two other margins, each on its own crops), then their mean. Reads the
run folders bench_probe.py (--probe-runs, probe-SPLIT-SEED) and bench_recipes.py (--best-runs, best-SPLIT-SEED)
wrote. Prints one JSON line per run pair and a summary (mean +- sd per split, paired differences, se).

    python benchmarks/probe_scratch_ensemble.py --probe-runs /tmp/probe/runs --best-runs /tmp/judged/runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def test_probabilities(run_dir: Path):
    """(test file names, probabilities, labels) of a finished run, scored as its recipe scored its test split."""
    from fexprune.data.prepared import cut_margins
    from fexprune.inference.trained_run import load_run
    from fexprune.models.views import predict_logits

    run = load_run(run_dir)
    training = json.loads((run_dir / "results.json").read_text())["training"]
    spread = 0.0 if not training.get("tta_margins") else run.config.face_margin - training["tta_margins"][0]
    views = tuple(run.data.views_at(cut_margins(run.config, run.data, round(spread, 6))))
    probabilities = predict_logits(run.model, run.x_test, training.get("tta") == "hflip", views=views).exp()
    names = [run.data.image_set.samples[int(i)].path.name for i in run.data.test_index]
    return names, probabilities, run.y_test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-runs", type=Path, required=True)
    parser.add_argument("--best-runs", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["random", "movie"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for split in args.splits:
        for seed in args.seeds:
            probe_names, p_probe, y = test_probabilities(args.probe_runs / f"probe-{split}-{seed}")
            best_names, p_best, y_best = test_probabilities(args.best_runs / f"best-{split}-{seed}")
            if probe_names != best_names or not torch.equal(y, y_best):
                raise SystemExit(f"{split} {seed}: the two runs were tested on different frames")

            def accuracy(p):
                return float((p.argmax(1) == y).float().mean())

            row = {"split": split, "seed": seed, "probe": accuracy(p_probe), "best": accuracy(p_best),
                   "ensemble": accuracy((p_probe + p_best) / 2), "n_test": len(y)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for split in args.splits:
        mine = [r for r in rows if r["split"] == split]
        for name in ("best", "probe", "ensemble"):
            values = [100 * r[name] for r in mine]
            diff = [100 * (r[name] - r["probe"]) for r in mine]
            sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
            print(f"{split} {name}: " + " / ".join(f"{v:.1f}" for v in values) + f" = {statistics.mean(values):.1f} +- {sd(values):.1f}; "
                  f"vs probe {statistics.mean(diff):+.1f} (se {sd(diff) / len(diff) ** 0.5:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
