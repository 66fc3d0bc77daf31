"""Recipes and metrics in every run: the best recipe learns on every training frame, or stops early on
its own validation part (never the test split) when asked, and saves a loadable model; every run reports
protocol, macro-F1 and a confusion matrix summing to n_test; --cv gives per-fold rows with mean and spread."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.recipes import recipe_defaults
from fexprune.recipes.validation import validation_split
from fexprune.experiments.train import TrainConfig, train
from fexprune.data.prepared import prepare_data
from fexprune.faces.loading import load_images
from fexprune.models.checkpoint import load_model
from fexprune.run_folder import read_settings


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("recipes"), per_class=16, seed=4, size=(180, 144), progress=False)


def config(data, **overrides) -> TrainConfig:
    values = dict(data=str(data), image_size=(45, 36), channels=(4, 8), kernel_size=3, epochs=6, lr=2e-3, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def test_best_recipe_run_folder_metrics_and_model(tiny_data, tmp_path):
    torch.set_num_threads(1)
    cfg = config(tiny_data, recipe="best", batch_size=16, epochs=30, lr=3e-3, split="movie")
    result = train(cfg, out=tmp_path / "best", progress=False)
    r = json.loads((result.run_dir / "results.json").read_text())
    assert r["recipe"] == "best" and r["protocol"] == "movie"
    assert r["train_accuracy"] > 1 / 7 + 0.1  # it learns
    assert sum(map(sum, r["classification"]["confusion_matrix"])) == r["n_test"]
    assert 0 <= r["macro_f1"] <= 1 and set(r["per_class_accuracy"]) == set(r["classes"])
    assert r["training"]["n_fit"] == r["n_train"] and r["training"]["n_validation"] == 0  # no early stop: all train
    assert r["training"]["epochs_run"] == 30 and not r["training"]["hog"]
    assert (result.run_dir / "figures" / "confusion.png").is_file()
    model, preprocessing = load_model(result.run_dir / "model.pt")
    assert type(model).__name__ == "BestEnsemble" and len(model.members) == r["training"]["members"] == 3
    assert model(torch.zeros(2, 1, 36, 45)).shape == (2, 7)


def test_early_stopping_carves_a_grouped_validation_part(tiny_data):
    from fexprune.recipes import BestRecipe

    torch.set_num_threads(1)
    cfg = config(tiny_data, recipe="best", batch_size=16, epochs=8, lr=3e-3, split="movie")
    data = prepare_data(cfg, load_images(cfg, progress=False))
    fitted = BestRecipe(channels=(4, 8), pooled=(2, 2), early_stop=True, hog=True).fit(cfg, data)
    info = fitted.info
    assert info["n_validation"] > 0 and info["n_fit"] + info["n_validation"] == len(data.train_index)
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 8 and info["hog"]
    assert all("val_accuracy" in row for row in fitted.rows)


def test_validation_part_is_inside_training_and_grouped(tiny_data):
    cfg = config(tiny_data, split="clip")
    data = prepare_data(cfg, load_images(cfg, progress=False))
    fit, val = validation_split(data.image_set, data.train_index, "clip", 0.2, seed=0)
    assert set(fit) | set(val) == set(data.train_index) and not set(val) & set(data.test_index)
    clips = lambda index: {data.image_set.samples[i].clip for i in index}
    assert clips(fit).isdisjoint(clips(val))


def test_paper_run_reports_protocol_and_confusion(tiny_data, tmp_path):
    result = train(config(tiny_data), out=tmp_path / "paper", progress=False)
    r = result.results
    assert r["protocol"] == "random" and r["recipe"] == "paper"
    assert np.asarray(r["classification"]["confusion_matrix"]).sum() == r["n_test"]
    assert (result.run_dir / "figures" / "confusion.png").is_file()
    report = (result.run_dir / "report.html").read_text()  # every train run has a report a person opens
    assert "Test split by class" in report and "Confusion matrix" in report and (result.run_dir / "report.md").is_file()


def test_cross_validation_from_cli(tiny_data, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_data), "--cv", "3", "--split", "movie", "--epochs", "3",
                 "--channels", "4,8", "--quiet", "--out", str(tmp_path / "cv")])
    assert code == 0
    r = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert r["cv"] == 3 and len(r["folds"]) == 3 and "grouped by movie" in r["protocol"]
    assert r["summary"]["test_accuracy"]["sd"] >= 0 and "svm_test_accuracy" in r["summary"]
    assert np.asarray(r["confusion_matrix"]).sum() == sum(f["n_test"] for f in r["folds"])
    assert "test_accuracy" in capsys.readouterr().out
    report = (tmp_path / "cv" / "report.html").read_text()  # a cv run has a report a person opens too
    assert "Per fold (3 folds)" in report and "grouped by movie" in report and "HOG+SVM test acc" in report
    assert f"{100 * r['summary']['test_accuracy']['mean']:.1f}%" in report and "Confusion matrix" in report


def test_recipe_defaults():
    assert recipe_defaults("paper")["batch_size"] is None and recipe_defaults("best")["batch_size"] == 32


def test_early_stop_keeps_best_validation_weights_otherwise_last():
    """early_stop stops after `patience` flat epochs and restores the best epoch; off, every epoch runs."""
    from fexprune.data.augment import AugmentConfig
    from fexprune.recipes.best import BestRecipe, fit_best

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 1, 16, 16, generator=g), torch.arange(24) % 3
    xv, yv = torch.randn(8, 1, 16, 16, generator=g), torch.arange(8) % 3  # noise: validation cannot improve for long
    still = AugmentConfig(flip=False, max_shift=0.0, max_rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)
    common = dict(n_classes=3, epochs=40, lr=3e-3, batch_size=8, seed=0)
    base = dict(channels=(4, 8), pooled=(2, 2), augment=still, patience=3, tta=False)
    _, rows, info = fit_best(x, y, xv, yv, recipe=BestRecipe(early_stop=True, **base), **common)
    assert info["epochs_run"] < 40 and info["epochs_run"] - info["best_epoch"] == 3
    model, rows, info = fit_best(x, y, xv, yv, recipe=BestRecipe(early_stop=False, **base), **common)
    assert info["epochs_run"] == 40 and model.config.pooled == (2, 2)


def test_mixup_is_seeded_and_changes_training():
    from fexprune.recipes.best import BestRecipe, fit_best

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 1, 16, 16, generator=g), torch.arange(24) % 3
    empty = torch.zeros(0, 1, 16, 16), torch.zeros(0, dtype=torch.long)
    common = dict(n_classes=3, epochs=3, lr=3e-3, batch_size=8, seed=0)
    weights = lambda mixup: fit_best(x, y, *empty, recipe=BestRecipe(channels=(4, 8), pooled=(2, 2), members=1, mixup=mixup),
                                     **common)[0].state_dict()
    first, again, plain = weights(0.4), weights(0.4), weights(0.0)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.allclose(first[k].float(), plain[k].float()) for k in first)


def test_members_and_hog_from_the_cli_reach_the_run(tiny_data, tmp_path, capsys):
    torch.set_num_threads(1)
    code = main(["train", "--data", str(tiny_data), "--recipe", "best", "--members", "1", "--hog", "--epochs", "2",
                 "--quiet", "--out", str(tmp_path / "one")])
    assert code == 0
    saved = read_settings(tmp_path / "one")
    assert saved["members"] == 1 and saved["hog"] is True
    model, _ = load_model(tmp_path / "one" / "model.pt")
    assert type(model).__name__ == "BestCNN" and model.hog is not None
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", str(tiny_data), "--members", "2", "--quiet", "--out", str(tmp_path / "paper")])
    assert stopped.value.code == 2
    assert "--recipe paper" in capsys.readouterr().err and not (tmp_path / "paper").exists()
    # the paper CNN's shape options are refused by a recipe with its own network, not silently ignored
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", str(tiny_data), "--recipe", "best", "--channels", "4,8", "--quiet", "--out", str(tmp_path / "b")])
    assert stopped.value.code == 2
    assert "--channels is an option of --recipe paper" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_a_best_checkpoint_between_test_scores_keeps_the_metrics_so_far(tiny_data, tmp_path):
    """Test scores are logged every eval_every epochs: a checkpoint at an epoch between two holds rows with
    and without them, and writes them all (the empty cells empty)."""
    torch.set_num_threads(1)
    run = train(config(tiny_data, recipe="best", members=1, epochs=6, eval_every=4, checkpoint_every=5, batch_size=16),
                out=tmp_path / "run", progress=False)
    rows = (run.run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 7 and "test_accuracy" in rows[0]
    assert json.loads((run.run_dir / "config.json").read_text())["recipe"]["members"] == 1
