"""Values that cannot train: each is one line and exit 2, before any run folder is made, not a traceback
and not a run that finishes on nonsense (NaN losses, 100% accuracy on one class)."""

from __future__ import annotations

import shutil

import pytest

from fexprune.cli import main

from .conftest import run_subprocess, train_args


def _argument_error(capsys, *argv) -> str:
    """An argument argparse refuses: exit 2 and one stderr line, returned."""
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in argv])
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("lr", ["nan", "-1", "inf", "0"])
def test_train_learning_rate_that_cannot_train_is_one_line_and_exit_2(capsys, images, tmp_path, lr):
    line = _argument_error(capsys, *train_args(images, tmp_path / "run"), f"--lr={lr}")
    assert line.startswith("fexprune train: error: argument --lr: must be a finite number above 0"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("lr", ["nan", "-1"])
def test_pic_learning_rate_that_cannot_train_is_one_line_and_exit_2(capsys, tmp_path, lr):
    line = _argument_error(capsys, "pic", "--epochs", "2", "--retrain-epochs", "1", "--out", tmp_path / "run", f"--lr={lr}")
    assert line.startswith("fexprune pic: error: argument --lr: must be a finite number above 0"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "baseline"])
def test_negative_seed_is_one_line_and_exit_2(capsys, images, tmp_path, command):
    args = train_args(images, tmp_path / "run") if command == "train" else ["baseline", "--data", str(images), "--quiet", "--out", str(tmp_path / "run")]
    line = _argument_error(capsys, *args, "--seed=-1")
    assert line.startswith(f"fexprune {command}: error: argument --seed: must be a whole number from 0 to 4294967295"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "baseline"])
def test_more_folds_than_the_data_allows_is_one_line_and_no_run_folder(cli, images, tmp_path, command):
    args = train_args(images, tmp_path / "run") if command == "train" else ["baseline", "--data", str(images), "--quiet", "--out", str(tmp_path / "run")]
    outcome = cli(*args, "--cv", "50")
    outcome.one_error_line(str(images), "--cv 50 is more folds than the data set allows", "use --cv 3 or fewer")
    assert not (tmp_path / "run").exists()  # baseline once left a folder holding only config.json


def test_kernel_larger_than_the_input_is_one_line_and_exit_2(cli, images, tmp_path):
    outcome = cli(*train_args(images, tmp_path / "run"), "--kernel-size", "40")
    outcome.one_error_line("--kernel-size 40 is too large for 90x72 images")
    assert not (tmp_path / "run").exists()


def test_a_data_set_of_one_class_is_refused(cli, images, tmp_path):
    """One class trains to 100% test accuracy: a number that says nothing."""
    for folder in images.iterdir():
        if folder.name != "Happy":
            shutil.rmtree(folder)
            folder.mkdir()  # empty class folders keep the expression layout
    outcome = cli(*train_args(images, tmp_path / "run"))
    outcome.one_error_line(str(images), "holds images of 1 class only (Happy); a classifier needs at least 2 classes")
    assert not (tmp_path / "run").exists()


def test_a_training_whose_loss_becomes_nan_stops_naming_the_epoch(images, tmp_path):
    outcome = run_subprocess(*train_args(images, tmp_path / "run"), "--epochs", "3", "--lr", "1e30")
    line = outcome.one_error_line("training diverged: the training loss is nan at epoch ")
    assert line.startswith("fexprune train: error: ")
    assert not (tmp_path / "run" / "results.json").exists()
