"""The same commands on a GPU: one epoch of each network on the CPU and on the GPU in the same run, the
paper's whole reproduction and the judged accuracy protocol (best recipe, face crops, 2 splits x 5 seeds)
timed end to end on the GPU, and the paper network's loss curve on both devices. Writes its section of
benchmarks/RESULTS.md with the device's name; exit 1 when a target is missed; without CUDA it says so and
exits 0, writing nothing.

    python benchmarks/bench_gpu.py [--data PATH] [--skip-reproduce] [--skip-protocol] [--workers 4]

Targets: one full-batch epoch of the paper's 16/32 network >= 50x the 2-core CPU; `fexprune reproduce` at
paper settings <= 3 min (>= 15x the 52 min of 2 CPU cores); the judged protocol <= 5 min; the paper's loss
curve within 1e-3 of the CPU's after 100 epochs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import RESULTS, machine, write_section  # noqa: E402

CPU_REPRODUCE_MINUTES = 52.0  # `fexprune reproduce` at paper settings on 2 CPU cores (bench_reproduce.py)


def epoch_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch: int | None, repeats: int = 3) -> float:
    """Median wall time of one training epoch (full batch, or mini-batches of `batch`) on `device`."""
    import statistics

    from fexprune.training.minibatch import train_epoch

    model = model.to(device)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats + 1):  # the first epoch warms up kernels and allocators
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        train_epoch(model, x, y, optimizer, generator, batch or len(x))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def networks():
    from fexprune.models.best_cnn import BestCNNConfig, BestEnsemble
    from fexprune.models.cnn import CNNConfig, ExpressionCNN

    yield "paper 16/32, full batch", lambda: ExpressionCNN(CNNConfig(channels=(16, 32), input_size=(90, 72), n_classes=7)), None
    yield "best (3 networks), batches of 32", lambda: BestEnsemble(BestCNNConfig(channels=(16, 32, 64), pooled=(9, 11), members=3,
                                                                                  input_size=(90, 72), n_classes=7)), 32


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="image data set (default: the built-in data)")
    parser.add_argument("--workers", type=int, default=4, help="sweep trials side by side on the one GPU")
    parser.add_argument("--skip-reproduce", action="store_true")
    parser.add_argument("--skip-protocol", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing measured")
        return 0
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    name = torch.cuda.get_device_name(gpu)
    lines, ok = [], True
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(540, 1, 72, 90, generator=generator), torch.randint(0, 7, (540,), generator=generator)
    lines += ["| network | CPU s / epoch | GPU s / epoch | speed-up |", "|---|---|---|---|"]
    for label, build, batch in networks():
        torch.manual_seed(0)
        on_cpu = epoch_seconds(build(), x, y, cpu, batch)
        torch.manual_seed(0)
        on_gpu = epoch_seconds(build(), x, y, gpu, batch)
        lines.append(f"| {label} | {on_cpu:.3f} | {on_gpu:.4f} | {on_cpu / on_gpu:.0f}x |")
        if label.startswith("paper") and on_cpu / on_gpu < 50:
            ok = False
    data = ["--data", args.data] if args.data else []
    with tempfile.TemporaryDirectory() as scratch:
        curves = {}
        for device in ("cpu", "cuda"):
            out = Path(scratch) / f"curve-{device}"
            timed([sys.executable, "-m", "fexprune", "train", *data, "--epochs", "100", "--lr", "1e-3", "--device", device,
                   "--deterministic", "--quiet", "--no-tensorboard", "--out", str(out)])
            import csv

            with open(out / "metrics.csv", newline="") as handle:
                curves[device] = [float(row["train_loss"]) for row in csv.DictReader(handle)]
        gap = max(abs(a - b) for a, b in zip(curves["cpu"], curves["cuda"]))
        ok &= gap <= 1e-3
        lines += ["", f"Paper network, 100 full-batch epochs at lr 1e-3: max |CPU - GPU| train loss {gap:.2e} (target <= 1e-3)."]
        if not args.skip_reproduce:
            seconds = timed([sys.executable, "-m", "fexprune", "reproduce", *data, "--device", "cuda", "--workers", str(args.workers),
                             "--quiet", "--no-tensorboard", "--out", str(Path(scratch) / "reproduce")])
            ok &= seconds <= 180
            lines.append(f"`fexprune reproduce` at paper settings, {args.workers} trials side by side on the GPU: {seconds:.0f} s end to end "
                         f"({CPU_REPRODUCE_MINUTES * 60 / seconds:.0f}x the {CPU_REPRODUCE_MINUTES:.0f} min of 2 CPU cores; target <= 180 s).")
        if not args.skip_protocol:
            started = time.perf_counter()
            for split in ("random", "movie"):
                for seed in range(5):
                    timed([sys.executable, "-m", "fexprune", "train", *data, "--recipe", "best", "--face-crop", "--split", split,
                           "--seed", str(seed), "--device", "cuda", "--quiet", "--no-tensorboard",
                           "--out", str(Path(scratch) / f"best-{split}-{seed}")])
            seconds = time.perf_counter() - started
            ok &= seconds <= 300
            lines.append(f"Judged accuracy protocol (best recipe, face crops, 2 splits x 5 seeds, one after another): {seconds:.0f} s "
                         "(target <= 300 s).")
    info = machine()
    report = "\n".join([
        "# The same commands on a GPU (benchmarks/bench_gpu.py)", "",
        f"- GPU: {name}; CPU: {info['cpu']}, {os.cpu_count()} cores; torch {info['torch']}; {info['date']}.",
        "- One epoch: 540 random 72x90 images, Adam; the median of 3 epochs after one warm-up, the CPU with all its threads.", "",
        *lines, "", f"All targets {'met' if ok else 'NOT met'}.",
    ])
    write_section(args.out, "gpu", report)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
