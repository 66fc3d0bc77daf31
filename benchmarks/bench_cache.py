"""The preprocessing cache: loading a data set of ~675 SFEW-sized frames (720x576 PNG) by decoding,
grayscaling and resizing every file, against loading the cached result, in one run, interleaved.
Writes its section of benchmarks/RESULTS.md; exit 1 when the cached load is not >= 20x faster.

    python benchmarks/bench_cache.py [--per-class 97] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fexprune.data.loading import load_image_set
from fexprune.data.synth import write_synthetic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import RESULTS, machine, write_section  # noqa: E402


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=97, help="frames per class (7 classes; 97 gives ~680)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        written, images = timed(lambda: write_synthetic(scratch / "data", per_class=args.per_class, seed=0, progress=False))
        cache_dir = scratch / "cache"
        first, image_set = timed(lambda: load_image_set(images, cache_dir=cache_dir, progress=False))  # decodes, writes the cache
        assert not image_set.from_cache
        decode, cached = [], []
        for _ in range(args.repeats):  # interleaved: drift from other processes hits both alike
            seconds, fresh = timed(lambda: load_image_set(images, cache_dir=cache_dir, progress=False, use_cache=False))
            decode.append(seconds)
            for _ in range(3):
                seconds, hit = timed(lambda: load_image_set(images, cache_dir=cache_dir, progress=False))
                assert hit.from_cache and (hit.images == fresh.images).all()
                cached.append(seconds)
        cache_bytes = sum(f.stat().st_size for f in cache_dir.iterdir())
    ratio = statistics.median(decode) / statistics.median(cached)
    ok = ratio >= 20
    info = machine()
    report = "\n".join([
        "# Preprocessing cache (benchmarks/bench_cache.py)", "",
        f"- Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']};"
        f" {info['date']}; load average before: {load_before}.",
        f"- Data: {len(image_set)} synthetic SFEW-like frames, 720x576 RGB PNG ({args.per_class} per class, seed 0; written in {written:.1f} s),"
        f" loaded as 90x72 grayscale. Cache entry: {cache_bytes / 1e6:.1f} MB.", "",
        "| load | median s | runs |", "|---|---|---|",
        f"| decode + grayscale + resize every file (use_cache=False) | {statistics.median(decode):.3f} | {len(decode)} |",
        f"| cached (hash file stats, read .npz) | {statistics.median(cached):.4f} | {len(cached)} |",
        f"| first load (decode and write the cache) | {first:.3f} | 1 |", "",
        f"Cached load is {ratio:.0f}x faster than decoding. Target >= 20x: {'met' if ok else 'NOT met'}.", "",
    ])
    write_section(args.out, "cache", report)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
