"""The refactor check: a fixed set of runs on the built-in data gives the numbers and files that the code
of REFERENCE (the last commit whose numbers changed on purpose) gives on the same machine.

Each run goes through the CLI, as a user types it, once with the reference's source (read from git) and
once with this checkout's, each in its own process with the same environment. Every number in
results.json and metrics.csv is compared to 1e-6, except timings and latencies (the machine's, not the
code's) and paths; every file the reference wrote must still be written (a run may write more now:
reports, event files).

Both sides run here because a fixed record cannot be compared at 1e-6 on another machine: the mini-batch
recipes' numbers follow the CPU's vector width and thread count (a 5-epoch best run differed by 1e-5 in
its first epoch's loss and by a test image later on another machine of the same kind).

When a change of numbers is intended, say so in its commit and move REFERENCE to that commit.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE = "49db3874c542bc6cf6cf8e77cbfe59964f0188a1"
TOLERANCE = 1e-6

# name -> the command line after `fexprune`; "{runs}" is the folder of this test's runs
RUNS = {
    "paper": ["train", "--epochs", "30", "--seed", "0"],
    "best": ["train", "--recipe", "best", "--epochs", "5", "--face-crop", "--seed", "1"],
    "transfer": ["train", "--recipe", "transfer", "--epochs", "3", "--face-crop", "--seed", "2"],
    "cv": ["train", "--recipe", "best", "--members", "1", "--epochs", "3", "--cv", "3", "--seed", "3"],
    "baseline": ["baseline", "--face-crop", "--split", "movie", "--seed", "4"],
    "pic": ["pic", "--epochs", "400", "--retrain-epochs", "50", "--seed", "5"],
    "prune": ["prune", "--run", "{runs}/paper", "--criterion", "all", "--remove", "--seed", "6"],
    "sweep": ["sweep", "--channels", "6,12", "--repeats", "2", "--epochs", "4", "--lr", "1e-3", "--workers", "1", "--seed", "7"],
}
NEEDS = {"transfer": "h5py"}  # a run that needs an optional package skips where it is missing

# keys whose values are the machine's or the file system's, not the code's
IGNORED = {"seconds", "last_invocation_seconds", "timings", "latency_ms", "latency", "root", "train_run", "report",
           "from_cache", "path", "paths", "fallback", "clip_neighbour", "run", "data", "skipped"}


def _flatten(value, prefix: str = "") -> dict:
    """{dotted key: leaf} of a JSON value, the ignored keys left out."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in IGNORED or "latency" in key or key.endswith("_seconds"):
                continue
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}{index}."))
        return out
    return {prefix.rstrip("."): value}


def _metrics(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if "seconds" not in k and "latency" not in k} for row in csv.DictReader(handle)]


def _file_name(path: Path) -> str:
    """The path a run's file is compared by: TensorBoard names its event files by time, host and process."""
    return str(path.parent / "events.out.tfevents") if path.name.startswith("events.out.tfevents.") else str(path)


def _record_run(run_dir: Path) -> dict:
    files = sorted({_file_name(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")})
    record = {"files": files}
    for results in sorted(run_dir.rglob("results.json")):
        record[f"results:{results.relative_to(run_dir)}"] = _flatten(json.loads(results.read_text()))
    for metrics in sorted(run_dir.rglob("metrics.csv")):
        record[f"metrics:{metrics.relative_to(run_dir)}"] = _metrics(metrics)
    return record


def _same(expected, actual) -> bool:
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)) and not isinstance(expected, bool):
        if math.isnan(expected):
            return math.isnan(actual)
        return abs(expected - actual) <= TOLERANCE * max(1.0, abs(expected))
    try:  # metrics.csv cells are text
        return _same(float(expected), float(actual))
    except (TypeError, ValueError):
        return expected == actual


def _compare(name: str, expected: dict, actual: dict) -> list[str]:
    problems = [f"{name}: no longer writes {f}" for f in expected["files"] if f not in actual["files"]]
    for key, values in expected.items():
        if key == "files":
            continue
        if key not in actual:
            problems.append(f"{name}: {key} missing")
            continue
        got = actual[key]
        if key.startswith("metrics:"):
            if len(values) != len(got):
                problems.append(f"{name}: {key} has {len(got)} rows, expected {len(values)}")
                continue
            pairs = [(f"row {i} {k}", v, row_got.get(k)) for i, (row, row_got) in enumerate(zip(values, got)) for k, v in row.items()]
        else:
            pairs = [(k, v, got.get(k, "<missing>")) for k, v in values.items()]
        problems += [f"{name}: {key} {where}: expected {v!r}, got {g!r}" for where, v, g in pairs if not _same(v, g)]
    return problems


def _reference_source(folder: Path) -> Path:
    """REFERENCE's src/ unpacked into `folder`; skips where this checkout has no such commit (a shallow clone)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "reference.tar"
    try:
        with open(archive, "wb") as handle:
            subprocess.run(["git", "-C", str(REPOSITORY), "archive", "--format=tar", REFERENCE, "src"],
                           stdout=handle, stderr=subprocess.PIPE, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the reference commit {REFERENCE[:7]} cannot be read from git here ({error})")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def _run_all(source: Path, runs_dir: Path, skipped: list[str]) -> dict:
    """Every run of RUNS with the package at `source`, each in a fresh process; {name: its record}."""
    records = {}
    env = {**os.environ, "PYTHONPATH": str(source)}
    for name, argv in RUNS.items():
        if name in skipped:
            continue
        out = runs_dir / name
        argv = [a.replace("{runs}", str(runs_dir)) for a in argv] + ["--out", str(out)]
        if name not in ("prune", "pic"):
            argv.append("--quiet")
        done = subprocess.run([sys.executable, "-m", "fexprune", *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"fexprune {' '.join(argv)} ({source}) failed:\n{done.stderr[-2000:]}"
        records[name] = _record_run(out)
    return records


@pytest.mark.slow
def test_fixed_runs_give_the_reference_numbers_and_files(tmp_path):
    skipped = []
    for name, module in NEEDS.items():
        try:
            __import__(module)
        except ImportError:
            skipped.append(name)
    reference_source = _reference_source(tmp_path / "reference")
    expected = _run_all(reference_source, tmp_path / "reference-runs", skipped)
    actual = _run_all(REPOSITORY / "src", tmp_path / "runs", skipped)
    problems = []
    for name, record in expected.items():
        problems += _compare(name, record, actual[name])
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems) - 40} more" if len(problems) > 40 else "")


def test_the_comparison_sees_a_changed_number_and_a_lost_file():
    expected = {"files": ["a.csv", "results.json"], "results:results.json": {"test_accuracy": 0.5, "n": 3}}
    same = {"files": ["a.csv", "b.png", "results.json"], "results:results.json": {"test_accuracy": 0.5 + 1e-9, "n": 3}}
    assert _compare("x", expected, same) == []
    moved = {"files": ["results.json"], "results:results.json": {"test_accuracy": 0.5 + 1e-4, "n": 3}}
    problems = _compare("x", expected, moved)
    assert any("no longer writes a.csv" in p for p in problems) and any("test_accuracy" in p for p in problems)
    one, other = Path("tensorboard/events.out.tfevents.1796513717.vm.22781.0"), Path("tensorboard/events.out.tfevents.1796513999.vm.9.0")
    assert _file_name(one) == _file_name(other) != _file_name(Path("tensorboard/hparams/events.out.tfevents.1.vm.2.0"))
