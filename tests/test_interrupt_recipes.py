"""Ctrl-C (SIGINT) and SIGTERM stop a `fexprune train` process of any recipe the same way: the epoch under
way ends, the run folder is left resumable (the recipes that checkpoint: paper, best), one line says how to
resume, exit code 130; `--resume` then ends where the uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fexprune.data.synth import write_synthetic

BEST = ["--recipe", "best", "--members", "2", "--epochs", "20", "--batch-size", "16", "--quiet", "--no-tensorboard"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("interrupt"), per_class=6, seed=4, size=(180, 144), progress=False)


def _fexprune(*argv, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FEXPRUNE_CACHE": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "fexprune", *map(str, argv)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    assert "Traceback" not in err, err
    return process.returncode, err


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    code, err = _finish(_fexprune("train", "--data", data, *BEST, "--out", root / "run", cache=root / "cache"))
    assert code == 0, err
    return root / "run"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_best_recipe_stops_at_the_epoch_end_resumable_and_resumes_to_the_same_weights(data, uninterrupted, tmp_path, stop):
    run_dir = tmp_path / "run"
    process = _fexprune("train", "--data", data, *BEST, "--out", run_dir, cache=tmp_path / "cache")
    deadline = time.monotonic() + 120
    while not (run_dir / "split.json").is_file():  # the run folder exists: training is about to start
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(stop)
    started = time.monotonic()
    code, err = _finish(process)
    assert time.monotonic() - started < 30  # an epoch, not the rest of the run
    assert code == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"resume with --resume {run_dir}" in lines[0], err
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "results.json").exists()

    code, err = _finish(_fexprune("train", "--resume", run_dir, "--quiet", "--no-tensorboard", cache=tmp_path / "cache"))
    assert code == 0, err
    resumed, reference = _weights(run_dir), _weights(uninterrupted)
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    assert (run_dir / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path):
    """Any command, not only train: one line and exit code 130, not a silent death by signal."""
    process = _fexprune("data", "synth", "--out", tmp_path / "synth", "--per-class", "500", "--quiet", cache=tmp_path / "cache")
    deadline = time.monotonic() + 120
    while not any((tmp_path / "synth").rglob("*.png")):  # the command is at work
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    code, err = _finish(process)
    assert code == 130, err
    assert "interrupted" in err.splitlines()[-1]
