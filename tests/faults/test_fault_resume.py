"""Resuming an interrupted run: a checkpoint or config.json that does not fit the run, options the resume
would ignore, and a data set changed since the run started are each one line and exit 2, with the run
folder left as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from fexprune import runs
from fexprune.experiments import train as train_module
from fexprune.models.cnn import CNNConfig, ExpressionCNN

from .conftest import train_args


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def interrupted(cli, images, tmp_path, monkeypatch) -> Path:
    """A run stopped after its last checkpoint (epoch 2 of 3), before it wrote results.json."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the results")

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "write_run", killed)
        outcome = cli(*train_args(images, tmp_path / "run"), "--epochs", "3", "--checkpoint-every", "1")
    plt.close("all")  # the figures write_run would have saved and closed
    assert outcome.code == 130, outcome.err
    run_dir = tmp_path / "run"
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "results.json").exists()
    return run_dir


def _resume(cli, run_dir: Path, *extra):
    before = _tree_digest(run_dir)
    outcome = cli("train", "--resume", run_dir, "--quiet", *extra)
    return outcome, before


def test_an_untouched_interrupted_run_resumes(cli, interrupted):
    outcome, _ = _resume(cli, interrupted)
    assert outcome.code == 0, outcome.err
    assert json.loads((interrupted / "results.json").read_text())["epochs"] == 3


def test_checkpoint_of_another_architecture_is_one_line_and_exit_2(cli, interrupted):
    state = torch.load(interrupted / "checkpoint.pt", weights_only=True)
    state["model"] = ExpressionCNN(CNNConfig(channels=(3, 6), n_classes=7)).state_dict()
    runs.save_checkpoint(interrupted / "checkpoint.pt", state)
    outcome, before = _resume(cli, interrupted)
    outcome.one_error_line(f"{interrupted / 'checkpoint.pt'}: cannot resume: checkpoint holds another network than "
                           "the run's spec describes (conv1.bias: (3,) in the checkpoint, (2,) in the run)")
    assert _tree_digest(interrupted) == before


def test_checkpoint_missing_its_keys_is_one_line_and_exit_2(cli, interrupted):
    state = torch.load(interrupted / "checkpoint.pt", weights_only=True)
    del state["optimizer"], state["generator"]
    runs.save_checkpoint(interrupted / "checkpoint.pt", state)
    outcome, before = _resume(cli, interrupted)
    outcome.one_error_line(f"{interrupted / 'checkpoint.pt'}: cannot resume: checkpoint lacks optimizer, generator")
    assert _tree_digest(interrupted) == before


@pytest.mark.parametrize("key, value", [("epochs", "3"), ("channels", "2,4"), ("lr", None), ("face_crop", "no")])
def test_config_json_of_wrong_types_is_one_line_and_exit_2(cli, interrupted, key, value):
    config = json.loads((interrupted / "config.json").read_text())
    config[key] = value
    runs.write_json(interrupted / "config.json", config)
    outcome, before = _resume(cli, interrupted)
    outcome.one_error_line(f"{interrupted / 'config.json'}: {key} must be ")
    assert _tree_digest(interrupted) == before


def test_options_that_conflict_with_the_run_are_refused(cli, interrupted, images, tmp_path):
    """--data and --epochs were ignored without a word: the run continues with its own config.json."""
    outcome, before = _resume(cli, interrupted, "--data", tmp_path, "--epochs", "9")
    outcome.one_error_line(f"{interrupted}: --data, --epochs cannot change a run being resumed")
    assert _tree_digest(interrupted) == before


def test_an_abbreviated_option_is_refused_too(cli, interrupted):
    outcome, _ = _resume(cli, interrupted, "--epoch", "9")
    outcome.one_error_line("--epochs cannot change a run being resumed")


def test_resuming_after_the_data_set_changed_is_refused(cli, interrupted, images):
    """A frame added: the split, and every number after it, would change without a word."""
    frame = sorted((images / "Sad").glob("*.png"))[0]
    shutil.copy(frame, images / "Happy" / "Added_1_1.png")
    outcome, before = _resume(cli, interrupted)
    outcome.one_error_line(str(images), "the data set changed since this run started")
    assert _tree_digest(interrupted) == before


def test_the_data_fingerprint_is_recorded_in_the_spec(interrupted):
    assert len(json.loads((interrupted / "config.json").read_text())["data"]["fingerprint"]) == 16
