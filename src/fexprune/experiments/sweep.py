"""`fexprune sweep`: the paper's channel sweep, every trial a train run, in parallel and resumable.

A sweep folder holds its spec, one train run folder per trial (`c16-32_r0`, ...), trials.csv,
results.json (mean and spread per channel combination) and, when done, figures and a report. Repeat r
uses seed `seed + r` (its own initial weights and its own split); the same repeat of every channel
combination shares that seed, so combinations are compared on the same splits. A trial whose
results.json exists is never rerun: `--resume` picks up only the unfinished ones.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from fexprune import run_folder, runs, spec
from fexprune.config import TrainConfig
from fexprune.data.builtin import resolve_data
from fexprune.data.loading import load_image_set
from fexprune.device import cpu_threads
from fexprune.errors import InputError
from fexprune.experiments.backends import check_ray_address, default_workers, make_backend
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.experiments.train import train
from fexprune.recipes.paper import DEFAULT_LR
from fexprune.report.sweep import sweep_figure
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

PAPER_GRID: list[tuple[int, int]] = [(16, 32), (12, 24), (20, 40), (6, 12)]
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


@dataclass
class SweepConfig:
    channels: list[tuple[int, int]] = field(default_factory=lambda: list(PAPER_GRID))
    repeats: int = 5
    epochs: int = 700
    lr: float = DEFAULT_LR
    data: str | None = None  # None: the built-in data
    test_fraction: float = 0.2
    split: str = "random"
    seed: int = 0  # repeat r trains with seed + r
    batch_size: int | None = None
    normalize: str = "per-image"
    workers: int | None = None  # None: one per core
    backend: str = "local"  # local | ray
    address: str | None = None  # Ray cluster address; None starts a local Ray
    device: str = "auto"  # every trial's device; several trials share one GPU (--workers processes, or Ray's GPU fractions)
    gpus_per_trial: float = 0.0  # Ray: the fraction of a GPU each trial asks for (0: none)

    def trial_config(self, channels: tuple[int, int], repeat: int) -> TrainConfig:
        return TrainConfig(
            data=str(Path(self.data).resolve()) if self.data else None,
            channels=tuple(channels),
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            normalize=self.normalize,
            seed=self.seed + repeat,
            test_fraction=self.test_fraction,
            split=self.split,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, values: dict) -> "SweepConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if "channels" in values:
            values["channels"] = [tuple(pair) for pair in values["channels"]]
        return cls(**values)


@dataclass(frozen=True)
class Trial:
    name: str  # its sub-folder, e.g. "c16-32_r0"
    channels: tuple[int, int]
    repeat: int
    config: TrainConfig


@dataclass
class SweepResult:
    run_dir: Path
    rows: list[dict]  # one per channel combination: mean and std of METRICS, n
    trials: list[dict]  # one per trial: channels, repeat, seed and its results
    data: dict  # the data summary (counts per class, skipped, duplicates)
    seconds: float


def plan_trials(config: SweepConfig) -> list[Trial]:
    """Every (channels, repeat) pair, in the order the table lists them."""
    if config.repeats < 1:
        raise InputError(f"repeats must be at least 1, got {config.repeats}")
    if not config.channels:
        raise InputError("no channel combination to sweep")
    return [
        Trial(f"c{c1}-{c2}_r{repeat}", (c1, c2), repeat, config.trial_config((c1, c2), repeat))
        for c1, c2 in config.channels
        for repeat in range(config.repeats)
    ]


def trial_cost(trial: Trial) -> float:
    """Relative cost of a trial: epochs times the multiply-adds of its two convolutions per image, over
    k^2 (conv1: c1 maps of ~5848 pixels; conv2: c1 * c2 pairs on ~1170). Only the order matters."""
    c1, c2 = trial.channels
    return trial.config.epochs * (5848 * c1 + 1170 * c1 * c2)


def longest_first(trials: list[Trial]) -> list[Trial]:
    """The order to hand trials to a pool: longest first, so the last ones to finish are short and
    no worker idles while another runs a 20/40 trial alone (longest-processing-time scheduling)."""
    return sorted(trials, key=trial_cost, reverse=True)


def run_trial(trial_dir: str, config: dict, threads: int, cache: str | None = None,
              tracking: Tracking = Tracking()) -> dict:
    """One trial in whatever process runs it (pool worker, Ray task or this one): train, or finish
    an interrupted train run in `trial_dir`. Returns the run's results and metrics rows."""
    if cache:
        os.environ["FEXPRUNE_CACHE"] = cache
    path = Path(trial_dir)
    if (path / "results.json").is_file():
        return {"results": runs.read_json(path / "results.json"), "metrics": None}
    with cpu_threads(threads):
        if run_folder.has_spec(path):
            result = train(TrainConfig.from_dict(config), resume=path, progress=False, tracking=tracking)
        else:
            result = train(TrainConfig.from_dict(config), out=path, progress=False, tracking=tracking)
    return {"results": result.results, "metrics": result.metrics}


def run_sweep(
    config: SweepConfig,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    tracking: Tracking = Tracking(),
) -> SweepResult:
    """Run (or finish, with `resume`) a channel sweep and aggregate it into the paper's table."""
    started = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        config = SweepConfig.from_dict(spec.flat(run_folder.read_spec(run_dir, "a sweep folder")))
    trials = plan_trials(config)
    if config.backend == "ray" and config.address:
        check_ray_address(config.address)  # before the data is prepared and the folder made
    data = _prepare_data_once(config, progress)  # fills the cache: trials only read it
    if resume is None:
        run_dir = run_folder.create(out, "sweep", spec.build("sweep", run_folder.record(config)))

    finished = {t.name: runs.read_json(run_dir / t.name / "results.json") for t in trials if (run_dir / t.name / "results.json").is_file()}
    pending = longest_first([t for t in trials if t.name not in finished])
    backend = make_backend(config.backend, workers=config.workers or default_workers(), address=config.address,
                           gpus_per_trial=config.gpus_per_trial)
    cache = os.environ.get("FEXPRUNE_CACHE")
    # the sweep logs its trials to MLflow itself, as child runs, at its end
    trial_tracking = dataclasses.replace(tracking, mlflow=None)
    jobs = [(str(run_dir / t.name), dataclasses.asdict(t.config), backend.threads, cache, trial_tracking) for t in pending]
    bar = tqdm(total=len(trials), initial=len(finished), desc=f"sweep ({backend.describe()})", unit="trial", disable=not progress)
    try:
        for index, outcome in backend.map(run_trial, jobs):
            trial = pending[index]
            _keep_local_copy(run_dir / trial.name, outcome)
            finished[trial.name] = outcome["results"]
            bar.update(1)
            bar.set_postfix_str(f"{trial.name} test acc {100 * outcome['results']['test_accuracy']:.1f}%")
    finally:
        bar.close()
        backend.close()

    trial_rows = [_trial_row(t, finished[t.name]) for t in trials]
    rows = aggregate(trial_rows)
    seconds = time.perf_counter() - started
    write_run(run_dir, RunOutput(
        kind="sweep", results={"combinations": rows, "trials": trial_rows, "data": data, "seconds": seconds},
        tables={"trials.csv": [{k: v for k, v in row.items() if k != "channels"} | {"channels": _label(row["channels"])} for row in trial_rows]},
        figures={"channel_sweep": sweep_figure(rows)},
    ), tracking)
    return SweepResult(run_dir=run_dir, rows=rows, trials=trial_rows, data=data, seconds=seconds)


def aggregate(trial_rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation of each metric per channel combination, in first-seen order."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in trial_rows:
        groups.setdefault(tuple(row["channels"]), []).append(row)
    table = []
    for channels, members in groups.items():
        entry: dict[str, Any] = {"channels": channels, "n": len(members)}
        for metric in METRICS:
            values = np.array([float(m[metric]) for m in members])
            entry[metric] = float(values.mean())
            entry[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def _prepare_data_once(config: SweepConfig, progress: bool) -> dict:
    probe = config.trial_config(config.channels[0], 0)
    image_set = load_image_set(resolve_data(probe.data, progress), size=tuple(probe.image_size), variant=probe.variant, progress=progress)
    return image_set.summary()


def _keep_local_copy(trial_dir: Path, outcome: dict) -> None:
    """A Ray task on another machine wrote its run folder there: keep its results here, so a resumed
    sweep knows the trial is done."""
    if (trial_dir / "results.json").is_file() or outcome.get("metrics") is None:
        return
    runs.write_csv(trial_dir / "metrics.csv", outcome["metrics"])
    runs.write_json(trial_dir / "results.json", outcome["results"])


def _trial_row(trial: Trial, results: dict) -> dict:
    row = {"trial": trial.name, "channels": trial.channels, "repeat": trial.repeat, "seed": trial.config.seed}
    row.update({metric: float(results[metric]) for metric in METRICS})
    row["seconds"] = float(results.get("seconds", float("nan")))
    return row


def _label(channels) -> str:
    return f"{channels[0]}/{channels[1]}"


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A sweep as `run_spec` states it (fexprune.experiments.runner)."""
    config = SweepConfig.from_dict(spec.flat(run_spec))
    return run_sweep(config, out=out, progress=context.progress, tracking=context.tracking).run_dir
