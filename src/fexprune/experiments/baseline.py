"""The classical baseline on the same footing as the CNN: an RBF-SVM on HOG descriptors of the same
(face-cropped or whole) 90x72 images, with the same splits, so every protocol's table shows how far the
CNN is above it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np
from tqdm import tqdm

from fexprune import run_folder, spec
from fexprune.config import ImageDataConfig
from fexprune.data.splits import describe_split, split_indices
from fexprune.errors import InputError
from fexprune.experiments.folds import fold_indices, fold_protocol, summarise
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.faces.loading import load_images, with_chain
from fexprune.report.metrics import classification_metrics, confusion_figure
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

METHOD = "HOG (8px cells, 9 bins) + RBF-SVM (C=10, balanced)"


@dataclass
class BaselineConfig(ImageDataConfig):
    """The SVM reads the images and their split only; its own settings are fixed (METHOD)."""


def hog_features(images: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    """(N, H, W) uint8 -> (N, D) float32: Dalal-Triggs HOG (2x2-cell blocks, one-cell stride) with OpenCV."""
    height, width = images.shape[1:]
    window = (width // cell * cell, height // cell * cell)
    hog = cv2.HOGDescriptor(window, (2 * cell, 2 * cell), (cell, cell), (cell, cell), bins)
    return np.stack([hog.compute(np.ascontiguousarray(image[: window[1], : window[0]])).ravel() for image in images])


def svm_baseline(
    images: np.ndarray, labels: np.ndarray, train_index: np.ndarray, test_index: np.ndarray, classes: list[str],
    C: float = 10.0, on_stage: Callable[[str], None] = lambda stage: None,
) -> dict:
    """Fit on the training indices, score on the test ones: accuracy, macro-F1, per class, confusion.
    `on_stage(name)` hears each stage begin (progress only)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    on_stage("HOG descriptors")
    features = hog_features(images)
    model = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=C, gamma="scale", class_weight="balanced"))
    on_stage("fitting the SVM")
    model.fit(features[train_index], labels[train_index])
    on_stage("scoring")
    predictions = model.predict(features[test_index])
    metrics = classification_metrics(labels[test_index], predictions, classes)
    metrics["train_accuracy"] = float((model.predict(features[train_index]) == labels[train_index]).mean())
    return metrics


def run_baseline(config: BaselineConfig, out=None, progress: bool = True, tracking: Tracking = Tracking()) -> tuple[Path, dict]:
    """`fexprune baseline`: the SVM on `config`'s data, face crops and split (or its K folds); a run folder
    with results.json, the confusion matrix and the report."""
    started = time.perf_counter()
    config = with_chain(config)
    image_set = load_images(config, progress)
    classes = list(image_set.classes)
    folds = fold_indices(image_set, int(config.cv), config.split, config.seed) if config.cv else None  # before the folder: a bad --cv leaves none
    run_dir = run_folder.create(out, "baseline", spec.build("baseline", {**run_folder.record(config), "method": METHOD}))
    bar = tqdm(total=int(config.cv or 1), desc="HOG + SVM", unit="fit", file=sys.stderr, disable=not progress, leave=False)

    def fitted(train_index, test_index) -> dict:
        metrics = svm_baseline(image_set.images, image_set.labels, train_index, test_index, classes,
                               on_stage=bar.set_postfix_str)
        bar.update(1)
        return metrics

    if config.cv:
        per_fold = [fitted(*f) for f in folds]
        matrix = np.sum([m["confusion_matrix"] for m in per_fold], axis=0)
        results = {
            "protocol": fold_protocol(int(config.cv), config.split),
            "summary": {key: summarise([m[key] for m in per_fold]) for key in ("accuracy", "macro_f1", "train_accuracy")},
            "folds": [{k: m[k] for k in ("accuracy", "macro_f1", "train_accuracy")} for m in per_fold],
        }
        results["test_accuracy"] = results["summary"]["accuracy"]["mean"]
    else:
        train_index, test_index = split_indices(image_set, config.split, config.test_fraction, config.seed)
        metrics = fitted(train_index, test_index)
        matrix = np.asarray(metrics["confusion_matrix"])
        results = {"protocol": describe_split(image_set, config.split), "test_accuracy": metrics["accuracy"],
                   "macro_f1": metrics["macro_f1"], "train_accuracy": metrics["train_accuracy"],
                   "n_train": len(train_index), "n_test": len(test_index), "classification": metrics}
    bar.close()
    results.update({"method": "hog-svm", "split": config.split, "face_crop": config.face_crop, "classes": classes,
                    "confusion_matrix": np.asarray(matrix).tolist(), "data": image_set.summary(),
                    "seconds": time.perf_counter() - started})
    write_run(run_dir, RunOutput(kind="baseline", results=results, image_set=image_set,
                                 figures={"confusion": confusion_figure(matrix, classes, f"HOG + SVM ({results['protocol']})")}), tracking)
    return run_dir, results


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A baseline run as `run_spec` states it (fexprune.experiments.runner)."""
    try:
        config = BaselineConfig.from_dict(spec.flat(run_spec))
    except TypeError as error:
        raise InputError(str(error), source) from None
    return run_baseline(config, out, progress=context.progress, tracking=context.tracking)[0]
