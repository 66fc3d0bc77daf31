"""A trained or pruned run's model together with how its images were prepared in training.

Predict and export both start here, so new images are prepared exactly as the training images were:
the checkpoint's `preprocessing` (size, normalisation and its statistics, classes) and, where the run
was trained on face crops, the same margin and detector chain.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fexprune import run_folder
from fexprune.data.preprocess import NORMALIZATIONS, normalize_images
from fexprune.device import resolve_device
from fexprune.errors import InputError
from fexprune.faces import STRICT_CHAIN
from fexprune.models.checkpoint import load_model
from fexprune.models.cnn import ExpressionCNN
from fexprune.models.views import predict_logits

MODEL_FILE = "model.pt"  # train runs and prune runs (the pruned, channel-removed model) both write it


@dataclass
class RunModel:
    model: ExpressionCNN
    preprocessing: dict  # image_size [W, H], normalize, stats, classes
    face_crop: dict | None  # {"margin", "detectors", "eye_align"} when the run was trained on face crops
    source: Path  # the checkpoint file

    @property
    def classes(self) -> list[str]:
        return list(self.preprocessing["classes"])

    @property
    def image_size(self) -> tuple[int, int]:
        width, height = self.preprocessing["image_size"]
        return int(width), int(height)

    def prepare(self, gray: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W) at `image_size` -> the float (N, 1, H, W) batch the network was trained on."""
        x, _ = normalize_images(gray, self.preprocessing["normalize"], self.preprocessing.get("stats"))
        return torch.from_numpy(x).to(next(self.model.parameters()).device)

    @torch.no_grad()
    def probabilities(self, gray: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) -> (N, classes) softmax probabilities; for a run scored with test-time augmentation
        (the best and transfer recipes' "hflip"), the mean over each image and its mirror image, as its test
        accuracy was measured."""
        logits = predict_logits(self.model, self.prepare(gray), tta=self.preprocessing.get("tta") == "hflip")
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)


def load_run_model(run: str | Path, device: str = "cpu") -> RunModel:
    """A train run folder, a prune run folder, or a model checkpoint file itself, its network on `device`
    (a checkpoint written on any device loads on any other)."""
    run = Path(run)
    if run.is_dir():
        path = run / MODEL_FILE
        if not path.is_file():
            raise InputError(f"no {MODEL_FILE} in this folder (expected a finished train or prune run)", run)
    elif run.is_file():
        path = run
    else:
        raise InputError("run folder not found", run)
    with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a foreign pickle
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        model, preprocessing = load_model(path)
    _check_preprocessing(preprocessing, model, path)
    face_crop = preprocessing["face_crop"] if "face_crop" in preprocessing else _face_crop_from_configs(path.parent)
    model.to(resolve_device(device))
    return RunModel(model=model, preprocessing=preprocessing, face_crop=face_crop_settings(face_crop), source=path)


def _check_preprocessing(preprocessing: dict, model: ExpressionCNN, path: Path) -> None:
    missing = [key for key in ("image_size", "normalize", "classes") if key not in preprocessing]
    if missing:
        raise InputError(f"checkpoint lacks preprocessing {', '.join(missing)}; retrain with this version", path)
    if preprocessing["normalize"] not in NORMALIZATIONS:
        raise InputError(f"unknown normalisation {preprocessing['normalize']!r} in checkpoint", path)
    if tuple(preprocessing["image_size"]) != tuple(model.config.input_size):
        raise InputError(
            f"preprocessing size {preprocessing['image_size']} differs from the model's input {model.config.input_size}", path
        )
    if len(preprocessing["classes"]) != model.config.n_classes:
        raise InputError(f"{len(preprocessing['classes'])} class names for {model.config.n_classes} outputs", path)


def _face_crop_from_configs(folder: Path, depth: int = 3) -> object:
    """The face-crop settings of the run's spec, following a prune run back to its train run."""
    if depth == 0 or not run_folder.has_spec(folder):
        return None
    settings = run_folder.read_settings(folder)
    if "face_crop" in settings:
        return settings["face_crop"]
    if isinstance(settings.get("run"), str):  # a prune run names the train run it pruned
        return _face_crop_from_configs(Path(settings["run"]), depth - 1)
    return None


def face_crop_settings(value: object) -> dict | None:
    """A run's `face_crop` entry (false, true, a detector list, or a dict) as {"margin", "detectors", "eye_align",
    "landmarks"}."""
    if value is None or value is False or value == "none":
        return None
    settings = {"margin": 0.2, "detectors": list(STRICT_CHAIN), "eye_align": False, "landmarks": False}  # the defaults of runs that did not record them
    if isinstance(value, dict):
        if value.get("enabled", True) is False:
            return None
        if value.get("margin") is not None:
            settings["margin"] = float(value["margin"])
        settings["eye_align"] = bool(value.get("eye_align", False))
        settings["landmarks"] = bool(value.get("landmarks", False))  # runs levelled before landmark crops: False
        detectors = value.get("detectors")
        if detectors:
            # a string is the chain as FaceCropper.options() records it: "haar-default,haar-alt2,..."
            settings["detectors"] = [d.strip() for d in detectors.split(",") if d.strip()] if isinstance(detectors, str) else list(detectors)
    elif isinstance(value, (list, tuple)):
        settings["detectors"] = list(value)
    elif isinstance(value, str) and value not in ("true", "auto", "default"):
        settings["detectors"] = [name.strip() for name in value.split(",") if name.strip()]
    return settings
