"""`fexprune reproduce` at paper settings (PIC, the 4 x 5 x 700-epoch channel sweep, the single 700-epoch
run, importance pruning) on the built-in data, timed end to end, with where the time went. Target: at
most 60 minutes on the 2-core machine. Writes its section of benchmarks/RESULTS.md; exit 1 when missed.

    python benchmarks/bench_reproduce.py [--out DIR]      # runs it: about an hour, both cores
    python benchmarks/bench_reproduce.py --from RUN_DIR   # records a finished, uninterrupted run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from fexprune import runs
from fexprune.experiments.reproduce import ReproduceConfig, run_reproduce

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import RESULTS, load, machine, write_section  # noqa: E402

TARGET_MINUTES = 60.0
REUSED = " (the sweep's trial with the same settings, copied: its time is not spent again)"


def summarize(run_dir: Path, load_before: str, load_after: str) -> tuple[str, bool]:
    """The RESULTS.md section for a finished reproduce folder, and whether the target is met."""
    results = runs.read_json(run_dir / "results.json")
    total = float(results["last_invocation_seconds"])
    sweep = runs.read_json(run_dir / "sweep" / "results.json")
    per_network: dict[str, list[float]] = {}
    for trial in sweep["trials"]:
        per_network.setdefault("/".join(map(str, trial["channels"])), []).append(float(trial["seconds"]))
    info = machine()
    reused = (run_dir / "train").is_dir() and runs.read_json(run_dir / "train" / "config.json") in [
        runs.read_json(trial) for trial in (run_dir / "sweep").glob("*/config.json")]
    lines = [
        "# `fexprune reproduce` at paper settings (benchmarks/bench_reproduce.py)\n",
        f"- Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']}; {info['date']}.",
        f"- Load average (1, 5, 15 min) before: {load_before}; after: {load_after}.",
        f"- Run folder: `{run_dir}` (built-in data, paper settings: PIC 2000 + 300 epochs, sweep 4 x 5 x 700 "
        "full-batch epochs at lr 3e-5 on one worker per core, the single run reused from the sweep, l2 pruning).\n",
        "| stage | seconds | minutes |",
        "|---|---|---|",
        *[f"| {stage}{REUSED if stage == 'train' and reused else ''} | {seconds:.0f} | {seconds / 60:.1f} |"
          for stage, seconds in results["timings"].items()],
        f"| **whole command** (data, report and all) | {total:.0f} | **{total / 60:.1f}** |\n",
        "| sweep network | trials | median s per trial (700 epochs) | s per epoch |",
        "|---|---|---|---|",
        *[f"| {name} | {len(times)} | {statistics.median(times):.0f} | {statistics.median(times) / 700:.3f} |"
          for name, times in per_network.items()],
        "",
        f"Sum of trial times {sum(map(sum, per_network.values())) / 60:.1f} min of one core; the sweep took "
        f"{results['timings'].get('sweep', float('nan')) / 60:.1f} min on the pool.",
        "",
    ]
    met = total <= TARGET_MINUTES * 60
    lines.append(f"- [{'x' if met else ' '}] `fexprune reproduce` at paper settings in <= {TARGET_MINUTES:.0f} minutes "
                 f"({total / 60:.1f})")
    return "\n".join(lines), met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="run_dir", type=Path, help="a finished reproduce folder to record instead")
    parser.add_argument("--out", type=Path, help="where to run (default: a temporary folder)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = load()
    if args.run_dir is not None:
        text, met = summarize(args.run_dir, "(not recorded: a finished run)", load())
    else:
        with tempfile.TemporaryDirectory() as scratch:
            run_dir = args.out or Path(scratch) / "reproduce"
            run_reproduce(ReproduceConfig(), out=run_dir, progress=True)
            text, met = summarize(run_dir, load_before, load())
    write_section(args.results, "reproduce", text)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
