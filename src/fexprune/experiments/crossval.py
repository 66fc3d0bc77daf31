"""K-fold estimates with spread: one number from one 80/20 split of 675 frames swings by several points
from seed to seed, so a protocol comparison needs folds. Folds are stratified; with `--split clip` or
`movie` they are grouped too (scikit-learn's StratifiedGroupKFold), so no clip or movie is on both sides.
"""

from __future__ import annotations

import numpy as np

from fexprune import run_folder, spec
from fexprune.data.prepared import prepare_data
from fexprune.device import describe, resolve_device, set_deterministic
from fexprune.experiments.baseline import svm_baseline
from fexprune.experiments.folds import fold_indices, fold_protocol, summarise
from fexprune.experiments.result import TrainResult
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.faces.loading import load_images
from fexprune.models.views import TEST_TIME_KEYS
from fexprune.recipes import recipe_for, recipe_section
from fexprune.report.metrics import classification_metrics, confusion_figure
from fexprune.tracking import Tracking


def cross_validate(config, out=None, progress: bool = True, baseline: bool = True, tracking: Tracking = Tracking(),
                   recipe=None):
    """Train `config.recipe` on each of `config.cv` folds (and the HOG+SVM baseline on the same folds);
    a run folder with per-fold rows in metrics.csv, mean/sd in results.json, and the report."""
    k = int(config.cv)
    recipe = recipe if recipe is not None else recipe_for(config)
    recipe.check(config)
    device = resolve_device(config.device)
    set_deterministic(config.deterministic)
    image_set = load_images(config, progress)
    folds = fold_indices(image_set, k, config.split, config.seed)
    run_dir = run_folder.create(out, "cv", spec.build("cv", run_folder.record(config), recipe=recipe_section(recipe, config)))
    rows, model, total = [], None, None
    for fold, indices in enumerate(folds):
        data = prepare_data(config, image_set, indices).to(device)
        fitted = recipe.fit(config, data)
        metrics = classification_metrics(data.y_test.cpu().numpy(), fitted.test_predictions, list(image_set.classes))
        matrix = np.asarray(metrics["confusion_matrix"])
        total = matrix if total is None else total + matrix
        row = {"fold": fold, "n_train": len(indices[0]), "n_test": len(indices[1]), **fitted.final,
               "macro_f1": metrics["macro_f1"], "seconds": fitted.seconds}
        if baseline:
            svm = svm_baseline(image_set.images, image_set.labels, *indices, list(image_set.classes))
            row["svm_test_accuracy"], row["svm_macro_f1"] = svm["accuracy"], svm["macro_f1"]
        rows.append(row)
        model = fitted.model
        if progress:
            print(f"fold {fold + 1}/{k}: test accuracy {100 * row['test_accuracy']:.1f}%", flush=True)
    keys = ["train_accuracy", "test_loss", "test_accuracy", "macro_f1"] + (["svm_test_accuracy", "svm_macro_f1"] if baseline else [])
    protocol = fold_protocol(k, config.split)
    results = {
        "protocol": protocol, "split": config.split, "cv": k, "recipe": config.recipe, "face_crop": config.face_crop,
        "summary": {key: summarise([r[key] for r in rows]) for key in keys},
        "folds": rows, "confusion_matrix": total.tolist(), "classes": list(image_set.classes),
        "data": image_set.summary(), "skipped": image_set.skipped, "device": describe(device),
    }
    results["test_accuracy"] = results["summary"]["test_accuracy"]["mean"]
    # how each fold's test images were scored, as a single run records it (compare groups by it)
    results["training"] = {key: fitted.info.get(key) for key in TEST_TIME_KEYS}
    if "provenance" in fitted.info:  # pretrained weights: said wherever its numbers appear
        results["provenance"] = fitted.info["provenance"]
    write_run(run_dir, RunOutput(
        kind="cv", results=results, metrics=rows, image_set=image_set,
        figures={"confusion": confusion_figure(total, list(image_set.classes), f"Confusion matrix, all test folds ({protocol})")},
    ), tracking)
    return TrainResult(run_dir=run_dir, results=results, metrics=rows, model=model)
