"""Classification metrics beyond accuracy: per-class accuracy (recall), macro-F1, the confusion matrix.

SFEW's classes are unbalanced (Fear and Disgust are rare); overall accuracy hides a network that never
predicts them, macro-F1 and the per-class numbers do not.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(y_true, y_pred, classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class accuracy/precision/F1 and the confusion matrix, JSON-ready.

    A class absent from the test set has no accuracy (None) and is left out of the macro averages.
    """
    n = len(classes)
    matrix = confusion_matrix(y_true, y_pred, n)
    support, predicted, correct = matrix.sum(1), matrix.sum(0), np.diag(matrix)
    recall = np.divide(correct, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(correct, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    present = support > 0
    return {
        "accuracy": float(correct.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class_accuracy": {c: (float(recall[i]) if present[i] else None) for i, c in enumerate(classes)},
        "per_class_f1": {c: (float(f1[i]) if present[i] else None) for i, c in enumerate(classes)},
        "support": {c: int(support[i]) for i, c in enumerate(classes)},
        "confusion_matrix": matrix.tolist(),
    }


def confusion_figure(matrix, classes: list[str], title: str = "Confusion matrix (test split)"):
    """A matplotlib figure: counts in each cell, shaded by the row's share (per-class recall)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(5.6, 4.8))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="share of the true class")
    figure.tight_layout()
    return figure
