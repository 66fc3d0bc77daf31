"""Builders for the fault suite: a tiny synthetic data set per test, the real CLI, and the count
that proves nothing was dropped silently (kept + skipped == files on disk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fexprune.cli import main
from fexprune.data.synth import write_synthetic


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def one_error_line(self, *needles: str) -> str:
        """Exit code 2, exactly one stderr line holding every needle; returns that line."""
        assert self.code == 2, (self.code, self.err)
        assert len(self.error_lines) == 1, self.err
        line = self.error_lines[0]
        for needle in needles:
            assert needle in line, (needle, line)
        return line


@pytest.fixture(scope="session")
def synthetic_images(tmp_path_factory) -> Path:
    """21 frames (3 per expression), 180x144: decoded and resized in milliseconds."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic"), per_class=3, size=(180, 144), progress=False)


@pytest.fixture
def images(tmp_path, synthetic_images) -> Path:
    """A private copy of the synthetic Images/ folder that a test may damage."""
    return Path(shutil.copytree(synthetic_images, tmp_path / "data" / "Images", symlinks=True))


@pytest.fixture
def cli(capsys):
    """Runs `fexprune ARGS` in this process; a traceback on stderr fails the test whatever the code."""

    def run(*argv: str | os.PathLike) -> Outcome:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Outcome(code, captured.out, captured.err)

    return run


def run_subprocess(*argv: str | os.PathLike, timeout: float = 120) -> Outcome:
    """`python -m fexprune ARGS` in a fresh process (one thread: the test machines are shared)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "fexprune", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return Outcome(done.returncode, done.stdout, done.stderr)


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--epochs", "1", "--channels", "2,4", "--quiet", "--out", str(out), *extra]


def files_on_disk(root: Path) -> int:
    """Every file under `root` a user would see (links to files and broken links included, links to
    folders not followed; dot-files such as .DS_Store are never part of a data set)."""
    count = 0
    for _, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        count += sum(1 for name in filenames if not name.startswith("."))
    return count


def accounted_results(run_dir: Path, root: Path) -> dict:
    """results.json of a train run, after checking that every file on disk is kept or listed as skipped."""
    results = json.loads((run_dir / "results.json").read_text())
    data = results["data"]
    assert data["n_images"] + data["n_skipped"] == files_on_disk(root), data
    assert len(results["skipped"]) == data["n_skipped"] == len(data["skipped"])
    assert results["n_train"] + results["n_test"] == data["n_images"]
    return results


def skip_reasons(results: dict) -> dict[str, str]:
    """{file name: reason} of the files a run skipped."""
    return {Path(item["path"]).name: item["reason"] for item in results["skipped"]}
