"""Training recipes: `paper` (the paper's CNN, full-batch Adam, as fexprune.training.loop runs it),
`best` (a regularised CNN trained from scratch with augmentation, mini-batches, weight decay and early
stopping on a validation part of the training split; the test split is never looked at until the end)
and `transfer` (the FER2013 network the `fer` package ships, fine-tuned the same way: not from scratch,
so its numbers go beside the others, never instead of them, and every run names where the weights
came from).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fexprune.data.augment import AugmentConfig
from fexprune.data.loading import ImageSet
from fexprune.data.splits import split_indices
from fexprune.errors import InputError
from fexprune.models.best_cnn import BestCNN, BestCNNConfig, BestEnsemble
from fexprune.models.checkpoint import save_model
from fexprune.models.views import TEST_TIME_KEYS, predict_logits
from fexprune.experiments.data import cut_margins, margin_views, prepare_data
from fexprune.training.loop import evaluate
from fexprune.training.minibatch import train_epoch

RECIPES = ("paper", "best", "transfer")
BEST_LR = 3e-3
BEST_EPOCHS = 80  # 80 against 50: +4.5 points on the random split, the same on the movie split (3 seeds)
BEST_BATCH = 32
TRANSFER_LR = 3e-3  # the classifier's; the whole network fine-tunes at a tenth of it
TRANSFER_EPOCHS = 30


@dataclass(frozen=True)
class BestRecipe:
    """The knobs of the `best` recipe; the values are what did least badly on the built-in data
    (benchmarks/recipes.md): the full 9x11 last map (a 4x5 grid lost where on the face a feature is),
    light augmentation, and the last weights of the one-cycle schedule (a grouped validation part of
    ~80 frames is too noisy to pick an epoch: its accuracy ran 10-20 points above the test's). Without
    early stopping no validation part is carved: the 15% it held train too (+8 points random split,
    +3 movie split, 3 seeds). Three members average away part of one network's luck (+3.5 points random,
    +0.5 movie); the HOG branch gained nothing on the built-in data and stays off."""

    channels: tuple[int, ...] = (16, 32, 64)
    pooled: tuple[int, int] | None = None  # None: the whole last map (9x11 for a 90x72 input after three 2x pools)
    dropout: float = 0.3
    hog: bool = False  # a fixed HOG branch beside the conv blocks (fexprune.models.hog)
    members: int = 3  # networks from different initialisations, trained alike, their probabilities averaged
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    mixup: float = 0.0  # > 0: each batch is blended with a shuffled copy of itself, weight ~ Beta(mixup, mixup)
    val_fraction: float = 0.15  # carved from the training split only to stop early; else every frame trains
    patience: int = 20  # epochs without a better validation accuracy (after the first quarter) before stopping
    early_stop: bool = False  # False: run every epoch of the one-cycle schedule and keep the last weights
    tta: bool = True  # average the probabilities of each test image and its mirror image
    # with face crops, each test frame is also cut at margin -/+ this and the probabilities of the three cuts
    # averaged: +1.5 points movie split, +1.9 random, paired over 10 seeds (se 0.5 each; recipes.md row 54)
    margin_tta: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class TransferRecipe:
    """The knobs of the `transfer` recipe: first the classifier alone (the pretrained features and
    their batch-norm statistics frozen), then every layer at `finetune_lr_factor` of the rate, cosine
    decayed; the last weights are kept, as in `best`. Inputs are normalised "none" (x / 255), so the
    network sees exactly fer's pixel scale and the augmentation's brightness is in those units."""

    head_epochs: int = 5
    finetune_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    val_fraction: float = 0.15
    tta: bool = True
    margin_tta: float = 0.05  # as in best: +0.7 movie split (se 0.4), +2.3 random (se 0.8), 10 seeds (recipes.md row 55)
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(brightness=0.025))  # 0.1 of a face's pixel std


def last_map_size(height: int, width: int, blocks: int) -> tuple[int, int]:
    """(height, width) of the best network's last feature map: each block halves, rounding down."""
    for _ in range(blocks):
        height, width = height // 2, width // 2
    return height, width


def recipe_defaults(recipe: str) -> dict:
    """TrainConfig values a recipe wants when the user gives none (epochs, lr, batch size, normalisation)."""
    if recipe == "paper":
        from fexprune.experiments.train import DEFAULT_LR

        return {"epochs": 700, "lr": DEFAULT_LR, "batch_size": None, "normalize": "per-image"}
    if recipe == "best":
        return {"epochs": BEST_EPOCHS, "lr": BEST_LR, "batch_size": BEST_BATCH, "normalize": "per-image"}
    if recipe == "transfer":
        return {"epochs": TRANSFER_EPOCHS, "lr": TRANSFER_LR, "batch_size": BEST_BATCH, "normalize": "none"}
    raise InputError(f"unknown recipe {recipe!r} (choose from {', '.join(RECIPES)})")


def _scores(model, x, y, tta: bool, views: tuple[torch.Tensor, ...] = ()) -> tuple[float, float]:
    logits = predict_logits(model, x, tta, views=views)
    loss = F.nll_loss(logits, y).item() if tta or views else F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()


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


def fit_best(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
    n_classes: int, epochs: int, lr: float, batch_size: int | None, seed: int,
    recipe: BestRecipe = BestRecipe(), x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
    eval_every: int = 10, on_epoch: Callable[[dict], None] | None = None,
) -> tuple[BestCNN | BestEnsemble, list[dict], dict]:
    """Train the best recipe's network (a BestEnsemble when `recipe.members` > 1); returns it with its
    last weights, or with those of the best validation epoch when `recipe.early_stop` (which also stops
    after `patience` epochs without gain). Train loss and accuracy in rows are the members' mean;
    validation and test scores are the ensemble's.
    An empty validation part is allowed without early stopping: rows then carry no validation scores."""
    if recipe.early_stop and not len(x_val):
        raise ValueError("early stopping needs a validation part (val_fraction > 0)")
    torch.manual_seed(seed)  # one stream initialises every member in turn: member 0 is the single network
    height, width = x.shape[-2:]
    pooled = tuple(recipe.pooled or last_map_size(int(height), int(width), len(recipe.channels)))
    config = BestCNNConfig(channels=tuple(recipe.channels), dropout=recipe.dropout, pooled=pooled,
                           hog=recipe.hog, members=recipe.members, input_size=(int(width), int(height)), n_classes=n_classes)
    model = BestEnsemble(config) if recipe.members > 1 else BestCNN(config)
    members = list(model.members) if recipe.members > 1 else [model]
    batch_size = batch_size or BEST_BATCH
    steps = epochs * -(-len(x) // batch_size)
    trainers = []  # per member: its optimizer, one-cycle schedule and batch order
    for index, member in enumerate(members):
        optimizer = torch.optim.AdamW(member.parameters(), lr=lr, weight_decay=recipe.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
        trainers.append((member, optimizer, schedule, torch.Generator().manual_seed(seed + 1000 * index)))
    warmup = max(1, epochs // 4)  # a grouped validation part is small and noisy: no stopping during warm-up
    best_key, best_epoch, best_state = (-1.0, 0.0), 0, copy.deepcopy(model.state_dict())
    rows: list[dict] = []
    for epoch in range(1, epochs + 1):
        model.train()
        parts = [train_epoch(member, x, y, optimizer, generator, batch_size, schedule=schedule, augment_config=recipe.augment,
                             label_smoothing=recipe.label_smoothing, mixup=recipe.mixup, min_batch=2)
                 for member, optimizer, schedule, generator in trainers]  # every member one epoch, in lockstep
        row = {"epoch": epoch, **{key: float(np.mean([part[key] for part in parts])) for key in parts[0]}}
        if len(x_val):
            row["val_loss"], row["val_accuracy"] = _scores(model, x_val, y_val, recipe.tta)
        if x_test is not None and (epoch % eval_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = _scores(model, x_test, y_test, recipe.tta)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if not len(x_val):
            continue
        key = (row["val_accuracy"], -row["val_loss"])  # the best validation accuracy, then the lower loss
        if epoch >= warmup and key > best_key:
            best_key, best_epoch, best_state = key, epoch, copy.deepcopy(model.state_dict())
        elif recipe.early_stop and epoch >= warmup and epoch - best_epoch >= recipe.patience:
            break
    if recipe.early_stop:
        model.load_state_dict(best_state)
    model.eval()
    if not len(x_val):
        return model, rows, {"epochs_run": len(rows)}
    return model, rows, {"best_epoch": best_epoch, "epochs_run": len(rows), "best_val_accuracy": best_key[0],
                         "best_val_loss": -best_key[1]}


def fit_transfer(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
    classes: list[str], normalize: str, stats: dict, epochs: int, lr: float, batch_size: int | None, seed: int,
    recipe: TransferRecipe = TransferRecipe(), x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
    eval_every: int = 10, on_epoch: Callable[[dict], None] | None = None, weights=None,
) -> tuple[nn.Module, list[dict], dict]:
    """Fine-tune the FER2013 network (fexprune.models.fer_transfer) on `classes`; returns it with its
    last weights. `info` holds the zero-shot accuracies (pretrained classifier, before any training)
    and the weights' provenance."""
    from fexprune.models.fer_transfer import pretrained_model

    torch.manual_seed(seed)
    height, width = x.shape[-2:]
    model = pretrained_model(classes, (int(width), int(height)), normalize, stats, weights=weights, seed=seed)
    info = {"provenance": model.config.provenance, "class_sources": list(model.config.class_sources)}
    info["zero_shot_validation_accuracy"] = _scores(model, x_val, y_val, False)[1] if len(x_val) else None
    if x_test is not None:
        info["zero_shot_test_accuracy"] = _scores(model, x_test, y_test, False)[1]
    classifier = model.network.layers[model.classifier]
    batch_size = batch_size or BEST_BATCH
    steps_per_epoch = -(-len(x) // batch_size)
    head_epochs = min(recipe.head_epochs, epochs)
    generator = torch.Generator().manual_seed(seed)
    rows: list[dict] = []
    optimizer = schedule = None
    for epoch in range(1, epochs + 1):
        if epoch == 1 and head_epochs:  # the classifier alone; frozen features keep their FER2013 statistics
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            for parameter in classifier.parameters():
                parameter.requires_grad_(True)
            optimizer = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=recipe.weight_decay)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        if epoch == head_epochs + 1:  # every layer, at a lower rate, cosine to zero
            for parameter in model.parameters():
                parameter.requires_grad_(True)
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr * recipe.finetune_lr_factor, weight_decay=recipe.weight_decay)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, (epochs - head_epochs) * steps_per_epoch))
        model.train(epoch > head_epochs)
        row = {"epoch": epoch, **train_epoch(model, x, y, optimizer, generator, batch_size, schedule=schedule,
                                             augment_config=recipe.augment, label_smoothing=recipe.label_smoothing, min_batch=2)}
        row["val_loss"], row["val_accuracy"] = _scores(model, x_val, y_val, recipe.tta) if len(x_val) else (float("nan"), float("nan"))
        if x_test is not None and (epoch % eval_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = _scores(model, x_test, y_test, recipe.tta)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    info.update({"epochs_run": len(rows), "head_epochs": head_epochs, "lr_classifier": lr,
                 "lr_finetune": lr * recipe.finetune_lr_factor, "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None})
    return model, rows, info


@dataclass
class Fitted:
    """A trained model and its final numbers, whichever recipe made it."""

    model: nn.Module
    rows: list[dict]
    final: dict  # train_loss, train_accuracy, test_loss, test_accuracy
    test_predictions: np.ndarray
    info: dict
    seconds: float


def fit_recipe(config, data, progress: bool = False, on_epoch=None, recipe: BestRecipe | TransferRecipe | None = None) -> Fitted:
    """Train `config.recipe` on prepared data (`best` and `transfer` carve their validation part from the
    training split itself). The paper recipe here is fexprune.training.loop.fit, as `train` runs it."""
    started = time.perf_counter()
    n_classes = len(data.image_set.classes)
    if config.recipe == "paper":
        from fexprune.models.cnn import ExpressionCNN
        from fexprune.training.loop import fit

        torch.manual_seed(config.seed)
        model = ExpressionCNN(config.model_config(n_classes))
        rows = fit(model, data.x_train, data.y_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                   seed=config.seed, x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every, on_epoch=on_epoch)
        final = {k: rows[-1][k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        predictions = predict_logits(model, data.x_test).argmax(1).numpy()
        return Fitted(model, rows, final, predictions, {"recipe": "paper"}, time.perf_counter() - started)
    if config.recipe not in ("best", "transfer"):
        raise InputError(f"unknown recipe {config.recipe!r} (choose from {', '.join(RECIPES)})")
    if recipe is None:  # the config's choices over the recipe's defaults
        spread = {} if config.margin_tta is None else {"margin_tta": config.margin_tta}
        if config.recipe == "best":
            members = {} if config.members is None else {"members": config.members}
            recipe = BestRecipe(hog=config.hog, **members, **spread)
        else:
            recipe = TransferRecipe(**spread)
    position = {int(i): k for k, i in enumerate(data.train_index)}
    carve = isinstance(recipe, TransferRecipe) or recipe.early_stop  # best without early stopping trains on every frame
    if carve and recipe.val_fraction > 0:
        fit_index, val_index = validation_split(data.image_set, data.train_index, config.split, recipe.val_fraction, config.seed)
    else:
        fit_index, val_index = np.asarray(data.train_index), np.asarray([], dtype=np.asarray(data.train_index).dtype)
    fit_rows = torch.tensor([position[int(i)] for i in fit_index], dtype=torch.long)
    val_rows = torch.tensor([position[int(i)] for i in val_index], dtype=torch.long)
    common = dict(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed, recipe=recipe,
                  x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every, on_epoch=on_epoch)
    parts = (data.x_train[fit_rows], data.y_train[fit_rows], data.x_train[val_rows], data.y_train[val_rows])
    if config.recipe == "transfer":
        model, rows, info = fit_transfer(*parts, classes=list(data.image_set.classes), normalize=data.preprocessing["normalize"],
                                         stats=data.preprocessing["stats"], **common)
        info.update({"architecture": "fer_transfer: fer's mini-Xception, project input -> centre square -> 64x64 on [-1, 1]",
                     "normalize": data.preprocessing["normalize"]})
    else:
        model, rows, info = fit_best(*parts, n_classes=n_classes, **common)
        info.update({"architecture": model.config.to_dict(), "dropout": recipe.dropout, "hog": recipe.hog,
                     "members": recipe.members, "early_stop": recipe.early_stop, "patience": recipe.patience, "mixup": recipe.mixup})
    train_loss, train_accuracy = evaluate(model, data.x_train, data.y_train)
    margins = cut_margins(config, data, recipe.margin_tta)
    views = tuple(margin_views(config, data, margins))
    test_loss, test_accuracy = _scores(model, data.x_test, data.y_test, recipe.tta, views)
    predictions = predict_logits(model, data.x_test, recipe.tta, views=views).argmax(1).numpy()
    info.update({"recipe": config.recipe, "n_fit": len(fit_index), "n_validation": len(val_index), "tta": "hflip" if recipe.tta else None,
                 "tta_margins": margins or None,
                 "weight_decay": recipe.weight_decay, "label_smoothing": recipe.label_smoothing, "augment": recipe.augment.to_dict()})
    final = {"train_loss": train_loss, "train_accuracy": train_accuracy, "test_loss": test_loss, "test_accuracy": test_accuracy}
    return Fitted(model, rows, final, predictions, info, time.perf_counter() - started)


def add_classification_metrics(results: dict, run_dir, model: nn.Module, data, predictions: np.ndarray | None = None) -> None:
    """Per-class accuracy, macro-F1 and the confusion matrix into `results`, the figure into
    `run_dir/figures/confusion.png`, and the protocol that produced the numbers."""
    from pathlib import Path

    from fexprune.data.splits import describe_split
    from fexprune.report.metrics import classification_metrics, save_confusion_figure

    if predictions is None:
        predictions = predict_logits(model, data.x_test).argmax(1).numpy()
    classes = list(data.image_set.classes)
    metrics = classification_metrics(data.y_test.numpy(), predictions, classes)
    results["protocol"] = describe_split(data.image_set, results.get("split", "random"))
    results["macro_f1"] = metrics["macro_f1"]
    results["per_class_accuracy"] = metrics["per_class_accuracy"]
    results["classification"] = metrics
    save_confusion_figure(Path(run_dir) / "figures" / "confusion.png", metrics["confusion_matrix"], classes,
                          f"Confusion matrix, test split ({results['protocol']})")


def train_recipe_run(config, out=None, progress: bool = True):
    """`fexprune train --recipe best` (or transfer): one run folder as `train` writes it (config, metrics, results,
    model, training curve, confusion matrix), without checkpoints."""
    from tqdm import tqdm

    from fexprune import runs
    from fexprune.experiments.train import TrainResult, _write_figures

    data = prepare_data(config, progress=progress)
    run_dir = runs.new_run_dir(out, "train")
    runs.write_json(run_dir / "config.json", runs.config_record(config))
    bar = tqdm(total=config.epochs, desc=f"train ({config.recipe})", unit="epoch", disable=not progress, leave=False)

    def on_epoch(row: dict) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row.get('val_accuracy', 0):.3f}", refresh=False)

    fitted = fit_recipe(config, data, progress, on_epoch)
    bar.close()
    results = {
        **fitted.final,
        "epochs": config.epochs,
        "seconds": fitted.seconds,
        "n_train": len(data.train_index),
        "n_test": len(data.test_index),
        "split": config.split,
        "test_fraction": config.test_fraction,
        "recipe": config.recipe,
        "face_crop": config.face_crop,
        "training": fitted.info,
        "skipped": data.image_set.skipped,
        "data": data.image_set.summary(),
        "classes": list(data.image_set.classes),
    }
    if "provenance" in fitted.info:  # transfer: pretrained weights, said wherever its numbers appear
        results["provenance"] = fitted.info["provenance"]
        results["zero_shot_test_accuracy"] = fitted.info["zero_shot_test_accuracy"]
    add_classification_metrics(results, run_dir, fitted.model, data, fitted.test_predictions)
    from fexprune.report.faces import write_face_sheet

    write_face_sheet(run_dir, data.image_set)
    # predict then scores new images as the test split was scored: with the mirror image, cut at each margin
    test_time = {key: fitted.info[key] for key in TEST_TIME_KEYS if fitted.info.get(key)}
    save_model(run_dir / "model.pt", fitted.model, {**data.preprocessing, **test_time})
    columns = list(dict.fromkeys(key for row in fitted.rows for key in row))
    runs.write_csv(run_dir / "metrics.csv", [{key: row.get(key, "") for key in columns} for row in fitted.rows])
    _write_figures(run_dir, [{k: v for k, v in row.items() if not k.startswith("val_")} for row in fitted.rows])
    runs.write_json(run_dir / "results.json", results)
    from fexprune.report.reproduce import write_train_report

    write_train_report(run_dir, results)
    return TrainResult(run_dir=run_dir, results=results, metrics=fitted.rows, model=fitted.model)
