"""`fexprune train`: the paper's CNN on an image data set, into a run folder that can be resumed.

A run folder holds config.json, metrics.csv (every epoch), results.json, model.pt (final weights),
checkpoint.pt (weights, optimizer and RNG state every `checkpoint_every` epochs) and
figures/training_curve.png.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fexprune import runs
from fexprune.experiments.data import PreparedData, prepare_data
from fexprune.errors import InputError
from fexprune.models.checkpoint import load_model, save_model
from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.training.loop import fit, make_optimizer

DEFAULT_LR = 3e-5  # full-batch Adam at this rate gives the paper's slow-then-steep curve over 700 epochs


@dataclass
class TrainConfig:
    data: str | None = None  # None: the built-in synthetic data
    channels: tuple[int, int] = (16, 32)
    kernel_size: int = 5
    pools: tuple[int, int] = (2, 3)
    image_size: tuple[int, int] = (90, 72)  # (width, height)
    normalize: str = "per-image"  # per-image | dataset (train-split mean/std) | none
    variant: str = "auto"  # which image variant when a data set has both frames and aligned faces
    epochs: int = 700
    lr: float = DEFAULT_LR
    batch_size: int | None = None  # None: full batch, one step per epoch
    seed: int = 0
    test_fraction: float = 0.2
    split: str = "random"  # random | movie | clip
    checkpoint_every: int = 50
    eval_every: int = 10
    face_crop: bool = False  # cut each frame to its detected face before resizing (fexprune.data.faces)
    face_margin: float = 0.2
    detectors: tuple[str, ...] | None = None  # the face-detection chain (None: fexprune.data.faces.DEFAULT_CHAIN)
    eye_align: bool = False  # turn each detected face so its eyes are level (fexprune.data.align)
    recipe: str = "paper"  # paper | best | transfer (fexprune.experiments.recipes)
    members: int | None = None  # best: networks averaged (None: BestRecipe's default)
    hog: bool = False  # best: a HOG branch beside the conv blocks
    margin_tta: float | None = None  # best/transfer with face crops: test faces cut at margin -/+ this too (None: the recipe's)
    cv: int | None = None  # K: K-fold cross-validation instead of one split (fexprune.experiments.crossval)

    def model_config(self, n_classes: int) -> CNNConfig:
        return CNNConfig(
            channels=tuple(self.channels),
            kernel_size=self.kernel_size,
            pools=tuple(self.pools),
            input_size=tuple(self.image_size),
            n_classes=n_classes,
        )

    def face_options(self) -> dict:
        """load_image_set's face-crop arguments ({} without --face-crop)."""
        if not self.face_crop:
            return {}
        return {"face_crop": True, "face_margin": self.face_margin, "detectors": self.detectors, "eye_align": self.eye_align}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        for key in ("channels", "pools", "image_size", "detectors"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class TrainedRun:
    run_dir: Path
    config: TrainConfig
    model: ExpressionCNN
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    data: PreparedData


@dataclass
class TrainResult:
    run_dir: Path
    results: dict[str, Any]
    metrics: list[dict]
    model: ExpressionCNN


def _checkpoint_state(model, optimizer, generator, epochs_done: int, rows: list[dict]) -> dict:
    return {
        "epochs_done": epochs_done,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "metrics": [row for row in rows if row["epoch"] < epochs_done],
    }


class _StopRequest:
    """Turns Ctrl-C into a flag checked between epochs, so a checkpoint is written first."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(
    config: TrainConfig,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the paper's CNN; `resume` continues the interrupted run folder it names.

    `config.cv` runs K-fold cross-validation instead, `config.recipe` other than "paper" trains that
    recipe (fexprune.experiments.recipes; no checkpoints, runs are short).
    """
    if resume is None and config.cv:
        from fexprune.experiments.crossval import cross_validate

        return cross_validate(config, out=out, progress=progress)
    if resume is None and config.recipe != "paper":
        from fexprune.experiments.recipes import train_recipe_run

        return train_recipe_run(config, out=out, progress=progress)
    if resume is not None:
        run_dir = Path(resume)
        config = TrainConfig.from_dict(runs.read_json(run_dir / "config.json"))
        if (run_dir / "results.json").exists():
            raise InputError("run already finished; nothing to resume", run_dir)
        if config.recipe != "paper" or config.cv:
            raise InputError("only paper-recipe runs write checkpoints; start this run again", run_dir)
        for stale in run_dir.glob(".*.tmp"):  # a write the kill interrupted: its target is intact
            stale.unlink()
    else:
        run_dir = None
    started = time.perf_counter()
    data = prepare_data(config, progress=progress)
    torch.manual_seed(config.seed)
    model = ExpressionCNN(config.model_config(len(data.image_set.classes)))
    optimizer = make_optimizer(model, config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    rows: list[dict] = []
    start_epoch = 0
    if run_dir is None:
        run_dir = runs.new_run_dir(out, "train")
        runs.write_json(run_dir / "config.json", runs.config_record(config))
    elif (run_dir / "checkpoint.pt").exists():
        state = runs.load_checkpoint(run_dir / "checkpoint.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        rows = list(state["metrics"])
        start_epoch = int(state["epochs_done"])

    bar = tqdm(total=config.epochs, initial=start_epoch, desc="train", unit="epoch", disable=not progress, leave=False)

    def on_epoch(row: dict) -> None:
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{row['train_accuracy']:.3f}", refresh=False)

    with _StopRequest() as stop:

        def end_of_epoch(epochs_done: int) -> None:
            bar.update(1)
            last = epochs_done == config.epochs
            if stop.requested or (epochs_done % config.checkpoint_every == 0 and not last):
                state = _checkpoint_state(model, optimizer, generator, epochs_done, rows)
                runs.save_checkpoint(run_dir / "checkpoint.pt", state)
                runs.write_csv(run_dir / "metrics.csv", state["metrics"])
            if stop.requested:
                bar.close()
                raise KeyboardInterrupt(f"checkpoint written after epoch {epochs_done}; resume with --resume {run_dir}")

        fit(
            model, data.x_train, data.y_train,
            epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
            optimizer=optimizer, generator=generator, start_epoch=start_epoch,
            x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every,
            on_epoch=on_epoch, end_of_epoch=end_of_epoch,
        )
    bar.close()
    seconds = time.perf_counter() - started
    final = rows[-1]
    results = {
        "train_loss": final["train_loss"],
        "train_accuracy": final["train_accuracy"],
        "test_loss": final["test_loss"],
        "test_accuracy": final["test_accuracy"],
        "epochs": config.epochs,
        "seconds": seconds,
        "n_train": len(data.train_index),
        "n_test": len(data.test_index),
        "split": config.split,
        "test_fraction": config.test_fraction,
        "skipped": data.image_set.skipped,
        "data": data.image_set.summary(),
        "classes": list(data.image_set.classes),
    }
    if config.face_crop or config.recipe != "paper":
        results.update({"recipe": config.recipe, "face_crop": config.face_crop})
    from fexprune.experiments.recipes import add_classification_metrics

    add_classification_metrics(results, run_dir, model, data)
    from fexprune.report.faces import write_face_sheet

    write_face_sheet(run_dir, data.image_set)
    save_model(run_dir / "model.pt", model, data.preprocessing)
    runs.write_csv(run_dir / "metrics.csv", rows)
    _write_figures(run_dir, rows)
    runs.write_json(run_dir / "results.json", results)
    from fexprune.report.reproduce import write_train_report

    write_train_report(run_dir, results)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return TrainResult(run_dir=run_dir, results=results, metrics=rows, model=model)


def _write_figures(run_dir: Path, rows: list[dict]) -> None:
    from fexprune.report.training import training_curve_figure

    figure = training_curve_figure(rows)
    (run_dir / "figures").mkdir(exist_ok=True)
    figure.savefig(run_dir / "figures" / "training_curve.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)


def load_run(run_dir: str | Path, progress: bool = False) -> TrainedRun:
    """A finished train run folder back in memory: its model and its exact data split."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise InputError("not a train run folder (no config.json)", run_dir)
    if not (run_dir / "model.pt").is_file():
        raise InputError("run has no model.pt (unfinished? resume it with --resume)", run_dir)
    config = TrainConfig.from_dict(runs.read_json(run_dir / "config.json"))
    data = prepare_data(config, progress=progress)
    model, _ = load_model(run_dir / "model.pt")
    return TrainedRun(
        run_dir=run_dir, config=config, model=model,
        x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test,
        classes=list(data.image_set.classes), data=data,
    )


def table_epochs(epochs: int) -> list[int]:
    """The epochs the paper's training table shows: every 100, or 8 evenly spaced for short runs."""
    if epochs >= 200 and epochs % 100 == 0:
        return list(range(0, epochs + 1, 100))
    return sorted({int(round(e)) for e in np.linspace(0, epochs, 8)})
