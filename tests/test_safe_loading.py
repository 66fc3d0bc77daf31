"""A checkpoint that would run code when unpickled is refused with one line and exit code 2, and runs nothing."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.models.cnn import ExpressionCNN


class CreatesFile:
    """Unpickling this calls open(marker, "w"): the file appears if the loader runs pickled code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_checkpoint(run_dir: Path, marker: Path) -> Path:
    """A fexprune-shaped torch.save checkpoint with the payload hidden among the weights."""
    run_dir.mkdir(parents=True)
    state = {"model_config": ExpressionCNN().config.to_dict(), "state_dict": {"conv1.weight": CreatesFile(marker)},
             "preprocessing": {"image_size": [90, 72], "normalize": "per-image", "classes": ["a"] * 7}}
    torch.save(state, run_dir / "model.pt")
    return run_dir


def _raw_pickle(run_dir: Path, marker: Path) -> Path:
    """A plain pickle (not torch's zip format) named model.pt."""
    run_dir.mkdir(parents=True)
    (run_dir / "model.pt").write_bytes(pickle.dumps({"state_dict": CreatesFile(marker)}))
    return run_dir


MAKERS = {"torch-save": _torch_checkpoint, "raw-pickle": _raw_pickle}


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> Path:
    images = write_synthetic(tmp_path_factory.mktemp("frames"), per_class=1, size=(90, 72), progress=False)
    return sorted(images.rglob("*.png"))[0]


@pytest.mark.parametrize("kind", MAKERS)
def test_payload_is_real(kind, tmp_path):
    """The test would be worthless if the payload did nothing: an unsafe load does create the file."""
    marker = tmp_path / "pwned"
    run_dir = MAKERS[kind](tmp_path / "run", marker)
    if kind == "torch-save":
        torch.load(run_dir / "model.pt", weights_only=False)
    else:
        pickle.loads((run_dir / "model.pt").read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("command", ["predict", "export"])
def test_malicious_checkpoint_is_refused(kind, command, frame, tmp_path, capsys):
    marker = tmp_path / "pwned"
    run_dir = MAKERS[kind](tmp_path / "run", marker)
    argv = {"predict": ["predict", "--run", str(run_dir), str(frame), "--out", str(tmp_path / "p.csv"), "--quiet"],
            "export": ["export", "--run", str(run_dir), "--onnx", str(tmp_path / "m.onnx")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"fexprune {command}: error:" in err[0] and "model.pt" in err[0] and "refused to load checkpoint" in err[0]
    assert not marker.exists()
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.onnx").exists()


def test_refusal_from_the_real_command_line_is_one_line(frame, tmp_path):
    """The installed CLI in a fresh process: stderr is exactly one line (no warnings, no traceback)."""
    marker = tmp_path / "pwned"
    run_dir = _raw_pickle(tmp_path / "run", marker)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "fexprune", "predict", "--run", str(run_dir), str(frame),
                           "--out", str(tmp_path / "p.csv"), "--quiet"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused to load checkpoint" in lines[0], done.stderr
    assert not marker.exists()
