"""The refactor check: a fixed set of runs on the built-in data gives the numbers and files it gave
when tests/equivalence/expected.json was recorded (before the code was reorganised).

Each run goes through the CLI, as a user types it. Every number in results.json and metrics.csv is
compared to 1e-6, except timings and latencies (the machine's, not the code's) and paths; every file a
run wrote then must still be written (a run may write more now: reports, event files).

Record again, only when a change of numbers is intended and said in its commit:
    FEXPRUNE_RECORD_EQUIVALENCE=1 python -m pytest tests/test_equivalence.py
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest

from fexprune.cli import main

EXPECTED = Path(__file__).parent / "equivalence" / "expected.json"
RECORD = os.environ.get("FEXPRUNE_RECORD_EQUIVALENCE") == "1"
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


def _record_run(run_dir: Path) -> dict:
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
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


@pytest.mark.slow
def test_fixed_runs_give_the_recorded_numbers_and_files(tmp_path, capsys):
    if not RECORD and not EXPECTED.is_file():
        pytest.fail(f"{EXPECTED} is missing: record it with FEXPRUNE_RECORD_EQUIVALENCE=1")
    expected = {} if RECORD else json.loads(EXPECTED.read_text())
    actual, skipped = {}, []
    for name, argv in RUNS.items():
        if name in NEEDS:
            try:
                __import__(NEEDS[name])
            except ImportError:
                skipped.append(name)
                continue
        out = tmp_path / name
        argv = [a.replace("{runs}", str(tmp_path)) for a in argv] + ["--out", str(out)]
        if name not in ("prune", "pic"):
            argv.append("--quiet")
        assert main(argv) == 0, f"fexprune {' '.join(argv)} failed"
        actual[name] = _record_run(out)
    capsys.readouterr()
    if RECORD:
        EXPECTED.parent.mkdir(exist_ok=True)
        EXPECTED.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        return
    problems = []
    for name, record in expected.items():
        if name in skipped:
            continue
        problems += _compare(name, record, actual[name])
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems) - 40} more" if len(problems) > 40 else "")
