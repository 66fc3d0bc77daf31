"""fexprune export: ONNX with a dynamic batch axis, equal to PyTorch to 1e-4, preprocessing written beside it."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from fexprune.cli import main
from fexprune.data.preprocess import decode_image, to_gray_resized
from fexprune.errors import InputError
from fexprune.models.checkpoint import load_model, save_model
from fexprune.inference import export as export_module
from fexprune.inference.export import export_onnx
from fexprune.inference.run_model import load_run_model
from fexprune.models.cnn import CNNConfig, ExpressionCNN
from inference_runs import make_prune_run, make_train_run

pytest.importorskip("onnx", reason="onnx not installed: pip install 'fexprune[onnx]' to run the ONNX export tests")
onnxruntime = pytest.importorskip(
    "onnxruntime", reason="onnxruntime not installed: pip install 'fexprune[onnx]' to run the ONNX export tests"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_train_run(tmp_path_factory.mktemp("export"))


def _onnx_probabilities(path, x: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def _real_batch(runs, run_dir, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """n training frames prepared from the sidecar's description alone, and PyTorch's probabilities."""
    loaded = load_run_model(run_dir)
    frames = sorted(runs.images.rglob("*.png"))[:n]
    gray = np.stack([to_gray_resized(decode_image(f.read_bytes()), loaded.image_size) for f in frames])
    return loaded.prepare(gray), loaded.probabilities(gray)


def _check_file(runs, run_dir, out, channels) -> dict:
    info = json.loads(out.with_name(out.name + ".json").read_text())
    assert info["check"]["max_abs_difference"] <= 1e-4
    assert tuple(info["model_config"]["channels"]) == tuple(channels)
    assert info["input"]["shape"] == ["batch", 1, 72, 90] and info["image_size"] == [90, 72]
    assert info["normalize"] == "per-image" and info["classes"] == load_run_model(run_dir).classes
    for n in (1, 3, 9):  # the batch axis is dynamic: sizes the export never saw
        x, expected = _real_batch(runs, run_dir, n)
        np.testing.assert_allclose(_onnx_probabilities(out, x), expected, atol=1e-5)
    return info


def test_unpruned_model_matches_pytorch(runs, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--run", str(runs.train), "--onnx", str(out)]) == 0
    assert "onnxruntime matches PyTorch" in capsys.readouterr().out
    _check_file(runs, runs.train, out, (4, 8))


def test_pruned_run_with_removed_channels_matches_pytorch(runs, tmp_path):
    prune_dir = make_prune_run(runs, tmp_path)
    channels = load_run_model(prune_dir).model.config.channels
    assert channels[0] < 4  # the prune run's model.pt is the smaller network
    out = tmp_path / "pruned.onnx"
    info = export_onnx(prune_dir, out)
    _check_file(runs, prune_dir, out, channels)
    assert info["source"].endswith("model.pt")


def test_smaller_network_built_directly_matches_pytorch(runs, tmp_path):
    _, preprocessing = load_model(runs.train / "model.pt")
    torch.manual_seed(1)
    save_model(tmp_path / "small" / "model.pt", ExpressionCNN(CNNConfig(channels=(3, 8))), preprocessing)
    out = tmp_path / "small.onnx"
    export_onnx(tmp_path / "small", out)
    _check_file(runs, tmp_path / "small", out, (3, 8))


def test_mismatch_fails_clearly_and_writes_nothing(runs, tmp_path, monkeypatch, capsys):
    real = export_module.onnx_bytes

    def wrong_weights(model, height, width, opset=17):  # an exporter bug: the file differs from the model
        other = ExpressionCNN(model.config)
        return real(other, height, width, opset)

    monkeypatch.setattr(export_module, "onnx_bytes", wrong_weights)
    out = tmp_path / "bad.onnx"
    assert main(["export", "--run", str(runs.train), "--onnx", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ONNX outputs differ from PyTorch's" in err[0] and "nothing written" in err[0]
    assert not out.exists() and not out.with_name("bad.onnx.json").exists()


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_missing_package_is_one_clear_line(runs, tmp_path, monkeypatch, package):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else find_spec(name, *a))
    with pytest.raises(InputError, match=rf"^{package} is not installed: pip install 'fexprune\[onnx\]'"):
        export_onnx(runs.train, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
