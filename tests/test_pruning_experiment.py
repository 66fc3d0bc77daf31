"""End to end: a tiny train run folder, then `fexprune prune` with every criterion and removal."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.experiments.prune import PruneConfig, run_pruning
from fexprune.experiments.train import TrainConfig, load_run, train
from fexprune.models.checkpoint import load_model
from fexprune.training.loop import evaluate


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune-e2e")
    images = write_synthetic(root / "data", per_class=4, size=(64, 48), progress=False, duplicates=0)
    config = TrainConfig(data=str(images), channels=(4, 6), image_size=(30, 24), epochs=30, lr=1e-2,
                         test_fraction=0.25, checkpoint_every=1000)
    return train(config, out=root / "train", progress=False).run_dir


def test_prune_every_criterion_with_removal(train_run, tmp_path):
    config = PruneConfig(run=str(train_run), criteria=("l2", "l1", "distinctiveness", "random"),
                         layers=("conv1", "conv2"), max_loss_increase=0.3, remove=True, sample_size=8,
                         latency_repeats=2)
    result = run_pruning(config, out=tmp_path / "prune")
    run_dir = result.run_dir
    for name in ["config.json", "metrics.csv", "results.json", "report.md", "model.pt",
                 "figures/fig6_train_loss.png", "figures/fig7_train_accuracy.png",
                 "figures/fig8_min_importance.png", "figures/criteria_comparison.png",
                 "models/l2-masked.pt", "models/random-removed.pt"]:
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    base = results["unpruned"]["train_loss"]
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert {r["criterion"] for r in rows} == {"l2", "l1", "distinctiveness", "random"}
    for name, summary in results["criteria"].items():
        # every accepted step stays within the budget; the model's channels match what was pruned
        kept = [r for r in rows if r["criterion"] == name and r["over_limit"] == "False"]
        assert all(float(r["train_loss"]) - base <= 0.3 + 1e-9 for r in kept)
        assert summary["train_loss"] - base <= 0.3 + 1e-9
        assert summary["channels_after"] == [4 - len(summary["pruned_channels"]["conv1"]),
                                             6 - len(summary["pruned_channels"]["conv2"])]
        assert summary["removed_max_abs_difference"] < 1e-5
    # the saved smaller model loads with the trainer's loader and gives the recorded test numbers
    model, preprocessing = load_model(run_dir / "model.pt")
    assert list(model.config.channels) == results["criteria"]["l2"]["channels_after"]
    assert preprocessing["image_size"] == [30, 24]
    data = load_run(train_run)
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
    assert test_loss == pytest.approx(results["criteria"]["l2"]["test_loss"], abs=1e-5)
    assert test_accuracy == results["criteria"]["l2"]["test_accuracy"]
    assert "| pruned | channel |" in (run_dir / "report.md").read_text()


def test_finetune_keeps_masks_and_cli_refuses_bad_input(train_run, tmp_path, capsys):
    config = PruneConfig(run=str(train_run), criteria=("l2",), layers=("conv1",), max_loss_increase=0.3,
                         finetune_epochs=2)
    result = run_pruning(config, out=tmp_path / "ft")
    outcome = result.outcomes["l2"]
    pruned = result.results["criteria"]["l2"]["pruned_channels"]["conv1"]
    assert torch.all(outcome.model.conv1.weight[pruned] == 0)
    assert all(s.loss_before_finetune is not None for s in outcome.layers[0].steps[1:])
    assert main(["prune", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["prune", "--run", str(train_run), "--max-loss-increase", "-1", "--out", str(tmp_path / "y")]) == 2
