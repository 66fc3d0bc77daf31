"""Structured pruning of any recipe's network to a MACs target, and `fexprune prune-curve`, on tiny
built-in synthetic data."""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.experiments.train import TrainConfig, train
from fexprune.inference.trained_run import load_run
from fexprune.models import fer_transfer
from fexprune.models.best_cnn import BestCNN, BestCNNConfig
from fexprune.models.checkpoint import load_model, save_model
from fexprune.pruning.measure import count_macs
from fexprune.pruning.structured import StructuredConfig, layer_widths, prune_by_ratio, prune_to_macs
from fexprune.run_folder import read_settings


@pytest.fixture(scope="module")
def best_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prune-curve")
    images = write_synthetic(root / "data", per_class=4, size=(64, 48), progress=False, duplicates=0)
    config = TrainConfig(data=str(images), recipe="best", channels=(6, 8, 12), image_size=(30, 24), epochs=2, lr=3e-3,
                         batch_size=16, test_fraction=0.25, checkpoint_every=1000)
    return train(config, out=root / "train", progress=False).run_dir


def _close(a, b):
    return torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def _onnx_parity(model, height, width):
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnx / onnxruntime not installed")
    from fexprune.inference.export import onnx_bytes, parity

    return parity(model, onnx_bytes(model, height, width), height, width)


def test_best_network_pruned_to_half_its_macs_runs_saves_reloads_and_exports(best_run, tmp_path):
    trained = load_run(best_run)
    x = trained.x_test
    for global_pruning in (False, True):
        config = StructuredConfig(target_macs=0.5, criterion="l2", global_pruning=global_pruning,
                                  normalizer="mean" if global_pruning else None)
        result = prune_to_macs(trained.model, x[:1], config)
        assert 0.4 <= result.macs_ratio <= 0.5
        assert result.macs_after == count_macs(result.model, x[:1])
        assert sum(result.widths_after.values()) < sum(result.widths_before.values())
        assert layer_widths(trained.model) == result.widths_before  # the trained model is left as it was
        path = tmp_path / f"pruned-{global_pruning}.pt"
        save_model(path, result.model, {"image_size": [24, 30]})
        reloaded, _ = load_model(path)
        assert layer_widths(reloaded) == result.widths_after
        assert _close(reloaded(x), result.model(x))
        assert _onnx_parity(reloaded, 30, 24) < 1e-4


def test_iterative_steps_round_to_and_layer_selection(best_run):
    trained = load_run(best_run)
    x = trained.x_train
    calls = []
    config = StructuredConfig(target_macs=0.6, criterion="taylor", steps=2, round_to=2, layers=("members.0.blocks.1.0", "members.1.blocks.2.0"))
    result = prune_to_macs(trained.model, x[:1], config, batch=(x[:16], trained.y_train[:16]),
                           finetune=lambda model, step: calls.append(step))
    assert calls == [1, 2] and [s["step"] for s in result.steps] == [1, 2]
    assert result.steps[0]["macs_ratio"] >= result.steps[1]["macs_ratio"]
    selected = ("members.0.blocks.1.0", "members.1.blocks.2.0")
    for name, width in result.widths_after.items():  # the best recipe's default: an ensemble of 3
        assert width % 2 == 0 if name in selected else width == result.widths_before[name]


@pytest.mark.skipif(importlib.util.find_spec("h5py") is None or not fer_transfer.available(),
                    reason=f"transfer needs fer's weights and h5py: {fer_transfer.INSTALL_HINT}")
def test_transfer_network_pruned_to_half_its_macs(tmp_path):
    from fexprune.models.fer_transfer import pretrained_model

    torch.set_num_threads(1)
    model = pretrained_model(["angry", "happy", "neutral"], input_size=(48, 48), normalize="none")
    x = torch.rand(4, 1, 48, 48)
    result = prune_to_macs(model, x[:1], StructuredConfig(target_macs=0.5, criterion="l1"))
    assert 0.4 <= result.macs_ratio <= 0.5
    path = tmp_path / "transfer.pt"
    save_model(path, result.model, {})
    reloaded, _ = load_model(path)
    assert type(reloaded).__name__ == "FERTransfer"
    assert _close(reloaded(x), result.model(x))
    assert _onnx_parity(reloaded, 48, 48) < 1e-4


def test_a_layer_is_never_rounded_to_nothing_so_more_ratio_never_prunes_less():
    from fexprune.pruning.structured import _keep_one_block

    assert _keep_one_block(16, 0.9, 16) == 0.0  # one block: never pruned (Torch-Pruning would have skipped it whole)
    assert _keep_one_block(8, 0.5, 16) == 0.0
    assert int(32 * (1 - _keep_one_block(32, 0.9, 16))) == 16  # capped at one block of 16
    assert _keep_one_block(32, 0.25, 16) == 0.25  # under the cap: as asked
    assert int(8 * (1 - _keep_one_block(8, 0.95, None))) == 1  # without round_to: one channel kept
    torch.manual_seed(0)
    model = BestCNN(BestCNNConfig(channels=(16, 32, 64), input_size=(30, 24), pooled=(3, 3))).eval()
    x = torch.rand(1, 1, 24, 30)
    base = count_macs(model, x)
    ratios = []
    for ratio in (0.3, 0.5, 0.7, 0.9):
        pruned = prune_by_ratio(copy.deepcopy(model), x, ratio, StructuredConfig(round_to=16, max_layer_ratio=0.95))
        assert all(w % 16 == 0 and w >= 16 for w in layer_widths(pruned).values())
        ratios.append(count_macs(pruned, x) / base)
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < 1  # at 0.9 the 32 and 64 layers are down to 16
    # the MACs search: a target out of reach returns the most pruned network, not the unpruned one
    result = prune_to_macs(model, x, StructuredConfig(target_macs=0.05, round_to=16))
    assert result.widths_after == {name: 16 for name in result.widths_after} and not result.macs_ratio <= 0.05


def test_curve_run_writes_table_figures_and_report(best_run, tmp_path, capsys):
    out = tmp_path / "curve"
    code = main(["prune-curve", "--run", str(best_run), "--curve", "0.3,0.6", "--criterion", "l2", "--finetune", "1",
                 "--scratch-epochs", "1", "--sensitivity", "0.5", "--quiet", "--out", str(out)])
    assert code == 0
    assert "| method |" in capsys.readouterr().out
    for name in ["config.json", "metrics.csv", "results.json", "report.md", "report.html", "sensitivity.csv",
                 "figures/accuracy_vs_cost.png", "figures/sensitivity.png", "models/l2-30.pt", "models/random-60.pt",
                 "models/scratch-60.pt"]:
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["schema"]["kind"] == "prune-curve"
    methods = {row["method"] for row in csv.DictReader(open(out / "metrics.csv"))}
    assert methods == {"l2", "random (baseline)", "scratch (l2 architecture)"}
    for row in results["points"]:
        assert row["macs_ratio"] <= 1 - row["macs_reduction"] + 1e-9 and row["latency_ms"] > 0
    assert {row["layer"] for row in results["sensitivity"]} == {f"members.{m}.blocks.{b}.0" for m in range(3) for b in range(3)}
    assert "Accuracy against cost" in (out / "report.md").read_text()
    assert results["distill"] == 0.7 and results["augment"] is True and results["finetune_schedule"] == "cosine to 0"
    assert "distilled from the unpruned network (weight 0.7" in (out / "report.md").read_text()
    model, _ = load_model(out / "models" / "l2-30.pt")  # a pruned model reloads like any other
    assert sum(layer_widths(model).values()) < sum(results["unpruned"]["widths"].values())


@pytest.mark.parametrize("criterion", ["distinctiveness", "l2"])
def test_paper_cnn_pruned_structurally_reloads(criterion, tmp_path):
    from fexprune.models.cnn import CNNConfig, ExpressionCNN

    torch.manual_seed(0)
    model = ExpressionCNN(CNNConfig(channels=(6, 8), input_size=(24, 30))).eval()
    x = torch.randn(8, 1, 30, 24)
    result = prune_to_macs(model, x[:1], StructuredConfig(target_macs=0.5, criterion=criterion), sample_x=x)
    assert 0.35 <= result.macs_ratio <= 0.5
    save_model(tmp_path / "paper.pt", result.model, {})
    reloaded, _ = load_model(tmp_path / "paper.pt")
    assert _close(reloaded(x), result.model(x))


def test_predict_and_export_read_a_pruned_model_file(best_run, tmp_path):
    trained = load_run(best_run)
    result = prune_to_macs(trained.model, trained.x_test[:1], StructuredConfig(target_macs=0.5, criterion="l1"))
    _, preprocessing = load_model(best_run / "model.pt")
    path = tmp_path / "pruned.pt"
    save_model(path, result.model, preprocessing)
    image = next(p for p in Path(read_settings(best_run)["data"]).rglob("*") if p.suffix in (".png", ".jpg"))
    assert main(["predict", "--run", str(path), str(image), "--no-face-detect", "--quiet", "--out", str(tmp_path / "p.csv")]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "p.csv")))) == 1
    if importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime"):
        assert main(["export", "--run", str(path), "--onnx", str(tmp_path / "pruned.onnx")]) == 0


def test_paper_path_refuses_lists_without_curve(best_run, capsys):
    assert main(["prune", "--run", str(best_run), "--criterion", "l1,l2"]) != 0
    assert "fexprune prune-curve" in capsys.readouterr().err


def test_fine_tuning_distils_the_unpruned_network_and_uses_the_recipes_augmentation(best_run, capsys):
    import torch.nn.functional as F

    from fexprune.experiments.prune_curve import _recipe_augment, _train

    trained = load_run(best_run)
    assert _recipe_augment(trained) is not None  # the best recipe trains with augmentation
    torch.manual_seed(0)
    teacher = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(30, 24), pooled=(3, 3))).eval()
    student = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(30, 24), pooled=(3, 3))).eval()
    x, y = trained.x_train, torch.zeros(len(trained.x_train), dtype=torch.long)  # labels all 0: only the teacher can be matched

    def gap(model):
        with torch.no_grad():
            return F.kl_div(F.log_softmax(model(x), 1), F.softmax(teacher(x), 1), reduction="batchmean").item()

    _train(student, x, y, 15, 3e-3, 16, 0, teacher=teacher, distill=1.0)
    labels_only = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(30, 24), pooled=(3, 3))).eval()
    _train(labels_only, x, y, 15, 3e-3, 16, 0, teacher=teacher, distill=0.0)
    with torch.no_grad():
        assert (labels_only(x).argmax(1) == 0).float().mean() > 0.9  # weight 0: the labels alone
    # pure distillation: the student stays with the teacher (two near-uniform networks) instead of going to the labels
    assert gap(student) < 0.05 * gap(labels_only)
    with pytest.raises(SystemExit) as exit_info:
        main(["prune-curve", "--run", str(best_run), "--curve", "0.5", "--distill", "1.5"])
    assert exit_info.value.code == 2 and "argument --distill: must lie between 0 and 1" in capsys.readouterr().err


def test_fine_tuning_a_network_with_dropout_repeats_whatever_the_global_generator_holds(best_run):
    from fexprune.experiments.prune_curve import _train

    trained = load_run(best_run)
    x, y = trained.x_train, trained.y_train
    torch.manual_seed(0)
    start = BestCNN(BestCNNConfig(channels=(4, 6, 8), input_size=(30, 24), pooled=(3, 3), dropout=0.5))
    weights = []
    for state in (1, 2):  # another process starts from another global seed
        model = copy.deepcopy(start)
        torch.manual_seed(state)
        _train(model, x, y, 2, 3e-3, 16, 0)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(*weights)


def test_iterative_curve_fine_tunes_between_its_steps(best_run, tmp_path, monkeypatch):
    from fexprune.experiments import prune_curve
    from fexprune.experiments.prune_curve import CurveConfig, run_prune_curve

    calls = []
    monkeypatch.setattr(prune_curve, "_train", lambda model, x, y, epochs, lr, batch, seed, **kw: calls.append(seed))
    config = CurveConfig(run=str(best_run), curve=(0.5,), criteria=("l2",), steps=3, finetune_epochs=1, scratch=False,
                         sensitivity=())
    _, results = run_prune_curve(config, out=tmp_path / "steps", progress=False)
    # per criterion (l2, random): after steps 1 and 2 inside the search, then once after the last step
    assert calls == [1, 2, 0, 1, 2, 0]
    assert all(row["macs_ratio"] <= 0.5 + 1e-9 for row in results["points"])


def test_one_layer_coupled_to_a_depthwise_conv_and_a_residual_can_be_pruned_alone():
    """The sensitivity scan prunes one layer at a time: the layers coupled to it (a depthwise conv after it,
    the other side of a residual addition) must follow, not block it (the transfer network's layers did)."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.pointwise = nn.Conv2d(8, 16, 1)
            self.shortcut = nn.Conv2d(8, 16, 1)
            self.head = nn.Conv2d(16, 3, 1)

        def forward(self, x):
            x = torch.relu(self.bn(self.stem(x)))
            x = self.pointwise(self.depthwise(x)) + self.shortcut(x)
            return self.head(torch.relu(x)).mean((2, 3))

    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(2, 1, 12, 12)
    for name, left in [("stem", 4), ("shortcut", 8), ("pointwise", 8)]:
        pruned = prune_by_ratio(copy.deepcopy(model), x[:1], {name: 0.5}, StructuredConfig(max_layer_ratio=0.99))
        assert getattr(pruned, name).out_channels == left, name
        assert count_macs(pruned, x[:1]) < count_macs(model, x[:1])
        pruned(x)  # still runs
    pruned = prune_by_ratio(copy.deepcopy(model), x[:1], {"stem": 0.5}, StructuredConfig())
    assert pruned.depthwise.out_channels == 4 and pruned.pointwise.out_channels == 16  # only what is coupled follows
