"""K-fold estimates with spread: one number from one 80/20 split of 675 frames swings by several points
from seed to seed, so a protocol comparison needs folds. Folds are stratified; with `--split clip` or
`movie` they are grouped too (scikit-learn's StratifiedGroupKFold), so no clip or movie is on both sides.
"""

from __future__ import annotations

import numpy as np

from fexprune import runs
from fexprune.data.builtin import resolve_data
from fexprune.data.loading import ImageSet, duplicate_indices, load_image_set
from fexprune.errors import InputError


def fold_indices(image_set: ImageSet, k: int, method: str = "random", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, test) index pairs; every sample is in exactly one test fold, except frames whose bytes
    appear under two classes, which always stay in training. A layout's fixed split is ignored here."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if k < 2:
        raise InputError(f"--cv needs at least 2 folds, got {k}")
    forced = duplicate_indices(image_set)
    if method in ("movie", "clip"):  # a duplicate's whole group stays in training, or the group would leak
        held = {getattr(image_set.samples[i], method) for i in forced}
        forced = {i for i, s in enumerate(image_set.samples) if getattr(s, method) in held}
    eligible = np.array([i for i in range(len(image_set.samples)) if i not in forced], dtype=np.int64)
    labels = image_set.labels[eligible]
    if method == "random":
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(eligible, labels)
    elif method in ("movie", "clip"):
        groups = [getattr(image_set.samples[i], method) for i in eligible]
        if len(set(groups)) < k:
            raise InputError(f"{k} folds by {method} need at least {k} {method}s; found {len(set(groups))}")
        parts = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(eligible, labels, groups)
    else:
        raise InputError(f"unknown split {method!r} (choose from random, movie, clip)")
    folds = []
    every = np.arange(len(image_set.samples))
    for _, test_part in parts:
        test = np.sort(eligible[test_part])
        folds.append((np.setdiff1d(every, test), test))
    return folds


def summarise(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}


def cross_validate(config, out=None, progress: bool = True, baseline: bool = True):
    """Train `config.recipe` on each of `config.cv` folds (and the HOG+SVM baseline on the same folds);
    a run folder with per-fold rows in metrics.csv, mean/sd in results.json, and report.html."""
    from fexprune.experiments.baseline import svm_baseline
    from fexprune.experiments.recipes import fit_recipe
    from fexprune.models.views import TEST_TIME_KEYS
    from fexprune.experiments.data import prepare_data
    from fexprune.experiments.train import TrainResult
    from fexprune.report.metrics import classification_metrics, save_confusion_figure

    k = int(config.cv)
    image_set = load_image_set(resolve_data(config.data, progress), size=tuple(config.image_size), variant=config.variant,
                               progress=progress, **config.face_options())
    folds = fold_indices(image_set, k, config.split, config.seed)
    run_dir = runs.new_run_dir(out, "cv")
    runs.write_json(run_dir / "config.json", runs.config_record(config))
    rows, model, total = [], None, None
    for fold, indices in enumerate(folds):
        data = prepare_data(config, progress=False, indices=indices, image_set=image_set)
        fitted = fit_recipe(config, data)
        metrics = classification_metrics(data.y_test.numpy(), fitted.test_predictions, list(image_set.classes))
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
    protocol = f"{k}-fold cross-validation, folds {'stratified' if config.split == 'random' else 'grouped by ' + config.split}"
    results = {
        "protocol": protocol, "split": config.split, "cv": k, "recipe": config.recipe, "face_crop": config.face_crop,
        "summary": {key: summarise([r[key] for r in rows]) for key in keys},
        "folds": rows, "confusion_matrix": total.tolist(), "classes": list(image_set.classes),
        "data": image_set.summary(), "skipped": image_set.skipped,
    }
    results["test_accuracy"] = results["summary"]["test_accuracy"]["mean"]
    # how each fold's test images were scored, as a single run records it (compare groups by it)
    results["training"] = {key: fitted.info.get(key) for key in TEST_TIME_KEYS}
    if "provenance" in fitted.info:  # transfer: pretrained weights, said wherever its numbers appear
        results["provenance"] = fitted.info["provenance"]
    runs.write_csv(run_dir / "metrics.csv", rows)
    save_confusion_figure(run_dir / "figures" / "confusion.png", total, list(image_set.classes),
                          f"Confusion matrix, all test folds ({protocol})")
    from fexprune.report.faces import write_face_sheet

    write_face_sheet(run_dir, image_set)
    runs.write_json(run_dir / "results.json", results)
    from fexprune.report.crossval import write_cv_report

    write_cv_report(run_dir, results)
    return TrainResult(run_dir=run_dir, results=results, metrics=rows, model=model)
