"""Gedeon's own setting: remove 30% of a hidden layer's units WITHOUT retraining, and compare which units go
and whether the removed units are merged into their kept partners (fexprune.pruning.merging).

1. Digits: a 64-32-10 ReLU MLP on scikit-learn's load_digits (1797 8x8 images; a stratified 70/30 split per
   seed, inputs standardised on the training rows; 60 epochs of Adam 1e-3, batches of 32). 10 of the 32
   hidden units go (Torch-Pruning's MetaPruner, pruning_ratio 0.3): the same count, so the same MACs, for
   every criterion. Test accuracy.
2. PIC: the 11-10-11 sigmoid autoencoder of `fexprune pic` on the SFEW feature table (~/sfew/SFEW.xlsx, or
   --features), trained as the PIC experiment trains it (min-max inputs, 2000 full-batch Adam epochs, an
   80/20 split by seed); 3 of the 10 hidden units go (30% of its MACs). Test reconstruction loss (MSE).

Criteria: distinctiveness (fexprune), L2 of each unit's incoming weights (the paper's), Torch-Pruning's
FPGMImportance, a seeded random order; each cut only, and merged (least squares a_removed ~ s a_kept + c on
the training inputs). Every criterion prunes the same trained network of a seed (paired). Writes
benchmarks/RESULTS-merging.md.

    OMP_NUM_THREADS=1 python benchmarks/bench_merge.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import torch_pruning as tp
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from fexprune.data.tables import read_feature_table
from fexprune.experiments.pic import normalise, split
from fexprune.models.autoencoder import Autoencoder, TrainSettings, fit, reconstruction_loss
from fexprune.pruning import (DistinctivenessImportance, KernelL2Importance, MergingPruner, SeededRandomImportance)

RESULTS = Path(__file__).with_name("RESULTS-merging.md")
RATIO = 0.3


def criteria(model: nn.Module, sample: torch.Tensor, seed: int) -> dict[str, tp.importance.Importance]:
    return {"distinctiveness": DistinctivenessImportance(model, sample), "l2": KernelL2Importance(),
            "fpgm": tp.importance.FPGMImportance(), "random": SeededRandomImportance(seed)}


def prune(model: nn.Module, head: nn.Module, sample: torch.Tensor, seed: int, name: str,
          merge: bool, fit_rule: str = "least_squares") -> nn.Module:
    """A copy of `model` without 30% of its hidden units (the layer before `head`), chosen by `name`, merged or cut."""
    pruned = copy.deepcopy(model).eval()
    head = dict(pruned.named_modules())[{id(m): n for n, m in model.named_modules()}[id(head)]]
    importance = criteria(pruned, sample, seed)[name]
    kwargs = dict(pruning_ratio=RATIO, ignored_layers=[head])  # the hidden layer is the only group left
    if merge:
        MergingPruner(pruned, sample[:1], importance, sample=sample, fit=fit_rule, **kwargs).step()
    else:
        tp.pruner.MetaPruner(pruned, sample[:1], importance, **kwargs).step()
    return pruned


def digits(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (torch.tensor((a - mean) / std, dtype=torch.float32) for a in (x_train, x_test))
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimiser = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(60):
        for index in torch.randperm(len(x_train), generator=generator).split(32):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x_train[index]), y_train[index]).backward()
            optimiser.step()
    return model.eval(), x_train, x_test, y_test


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean()) * 100


def variants() -> list[tuple[str, str, bool, str]]:
    """(row label, criterion, merge, fit)."""
    rows = [("distinctiveness + merge", "distinctiveness", True, "least_squares"),
            ("distinctiveness, cut only", "distinctiveness", False, "")]
    for name in ("l2", "fpgm", "random"):
        rows += [(f"{name}, cut only", name, False, ""), (f"{name} + merge", name, True, "least_squares")]
    return rows


def run_digits(seeds: list[int]) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {"unpruned": []}
    for seed in seeds:
        model, x_train, x_test, y_test = digits(seed)
        scores["unpruned"].append(accuracy(model, x_test, y_test))
        for label, name, merge, rule in variants():
            pruned = prune(model, model[2], x_train, seed, name, merge, rule or "least_squares")
            assert pruned[0].out_features == 22, pruned
            scores.setdefault(label, []).append(accuracy(pruned, x_test, y_test))
        print(f"digits seed {seed}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in scores.items()), flush=True)
    return scores


def run_pic(seeds: list[int], features: Path) -> dict[str, list[float]]:
    feature_table = read_feature_table(features)
    inputs = feature_table.inputs(True)
    scores: dict[str, list[float]] = {"unpruned": []}
    rows = variants()
    rows.insert(1, ("distinctiveness + merge, Gedeon's rule (s = 1, c = 0)", "distinctiveness", True, "add"))
    for seed in seeds:
        train_rows, test_rows = split(len(inputs), 0.2, seed)
        x_train, x_test, _ = normalise(inputs[train_rows], inputs[test_rows], "minmax")
        x_train, x_test = (torch.as_tensor(a, dtype=torch.float32) for a in (x_train, x_test))
        torch.manual_seed(seed)
        model = Autoencoder(inputs.shape[1], 10)
        fit(model, x_train, TrainSettings(2000, 0.01))
        scores["unpruned"].append(reconstruction_loss(model, x_test))
        for label, name, merge, rule in rows:
            pruned = prune(model, model.decoder, x_train, seed, name, merge, rule or "least_squares")
            assert pruned.encoder.out_features == 7, pruned
            scores.setdefault(label, []).append(reconstruction_loss(pruned, x_test))
        print(f"pic seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in scores.items()), flush=True)
    return scores


def table(scores: dict[str, list[float]], unit: str, digits_: int) -> str:
    reference = scores["distinctiveness + merge"]
    lines = [f"| | {unit}, mean ± sd | paired difference from distinctiveness + merge, mean ± sd | per seed |",
             "|---|---|---|---|"]
    for label, values in scores.items():
        diff = [v - r for v, r in zip(values, reference)]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        diff_text = "" if label == "distinctiveness + merge" else \
            f"{statistics.mean(diff):+.{digits_}f} ± {statistics.stdev(diff) if len(diff) > 1 else 0.0:.{digits_}f}"
        lines.append(f"| {label} | {statistics.mean(values):.{digits_}f} ± {spread:.{digits_}f} | {diff_text} | "
                     + " ".join(f"{v:.{digits_}f}" for v in values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--features", type=Path, default=Path.home() / "sfew" / "SFEW.xlsx")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    digit_scores = run_digits(args.seeds)
    pic_scores = run_pic(args.seeds, args.features) if args.features.is_file() else None
    seconds = time.perf_counter() - started
    text = ["# Merging removed units into their partners, without retraining (bench_merge.py)", "",
            f"Seeds {', '.join(map(str, args.seeds))}; every criterion prunes the same trained network of a seed. "
            f"{seconds:.0f} s on one thread.", "",
            "## Digits: 64-32-10 ReLU MLP, 10 of 32 hidden units removed (30%), test accuracy (%)", "",
            table(digit_scores, "test accuracy %", 1), ""]
    if pic_scores is not None:
        text += [f"## PIC autoencoder 11-10-11 on {args.features.name}, 3 of 10 hidden units removed (30% of MACs), "
                 "test reconstruction MSE (lower is better)", "", table(pic_scores, "test MSE", 4), ""]
    notes = RESULTS.read_text().split("## Notes", 1) if RESULTS.is_file() else []
    if len(notes) == 2:  # the hand-written reading of the numbers stays below the tables
        text.append("## Notes" + notes[1].rstrip("\n"))
    RESULTS.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
