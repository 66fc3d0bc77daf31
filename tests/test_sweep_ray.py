"""The Ray backend runs the same trials as the local pool and gives the same numbers for the same seeds."""

from __future__ import annotations

import pytest

from fexprune.data.synth import write_synthetic
from fexprune.experiments.sweep import SweepConfig, run_sweep

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'fexprune[ray]')")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("tiny"), per_class=6, size=(180, 144), progress=False)


def test_ray_and_local_backends_give_identical_numbers(tiny_data, tmp_path):
    config = SweepConfig(channels=[(2, 4)], repeats=2, epochs=3, lr=1e-3, data=str(tiny_data), seed=3, workers=2)
    local = run_sweep(config, out=tmp_path / "local", progress=False)
    config.backend = "ray"
    on_ray = run_sweep(config, out=tmp_path / "ray", progress=False)
    assert not ray.is_initialized()  # the local Ray it started is shut down again
    metrics = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    assert [[t[m] for m in metrics] for t in on_ray.trials] == [[t[m] for m in metrics] for t in local.trials]
    assert on_ray.rows == local.rows
    assert (tmp_path / "ray" / "c2-4_r1" / "results.json").is_file()
    assert "ray" in (tmp_path / "ray" / "report.md").read_text()
