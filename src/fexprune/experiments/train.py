"""`fexprune train`: one recipe on one split, into a run folder; `--cv K` runs K folds instead
(fexprune.experiments.crossval). A recipe that checkpoints (the paper's) can be interrupted and resumed.

A run folder holds config.json, metrics.csv (every epoch), results.json, model.pt, figures/ and the
report; checkpoint.pt (weights, optimizer and RNG state every `checkpoint_every` epochs) while it runs.
"""

from __future__ import annotations

import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from fexprune import runs
from fexprune.config import TrainConfig
from fexprune.data.fingerprint import data_fingerprint
from fexprune.data.prepared import SPLIT_FILE, PreparedData, prepare_data, recorded_split, split_record
from fexprune.device import describe, resolve_device, set_deterministic
from fexprune.errors import InputError
from fexprune.experiments.crossval import cross_validate
from fexprune.experiments.metrics import add_classification_metrics
from fexprune.experiments.result import TrainResult
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.faces.loading import load_images, with_chain
from fexprune.models.checkpoint import load_model
from fexprune.models.views import TEST_TIME_KEYS
from fexprune.recipes import recipe_for
from fexprune.report.training import training_curve_figure
from fexprune.schema import run_kind
from fexprune.tracking import EpochLog


@dataclass
class TrainedRun:
    """A finished run back in memory: its model and its exact data split."""

    run_dir: Path
    config: TrainConfig
    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    data: PreparedData


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopRequest:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a flag every recipe's epoch ends on: the epoch finishes, a
    recipe that checkpoints writes one, and the run stops saying how to go on. The flag must be acted on
    wherever it is set, or the signal is swallowed and the run trains on."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict = {}

    def __enter__(self):
        for number in STOP_SIGNALS:
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave the signals alone
                break
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


def train(config: TrainConfig, out: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True) -> TrainResult:
    """Train `config.recipe`; `resume` continues the interrupted run folder it names."""
    if resume is None:
        config = with_chain(config)
    if resume is None and config.cv:
        return cross_validate(config, out=out, progress=progress)
    run_dir, state = None, None
    if resume is not None:
        run_dir, config, state = _reopen(Path(resume))
    recipe = recipe_for(config)
    recipe.check(config)
    device = resolve_device(config.device)
    set_deterministic(config.deterministic)
    if progress:
        print(f"fexprune train: computing on {describe(device)}", file=sys.stderr, flush=True)
    data = run_data(config, run_dir, progress).to(device)
    fingerprint = data_fingerprint(data.image_set)
    with _StopRequest() as stop:  # from the moment the run folder exists: every stop leaves it resumable
        if run_dir is None:
            run_dir = runs.new_run_dir(out, "train")
            runs.write_json(run_dir / "config.json", {**runs.config_record(config), "data_fingerprint": fingerprint})
            runs.write_json(run_dir / SPLIT_FILE, split_record(data))
        else:
            _check_resumable(run_dir, config, state, recipe, data, fingerprint)
        log = EpochLog(run_dir)
        bar = tqdm(total=config.epochs, initial=len(state["metrics"]) if state else 0, desc=f"train ({config.recipe})",
                   unit="epoch", disable=not progress, leave=False)
        show = epoch_progress(bar)

        def on_epoch(row: dict) -> None:
            log.epoch({**row, "lr": row.get("lr", config.lr)})
            show(row)
            if stop.requested and not recipe.checkpoints:  # no state to keep: stop at the epoch's end all the same
                bar.close()
                raise KeyboardInterrupt(f"stopped after epoch {row.get('epoch')}; --recipe {config.recipe} runs write "
                                        f"no checkpoint, so {run_dir} cannot be resumed: start the run again")

        def end_of_epoch(epochs_done: int, state) -> None:
            last = epochs_done == config.epochs
            if stop.requested or (epochs_done % config.checkpoint_every == 0 and not last):
                saved = state()
                runs.save_checkpoint(run_dir / "checkpoint.pt", saved)
                runs.write_csv(run_dir / "metrics.csv", saved["metrics"])
            if stop.requested:
                bar.close()
                raise KeyboardInterrupt(f"checkpoint written after epoch {epochs_done}; resume with --resume {run_dir}")

        if recipe.checkpoints:
            fitted = recipe.fit(config, data, on_epoch, resume=state, end_of_epoch=end_of_epoch)
        else:
            fitted = recipe.fit(config, data, on_epoch)
    bar.close()
    log.close()
    results = {
        **fitted.final,
        "epochs": config.epochs,
        "seconds": fitted.seconds,
        "n_train": len(data.train_index),
        "n_test": len(data.test_index),
        "split": config.split,
        "test_fraction": config.test_fraction,
        "recipe": config.recipe,
        "face_crop": config.face_crop,
        "training": fitted.info,
        "skipped": data.image_set.skipped,
        "data": data.image_set.summary(),
        "classes": list(data.image_set.classes),
        "device": describe(device),
        "deterministic": config.deterministic,
    }
    if "provenance" in fitted.info:  # pretrained weights: said wherever its numbers appear
        results["provenance"] = fitted.info["provenance"]
        results["zero_shot_test_accuracy"] = fitted.info["zero_shot_test_accuracy"]
    confusion = add_classification_metrics(results, data, fitted.test_predictions)
    # predict then scores new images as the test split was scored: with the mirror image, cut at each margin
    test_time = {key: fitted.info[key] for key in TEST_TIME_KEYS if fitted.info.get(key)}
    curve = [{k: v for k, v in row.items() if not k.startswith("val_")} for row in fitted.rows]
    write_run(run_dir, RunOutput(
        kind="train", results=results, metrics=fitted.rows, image_set=data.image_set,
        models={"model.pt": (fitted.model, {**data.preprocessing, **test_time})},
        figures={"confusion": confusion, "training_curve": training_curve_figure(curve, n_test=len(data.test_index))}, logged_live=True,
    ))
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return TrainResult(run_dir=run_dir, results=results, metrics=fitted.rows, model=fitted.model)


def epoch_postfix(row: dict) -> dict[str, str]:
    """What the progress bar shows after an epoch; no `val` where the run has no validation part."""
    shown = {"loss": f"{row['train_loss']:.4f}", "acc": f"{row['train_accuracy']:.3f}"}
    val = row.get("val_accuracy")
    if val is not None and not math.isnan(val):
        shown["val"] = f"{val:.3f}"
    return shown


def epoch_progress(bar: tqdm):
    """The on_epoch callback: the numbers first, then the step, so the bar shows the epoch it counts."""

    def on_epoch(row: dict) -> None:
        bar.set_postfix(epoch_postfix(row), refresh=row["epoch"] == 0)
        if row["epoch"] > 0:
            bar.update(1)

    return on_epoch


def run_data(config: TrainConfig, run_dir: Path | None, progress: bool) -> PreparedData:
    """A run's data: split as the run's split.json records it where the run has one (a run reopened keeps
    its frames even if the split code changed since), else as `config` splits it now."""
    record = None if run_dir is None else Path(run_dir) / SPLIT_FILE
    if record is None or not record.is_file():
        return prepare_data(config, load_images(config, progress))
    image_set = load_images(config, progress)
    indices = recorded_split(image_set, runs.read_json(record), record)
    return prepare_data(config, image_set, indices)


def _reopen(run_dir: Path) -> tuple[Path, TrainConfig, dict | None]:
    """An interrupted run's folder, config and last checkpoint (None: it stopped before the first)."""
    try:
        config = TrainConfig.from_dict(runs.read_config(run_dir, "a train run folder"))
    except TypeError as error:  # a hand-edited config.json: its key named, not a traceback later
        raise InputError(str(error), run_dir / "config.json") from None
    if (run_dir / "results.json").exists():
        raise InputError("run already finished; nothing to resume", run_dir)
    if not recipe_for(config).checkpoints or config.cv:
        raise InputError(f"--recipe {config.recipe} runs write no checkpoints; start this run again", run_dir)
    for stale in run_dir.glob(".*.tmp"):  # a write the kill interrupted: its target is intact
        stale.unlink()
    state = runs.load_checkpoint(run_dir / "checkpoint.pt") if (run_dir / "checkpoint.pt").exists() else None
    return run_dir, config, state


def _check_resumable(run_dir: Path, config: TrainConfig, state: dict | None, recipe, data: PreparedData,
                     fingerprint: str) -> None:
    """Before a resumed run writes anything: its data set must be the one it started on (else the split,
    and so every number, would silently change) and its checkpoint must fit its network."""
    recorded = runs.read_json(run_dir / "config.json").get("data_fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise InputError("the data set changed since this run started (files, sizes or labels differ from its "
                         "config.json's data_fingerprint); start a new run", data.image_set.root)
    if state is not None:
        try:
            recipe.check_resume(config, state, len(data.image_set.classes))
        except ValueError as error:
            raise InputError(f"cannot resume: {error}", run_dir / "checkpoint.pt") from None


def _refuse_other_kinds(run_dir: Path) -> None:
    """A finished run of another command is named as such, not taken for an unfinished train run."""
    try:
        results = runs.read_json(run_dir / "results.json") if (run_dir / "results.json").is_file() else None
        config = runs.read_json(run_dir / "config.json")
    except InputError:
        return  # the loading that follows says what is wrong with the folder
    if not isinstance(config, dict):
        return
    kind = run_kind(results, config) if isinstance(results, dict) else config.get("command", "train")
    if kind != "train":
        raise InputError(f"is a {kind} run; prune needs a finished `fexprune train` run (--run TRAIN_RUN_DIR)", run_dir)


def load_run(run_dir: str | Path, progress: bool = False, device: str = "cpu") -> TrainedRun:
    """A finished train run folder back in memory: its model and its exact data split, on `device`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError("not a train run folder (no config.json)", run_dir)
    _refuse_other_kinds(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise InputError("run has no model.pt (unfinished? resume it with --resume)", run_dir)
    config = TrainConfig.from_dict(runs.read_json(run_dir / "config.json"))
    target = resolve_device(device)
    data = run_data(config, run_dir, progress).to(target)
    model, _ = load_model(run_dir / "model.pt")
    model.to(target)
    return TrainedRun(
        run_dir=run_dir, config=config, model=model,
        x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test,
        classes=list(data.image_set.classes), data=data,
    )
