"""Record tests/fixtures/runs_v1/: small run folders of every kind, as this checkout's code writes them, and
expected.json, what the public API reads from them (kind, compare's numbers, predictions, the ONNX export's
outputs). tests/test_old_run_folders.py opens them with later code, which must read them unchanged.

    PYTHONPATH=src python tests/record_old_runs.py [--work DIR]

Every run is a CLI call on the built-in synthetic data (no --data), each in its own process with one torch
thread, in a private cache. Only what a reader needs is kept (config.json, results.json, split.json,
metrics.csv, the model and table files); figures, reports, TensorBoard files and resume checkpoints are left
out to keep the fixture small. The four frames predicted are copied into the fixture (shrunk), so the
expectations do not follow the synthetic data's generator.

Recorded once, by the code that wrote the first run-folder format: run it again only to add a kind of run
that format could write, never to follow a change of reading.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import old_runs  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
THREADS = "1"

# name: (argv after `fexprune`, runs it reads). "{runs}" is the folder the runs are written in.
RUNS = {
    "paper": (("train", "--epochs", "5", "--seed", "0"), ()),
    "best": (("train", "--recipe", "best", "--members", "1", "--epochs", "2", "--seed", "1"), ()),
    "transfer": (("train", "--recipe", "transfer", "--epochs", "1", "--seed", "2"), ()),
    "probe": (("train", "--recipe", "probe", "--seed", "9"), ()),
    "faces": (("train", "--face-crop", "--detectors", "haar-default", "--epochs", "2", "--seed", "10"), ()),
    "prune": (("prune", "--run", "{runs}/paper", "--criterion", "l2", "--remove", "--seed", "6"), ("paper",)),
    "curve": (("prune", "--run", "{runs}/paper", "--curve", "0.5", "--criterion", "l2", "--curve-finetune", "1",
               "--scratch-epochs", "0", "--sensitivity", "none", "--seed", "8", "--no-progress"), ("paper",)),
    "baseline": (("baseline", "--seed", "4"), ()),
    "cv": (("train", "--recipe", "best", "--members", "1", "--epochs", "1", "--cv", "2", "--seed", "3"), ()),
    "pic": (("pic", "--epochs", "50", "--retrain-epochs", "5", "--seed", "5"), ()),
    "sweep": (("sweep", "--channels", "4,8", "--repeats", "1", "--epochs", "2", "--workers", "1", "--seed", "7"), ()),
}
QUIET = {"train", "baseline", "pic", "sweep"}  # the commands that take --quiet
# files and folders a reader does not need: pictures, reports, TensorBoard's events, resume checkpoints
LEFT_OUT = {"figures", "tensorboard", "report.html", "report.md", "checkpoint.pt"}
LEFT_OUT_SUFFIXES = (".png", ".jpg")


def recipe_available(name: str, env: dict) -> bool:
    """Whether the FER2013 recipes can train here: h5py and the weights `fexprune weights fetch` put in place."""
    if name not in ("transfer", "probe"):
        return True
    script = ("import h5py; from fexprune.models import fer_transfer; "
              "raise SystemExit(0 if fer_transfer.available() else 1)")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True).returncode == 0


def run(name: str, runs_dir: Path, env: dict) -> None:
    argv, _ = RUNS[name]
    argv = [arg.replace("{runs}", str(runs_dir)) for arg in argv]
    argv += ["--out", str(runs_dir / name), "--no-tensorboard"]
    if argv[0] in QUIET:
        argv.append("--quiet")
    print(f"fexprune {' '.join(argv)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "fexprune", *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def keep(source: Path, target: Path) -> None:
    """The run folder's files a reader needs, copied."""
    target.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.name in LEFT_OUT or path.suffix in LEFT_OUT_SUFFIXES:
            continue
        if path.is_dir():
            keep(path, target / path.name)
        else:
            shutil.copy2(path, target / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=old_runs.FIXTURE, help="fixture folder (replaced)")
    parser.add_argument("--work", type=Path, help="keep the cache and the full runs here (default: a temporary folder)")
    parser.add_argument("--only", help="comma list of runs (default: all)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="record-old-runs-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(REPOSITORY / "src"))
        from fexprune.weights import weights_root

        # the fetched weights stay where `fexprune weights fetch` put them while the cache is a private one
        env = {**os.environ, "PYTHONPATH": str(REPOSITORY / "src"), "FEXPRUNE_CACHE": str(work / "cache"),
               "FEXPRUNE_WEIGHTS": str(weights_root()),
               "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS}
        env.pop("FEXPRUNE_MLFLOW", None)
        for key in ("FEXPRUNE_CACHE", "FEXPRUNE_WEIGHTS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[key] = env[key]  # this process reads the recorded folders back the same way
        runs_dir = work / "runs"
        runs_dir.mkdir(exist_ok=True)
        names = args.only.split(",") if args.only else list(RUNS)
        skipped = []
        for name in names:
            if not recipe_available(name, env) or any(need in skipped for need in RUNS[name][1]):
                skipped.append(name)
                print(f"skipped {name}: h5py or the fetched FER2013 weights are missing", flush=True)
                continue
            if not (runs_dir / name / "results.json").is_file():
                run(name, runs_dir, env)
        if args.out.exists():
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        for name in names:
            if name not in skipped:
                keep(runs_dir / name, args.out / name)
        old_runs.copy_frames(args.out / old_runs.FRAMES)
        # what is expected is read from the fixture itself, copied away from where it was written, as the test reads it
        with tempfile.TemporaryDirectory(prefix="old-runs-read-") as reading:
            copy = Path(reading) / "runs"
            shutil.copytree(args.out, copy)
            expected = old_runs.read_all(copy, [n for n in names if n not in skipped], Path(reading) / "exports")
        # the last commit that changed the code which wrote and read the folders
        last_change = ["git", "-C", str(REPOSITORY), "log", "-1", "--format=%H", "--", "src"]
        expected["recorded_by"] = subprocess.run(last_change, capture_output=True, text=True).stdout.strip()
        expected["skipped"] = skipped
        (args.out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
