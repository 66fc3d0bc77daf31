"""End to end: a tiny train run folder, then `fexprune prune` with every criterion and removal."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.experiments.prune import PruneConfig, run_pruning
from fexprune.experiments.train import TrainConfig, train
from fexprune.inference.trained_run import load_run
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
    assert "| pruned | kernel |" in (run_dir / "report.md").read_text()
    # 4/6 channels are one vector block each: a removal's FLOP drop is said not to be a speed-up, in the report too
    for name, summary in results["criteria"].items():
        said = any("FLOP drop is not a speed-up" in w for w in summary["warnings"])
        assert said == (summary["cost_change"]["flops_per_image_drop"] > 0), name
    if any(s["cost_change"]["flops_per_image_drop"] > 0 for s in results["criteria"].values()):
        assert "FLOP drop is not a speed-up" in (run_dir / "report.md").read_text()


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
    for option, value in (("--max-loss-increase", "-1"), ("--finetune-lr", "0"), ("--finetune", "-2"), ("--sample-size", "0")):
        with pytest.raises(SystemExit) as exit_info:  # refused before any work, in one line naming the option
            main(["prune", "--run", str(train_run), option, value, "--out", str(tmp_path / "y")])
        assert exit_info.value.code == 2 and f"argument {option}:" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_near_chance_and_criterion_warnings():
    from fexprune.experiments.prune import criterion_warnings, near_chance

    # the network: train loss 1.83 against ln 7 = 1.95
    assert "near chance" in near_chance(1.83, 0.30, 7)
    assert "near chance" in near_chance(1.0, 0.20, 7)  # accuracy under 1.5x chance
    assert near_chance(1.0, 0.6, 7) is None
    base = {"train_accuracy": 0.30, "test_accuracy": 0.274}
    ran_out = {"stopped_because": {"conv1": "1 channel(s) left"}, "pruned_channels": {"conv1": list(range(15))},
               "train_accuracy": 0.29, "test_accuracy": 0.237}
    warnings = criterion_warnings(base, ran_out, 0.1)
    assert any("stop rule never fired on conv1" in w and "15 of 16" in w for w in warnings)
    assert any("test accuracy fell more than train accuracy" in w and "27.4% -> 23.7%" in w for w in warnings)
    fired = {"stopped_because": {"conv1": "train loss +0.2000 > 0.1"}, "pruned_channels": {"conv1": [3]},
             "train_accuracy": 0.25, "test_accuracy": 0.27}
    assert criterion_warnings(base, fired, 0.1) == []


def test_removal_that_keeps_every_vector_block_is_not_called_a_speed_up():
    from fexprune.experiments.prune import criterion_warnings
    from fexprune.pruning.measure import blocks_lost, flop_drop_not_speed

    assert blocks_lost({"conv1": 16, "conv2": 32}, {"conv1": 13, "conv2": 32}, 16) == {"conv1": 0, "conv2": 0}
    assert blocks_lost({"conv1": 32, "conv2": 64}, {"conv1": 16, "conv2": 32}, 16) == {"conv1": 1, "conv2": 2}
    note = flop_drop_not_speed({"conv1": 16, "conv2": 32}, {"conv1": 8, "conv2": 17}, 0.6, width=16)
    assert "60.0% FLOP drop is not a speed-up" in note and "conv1 16 -> 8, conv2 32 -> 17" in note
    assert "conv1 is a single block" in note and "conv2 is" not in note
    assert flop_drop_not_speed({"conv1": 16, "conv2": 32}, {"conv1": 16, "conv2": 16}, 0.4, width=16) is None  # a block goes
    assert flop_drop_not_speed({"conv1": 16, "conv2": 32}, {"conv1": 8, "conv2": 32}, 0.5, width=8) is None  # 8-float vectors: 16 -> 8 loses a block
    base = {"train_accuracy": 0.5, "test_accuracy": 0.4, "channels": [16, 32]}
    paper = {"stopped_because": {"conv1": "train loss +0.2000 > 0.1"}, "pruned_channels": {"conv1": [1, 2, 3]},
             "train_accuracy": 0.5, "test_accuracy": 0.4, "channels_after": [13, 32],
             "cost_change": {"flops_per_image_drop": 0.187, "latency_batch1_ms_drop": 0.069, "latency_full_batch_ms_drop": 0.12}}
    warnings = criterion_warnings(base, paper, 0.1)
    assert len(warnings) == 1 and "18.7% FLOP drop is not a speed-up" in warnings[0] and "6.9% lower at batch 1" in warnings[0]
    del paper["cost_change"]  # masked only: no FLOP drop is claimed
    assert criterion_warnings(base, paper, 0.1) == []


def test_prune_cli_says_the_rule_never_fired_which_model_is_kept_and_shows_progress(train_run, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["prune", "--run", str(train_run), "--criterion", "all", "--max-loss-increase", "100",
                 "--sample-size", "8", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning: l2: the +100 train-loss stop rule never fired on conv1" in captured.out
    assert "model.pt: the l2 criterion's pruned model, pruned kernels zeroed (masked)" in captured.out
    assert "prune (distinctiveness)" in captured.err  # the progress bar, one per criterion
    results = json.loads((out / "results.json").read_text())
    assert results["model_criterion"] == "l2" and isinstance(results["warnings"], list)
    assert all(any("never fired" in w for w in s["warnings"]) for s in results["criteria"].values())
    report = (out / "report.md").read_text()
    assert "Warnings: read these before the numbers" in report and "stop rule never fired on conv1" in report
    assert main(["prune", "--run", str(train_run), "--quiet", "--out", str(tmp_path / "quiet")]) == 0
    assert "prune (l2)" not in capsys.readouterr().err


@pytest.mark.parametrize("finished", [True, False])
def test_prune_on_a_pic_run_says_it_is_a_pic_run(tmp_path, capsys, finished):
    from fexprune import runs
    from fexprune.schema import stamp

    pic = tmp_path / "pic"
    pic.mkdir()
    runs.write_json(pic / "config.json", {"command": "pic", "mode": "progressive"})
    if finished:
        runs.write_json(pic / "results.json", stamp({"mode": "progressive", "rows": []}, "pic"))
    assert main(["prune", "--run", str(pic), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a pic run; prune needs a finished `fexprune train` run" in err[0], err
    assert "resume" not in err[0]
