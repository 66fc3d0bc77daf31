"""The fixed runs of the equivalence check, how a run folder becomes a record, and how two records compare.

tests/record_equivalence.py runs them once with a reference commit's code and writes the records to
tests/fixtures/equivalence/; tests/test_equivalence.py runs them with this checkout and compares. Every run
is a CLI call, as a user types it, in its own process with one torch thread (so the numbers do not follow
the machine's core count), two runs at a time where they do not depend on each other.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "equivalence"
TOLERANCE = 1e-6
THREADS = 1  # torch threads of every run: the mini-batch numbers depend on it
PARALLEL = 2
# The default face chain without mtcnn: whether mtcnn runs depends on whether its weights were fetched,
# and the face-crop runs must not.
DETECTORS = "haar-default,haar-alt2,dlib-hog,haar-profile,haar-rotated,clip-neighbour"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]  # after `fexprune`; "{runs}" is the folder of all runs, "{out}" this run's folder
    needs: tuple[str, ...] = ()  # runs it follows: it reads their folders or the face boxes they cached
    out_flag: bool = True  # False: the command takes no --out folder; argv writes into "{out}" itself
    quiet: bool = True


# The face-crop runs follow best, whose face boxes (700 frames, one chain) they then read from the cache.
RUNS = {
    "paper": Run(("train", "--epochs", "30", "--seed", "0")),
    "best": Run(("train", "--recipe", "best", "--members", "1", "--epochs", "3", "--face-crop", "--detectors", DETECTORS,
                 "--seed", "1")),
    "pic": Run(("pic", "--epochs", "400", "--retrain-epochs", "50", "--seed", "5"), quiet=False),
    "prune": Run(("prune", "--run", "{runs}/paper", "--criterion", "all", "--remove", "--seed", "6"), ("paper",), quiet=False),
    "transfer": Run(("train", "--recipe", "transfer", "--epochs", "2", "--face-crop", "--detectors", DETECTORS, "--seed", "2"),
                    ("best",)),
    "probe": Run(("train", "--recipe", "probe", "--face-crop", "--detectors", DETECTORS, "--seed", "9"), ("best",)),
    "baseline": Run(("baseline", "--face-crop", "--detectors", DETECTORS, "--split", "movie", "--seed", "4"), ("best",)),
    "cv": Run(("train", "--recipe", "best", "--members", "1", "--epochs", "2", "--cv", "3", "--seed", "3")),
    "sweep": Run(("sweep", "--channels", "6,12", "--repeats", "2", "--epochs", "4", "--lr", "1e-3", "--workers", "1", "--seed", "7")),
    "curve": Run(("prune", "--run", "{runs}/paper", "--curve", "0.3,0.6", "--criterion", "l2,random", "--curve-finetune", "2",
                  "--scratch-epochs", "2", "--sensitivity", "none", "--seed", "8"), ("paper",)),
    "predict": Run(("predict", "--run", "{runs}/best", "{images}", "--out", "{out}/predictions.csv"), ("best",), out_flag=False),
    "export": Run(("export", "--run", "{runs}/prune", "--onnx", "{out}/model.onnx"), ("prune",), out_flag=False, quiet=False),
}
NEEDS = {"transfer": "h5py", "probe": "h5py"}  # a run that needs an optional package skips where it is missing
PREDICT_IMAGES = 4  # the first frame of the first classes of the built-in data

# keys whose values are the machine's, the file system's or the installation's, not the code's
IGNORED = {"seconds", "last_invocation_seconds", "timings", "latency_ms", "latency", "root", "train_run", "report",
           "from_cache", "path", "paths", "fallback", "clip_neighbour", "run", "data", "skipped", "pretrained",
           "provenance", "onnx", "created", "source", "train_runs"}


def machine() -> dict:
    """What the mini-batch numbers follow besides the code: torch's build and the CPU's vector width."""
    import torch

    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "vector_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))),
            "machine": platform.machine(), "torch_threads": THREADS}


def machine_difference(recorded: dict, here: dict) -> list[str]:
    return [f"{key} {recorded.get(key)!r} there, {here.get(key)!r} here" for key in sorted(set(recorded) | set(here))
            if recorded.get(key) != here.get(key)]


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


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if "seconds" not in k and "latency" not in k and k != "path"}
                for row in csv.DictReader(handle)]


def _file_name(path: Path) -> str:
    """The path a run's file is compared by: TensorBoard names its event files by time, host and process."""
    return str(path.parent / "events.out.tfevents") if path.name.startswith("events.out.tfevents.") else str(path)


def record_run(run_dir: Path) -> dict:
    """The run folder's files, and every number of its results.json, metrics.csv, predictions and ONNX check."""
    files = sorted({_file_name(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")})
    record = {"files": files}
    for results in sorted([*run_dir.rglob("results.json"), *run_dir.rglob("*.onnx.json")]):
        record[f"results:{results.relative_to(run_dir)}"] = _flatten(json.loads(results.read_text()))
    for table in sorted([*run_dir.rglob("metrics.csv"), *run_dir.rglob("predictions.csv")]):
        record[f"metrics:{table.relative_to(run_dir)}"] = _table(table)
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


def compare(name: str, expected: dict, actual: dict) -> list[str]:
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


def predict_images(env: dict) -> list[str]:
    """The built-in frames `predict` classifies: the first of each of the first classes (sorted)."""
    script = ("from fexprune.data.builtin import default_data_dir; root = default_data_dir(progress=False); "
              "print('\\n'.join(str(sorted(c.glob('*.png'))[0]) for c in sorted(p for p in root.iterdir() if p.is_dir())"
              f"[:{PREDICT_IMAGES}]))")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def run_all(source: Path, runs_dir: Path, skipped: list[str] | tuple[str, ...] = (), env: dict | None = None,
            extra_paths: tuple[str, ...] = (), parallel: int = PARALLEL) -> tuple[dict, dict]:
    """Every run of RUNS with the package at `source` (and `extra_paths` after it on the path):
    ({run: record}, {run: CPU seconds}); a run whose `needs` were skipped is skipped too. Raises
    AssertionError naming the first run that failed."""
    env = {**(env or os.environ), "PYTHONPATH": os.pathsep.join([str(source), *extra_paths]),
           "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
    runs_dir.mkdir(parents=True, exist_ok=True)
    images = predict_images(env)
    skipped = set(skipped)
    skipped |= {name for name, run in RUNS.items() if set(run.needs) & skipped}
    pending = [name for name in RUNS if name not in skipped]
    records, cpu_seconds, failures = {}, {}, []

    def start(name: str) -> tuple[str, subprocess.CompletedProcess, float]:
        run, out = RUNS[name], runs_dir / name
        argv = []
        for arg in run.argv:
            argv += images if arg == "{images}" else [arg.replace("{runs}", str(runs_dir)).replace("{out}", str(out))]
        if run.out_flag:
            argv += ["--out", str(out)]
        else:
            out.mkdir(parents=True, exist_ok=True)
        if run.quiet:
            argv.append("--quiet")
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen([sys.executable, "-m", "fexprune", *argv], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(process.pid, 0)  # its CPU time, children included: the load does not change it
            process.returncode = os.waitstatus_to_exitcode(status)
            stderr.seek(0)
            error = stderr.read().decode(errors="replace")
        return name, process, error, usage.ru_utime + usage.ru_stime

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running = {}
        while (pending or running) and not failures:
            for name in [n for n in pending if all(need in records for need in RUNS[n].needs)][: parallel - len(running)]:
                pending.remove(name)
                running[pool.submit(start, name)] = name
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                name, process, error, cpu = future.result()
                if process.returncode != 0:
                    failures.append(f"fexprune {' '.join(process.args[3:])} ({source}) failed:\n{error[-2000:]}")
                    continue
                records[name], cpu_seconds[name] = record_run(runs_dir / name), round(cpu, 1)
    assert not failures, failures[0]
    return records, cpu_seconds


def missing_optional() -> list[str]:
    """The runs of NEEDS whose package is not importable here."""
    skipped = []
    for name, module in NEEDS.items():
        try:
            __import__(module)
        except ImportError:
            skipped.append(name)
    return skipped
