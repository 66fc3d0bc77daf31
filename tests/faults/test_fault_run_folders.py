"""Where results go: an output folder that cannot be written is one line and exit 2 (as root, chmod
stops nothing, so the unwritable places are a path under a regular file and /proc); a full disk
names the file; a finished run is never written into; the same seed gives the same numbers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

from fexprune import runs

from .conftest import accounted_results, run_subprocess, train_args


def test_output_under_a_regular_file_is_one_line_and_exit_2(cli, images, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    outcome = cli(*train_args(images, blocker / "sub"))
    outcome.one_error_line(f"{blocker / 'sub'}: cannot create output folder (Not a directory)")
    assert blocker.read_text() == "not a folder"


def test_output_under_proc_is_one_line_and_exit_2(cli, images):
    outcome = cli(*train_args(images, Path("/proc/fexprune-fault-test/run")))
    outcome.one_error_line("/proc/fexprune-fault-test/run: cannot create output folder (")


def test_output_that_is_a_file_is_one_line_and_exit_2(cli, images, tmp_path):
    (tmp_path / "run").write_text("keep me")
    outcome = cli(*train_args(images, tmp_path / "run"))
    outcome.one_error_line(f"{tmp_path / 'run'}: output path exists and is not a folder")
    assert (tmp_path / "run").read_text() == "keep me"


def test_disk_full_while_writing_results_is_one_line_and_leaves_no_temp_file(cli, images, tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync_disk_full(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".results.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_disk_full)
    outcome = cli(*train_args(images, tmp_path / "run"))
    outcome.one_error_line(f"{tmp_path / 'run' / 'results.json'}: No space left on device")
    assert not list((tmp_path / "run").glob(".*.tmp"))
    assert not (tmp_path / "run" / "results.json").exists()


def test_unwritable_cache_warns_once_and_the_run_finishes(images, tmp_path, monkeypatch):
    blocker = tmp_path / "cache.txt"
    blocker.write_text("")
    monkeypatch.setenv("FEXPRUNE_CACHE", str(blocker / "cache"))
    outcome = run_subprocess(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0
    assert len(outcome.error_lines) == 1 and outcome.error_lines[0].startswith("fexprune: warning: could not write cache")
    accounted_results(tmp_path / "run", images)


def test_run_files_are_readable_like_ordinary_files(cli, images, tmp_path):
    assert cli(*train_args(images, tmp_path / "run")).code == 0
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", "results.json", "metrics.csv", "model.pt"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o666 & ~mask, name


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_new_run_never_writes_into_a_finished_run(cli, images, tmp_path):
    finished = tmp_path / "run"
    assert cli(*train_args(images, finished)).code == 0
    before = _tree_digest(finished)
    outcome = cli(*train_args(images, finished))
    assert outcome.code == 0
    assert _tree_digest(finished) == before  # not one file added, changed or removed, no subfolder
    assert f"run folder: {tmp_path / 'run-2'}" in outcome.out
    assert f"{finished} is an existing run, left as it is; this run goes to {tmp_path / 'run-2'}" in outcome.err
    assert (tmp_path / "run-2" / "results.json").is_file()


def test_new_run_never_writes_into_an_unfinished_run(cli, images, tmp_path):
    unfinished = tmp_path / "run"
    unfinished.mkdir()
    runs.write_json(unfinished / "config.json", {"epochs": 5})
    outcome = cli(*train_args(images, unfinished))
    assert outcome.code == 0
    assert sorted(p.name for p in unfinished.iterdir()) == ["config.json"]
    assert (tmp_path / "run-2" / "results.json").is_file()


def test_resuming_a_finished_run_is_one_line_and_exit_2(cli, images, tmp_path):
    assert cli(*train_args(images, tmp_path / "run")).code == 0
    before = _tree_digest(tmp_path / "run")
    outcome = cli("train", "--resume", tmp_path / "run", "--quiet")
    outcome.one_error_line(f"{tmp_path / 'run'}: run already finished; nothing to resume")
    assert _tree_digest(tmp_path / "run") == before


def _numbers(value, prefix=""):
    """Every number in results.json by its key path, except the wall-clock seconds."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() if key != "seconds" for k, v in _numbers(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}/{i}").items()}
    return {prefix: value} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def test_same_config_and_seed_give_identical_results(cli, images, tmp_path):
    args = ["--epochs", "4", "--lr", "1e-3", "--batch-size", "5", "--seed", "7"]
    assert cli(*train_args(images, tmp_path / "a"), *args).code == 0
    assert cli(*train_args(images, tmp_path / "b"), *args).code == 0
    first, second = (json.loads((tmp_path / name / "results.json").read_text()) for name in "ab")
    assert len(_numbers(first)) > 20
    assert _numbers(first) == _numbers(second)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    other_seed = cli(*train_args(images, tmp_path / "c"), *args[:-1], "8")
    assert other_seed.code == 0
    third = json.loads((tmp_path / "c" / "results.json").read_text())
    assert third["train_loss"] != first["train_loss"]  # the seed does reach the numbers
