"""The probe recipe beside `--recipe transfer` (fine-tuned) on the same splits and seeds, and the two
averaged: each run's test probabilities (mirror + margin cuts, as both recipes score), then their mean.
Reads the probe's run folders that bench_probe.py wrote (--probe-runs) and trains transfer runs with its
defaults into --runs. Prints JSON lines and a summary (mean +- sd per split, paired differences, se).

    PYTHONPATH=src python3 benchmarks/probe_ensemble.py --data ~/sfew/Images --probe-runs /tmp/probe/runs
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
    parser.add_argument("--data")
    parser.add_argument("--probe-runs", type=Path, required=True)
    parser.add_argument("--splits", nargs="+", default=["random", "movie"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--runs", type=Path, default=Path("runs") / "bench-transfer")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from fexprune.data.prepared import cut_margins, prepare_data
    from fexprune.faces.loading import load_images
    from fexprune.experiments.train import TrainConfig, train
    from fexprune.models.checkpoint import load_model
    from fexprune.models.views import predict_logits
    from fexprune.recipes import recipe_defaults

    rows, started = [], time.perf_counter()
    for split in args.splits:
        for seed in args.seeds:
            config = TrainConfig(data=args.data, recipe="transfer", face_crop=True, split=split, seed=seed, **recipe_defaults("transfer"))
            tuned = train(config, out=args.runs / f"transfer-{split}-{seed}", progress=False)
            data = prepare_data(config, load_images(config, progress=False))  # normalisation "none", as the probe's
            views = tuple(data.views_at(cut_margins(config, data, 0.05)))
            probe, _ = load_model(args.probe_runs / f"probe-{split}-{seed}" / "model.pt")
            p_probe = predict_logits(probe, data.x_test, True, views=views).exp()
            p_tuned = predict_logits(tuned.model, data.x_test, True, views=views).exp()
            def accuracy(p, y=data.y_test):
                return float((p.argmax(1) == y).float().mean())

            probe_results = json.loads((args.probe_runs / f"probe-{split}-{seed}" / "results.json").read_text())
            row = {"split": split, "seed": seed, "probe": accuracy(p_probe), "transfer": accuracy(p_tuned),
                   "ensemble": accuracy((p_probe + p_tuned) / 2), "zero_shot": tuned.results["zero_shot_test_accuracy"],
                   "probe_recorded": probe_results["test_accuracy"], "transfer_recorded": tuned.results["test_accuracy"],
                   "transfer_seconds": tuned.results["seconds"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            print(f"[{len(rows)}, {(time.perf_counter() - started) / 60:.1f} min] {split} {seed}: probe {row['probe']:.3f} "
                  f"transfer {row['transfer']:.3f} ensemble {row['ensemble']:.3f}", file=sys.stderr, flush=True)
    for split in args.splits:
        mine = [r for r in rows if r["split"] == split]
        for name in ("zero_shot", "transfer", "probe", "ensemble"):
            values = [100 * r[name] for r in mine]
            diff = [100 * (r[name] - r["probe"]) for r in mine]
            sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
            print(f"{split} {name}: {statistics.mean(values):.1f} +- {sd(values):.1f}; vs probe {statistics.mean(diff):+.1f} "
                  f"(se {sd(diff) / len(diff) ** 0.5:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
