"""The best recipe's ensemble: its output is the log of the members' mean probability, members start apart
and train alike, and a best run reloads, predicts and exports as one model."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from fexprune.data.synth import write_synthetic
from fexprune.recipes.best import BestRecipe, fit_best
from fexprune.experiments.train import TrainConfig, train
from fexprune.models.checkpoint import load_model
from fexprune.models.best_cnn import BestCNNConfig, BestEnsemble
from fexprune.models.checkpoint import build_model

SMALL = BestCNNConfig(channels=(4, 8), pooled=(2, 2), input_size=(16, 16), n_classes=3)


def test_ensemble_logits_are_the_log_of_the_members_mean_probability():
    torch.manual_seed(0)
    ensemble = BestEnsemble(BestCNNConfig(**{**SMALL.to_dict(), "members": 3})).eval()
    x = torch.randn(5, 1, 16, 16)
    mean = torch.stack([member(x).softmax(1) for member in ensemble.members]).mean(0)
    torch.testing.assert_close(ensemble(x).exp(), mean)
    torch.testing.assert_close(ensemble(x).softmax(1), mean)  # reads as one network's logits
    rebuilt = build_model(ensemble.config.to_dict())
    rebuilt.load_state_dict(ensemble.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), ensemble(x))


def test_members_start_apart_and_the_curve_is_their_mean():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 1, 16, 16, generator=g), torch.arange(24) % 3
    common = dict(n_classes=3, epochs=3, lr=3e-3, batch_size=8, seed=0)
    recipe = dict(channels=(4, 8), pooled=(2, 2), tta=False)
    single, single_rows, _ = fit_best(x, y, x[:0], y[:0], recipe=BestRecipe(members=1, **recipe), **common)
    torch.manual_seed(0)
    fresh = BestEnsemble(BestCNNConfig(**{**single.config.to_dict(), "members": 2}))
    first, second = (member.blocks[0][0].weight for member in fresh.members)
    assert not torch.equal(first, second)  # different initialisations
    model, rows, info = fit_best(x, y, x[:0], y[:0], recipe=BestRecipe(members=2, **recipe), **common)
    assert isinstance(model, BestEnsemble) and len(model.members) == 2 and len(rows) == 3
    assert not any("val_accuracy" in row for row in rows)  # no validation part: no validation scores
    assert rows[0]["train_loss"] != single_rows[0]["train_loss"]  # the mean of two members, not member 0


def _best_config(images) -> TrainConfig:
    return TrainConfig(data=str(images), recipe="best", channels=(4, 8), image_size=(45, 36), epochs=2, lr=3e-3, batch_size=16)


@pytest.fixture(scope="module")
def best_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("best-ensemble")
    images = write_synthetic(root / "data", per_class=6, size=(180, 144), progress=False)
    return images, train(_best_config(images), out=root / "run", progress=False).run_dir


def test_predict_scores_the_test_split_as_the_run_did(best_run):
    """The run's test accuracy is of mirror-averaged probabilities; predict must average the same way."""
    import json

    from fexprune.data.prepared import prepare_data
    from fexprune.faces.loading import load_images
    from fexprune.inference.predict import predict

    images, run_dir = best_run
    config = _best_config(images)
    data = prepare_data(config, load_images(config, progress=False))
    records = predict(run_dir, [data.image_set.samples[i].path for i in data.test_index], face_detect=False)
    by_path = {str(r["path"]): r["faces"][0]["emotions"] for r in records}
    classes = list(data.image_set.classes)
    predicted = [classes.index(max(e, key=e.get)) for e in (by_path[str(data.image_set.samples[i].path)] for i in data.test_index)]
    results = json.loads((run_dir / "results.json").read_text())
    accuracy = float((torch.tensor(predicted) == data.y_test).float().mean())
    assert accuracy == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert load_model(run_dir / "model.pt")[1]["tta"] == "hflip"


def test_best_run_reloads_and_predicts_as_one_model(best_run, tmp_path):
    from fexprune.inference.predict import predict

    images, run_dir = best_run
    model, _ = load_model(run_dir / "model.pt")
    assert isinstance(model, BestEnsemble) and len(model.members) == BestRecipe().members
    report = (run_dir / "report.html").read_text()
    assert "Best recipe" in report and f"{BestRecipe().members} (probabilities averaged)" in report
    predictions = predict(run_dir, [images], face_detect=False)
    assert len(predictions) == 42
    for record in predictions:
        assert abs(sum(record["faces"][0]["emotions"].values()) - 1) < 1e-5


@pytest.mark.skipif(not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")),
                    reason="onnx not installed: pip install 'fexprune[onnx]'")
def test_best_run_exports_to_onnx(best_run, tmp_path):
    from fexprune.inference.export import export_onnx

    _, run_dir = best_run
    info = export_onnx(run_dir, tmp_path / "best.onnx")
    assert info["check"]["max_abs_difference"] <= 1e-4 and info["model_config"]["members"] == BestRecipe().members
