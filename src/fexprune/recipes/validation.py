"""The part of a training split a recipe holds back to watch generalisation, and how a fitted network's
test split is scored: shared by the recipes that train on mini-batches."""

from __future__ import annotations

import time

import numpy as np
import torch

from fexprune.data.loading import ImageSet
from fexprune.data.prepared import cut_margins
from fexprune.data.splits import split_indices
from fexprune.errors import InputError
from fexprune.models.views import predict_logits
from fexprune.recipes.base import Fitted, scores
from fexprune.training.loop import evaluate


def validation_split(image_set: ImageSet, train_index: np.ndarray, method: str, fraction: float, seed: int):
    """(fit part, validation part) of the training indices, grouped as the test split is, so early
    stopping sees the same kind of generalisation the test measures."""
    part = ImageSet(
        images=image_set.images[:0], labels=image_set.labels[train_index],
        samples=[image_set.samples[i] for i in train_index], classes=image_set.classes,
        root=image_set.root, layout=image_set.layout, duplicates=image_set.duplicates,
    )
    part.samples = [s if s.subset is None else type(s)(s.path, s.label, s.movie, s.clip, None) for s in part.samples]
    try:
        fit_part, val_part = split_indices(part, method, fraction, seed + 7919)
    except InputError:  # too few groups for a grouped validation part: fall back to a random one
        fit_part, val_part = split_indices(part, "random", fraction, seed + 7919)
    return train_index[fit_part], train_index[val_part]


def fit_and_validation_parts(config, data, carve: bool, fraction: float):
    """(x_fit, y_fit, x_val, y_val, n_fit, n_val): the training split, or its fit and validation parts when `carve`."""
    position = {int(i): k for k, i in enumerate(data.train_index)}
    if carve and fraction > 0:
        fit_index, val_index = validation_split(data.image_set, data.train_index, config.split, fraction, config.seed)
    else:
        fit_index, val_index = np.asarray(data.train_index), np.asarray([], dtype=np.asarray(data.train_index).dtype)
    fit_rows = torch.tensor([position[int(i)] for i in fit_index], dtype=torch.long)
    val_rows = torch.tensor([position[int(i)] for i in val_index], dtype=torch.long)
    return (data.x_train[fit_rows], data.y_train[fit_rows], data.x_train[val_rows], data.y_train[val_rows],
            len(fit_index), len(val_index))


def score_fitted(recipe, config, data, model, rows: list[dict], info: dict, started: float) -> Fitted:
    """The fitted network's final numbers: train split as it is, test split averaged over the recipe's views."""
    train_loss, train_accuracy = evaluate(model, data.x_train, data.y_train)
    margins = cut_margins(config, data, recipe.margin_tta)
    views = tuple(data.views_at(margins))
    test_loss, test_accuracy = scores(model, data.x_test, data.y_test, recipe.tta, views)
    predictions = predict_logits(model, data.x_test, recipe.tta, views=views).argmax(1).cpu().numpy()
    info.update({"recipe": config.recipe, "tta": "hflip" if recipe.tta else None, "tta_margins": margins or None})
    if hasattr(recipe, "augment"):  # recipes that train the network by gradient; the probe recipe does not
        info.update({"weight_decay": recipe.weight_decay, "label_smoothing": recipe.label_smoothing, "augment": recipe.augment.to_dict()})
    final = {"train_loss": train_loss, "train_accuracy": train_accuracy, "test_loss": test_loss, "test_accuracy": test_accuracy}
    return Fitted(model, rows, final, predictions, info, time.perf_counter() - started)
