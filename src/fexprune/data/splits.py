"""Train/test splits: seeded stratified random, or grouped by movie or clip so no identity leaks.

SFEW frames of one clip (and actors of one movie) look alike; a random split puts them on both sides
and flatters test accuracy. "movie" and "clip" keep every group on one side. A layout that fixes the
split (Train/ + Val/) always uses it. Frames whose content appears under two classes stay in training.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from fexprune.data.loading import ImageSet, duplicate_indices
from fexprune.errors import InputError

SPLIT_METHODS = ("random", "movie", "clip")


def has_fixed_split(image_set: ImageSet) -> bool:
    return any(s.subset == "test" for s in image_set.samples) and any(s.subset == "train" for s in image_set.samples)


def describe_split(image_set: ImageSet, method: str = "random") -> str:
    """The split actually used, for the run's spec and reports."""
    if has_fixed_split(image_set):
        return f"fixed (the layout's Train/Val split; --split {method} ignored)"
    return method


def split_indices(
    image_set: ImageSet, method: str = "random", test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each sorted; deterministic for a seed."""
    if method not in SPLIT_METHODS:
        raise InputError(f"unknown split {method!r} (choose from {', '.join(SPLIT_METHODS)})")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be between 0 and 1, got {test_fraction}")
    n = len(image_set.samples)
    labels = np.asarray(image_set.labels)
    forced_train = duplicate_indices(image_set)
    if has_fixed_split(image_set):
        test = [i for i, s in enumerate(image_set.samples) if s.subset == "test" and i not in forced_train]
    elif method == "random":
        test = _stratified(labels, forced_train, test_fraction, np.random.default_rng(seed))
    else:
        key = (lambda s: s.movie) if method == "movie" else (lambda s: s.clip)
        test = _grouped(labels, [key(s) for s in image_set.samples], forced_train, test_fraction, np.random.default_rng(seed), method)
    is_test = np.zeros(n, dtype=bool)
    is_test[np.asarray(test, dtype=np.int64)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _class_targets(labels: np.ndarray, test_fraction: float) -> dict[int, int]:
    """Test frames per class, summing to ceil(fraction * N) (scikit-learn's rounding), largest remainder."""
    classes, counts = np.unique(labels, return_counts=True)
    total = math.ceil(test_fraction * len(labels))
    exact = counts * total / len(labels)
    targets = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - targets), kind="stable")[: total - targets.sum()]:
        targets[index] += 1
    return {int(c): int(t) for c, t in zip(classes, targets)}


def _stratified(labels: np.ndarray, forced_train: set[int], test_fraction: float, rng: np.random.Generator) -> list[int]:
    test: list[int] = []
    for label, target in _class_targets(labels, test_fraction).items():
        eligible = [i for i in np.flatnonzero(labels == label) if i not in forced_train]
        chosen = rng.permutation(eligible)[: min(target, len(eligible))]
        test.extend(int(i) for i in chosen)
    return test


def _grouped(labels, groups, forced_train, test_fraction, rng, method) -> list[int]:
    """Greedy: visit groups in random order, move one to test when that brings the per-class test counts
    closer to the stratified targets. Groups holding a duplicate frame stay in training."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    if len(members) < 2:
        raise InputError(f"a {method} split needs at least two {method}s; found {len(members)}")
    targets = _class_targets(labels, test_fraction)
    n_classes = int(labels.max()) + 1
    goal = np.zeros(n_classes)
    for label, target in targets.items():
        goal[label] = target
    counts = np.zeros(n_classes)
    names = sorted(members)
    test: list[int] = []
    for position in rng.permutation(len(names)):
        indices = members[names[position]]
        if any(i in forced_train for i in indices):
            continue
        add = np.bincount(labels[indices], minlength=n_classes)
        if np.abs(counts + add - goal).sum() < np.abs(counts - goal).sum():
            counts += add
            test.extend(indices)
    if not test:  # every group is bigger than the test share: take the smallest eligible one
        eligible = [g for g in names if not any(i in forced_train for i in members[g])]
        if not eligible:
            raise InputError(f"no {method} can go to the test split (all hold duplicate frames)")
        test = list(members[min(eligible, key=lambda g: (len(members[g]), g))])
    if len(test) == len(labels):
        raise InputError(f"a {method} split left nothing to train on")
    return test
