"""`fexprune reproduce`: every experiment of the paper into one run folder with report.html and report.md.

Stages, each in its own sub-folder: pic/ (3.1, Fig. 4), sweep/ (2.2), train/ (3.2, the training log and
curve) and prune/ (3.3, Figs. 6-8, importance pruning of train/'s model). The report is built from the
files the stages wrote, so `--resume` skips finished stages (and finishes an interrupted sweep or
training run) and the report always matches what is on disk.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fexprune import run_folder, runs, spec
from fexprune.config import TrainConfig
from fexprune.device import cpu_threads
from fexprune.errors import InputError
from fexprune.experiments.backends import default_workers
from fexprune.experiments.pic import PICConfig, run_pic
from fexprune.experiments.prune import PruneConfig, run_pruning
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.experiments.sweep import SweepConfig, run_sweep
from fexprune.experiments.train import train
from fexprune.inference.trained_run import train_config
from fexprune.pruning.criteria import CRITERIA
from fexprune.report.reproduce import STAGES
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

# --quick: mini-batches of 32 at lr 1e-3 learn in ~10 epochs what full-batch Adam at 3e-5 needs 700 for
# (full batch at 1e-3 still needs ~100). With the built-in data (700 frames) the whole run costs about
# 5 CPU-minutes, under 3 minutes of wall time on 2 free cores. PAPER: full batch, hours.
QUICK = dict(pic_epochs=2000, pic_retrain_epochs=300, sweep_repeats=2, sweep_epochs=10, sweep_lr=1e-3,
             train_epochs=15, train_lr=1e-3, batch_size=32)
PAPER = dict(pic_epochs=2000, pic_retrain_epochs=300, sweep_repeats=5, sweep_epochs=700, sweep_lr=3e-5,
             train_epochs=700, train_lr=3e-5, batch_size=None)
_UNSET = -1  # batch_size: None is a real value (full batch), so "take the preset" needs its own marker


@dataclass
class ReproduceConfig:
    data: str | None = None  # image data set; None: the built-in data
    features: str | None = None  # feature table for PIC; None: LPQ+PHOG computed from the images
    quick: bool = False
    seed: int = 0
    test_fraction: float = 0.2
    split: str = "random"
    channels: tuple[int, int] = (16, 32)  # the single run's network, as the paper's
    sweep_channels: list[tuple[int, int]] = field(default_factory=lambda: [(16, 32), (12, 24), (20, 40), (6, 12)])
    criteria: tuple[str, ...] = ("l2",)  # l2 is the paper's importance
    workers: int | None = None
    backend: str = "local"
    address: str | None = None
    device: str = "auto"  # the sweep's, the single run's and pruning's (fexprune.device); PIC's tiny network stays on the CPU
    # None: the preset of `quick` (QUICK) or the paper's (PAPER)
    pic_epochs: int | None = None
    pic_retrain_epochs: int | None = None
    sweep_repeats: int | None = None
    sweep_epochs: int | None = None
    sweep_lr: float | None = None
    train_epochs: int | None = None
    train_lr: float | None = None
    batch_size: int | None = _UNSET  # None: full batch (the paper's)

    def resolved(self) -> "ReproduceConfig":
        preset = QUICK if self.quick else PAPER
        unset = {k: v for k, v in preset.items() if getattr(self, k) == (_UNSET if k == "batch_size" else None)}
        return dataclasses.replace(self, **unset)

    @classmethod
    def from_dict(cls, values: dict) -> "ReproduceConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values["channels"] = tuple(values.get("channels", (16, 32)))
        values["sweep_channels"] = [tuple(c) for c in values.get("sweep_channels", [])] or cls().sweep_channels
        values["criteria"] = tuple(values.get("criteria", ("l2",)))
        return cls(**values)


@dataclass
class ReproduceResult:
    run_dir: Path
    report_html: Path
    report_md: Path
    timings: dict[str, float]  # seconds per stage, as each stage measured itself


def run_reproduce(
    config: ReproduceConfig,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    tracking: Tracking = Tracking(),
) -> ReproduceResult:
    """Run every stage not finished yet (each a run of its own, tracked as `tracking` says), then write the report."""
    started = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        config = ReproduceConfig.from_dict(spec.flat(run_folder.read_spec(run_dir, "a reproduce folder")))
    else:
        config = config.resolved()
        _check_paths(config)
        run_dir = run_folder.create(out, "reproduce", spec.build("reproduce", run_folder.record(config, ("data", "features"))))
    for stage in STAGES:
        folder = run_dir / stage
        if (folder / "results.json").is_file():
            continue
        if progress:
            print(f"fexprune reproduce: {stage} ...", file=sys.stderr, flush=True)
        STAGE_FUNCTIONS[stage](config, folder, run_dir, progress, tracking)
    timings = stage_timings(run_dir)
    html_path = write_run(run_dir, RunOutput(kind="reproduce", results={
        "timings": timings, "versions": versions(), "last_invocation_seconds": time.perf_counter() - started,
        "report": str(run_dir / "report.html")}), tracking)
    return ReproduceResult(run_dir, html_path, run_dir / "report.md", timings)


def _check_paths(config: ReproduceConfig) -> None:
    """Fail before hours of work, not after."""
    for name in config.criteria:
        if name not in CRITERIA:
            raise InputError(f"unknown pruning criterion {name!r} (choose from {', '.join(CRITERIA)})")
    for name, value in (("data", config.data), ("features", config.features)):
        if value and not Path(value).exists():
            raise InputError(f"--{name} not found", value)


def _fresh(folder: Path) -> None:
    """A stage that writes only at its end and did not finish: start it again from nothing."""
    if folder.exists():
        shutil.rmtree(folder)


def _pic(config: ReproduceConfig, folder: Path, run_dir: Path, progress: bool, tracking: Tracking) -> None:
    _fresh(folder)
    run_pic(PICConfig(features=config.features, data=None if config.features else config.data,
                      epochs=config.pic_epochs, retrain_epochs=config.pic_retrain_epochs,
                      test_fraction=config.test_fraction, seed=config.seed), out=folder, progress=progress, tracking=tracking)


def _sweep(config: ReproduceConfig, folder: Path, run_dir: Path, progress: bool, tracking: Tracking) -> None:
    if run_folder.has_spec(folder):
        run_sweep(SweepConfig(), resume=folder, progress=progress, tracking=tracking)
        return
    _fresh(folder)
    run_sweep(SweepConfig(
        channels=list(config.sweep_channels), repeats=config.sweep_repeats, epochs=config.sweep_epochs,
        lr=config.sweep_lr, batch_size=config.batch_size, data=config.data, test_fraction=config.test_fraction, split=config.split,
        seed=config.seed, workers=config.workers, backend=config.backend, address=config.address, device=config.device,
    ), out=folder, progress=progress, tracking=tracking)


def _train(config: ReproduceConfig, folder: Path, run_dir: Path, progress: bool, tracking: Tracking) -> None:
    with cpu_threads(max(1, min(torch.get_num_threads(), default_workers()))):
        if run_folder.has_spec(folder):
            train(TrainConfig(), resume=folder, progress=progress, tracking=tracking)
            return
        _fresh(folder)
        wanted = TrainConfig(data=config.data, channels=tuple(config.channels), epochs=config.train_epochs,
                             lr=config.train_lr, batch_size=config.batch_size, seed=config.seed,
                             test_fraction=config.test_fraction, split=config.split, device=config.device)
        twin = _finished_twin(run_dir / "sweep", wanted)
        if twin is not None:  # at paper settings the single run is sweep trial 16/32, repeat 0: reuse it
            shutil.copytree(twin, folder)
            return
        train(wanted, out=folder, progress=progress, tracking=tracking)


def _finished_twin(sweep_dir: Path, wanted) -> Path | None:
    """A finished sweep trial trained with exactly `wanted`'s settings (the same numbers, by determinism)."""
    def settings(config: TrainConfig) -> dict:
        values = run_folder.record(config)
        values.pop("checkpoint_every")  # when checkpoints are written changes no number
        return values

    target = settings(wanted)
    for trial in sorted(Path(sweep_dir).glob("*/results.json")):
        config = train_config(run_folder.read_spec(trial.parent), trial.parent)
        if settings(config) == target:
            return trial.parent
    return None


def _prune(config: ReproduceConfig, folder: Path, run_dir: Path, progress: bool, tracking: Tracking) -> None:
    _fresh(folder)
    run_pruning(PruneConfig(run=str(run_dir / "train"), criteria=tuple(config.criteria), seed=config.seed, device=config.device), out=folder, tracking=tracking)


STAGE_FUNCTIONS = {"pic": _pic, "sweep": _sweep, "train": _train, "prune": _prune}


def stage_timings(run_dir: Path) -> dict[str, float]:
    timings = {}
    for stage in STAGES:
        path = Path(run_dir) / stage / "results.json"
        if path.is_file():
            timings[stage] = float(runs.read_json(path).get("seconds", float("nan")))
    return timings


def versions() -> dict[str, str]:
    import numpy
    import torch

    from fexprune import __version__

    return {
        "fexprune": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "platform": platform.platform(),
    }


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A reproduce run as `run_spec` states it (fexprune.experiments.runner)."""
    config = ReproduceConfig.from_dict(spec.flat(run_spec))
    return run_reproduce(config, out=out, progress=context.progress, tracking=context.tracking).run_dir
