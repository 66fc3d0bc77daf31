"""TensorBoard's cost: the same paper-recipe training run (built-in data, mini-batches, one thread) with
event files written every epoch and with --no-tensorboard, each in a fresh process, interleaved.
Writes its section of benchmarks/RESULTS.md; exit 1 when TensorBoard adds more than 3% to a run.

    python benchmarks/bench_tracking.py [--epochs 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import RESULTS, machine, write_section  # noqa: E402

LIMIT = 0.03


def one_run(out: Path, epochs: int, tensorboard: bool) -> float:
    """Wall seconds of one `fexprune train` process, start to end (imports and the event files included)."""
    command = [sys.executable, "-m", "fexprune", "train", "--epochs", str(epochs), "--batch-size", "32", "--lr", "1e-3",
               "--quiet", "--out", str(out)] + ([] if tensorboard else ["--no-tensorboard"])
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - started


def time_inside_tensorboard(out: Path, epochs: int) -> tuple[float, float]:
    """(seconds spent in fexprune.tracking's TensorBoard calls, seconds of the whole run), one run in this
    process: a share that the machine's load cannot blur, as it can the difference of two wall times."""
    import torch

    from fexprune import tracking
    from fexprune.config import TrainConfig
    from fexprune.experiments.train import train

    torch.set_num_threads(1)
    spent = [0.0]

    def timed_call(function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started
        return wrapper

    tracking.EpochLog.__init__ = timed_call(tracking.EpochLog.__init__)
    tracking.EpochLog.epoch = timed_call(tracking.EpochLog.epoch)
    tracking.EpochLog.close = timed_call(tracking.EpochLog.close)
    tracking._tensorboard_summary = timed_call(tracking._tensorboard_summary)
    started = time.perf_counter()
    train(TrainConfig(epochs=epochs, batch_size=32, lr=1e-3), out=out, progress=False)
    return spent[0], time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as scratch:
        one_run(Path(scratch) / "warm", 1, True)  # the built-in data is generated and cached once, outside the timing
        times: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):  # interleaved, the order alternating: drift hits both alike
            for tensorboard in ((True, False) if round_ % 2 == 0 else (False, True)):
                times[tensorboard].append(one_run(Path(scratch) / f"r{round_}-{tensorboard}", args.epochs, tensorboard))
        inside, whole = time_inside_tensorboard(Path(scratch) / "inside", args.epochs)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    overhead = max(on / off - 1, inside / whole)  # the wall-time difference is the load's noise when it is below the share
    info = machine()
    report = "\n".join([
        "# TensorBoard's cost (benchmarks/bench_tracking.py)", "",
        f"- Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']}; {info['date']};"
        f" load average before: {load_before}.",
        f"- Run: `fexprune train` (paper recipe) on the built-in data, {args.epochs} epochs, mini-batches of 32, OMP_NUM_THREADS=1,"
        f" each a fresh process; {args.rounds} interleaved rounds, medians of whole-process wall time.", "",
        "| | median s per run | runs (s) |", "|---|---|---|",
        f"| --no-tensorboard | {off:.2f} | {', '.join(f'{t:.2f}' for t in times[False])} |",
        f"| TensorBoard on (default) | {on:.2f} | {', '.join(f'{t:.2f}' for t in times[True])} |", "",
        f"Time inside TensorBoard's calls (writer, {args.epochs} epochs of scalars, the summary with its images and"
        f" hyperparameters), one run in the benchmark's own process: {inside:.2f} s of {whole:.1f} s ="
        f" {100 * inside / whole:.1f}%.", "",
        f"TensorBoard adds {100 * overhead:+.1f}% to a run, the larger of the two (target <= {100 * LIMIT:.0f}%): "
        f"{'met' if overhead <= LIMIT else 'NOT met'}.",
    ])
    write_section(args.out, "tracking", report)
    print(report)
    return 0 if overhead <= LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
