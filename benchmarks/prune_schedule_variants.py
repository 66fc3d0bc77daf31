"""Pruning schedules for a transfer network pruned to half its MACs (l2, every conv), on the movie split, paired
by seed, each with the same 30 epochs of the curve's fine-tuning (AdamW 1e-3 cosine to 0, the recipe's
augmentation, 0.7 distillation at T = 4): one shot (the same ratio per layer, then 30 epochs); iterative (three
steps to 83%, 67% and 50% of the MACs, 10 epochs after each, as `fexprune prune --curve 0.5 --steps 3
--curve-finetune 10` does: Zhu and Gupta 2017); global (one ranking over all layers, importances mean-normalised
per layer, then 30 epochs). Trains each seed's transfer run into --runs when missing
(prune_distill_variants.transfer_run); appends one JSON line per (seed, variant) to --out.

    OMP_NUM_THREADS=1 python benchmarks/prune_schedule_variants.py --data ~/sfew/Images --seeds 0 1 --out /tmp/ps.jsonl
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from fexprune.experiments.prune_curve import _recipe_augment, _train
from fexprune.pruning.measure import count_macs
from fexprune.pruning.structured import StructuredConfig, layer_widths, prune_to_macs, select_layers
from fexprune.training.loop import evaluate
from prune_distill_variants import record, transfer_run  # benchmarks/, beside this script

VARIANTS = ("oneshot-30", "iterative-3x10", "global-30")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/prune-distill"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        trained = transfer_run(args.data, args.runs, seed)
        base = trained.model.eval()
        x, y, example = trained.x_train, trained.y_train, trained.x_test[:1]
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:128]
        augment_config = _recipe_augment(trained)
        _, unpruned = evaluate(base, trained.x_test, trained.y_test)
        layers = tuple(select_layers(base, "all"))

        def finetune(model, epochs: int, step: int) -> None:
            _train(model, x, y, epochs, 1e-3, 32, step, augment_config=augment_config, teacher=base, distill=0.7)

        for name in args.variants:
            started = time.perf_counter()
            steps = 3 if name.startswith("iterative") else 1
            glob = name.startswith("global")
            structured = StructuredConfig(target_macs=0.5, criterion="l2", layers=layers, seed=0, steps=steps,
                                          global_pruning=glob, normalizer="mean" if glob else None)
            between = (lambda m, step: finetune(m, 10, step) if step < steps else None) if steps > 1 else None
            model = prune_to_macs(base, example, structured, sample_x=x[pick], batch=(x[pick], y[pick]), finetune=between).model
            finetune(model, 10 if steps > 1 else 30, 0)
            _, accuracy = evaluate(model, trained.x_test, trained.y_test)
            row = {"seed": seed, "variant": name, "unpruned": unpruned, "test_accuracy": accuracy,
                   "macs_ratio": count_macs(model, example) / count_macs(base, example),
                   "widths": "/".join(map(str, layer_widths(model).values())),
                   "n_test": len(trained.y_test), "seconds": time.perf_counter() - started}
            record(args.out, row)


if __name__ == "__main__":
    main()
