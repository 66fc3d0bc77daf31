"""Training speed: the plain reference (benchmarks/reference.py) against fexprune's loop and ensemble,
in one run, on the paper's shape (540 images of 90x72, 16/32 network, full batch, one Adam step per
epoch). Every implementation runs in its own fresh process (fexprune's allocator setting is
process-wide and must not help the reference); rounds are interleaved and per-epoch medians reported,
because other processes share the CPU. Also: the loss curves from one seed, achieved GFLOP/s against a
matmul peak measured in the same run, per-epoch time of the sweep's four networks, and an estimate of
`fexprune reproduce` at paper settings. Writes benchmarks/RESULTS.md.

    python benchmarks/bench_training.py [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
N_IMAGES, HEIGHT, WIDTH, CLASSES, KERNEL, POOLS = 540, 72, 90, 7, 5, (2, 3)
LR, SEED = 1e-3, 0
LOSS_TOLERANCE = 1e-4  # max |loss difference| per epoch over the curve (float32, other summation order)
SWEEP = [(16, 32), (12, 24), (20, 40), (6, 12)]


# ---------------------------------------------------------------- workers (each in a fresh process)
def make_data(seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(N_IMAGES, 1, HEIGHT, WIDTH, generator=generator)
    y = torch.arange(N_IMAGES) % CLASSES  # every class present
    return x, y[torch.randperm(N_IMAGES, generator=generator)]


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    channels = tuple(int(c) for c in args.channels.split(","))
    x, y = make_data(SEED)
    if args.worker == "matmul":
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        a @ b
        times = []
        for _ in range(10):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return {"gflops": 2 * 2048**3 / statistics.median(times) / 1e9}
    if args.worker in ("reference", "reference-shuffled"):
        sys.path.insert(0, str(HERE))
        from reference import train_reference

        if args.worker == "reference-shuffled":  # the same full batch in another order: the same math,
            order = torch.randperm(N_IMAGES, generator=torch.Generator().manual_seed(SEED + 1))
            x, y = x[order], y[order]  # only float32 summation order differs
        losses, seconds = train_reference(x, y, args.epochs, LR, SEED, channels)
        return {"losses": losses, "seconds": seconds}

    from fexprune.models.cnn import CNNConfig, ExpressionCNN

    config = CNNConfig(channels=channels, input_size=(WIDTH, HEIGHT), n_classes=CLASSES)
    stamps = [time.perf_counter()]
    if args.worker == "ours":
        from fexprune.training.loop import fit

        torch.manual_seed(SEED)
        model = ExpressionCNN(config)
        rows = fit(model, x, y, epochs=args.epochs, lr=LR, end_of_epoch=lambda done: stamps.append(time.perf_counter()))
        return {"losses": [row["train_loss"] for row in rows[:-1]], "seconds": _diffs(stamps)}
    if args.worker == "ensemble":  # repeat r: seed SEED + r, its own data (repeat 0: the reference's)
        from ensemble import fit_ensemble  # benchmarks/ensemble.py, beside this script

        models, xs, ys = [], [], []
        for r in range(args.repeats):
            torch.manual_seed(SEED + r)
            models.append(ExpressionCNN(config))
            xr, yr = (x, y) if r == 0 else make_data(SEED + 100 + r)
            xs.append(xr)
            ys.append(yr)
        history = fit_ensemble(models, xs, ys, epochs=args.epochs, lr=LR, on_epoch=lambda epoch, rows: stamps.append(time.perf_counter()))
        stamps.pop(0)  # the first on_epoch comes after the first forward: time whole epochs between calls
        return {"losses": [row["train_loss"] for row in history[0][:-1]], "seconds": _diffs(stamps)[: args.epochs - 1]}
    raise SystemExit(f"unknown worker {args.worker}")


def _diffs(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:])]


# ---------------------------------------------------------------- driver
def run_worker(name: str, threads: int, epochs: int = 0, channels=(16, 32), repeats: int = 1) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--threads", str(threads), "--epochs", str(epochs),
               "--channels", f"{channels[0]},{channels[1]}", "--repeats", str(repeats)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": str(threads)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_parallel(name: str, processes: int, epochs: int) -> list[float]:
    """Epoch times of `processes` one-thread workers running at once, as the sweep's local pool runs
    trials (one per core)."""
    command = [sys.executable, __file__, "--worker", name, "--threads", "1", "--epochs", str(epochs)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}) for _ in range(processes)]
    seconds = []
    for process in running:
        out, _ = process.communicate()
        seconds += json.loads(out.strip().splitlines()[-1])["seconds"][1:]
    return seconds


def step_gflop(channels=(16, 32)) -> float:
    """Conv and linear FLOPs of one full-batch training step: forward, weight gradients of every
    layer, input gradients of conv2 and fc (the images need none)."""
    c1, c2 = channels
    h1, w1 = HEIGHT - KERNEL + 1, WIDTH - KERNEL + 1
    h2, w2 = h1 // POOLS[0] - KERNEL + 1, w1 // POOLS[0] - KERNEL + 1
    macs1 = c1 * h1 * w1 * KERNEL**2
    macs2 = c2 * h2 * w2 * KERNEL**2 * c1
    macs_fc = CLASSES * c2 * (h2 // POOLS[1]) * (w2 // POOLS[1])
    return N_IMAGES * 2 * (2 * (macs1 + macs2 + macs_fc) + macs2 + macs_fc) / 1e9


def machine() -> dict:
    import torch

    model = platform.processor()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "libc": " ".join(platform.libc_ver()), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or append) the part of RESULTS.md between `<!-- name -->` markers; other parts stay."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) + 1 :]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block
    path.write_text(new)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every implementation")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds after the curve round")
    parser.add_argument("--epochs", type=int, default=6, help="epochs timed per process and round")
    parser.add_argument("--curve-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels", default="16,32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    t = args.threads
    load_before = load()
    times = {"reference": [], "ours": [], "ensemble": [], "pool": []}
    peaks = []
    curves = {}
    for round_index in range(args.rounds + 1):
        epochs = args.curve_epochs if round_index == 0 else args.epochs
        peaks.append(run_worker("matmul", t)["gflops"])
        for name in ("reference", "ours", "ensemble"):
            n = max(3, epochs // 2) if name == "ensemble" else epochs
            result = run_worker(name, t, n, repeats=args.repeats)
            times[name] += result["seconds"][1:]  # the first epoch of a process warms up
            if round_index == 0:
                curves[name] = result["losses"]
            print(f"round {round_index} {name}: median epoch {statistics.median(result['seconds'][1:]):.3f} s", file=sys.stderr, flush=True)
        if round_index == 0:
            curves["reference-shuffled"] = run_worker("reference-shuffled", t, epochs)["losses"]
        if round_index > 0:
            times["pool"] += run_parallel("ours", 2, epochs)
    sweep = {}
    for channels in SWEEP:
        sweep[channels] = statistics.median(run_worker("ours", t, 4, channels)["seconds"][1:])
    load_after = load()

    median = {name: statistics.median(values) for name, values in times.items()}
    pool_repeats = -(-args.repeats // 2) * median["pool"]  # ceil(R / 2) rounds of 2 parallel workers
    peak = statistics.median(peaks)
    gflop = step_gflop()
    curve_diff = max(abs(a - b) for a, b in zip(curves["reference"], curves["ours"]))
    ensemble_diff = max(abs(a - b) for a, b in zip(curves["reference"], curves["ensemble"]))
    noise = max(abs(a - b) for a, b in zip(curves["reference"], curves["reference-shuffled"]))
    checks = {
        "one epoch >= 3x faster than the reference": median["reference"] / median["ours"] >= 3,
        f"{args.repeats} repeats together >= 5x faster than {args.repeats} sequential reference runs":
            args.repeats * median["reference"] / min(median["ensemble"], pool_repeats) >= 5,
        f"same loss curve (max |diff| <= {LOSS_TOLERANCE:g})": max(curve_diff, ensemble_diff) <= LOSS_TOLERANCE,
    }
    report = render(args, machine(), load_before, load_after, median, peak, gflop, curves, curve_diff, ensemble_diff, noise, sweep, checks, times, pool_repeats)
    write_section(args.out, "training", report)
    print(report)
    return 0 if all(checks.values()) else 1


def render(args, info, load_before, load_after, median, peak, gflop, curves, curve_diff, ensemble_diff, noise, sweep, checks, times, pool_repeats) -> str:
    r = args.repeats
    ref, ours, ens = median["reference"], median["ours"], median["ensemble"]
    lines = [
        "# Training speed: reference vs fexprune (benchmarks/bench_training.py)", "",
        f"- Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']}, {info['libc']}; {info['date']}.",
        f"- Threads per implementation: {args.threads}. Load average (1, 5, 15 min) before: {load_before}; after: {load_after}"
        f"{' (other processes shared the cores: absolute times are inflated, ratios from interleaved rounds hold better)' if float(load_before.split()[0]) > 1.5 * (info['cores'] or 1) / 2 else ''}.",
        f"- Shape: {N_IMAGES}x1x{HEIGHT}x{WIDTH} random images, 7 classes, 16/32 network, full batch, Adam lr {LR:g}, seed {SEED}.",
        f"- {args.rounds + 1} interleaved rounds (round 0: {args.curve_epochs} epochs, then {args.epochs}), each implementation a fresh process,"
        f" first epoch of each process dropped; medians over {len(times['reference'])}/{len(times['ours'])}/{len(times['ensemble'])} epochs.", "",
        "| implementation | median s / epoch | GFLOP/s (conv+linear, fwd+bwd) | speed-up vs reference |",
        "|---|---|---|---|",  # GFLOP/s of the pool: both workers together
        f"| reference (plain student code, relu->pool, NCHW) | {ref:.3f} | {gflop / ref:.1f} | 1.00x |",
        f"| fexprune `fit` | {ours:.3f} | {gflop / ours:.1f} | {ref / ours:.2f}x |",
        f"| fexprune `fit_ensemble`, {r} repeats (per repeat) | {ens:.3f} ({ens / r:.3f}) | {r * gflop / ens:.1f} | {r * ref / ens:.2f}x vs {r} sequential reference runs |",
        f"| fexprune `fit`, 2 one-thread processes at once (the sweep's local pool) | {median['pool']:.3f} each;"
        f" {r} repeats in {-(-r // 2)} rounds: {pool_repeats:.3f} | {2 * gflop / median['pool']:.1f} | {r * ref / pool_repeats:.2f}x vs {r} sequential reference runs |",
        "", f"Work per epoch: {gflop:.1f} GFLOP. Matmul peak (2048x2048 float32, same threads, same run): {peak:.0f} GFLOP/s;"
        f" reference reaches {100 * gflop / ref / peak:.0f}% of it, fexprune {100 * gflop / ours / peak:.0f}%.", "",
        f"Loss curve, {args.curve_epochs} epochs from one seed: max |reference - fexprune| = {curve_diff:.2e};"
        f" ensemble repeat 0 vs reference (first {len(curves['ensemble'])} epochs): {ensemble_diff:.2e}. The reference's own float32"
        f" noise (the same images in another order, the same math; Adam amplifies rounding over epochs): {noise:.2e}."
        f" Tolerance {LOSS_TOLERANCE:g}.",
        f"Reference losses: {', '.join(f'{v:.5f}' for v in curves['reference'][:: max(1, args.curve_epochs // 5)])} (every {max(1, args.curve_epochs // 5)}th epoch).", "",
        "## The sweep's networks (fexprune `fit`)", "",
        "Measured one after another after the rounds (not interleaved), so each is scaled by the 16/32 time of"
        " the same block to the interleaved 16/32 median above.", "",
        "| channels | s / epoch measured | scaled | 5 repeats x 700 epochs |", "|---|---|---|---|",
    ]
    total = 0.0
    scale = ours / sweep[(16, 32)]
    for channels, seconds in sweep.items():
        total += 5 * 700 * seconds * scale
        lines.append(f"| {channels[0]}/{channels[1]} | {seconds:.3f} | {seconds * scale:.3f} | {5 * 700 * seconds * scale / 60:.1f} min |")
    lines += [
        "", f"Paper sweep (4 x 5 x 700 epochs) with {args.threads} thread(s): {total / 60:.1f} min in one process;"
        f" {total / 120:.1f} min with 2 such workers on 2 cores if they scale perfectly, {total / 120 * median['pool'] / ours:.1f} min"
        f" at the slow-down measured when two run at once ({median['pool'] / ours:.2f}x per epoch; on a shared machine that"
        f" includes the other users). Reproduce reuses the sweep's 16/32 repeat-0 trial as its single run and adds PIC and the"
        f" pruning passes (seconds each); `bench_reproduce.py` times the whole command.", "",
        "## Targets", "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
