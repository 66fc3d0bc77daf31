"""Folds for K-fold estimates: stratified, and grouped by clip or movie where the split asks, so no clip or
movie is on both sides (scikit-learn's StratifiedGroupKFold); and the mean and spread over them."""

from __future__ import annotations

import numpy as np

from fexprune.data.loading import ImageSet, duplicate_indices
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
    largest = int(np.bincount(labels).max()) if len(labels) else 0
    if k > largest:  # scikit-learn's ValueError would come as a traceback
        raise InputError(f"--cv {k} is more folds than the data set allows ({len(eligible)} images, "
                         f"at most {largest} of one class): use --cv {max(2, largest)} or fewer", image_set.root)
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


def fold_protocol(k: int, split: str) -> str:
    return f"{k}-fold cross-validation, folds {'stratified' if split == 'random' else 'grouped by ' + split}"


def summarise(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max())}
