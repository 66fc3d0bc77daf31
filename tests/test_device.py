"""--device: auto says where it computes, a missing device is one line, the CPU path gives the numbers it
always gave, and (on a machine with CUDA) a GPU run matches the CPU's and predicts on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fexprune.cli import main
from fexprune.config import TrainConfig
from fexprune.data.prepared import prepare_data
from fexprune.faces.loading import load_images
from fexprune.data.synth import write_synthetic
from fexprune.device import resolve_device
from fexprune.errors import InputError
from fexprune.experiments.train import train
from fexprune.run_folder import read_settings

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine (GPU paths run on a lent GPU machine)")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth"), per_class=10, seed=4, size=(180, 144), progress=False)


def config(data, **overrides) -> TrainConfig:
    values = dict(data=str(data), channels=(4, 8), epochs=3, lr=1e-3, batch_size=16, seed=2)
    return TrainConfig(**{**values, **overrides})


def test_auto_takes_cuda_else_mps_else_the_cpu():
    expected = "cuda" if CUDA else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_a_missing_gpu_is_one_line_and_no_run_folder(tiny_data, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_data), "--device", "cuda", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_the_device_is_recorded_and_the_cpu_gives_the_default_numbers(tiny_data, tmp_path):
    default = train(config(tiny_data), out=tmp_path / "default", progress=False)
    on_cpu = train(config(tiny_data, device="cpu"), out=tmp_path / "cpu", progress=False)
    assert on_cpu.metrics == default.metrics
    assert on_cpu.results["device"] == "cpu" and on_cpu.results["deterministic"] is False
    assert read_settings(tmp_path / "cpu")["device"] == "cpu"


def test_prepared_data_moves_whole_and_unchanged(tiny_data):
    data = prepare_data(config(tiny_data), load_images(config(tiny_data), progress=False))
    moved = data.to(torch.device("cpu"))
    assert torch.equal(moved.x_train, data.x_train) and torch.equal(moved.y_test, data.y_test)
    assert moved.image_set is data.image_set


@needs_cuda
def test_a_gpu_run_follows_the_cpu_curve_and_predicts_on_the_cpu(tiny_data, tmp_path):
    from fexprune.inference.run_model import load_run_model

    paper = dict(batch_size=None, epochs=100, lr=1e-3)
    cpu = train(config(tiny_data, device="cpu", **paper), out=tmp_path / "cpu", progress=False)
    gpu = train(config(tiny_data, device="cuda", deterministic=True, **paper), out=tmp_path / "gpu", progress=False)
    assert gpu.results["device"].startswith("cuda")
    gap = max(abs(a["train_loss"] - b["train_loss"]) for a, b in zip(cpu.metrics, gpu.metrics))
    assert gap < 1e-3, gap
    images = load_images(config(tiny_data), progress=False).images[:16]
    on_gpu = load_run_model(gpu.run_dir, "cuda").probabilities(images)
    on_cpu = load_run_model(gpu.run_dir, "cpu").probabilities(images)
    assert np.allclose(on_gpu, on_cpu, atol=1e-5)


@needs_cuda
def test_the_best_recipe_trains_on_the_gpu(tiny_data, tmp_path):
    result = train(config(tiny_data, recipe="best", device="cuda", epochs=2, members=2), out=tmp_path / "best", progress=False)
    assert result.results["device"].startswith("cuda") and 0 <= result.results["test_accuracy"] <= 1
