"""`fexprune prune-curve` over several training runs (the seeds of one configuration), on tiny synthetic data:
mean and sd per point, paired changes, Torch-Pruning's MACs count, warnings, distinct model files, the data named."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import torch
import torch_pruning as tp

from fexprune.cli import main
from fexprune.data.builtin import describe_data
from fexprune.data.synth import write_synthetic
from fexprune.experiments.train import TrainConfig, train
from fexprune.inference.trained_run import load_run
from fexprune.models.checkpoint import load_model
from fexprune.pruning.measure import latency_change
from fexprune.report.curve_summary import curve_summary
from fexprune.run_folder import read_settings


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory):
    """Two runs of the paper's CNN (no batch norm) that differ only in their seed, in one folder."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("curve-runs")
    images = write_synthetic(root / "data", per_class=4, size=(64, 48), progress=False, duplicates=0)
    for seed in (0, 1):
        config = TrainConfig(data=str(images), recipe="paper", channels=(4, 6), image_size=(30, 24), epochs=3, lr=1e-3,
                             test_fraction=0.25, checkpoint_every=1000, seed=seed)
        train(config, out=root / "runs" / f"seed{seed}", progress=False)
    return root / "runs"


@pytest.fixture(scope="module")
def curve(paper_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("curve-out") / "curve"
    code = main(["prune-curve", "--run", str(paper_runs), "--curve", "0.3,0.31", "--criterion", "l2,bn_scale",
                 "--finetune", "1", "--scratch-epochs", "1", "--sensitivity", "0.5", "--quiet", "--out", str(out)])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_point_is_the_mean_and_sd_of_its_runs_with_paired_changes(curve):
    out, results = curve
    assert len(results["train_runs"]) == 2 and [r["seed"] for r in results["runs"]] == [0, 1]
    base = {r["run"]: r["test_accuracy"] for r in results["runs"]}
    assert results["unpruned"]["test_accuracy"] == pytest.approx(statistics.mean(base.values()))
    assert len(results["summary"]) == 4 * 2  # l2, bn_scale, random, scratch at two points
    for point in results["summary"]:
        members = [row for row in results["points"]
                   if row["method"] == point["method"] and row["macs_reduction"] == point["macs_reduction"]]
        assert sorted(row["run"] for row in members) == [0, 1] and point["n_runs"] == 2
        accuracies = [row["test_accuracy"] for row in members]
        assert point["test_accuracy_mean"] == pytest.approx(statistics.mean(accuracies))
        assert point["test_accuracy_sd"] == pytest.approx(statistics.stdev(accuracies))
        changes = [row["test_accuracy"] - base[row["run"]] for row in members]  # against each run's own network
        assert [row["accuracy_change"] for row in members] == pytest.approx(changes)
        assert point["accuracy_change_mean"] == pytest.approx(statistics.mean(changes))
        assert point["accuracy_change_sd"] == pytest.approx(statistics.stdev(changes))
    summary_csv = list(csv.DictReader(open(out / "summary.csv")))
    assert len(summary_csv) == 8 and "test_accuracy_sd" in summary_csv[0]
    report = (out / "report.md").read_text()
    assert "mean ± sd over 2 training runs" in report and "change vs unpruned (paired)" in report
    assert (out / "figures" / "accuracy_vs_cost.png").is_file() and (out / "figures" / "sensitivity.png").is_file()
    assert {(r["layer"], r["n_runs"]) for r in results["sensitivity_summary"]} == {("conv1", 2), ("conv2", 2)}


def test_a_criterion_that_pruned_nothing_is_warned_in_results_and_report(curve):
    out, results = curve
    for point in results["summary"]:
        assert point["pruned_nothing"] == (point["method"] == "bn_scale")  # the paper's CNN has no batch norm
    warned = [w for w in results["warnings"] if "pruned nothing" in w]
    assert len(warned) == 2 and all(w.startswith("bn_scale at ") and "2 of 2 run(s)" in w for w in warned)
    report = (out / "report.md").read_text()
    assert "Warnings: read these before the numbers" in report and warned[0] in report


def test_tp_macs_are_torch_prunings_count_of_each_saved_model_and_files_are_distinct(curve, paper_runs):
    out, results = curve
    files = [row["model_file"] for row in results["points"]]
    assert len(set(files)) == len(files)  # two points 1% apart, two runs: no file written over another
    assert {"models/run0/l2-30.pt", "models/run0/l2-31.pt", "models/run1/l2-30.pt", "models/run1/scratch-31.pt"} <= set(files)
    example = load_run(paper_runs / "seed0").x_test[:1]
    for row in results["points"]:
        model, _ = load_model(out / row["model_file"])
        macs, params = tp.utils.count_ops_and_params(model.eval(), example)
        assert row["tp_macs"] == macs and row["parameters"] == params
        assert row["tp_macs_ratio"] == pytest.approx(macs / results["runs"][row["run"]]["tp_macs"])
    report = (out / "report.md").read_text()
    assert "MACs kept (tp)" in report and "tp.utils.count_ops_and_params" in report


def test_synthetic_data_is_named_and_not_compared_with_the_paper(curve):
    out, results = curve
    assert results["synthetic_data"] is True and "synthetic" in results["data"]
    report = (out / "report.md").read_text()
    assert "not SFEW" in report and "not compared with the paper" in report
    assert describe_data(None) == ("the built-in synthetic data (drawn faces, not SFEW)", True)
    assert describe_data("/somewhere/SFEW/Images")[1] is False


def test_latency_has_a_spread_and_both_baselines_have_the_same_teacher(curve, paper_runs, tmp_path, monkeypatch):
    _, results = curve
    for row in results["points"]:
        assert row["latency_ms"] > 0 and row["latency_iqr_ms"] >= 0 and isinstance(row["latency_within_noise"], bool)
    assert latency_change([1.0] * 8, [0.5] * 8) == {"latency_change": -0.5, "latency_change_iqr": 0.0, "latency_within_noise": False}
    assert latency_change([1.0] * 4, [0.5, 1.5, 0.9, 1.2])["latency_within_noise"] is True

    from fexprune.experiments import prune_curve
    from fexprune.experiments.prune_curve import CurveConfig, run_prune_curve

    teachers = []
    monkeypatch.setattr(prune_curve, "_train", lambda model, x, y, epochs, lr, batch, seed, **kw:
                        teachers.append((epochs, id(kw.get("teacher")), kw.get("distill"))))
    config = CurveConfig(run=str(paper_runs / "seed0"), curve=(0.5,), criteria=("l2",), finetune_epochs=2, scratch_epochs=5,
                         sensitivity=(), latency_repeats=3)
    run_prune_curve(config, out=tmp_path / "teacher", progress=False)
    assert sorted(epochs for epochs, _, _ in teachers) == [2, 2, 5]  # l2 and random fine-tuned, scratch trained
    assert len({(teacher, distill) for _, teacher, distill in teachers}) == 1 and teachers[0][2] == 0.7


def test_a_missed_target_is_warned_and_one_run_has_no_spread():
    points = [{"method": "l2", "macs_reduction": 0.5, "macs_ratio": 0.62, "tp_macs_ratio": 0.63, "reached_target": False,
               "test_accuracy": 0.4}]
    summary = curve_summary(points)
    assert summary[0]["n_runs"] == 1 and summary[0]["test_accuracy_sd"] is None
    assert summary[0]["warnings"] == ["l2 at 50% MACs removed: missed its target in 1 of 1 run(s): kept up to 62.0% "
                                      "of the MACs, asked for at most 50%"]


def test_a_one_run_curve_made_before_runs_were_averaged_still_reports(tmp_path):
    """results.json of a one-run curve as it was written before: no summary, runs, tp counts or data name."""
    from fexprune.report.build import build_run_report
    from fexprune.report.markdown import render_table
    from fexprune.report.prune_curve import curve_table

    old = {"schema": {"kind": "prune-curve", "version": 1}, "train_run": "/runs/train-1", "recipe": "best",
           "architecture": "BestCNN", "unpruned": {"macs": 1000, "parameters": 100, "test_loss": 1.2, "test_accuracy": 0.5,
                                                    "latency_ms": 0.8, "widths": {"a": 8}},
           "points": [{"method": "l2", "macs_reduction": 0.3, "macs": 690, "macs_ratio": 0.69, "reached_target": True,
                       "parameters": 70, "parameters_ratio": 0.7, "test_accuracy_before_finetune": 0.3, "widths": "6",
                       "test_loss": 1.3, "test_accuracy": 0.45, "latency_ms": 0.7}],
           "sensitivity": [], "criteria": ["l2"], "layers": ["a"], "global_pruning": False, "steps": 1, "round_to": None,
           "finetune_epochs": 10, "finetune_lr": 0.001, "distill": 0.7, "temperature": 4.0, "augment": True,
           "scratch_epochs": None, "scratch_lr": None, "n_train": 10, "n_test": 4}
    (tmp_path / "results.json").write_text(json.dumps(old))
    report = build_run_report(tmp_path)
    table = render_table(curve_table(old))
    assert "| l2 | 30% | – | 69.0% | 70.0% |" in table and "45.0%" in table
    assert [t.title for t in report.tables()] == ["Accuracy against cost"]


def test_runs_are_found_in_folders_and_other_runs_are_passed_over(paper_runs, tmp_path, capsys):
    from fexprune.errors import InputError
    from fexprune.experiments.prune_curve import find_train_runs

    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("seed0", "seed1"):
        (folder / name).symlink_to(paper_runs / name, target_is_directory=True)
    other = folder / "prune-1"  # a finished prune run: a model.pt, but not a train run
    other.mkdir()
    (other / "model.pt").write_bytes(b"")
    (other / "config.json").write_text("{}")
    (other / "results.json").write_text(json.dumps({"schema": {"kind": "prune", "version": 1}}))
    assert [p.name for p in find_train_runs([str(folder)])] == ["seed0", "seed1"]
    assert find_train_runs([str(paper_runs / "seed1"), str(paper_runs)]) == [(paper_runs / n).resolve() for n in ("seed1", "seed0")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither a train run"):
        find_train_runs([str(tmp_path / "empty")])
    with pytest.raises(InputError, match="no such train run"):
        find_train_runs([str(tmp_path / "absent")])
    best = tmp_path / "best-run"  # a run of another recipe: refused before any pruning
    best.mkdir()
    config = read_settings(paper_runs / "seed1")
    (best / "config.json").write_text(json.dumps({**config, "recipe": "best"}))
    assert main(["prune-curve", "--run", str(paper_runs / "seed0"), str(best), "--curve", "0.5", "--out", str(tmp_path / "no")]) == 2
    assert "share a recipe" in capsys.readouterr().err and not (tmp_path / "no").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--run", str(paper_runs / "seed0"), "--runs", str(paper_runs), "--curve", "0.5"])
    assert exit_info.value.code == 2 and "not allowed with argument --run" in capsys.readouterr().err  # prune --curve's spelling
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--runs", str(paper_runs)])
    assert exit_info.value.code == 2 and "--runs is an option of the pruning curve, fexprune prune-curve" in capsys.readouterr().err


def test_merge_folds_removed_channels_so_the_pruned_network_stays_closer_to_the_unpruned(paper_runs, tmp_path, capsys):
    run = paper_runs / "seed0"
    options = ["prune-curve", "--run", str(run), "--curve", "0.4", "--criterion", "l2", "--finetune", "0",
               "--scratch-epochs", "0", "--sensitivity", "none", "--sample-size", "1000", "--quiet"]
    assert main([*options, "--out", str(tmp_path / "cut")]) == 0
    assert main([*options, "--merge", "--out", str(tmp_path / "merged")]) == 0
    capsys.readouterr()
    trained = load_run(run)
    x = trained.x_train  # the images the merge was fitted on (the sample holds the whole training split)
    with torch.no_grad():
        unpruned = trained.model.eval()(x)
        cut, _ = load_model(tmp_path / "cut" / "models" / "l2-40.pt")
        merged, _ = load_model(tmp_path / "merged" / "models" / "l2-40.pt")
        cut_out, merged_out = cut.eval()(x), merged.eval()(x)
    assert [p.shape for p in cut.parameters()] == [p.shape for p in merged.parameters()]  # the same channels removed
    assert not torch.allclose(cut_out, merged_out)
    assert (merged_out - unpruned).pow(2).mean() < (cut_out - unpruned).pow(2).mean()
    results = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert results["merge"] is True and read_settings(tmp_path / "merged")["merge"] is True
    assert json.loads((tmp_path / "cut" / "results.json").read_text())["merge"] is False
    assert "merged into its most correlated kept channel" in (tmp_path / "merged" / "report.md").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--run", str(run), "--merge"])
    assert exit_info.value.code == 2 and "--merge is an option of the pruning curve" in capsys.readouterr().err
