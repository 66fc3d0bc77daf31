"""Splits a network cannot honestly be scored on, and runs a command cannot do what it says with: a class
without a training image, a split.json whose test part is also trained on, a pruning curve of a probe run
(its convolutions are frozen) are refused in one line; a run folder linked into a folder of runs is compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fexprune.data.synth import write_synthetic

from .conftest import train_args


@pytest.fixture
def run(cli, images, tmp_path) -> Path:
    assert cli(*train_args(images.resolve(), tmp_path / "run")).code == 0
    return tmp_path / "run"


@pytest.mark.parametrize("recipe", ["paper", "best"])
def test_a_class_without_a_training_image_is_refused(cli, tmp_path, recipe):
    images = write_synthetic(tmp_path / "data", per_class=1, size=(180, 144), progress=False)  # 7 frames: 2 go to test
    extra = ["--channels", "2,4"] if recipe == "paper" else ["--members", "1"]
    outcome = cli("train", "--recipe", recipe, "--data", images, "--epochs", "1", "--quiet", "--out", tmp_path / "run", *extra)
    outcome.one_error_line(str(images), "class(es) without a training image")
    assert not (tmp_path / "run").exists()


def test_split_json_whose_test_images_are_also_training_images_is_refused(cli, run, tmp_path):
    split = json.loads((run / "split.json").read_text())
    split["train"].append(split["test"][0])
    (run / "split.json").write_text(json.dumps(split))
    outcome = cli("prune", "--run", run, "--out", tmp_path / "pruned", "--sample-size", "4", "--quiet")
    outcome.one_error_line(str(run / "split.json"), "in both the train and the test part")


def test_prune_curve_of_a_probe_run_is_refused_naming_the_frozen_trunk(cli, run, tmp_path, monkeypatch):
    from fexprune.models.cnn import ExpressionCNN
    from fexprune.models.fer_probe import FERProbe

    assert "frozen" in FERProbe.frozen_trunk  # a probe run's network says its trunk was not trained
    monkeypatch.setattr(ExpressionCNN, "frozen_trunk", FERProbe.frozen_trunk, raising=False)  # this run's says so too
    outcome = cli("prune-curve", "--run", run, "--curve", "0.5", "--out", tmp_path / "curve", "--quiet")
    outcome.one_error_line(str(run), "frozen")
    assert not (tmp_path / "curve").exists()


def test_a_symlinked_run_folder_is_compared(cli, run, tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "linked").symlink_to(run, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a link back up adds nothing
    outcome = cli("compare", folder)
    assert outcome.code == 0 and "1 runs in 1 configurations" in outcome.out, outcome.out
    shutil.copytree(run, folder / "copy")
    assert "2 runs in 1 configurations" in cli("compare", folder).out
