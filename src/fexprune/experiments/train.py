"""`fexprune train`: one recipe on one split, into a run folder; `--cv K` runs K folds instead
(fexprune.experiments.crossval). A recipe that checkpoints (the paper's) can be interrupted and resumed.

A run folder holds its spec, metrics.csv (every epoch), results.json, model.pt, figures/ and the
report; checkpoint.pt (weights, optimizer and RNG state every `checkpoint_every` epochs) while it runs.
"""

from __future__ import annotations

import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from fexprune import run_folder, runs, spec
from fexprune.config import TrainConfig
from fexprune.data.fingerprint import data_fingerprint
from fexprune.data.prepared import SPLIT_FILE, PreparedData, split_record
from fexprune.device import describe, resolve_device, set_deterministic
from fexprune.errors import InputError
from fexprune.experiments.crossval import cross_validate
from fexprune.experiments.metrics import add_classification_metrics
from fexprune.experiments.result import TrainResult
from fexprune.experiments.run_writer import RunOutput, filled_rows, write_run
from fexprune.faces.loading import with_chain
from fexprune.inference.trained_run import run_data, train_config
from fexprune.models.views import TEST_TIME_KEYS
from fexprune.recipes import Recipe, recipe_for, recipe_from_spec, recipe_section
from fexprune.report.training import training_curve_figure
from fexprune.tracking import EpochLog, Tracking


if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

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
          progress: bool = True, tracking: Tracking = Tracking(), recipe: Recipe | None = None) -> TrainResult:
    """Train `config.recipe`; `resume` continues the interrupted run folder it names. `recipe`: the recipe
    with options a spec states (None: as `config` asks for it)."""
    if resume is None:
        config = with_chain(config)
    if resume is None and config.cv:
        return cross_validate(config, out=out, progress=progress, tracking=tracking, recipe=recipe)
    run_dir, state = None, None
    recipe = recipe if recipe is not None else recipe_for(config)
    if resume is not None:
        run_dir, config, recipe, state = _reopen(Path(resume))
    recipe.check(config)
    device = resolve_device(config.device)
    set_deterministic(config.deterministic)
    if progress:
        print(f"fexprune train: computing on {describe(device)}", file=sys.stderr, flush=True)
    data = run_data(config, run_dir, progress).to(device)
    fingerprint = data_fingerprint(data.image_set)
    with _StopRequest() as stop:  # from the moment the run folder exists: every stop leaves it resumable
        if run_dir is None:
            run_dir = run_folder.create(out, "train", spec.build(
                "train", {**run_folder.record(config), "data_fingerprint": fingerprint}, recipe=recipe_section(recipe, config)))
            runs.write_json(run_dir / SPLIT_FILE, split_record(data))
        else:
            _check_resumable(run_dir, config, state, recipe, data, fingerprint)
        log = EpochLog(run_dir, tracking)
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
                runs.write_csv(run_dir / "metrics.csv", filled_rows(saved["metrics"]))  # test scores every eval_every epochs
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
    ), tracking)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return TrainResult(run_dir=run_dir, results=results, metrics=fitted.rows, model=fitted.model)


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A train or cv run as `run_spec` states it, its recipe section included (fexprune.experiments.runner)."""
    config = train_config(run_spec, source)
    recipe = recipe_from_spec(run_spec, config, source)
    return train(config, out=out, progress=context.progress, tracking=context.tracking, recipe=recipe).run_dir


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


def _reopen(run_dir: Path) -> tuple[Path, TrainConfig, Recipe, dict | None]:
    """An interrupted run's folder, config, recipe (as its spec states it) and last checkpoint (None: it
    stopped before the first)."""
    values = run_folder.read_spec(run_dir, "a train run folder")
    config = train_config(values, run_dir)
    if run_folder.is_finished(run_dir):
        raise InputError("run already finished; nothing to resume", run_dir)
    recipe = recipe_from_spec(values, config, run_folder.spec_path(run_dir))
    if not recipe.checkpoints or config.cv:
        raise InputError(f"--recipe {config.recipe} runs write no checkpoints; start this run again", run_dir)
    for stale in run_dir.glob(".*.tmp"):  # a write the kill interrupted: its target is intact
        stale.unlink()
    state = runs.load_checkpoint(run_dir / "checkpoint.pt") if (run_dir / "checkpoint.pt").exists() else None
    return run_dir, config, recipe, state


def _check_resumable(run_dir: Path, config: TrainConfig, state: dict | None, recipe, data: PreparedData,
                     fingerprint: str) -> None:
    """Before a resumed run writes anything: its data set must be the one it started on (else the split,
    and so every number, would silently change) and its checkpoint must fit its network."""
    recorded = run_folder.read_spec(run_dir).get("data", {}).get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise InputError("the data set changed since this run started (files, sizes or labels differ from the "
                         "fingerprint its spec records); start a new run", data.image_set.root)
    if state is not None:
        try:
            recipe.check_resume(config, state, len(data.image_set.classes))
        except ValueError as error:
            raise InputError(f"cannot resume: {error}", run_dir / "checkpoint.pt") from None


