"""A run's test-split scores beyond accuracy, recorded in its results with the protocol that produced them."""

from __future__ import annotations

import numpy as np

from fexprune.data.splits import describe_split
from fexprune.report.metrics import classification_metrics, confusion_figure


def add_classification_metrics(results: dict, data, predictions: np.ndarray):
    """Per-class accuracy, macro-F1 and the confusion matrix into `results`, with the protocol; returns the
    confusion matrix's figure."""
    classes = list(data.image_set.classes)
    metrics = classification_metrics(data.y_test.cpu().numpy(), predictions, classes)
    results["protocol"] = describe_split(data.image_set, results.get("split", "random"))
    results["macro_f1"] = metrics["macro_f1"]
    results["per_class_accuracy"] = metrics["per_class_accuracy"]
    results["classification"] = metrics
    return confusion_figure(metrics["confusion_matrix"], classes, f"Confusion matrix, test split ({results['protocol']})")
