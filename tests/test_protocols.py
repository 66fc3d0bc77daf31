"""Protocols: folds disjoint and covering, grouped folds keep every movie/clip on one side, metrics sum up."""

from __future__ import annotations

import numpy as np
import pytest

from fexprune.data.loading import load_image_set
from fexprune.data.splits import split_indices
from fexprune.data.synth import write_synthetic
from fexprune.experiments.crossval import fold_indices, summarise
from fexprune.report.metrics import classification_metrics, confusion_matrix


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("protocols"), per_class=12, seed=2, size=(96, 72), progress=False)
    return load_image_set(images, size=(45, 36), progress=False, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("method", ["movie", "clip"])
def test_grouped_split_disjoint(image_set, method):
    train, test = split_indices(image_set, method, 0.2, seed=1)
    side = lambda index: {getattr(image_set.samples[i], method) for i in index}
    assert side(train).isdisjoint(side(test)) and len(test) > 0


@pytest.mark.parametrize("method", ["random", "movie", "clip"])
def test_folds_cover_every_frame_once(image_set, method):
    folds = fold_indices(image_set, 3, method, seed=0)
    tests = np.concatenate([test for _, test in folds])
    assert len(tests) == len(set(tests.tolist()))
    duplicates = {str(path) for group in image_set.duplicates for path in group["paths"]}
    held = [s for s in image_set.samples if str(s.path) in duplicates]
    if method != "random":  # a duplicate's whole movie/clip stays in training
        groups = {getattr(s, method) for s in held}
        held = [s for s in image_set.samples if getattr(s, method) in groups]
    assert len(tests) == len(image_set.samples) - len(held)
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        if method != "random":
            side = lambda index: {getattr(image_set.samples[i], method) for i in index}
            assert side(train).isdisjoint(side(test))


def test_confusion_matrix_sums_to_n_test_and_macro_f1():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(y_true, y_pred, 4)
    assert matrix.sum() == len(y_true) and matrix[0, 1] == 1 and matrix[2, 2] == 2
    metrics = classification_metrics(y_true, y_pred, ["a", "b", "c", "d"])
    assert metrics["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 2 / 3, "d": None}
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * (2 / 3) * 1.0 / (2 / 3 + 1.0), 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))


def test_summary_has_spread():
    s = summarise([0.3, 0.4, 0.5])
    assert s["mean"] == pytest.approx(0.4) and s["sd"] == pytest.approx(0.1)
