"""Run folders are taken atomically: runs started at once on one `--out` get a folder each, none inside
another's, whether that `--out` is missing or an empty folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fexprune import run_folder


def _race(base: Path, count: int) -> list[Path]:
    """`count` threads call new_run_dir(base) at the same moment."""
    start = threading.Barrier(count)
    taken: list[Path] = [None] * count  # type: ignore[list-item]

    def take(k: int) -> None:
        start.wait()
        taken[k] = run_folder.new_run_dir(base, "train")

    threads = [threading.Thread(target=take, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return taken


def _disjoint(folders: list[Path]) -> None:
    resolved = [folder.resolve() for folder in folders]
    assert len(set(resolved)) == len(resolved), folders
    for a in resolved:
        for b in resolved:
            assert a == b or a not in b.parents, (a, b)


@pytest.mark.parametrize("out", ["missing", "empty folder"])
def test_runs_started_at_once_on_one_out_get_a_folder_each(tmp_path, out):
    for round_ in range(20):  # a race lost once in many tries still fails the test
        base = tmp_path / f"run{round_}"
        if out == "empty folder":
            base.mkdir()
        taken = _race(base, 4)
        _disjoint(taken)
        assert base in taken  # one of them takes the named folder; the others go beside it
        assert sorted(taken) == sorted([base] + [tmp_path / f"run{round_}-{k}" for k in (2, 3, 4)])
        assert all((folder / run_folder.RUN_MARK).is_file() for folder in taken)


def test_a_folder_taken_by_a_run_that_has_written_nothing_yet_is_not_entered(tmp_path):
    first = run_folder.new_run_dir(tmp_path / "run", "train")
    second = run_folder.new_run_dir(tmp_path / "run", "train")
    assert (first, second) == (tmp_path / "run", tmp_path / "run-2")


def test_stamped_folders_under_one_parent_are_each_new(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "notes.txt").write_text("a folder of the user's: runs go inside it")
    taken = _race(parent, 4)
    _disjoint(taken)
    assert all(folder.parent == parent for folder in taken)


def test_two_processes_on_one_out_get_a_folder_each(tmp_path):
    code = ("import sys, time; from fexprune import run_folder; time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
            "print(run_folder.new_run_dir(sys.argv[1], 'train'))")
    at = str(time.time() + 3.0)  # both processes wait to the same moment, after their imports
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run"), at], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    taken = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        taken.append(Path(out.strip()))
    _disjoint(taken)
    assert sorted(taken) == [tmp_path / "run", tmp_path / "run-2"]
