"""Interrupting a real `fexprune train` process: kill -9 at a random moment (twice) or Ctrl-C, then
`--resume`, ends bit for bit where an uninterrupted run ends (weights and metrics.csv). While it runs,
every checkpoint on disk loads, and a kill leaves at most the one temporary file being written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fexprune import runs
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError

EPOCHS = 100  # ~25 ms each (56 frames, mini-batches of 8): the kill lands mid-run, the test stays short


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("kill"), per_class=10, seed=5, size=(180, 144), progress=False)


def _start(*argv, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same math in every process of the test
    return subprocess.Popen([sys.executable, "-m", "fexprune", *map(str, argv)], env=env, text=True, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _train(data: Path, out: Path, cwd: Path | None = None) -> subprocess.Popen:
    return _start("train", "--data", data, "--epochs", EPOCHS, "--channels", "4,8", "--batch-size", "8",
                  "--lr", "1e-3", "--checkpoint-every", "2", "--quiet", "--out", out, cwd=cwd)


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    assert "Traceback" not in err, err
    return process.returncode, out, err


class Reference:
    """The uninterrupted run, started at once so it trains while the first test kills its own run."""

    def __init__(self, data: Path, run_dir: Path):
        self.run_dir = run_dir
        self.process = _train(data, run_dir)

    def finished(self) -> Path:
        if self.process.returncode is None:
            code, _, err = _finish(self.process)
            assert code == 0, err
        return self.run_dir


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Reference:
    started = Reference(data, tmp_path_factory.mktemp("reference") / "run")
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.communicate()


def _checkpoint_past(process: subprocess.Popen, run_dir: Path, epochs_done: int) -> int:
    """Polls until the checkpoint is past `epochs_done`; every checkpoint seen on the way must load."""
    path = run_dir / "checkpoint.pt"
    while process.poll() is None:
        if path.exists():
            try:
                state = runs.load_checkpoint(path)
            except InputError:
                if path.exists():  # gone is fine (the run ended and removed it); unreadable is not
                    raise
            else:
                if state["epochs_done"] > epochs_done:
                    return int(state["epochs_done"])
        time.sleep(0.003)
    pytest.fail(f"the run ended before it could be interrupted: {process.communicate()[1]}")


def _kill_hard(process: subprocess.Popen, run_dir: Path, epochs_done: int) -> int:
    """kill -9 a random moment after the next checkpoint; returns the checkpoint's epochs."""
    _checkpoint_past(process, run_dir, epochs_done)
    time.sleep(random.uniform(0.0, 0.4))
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists(), "finished before the kill: raise EPOCHS"
    assert len(list(run_dir.glob(".*.tmp"))) <= 1  # at most the file being written at the kill
    state = runs.load_checkpoint(run_dir / "checkpoint.pt")
    assert 2 <= state["epochs_done"] < EPOCHS and state["epochs_done"] % 2 == 0
    assert [row["epoch"] for row in state["metrics"]] == list(range(state["epochs_done"]))
    return int(state["epochs_done"])


def _assert_same_as(reference: Path, run_dir: Path) -> None:
    expected = runs.load_checkpoint(reference / "model.pt")["state_dict"]
    got = runs.load_checkpoint(run_dir / "model.pt")["state_dict"]
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    assert not (run_dir / "checkpoint.pt").exists()
    assert not list(run_dir.glob(".*.tmp"))  # what a kill left half-written is cleared on resume


def test_kill_9_twice_then_resume_equals_uninterrupted(data, reference, tmp_path):
    run_dir = tmp_path / "run"
    first = _kill_hard(_train(data, run_dir), run_dir, 0)
    second = _kill_hard(_start("train", "--resume", run_dir, "--quiet"), run_dir, first)
    assert second > first
    code, out, err = _finish(_start("train", "--resume", run_dir, "--quiet"))
    assert code == 0 and err == "", err
    assert f"run folder: {run_dir}" in out
    _assert_same_as(reference.finished(), run_dir)


def test_kill_9_then_resume_of_a_run_given_a_relative_data_path(data, reference, tmp_path):
    """The data named relative to the working folder; resumed from that folder, then from another one."""
    run_dir = tmp_path / "run"
    first = _kill_hard(_train(Path(data.name), run_dir, cwd=data.parent), run_dir, 0)
    second = _kill_hard(_start("train", "--resume", run_dir, "--quiet", cwd=data.parent), run_dir, first)
    assert second > first
    code, out, err = _finish(_start("train", "--resume", "run", "--quiet", cwd=tmp_path))
    assert code == 0 and err == "", err
    _assert_same_as(reference.finished(), run_dir)


def test_ctrl_c_writes_a_checkpoint_exits_130_in_one_line_and_resumes(data, reference, tmp_path):
    run_dir = tmp_path / "run"
    process = _train(data, run_dir)
    _checkpoint_past(process, run_dir, 0)
    process.send_signal(signal.SIGINT)
    code, out, err = _finish(process)
    assert code == 130
    state = runs.load_checkpoint(run_dir / "checkpoint.pt")
    done = int(state["epochs_done"])
    assert err.splitlines() == [
        f"fexprune train: interrupted (checkpoint written after epoch {done}; resume with --resume {run_dir})"
    ]
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / "results.json").exists()
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 1 + done  # header + epochs 0..done-1

    code, _, err = _finish(_start("train", "--resume", run_dir, "--quiet"))
    assert code == 0 and err == "", err
    _assert_same_as(reference.finished(), run_dir)
