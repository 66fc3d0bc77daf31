"""A finished train run back in memory: its spec, its model and its exact data split. Pruning, the curve and
the evidence scripts take earlier runs from here, through the run folder, never through the experiment
that trained them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fexprune import run_folder, runs, spec
from fexprune.config import TrainConfig
from fexprune.data.preprocess import NORMALIZATIONS
from fexprune.data.prepared import SPLIT_FILE, PreparedData, prepare_data, recorded_split
from fexprune.device import resolve_device
from fexprune.errors import InputError
from fexprune.faces.loading import load_images
from fexprune.models.checkpoint import load_model

MODEL_FILE = "model.pt"


@dataclass
class TrainedRun:
    """A finished train run: its spec and results, its model (and the preprocessing it was saved with), and
    its data split as tensors."""

    run_dir: Path
    spec: dict
    results: dict
    config: TrainConfig
    model: nn.Module
    preprocessing: dict
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    data: PreparedData


def train_config(values: dict, source: Path) -> TrainConfig:
    """The TrainConfig a trained run's spec describes; a hand-edited value named, not a traceback later.
    `source`: the run folder the spec is in, or the file (or words) it came from."""
    where = run_folder.spec_path(source) if Path(source).is_dir() else Path(source)
    try:
        config = TrainConfig.from_dict(spec.flat(values))
    except TypeError as error:
        raise InputError(str(error), where) from None
    if config.normalize not in NORMALIZATIONS:
        raise InputError(f"training.normalize {config.normalize!r} is not one of {', '.join(NORMALIZATIONS)}", where)
    return config


def run_data(config: TrainConfig, run_dir: Path | None, progress: bool) -> PreparedData:
    """A run's data: split as the run's split.json records it where the run has one (a run reopened keeps
    its frames even if the split code changed since), else as `config` splits it now."""
    record = None if run_dir is None else Path(run_dir) / SPLIT_FILE
    image_set = load_images(config, progress)
    if record is None or not record.is_file():
        return prepare_data(config, image_set)
    indices = recorded_split(image_set, runs.read_json(record), record)
    return prepare_data(config, image_set, indices)


def load_run(run_dir: str | Path, progress: bool = False, device: str = "cpu") -> TrainedRun:
    """A finished train run folder back in memory: its model and its exact data split, on `device`."""
    run_dir = Path(run_dir)
    values = run_folder.read_spec(run_dir, "a train run folder")
    if values["kind"] != "train":
        raise InputError(f"is a {values['kind']} run; prune needs a finished `fexprune train` run (--run TRAIN_RUN_DIR)", run_dir)
    if not (run_dir / MODEL_FILE).is_file():
        raise InputError(f"run has no {MODEL_FILE} (unfinished? resume it with --resume)", run_dir)
    config = train_config(values, run_dir)
    target = resolve_device(device)
    data = run_data(config, run_dir, progress).to(target)
    model, preprocessing = load_model(run_dir / MODEL_FILE)
    model.to(target)
    return TrainedRun(
        run_dir=run_dir, spec=values, results=run_folder.read_results(run_dir) or {}, config=config, model=model,
        preprocessing=preprocessing, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test,
        classes=list(data.image_set.classes), data=data,
    )
