"""The `best` recipe: a regularised CNN trained from scratch (conv blocks with batch norm, light
augmentation, one-cycle mini-batch AdamW on every frame of the training split), several networks from
different initialisations averaged, each test face scored as cut, mirrored and cut at two other margins."""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from fexprune.argtypes import margin, positive_int
from fexprune.data.augment import AugmentConfig
from fexprune.recipes.base import Fitted, Recipe, scores

BATCH = 32
CHECKPOINT_KEYS = ("epochs_done", "metrics", "rng", "best_key", "best_epoch", "best_state", "members")


@dataclass(frozen=True)
class BestRecipe(Recipe):
    """The knobs of the `best` recipe. The full last map is kept (a pooled grid loses where on the face a
    feature is), and the last weights of the one-cycle schedule are kept: a grouped validation part of a
    few dozen frames is too noisy to pick an epoch, so by default no frame is held back from training.
    Measurements behind each default: benchmarks/recipes.md."""

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
    margin_tta: float = 0.05  # with face crops, each test face is also cut at margin -/+ this, the probabilities averaged
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    name: ClassVar[str] = "best"
    summary: ClassVar[str] = "a wider CNN with batch norm trained from scratch with augmentation, several networks averaged"
    defaults: ClassVar[dict] = {"epochs": 80, "lr": 3e-3, "batch_size": BATCH, "normalize": "per-image", "eye_align": True}
    options: ClassVar[tuple[str, ...]] = ("members", "hog", "margin_tta")
    checkpoints: ClassVar[bool] = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--members", type=positive_int, default=None, metavar="N",
                            help=f"networks from different initialisations whose probabilities are averaged (default {cls.members})")
        parser.add_argument("--hog", action="store_true", help="a fixed HOG branch beside the conv blocks")
        add_margin_tta_argument(parser, cls.margin_tta)

    @classmethod
    def from_config(cls, config) -> "BestRecipe":
        chosen = {key: getattr(config, key) for key in ("members", "margin_tta") if getattr(config, key) is not None}
        return cls(hog=config.hog, **chosen)

    def check_resume(self, config, state: dict, n_classes: int) -> None:
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        if not isinstance(state["members"], list) or len(state["members"]) != self.members:
            raise ValueError(f"checkpoint holds another number of networks than the run's {self.members}")
        width, height = config.image_size
        network = best_network(self, int(width), int(height), n_classes)
        member = network.members[0] if self.members > 1 else network
        expected = {key: tuple(value.shape) for key, value in member.state_dict().items()}
        for saved in state["members"]:
            found = {key: tuple(getattr(value, "shape", ())) for key, value in dict(saved.get("model", {})).items()}
            if found != expected:
                key = sorted(k for k in {*expected, *found} if expected.get(k) != found.get(k))[0]
                raise ValueError(f"checkpoint holds another network than the run's spec describes ({key}: "
                                 f"{found.get(key, 'missing')} in the checkpoint, {expected.get(key, 'none')} in the run)")

    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None, resume: dict | None = None,
            end_of_epoch: Callable[[int, Callable[[], dict]], None] | None = None) -> Fitted:
        """`resume`: a checkpoint state to continue from; `end_of_epoch(epochs_done, state)` may save `state()`."""
        from fexprune.recipes.validation import fit_and_validation_parts, score_fitted

        started = time.perf_counter()
        x, y, x_val, y_val, n_fit, n_val = fit_and_validation_parts(config, data, self.early_stop, self.val_fraction)
        model, rows, info = fit_best(x, y, x_val, y_val, n_classes=len(data.image_set.classes), epochs=config.epochs,
                                     lr=config.lr, batch_size=config.batch_size, seed=config.seed, recipe=self,
                                     x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every, on_epoch=on_epoch,
                                     resume=resume, end_of_epoch=end_of_epoch)
        info.update({"architecture": model.config.to_dict(), "dropout": self.dropout, "hog": self.hog, "members": self.members,
                     "early_stop": self.early_stop, "patience": self.patience, "mixup": self.mixup, "n_fit": n_fit, "n_validation": n_val})
        return score_fitted(self, config, data, model, rows, info, started)


def add_margin_tta_argument(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument("--margin-tta", type=margin, default=None, metavar="SPREAD",
                        help=f"with --face-crop: each test face is also cut at the margin -/+ SPREAD and the probabilities "
                             f"of the cuts averaged (default {default}; 0: one cut)")


def last_map_size(height: int, width: int, blocks: int) -> tuple[int, int]:
    """(height, width) of the best network's last feature map: each block halves, rounding down."""
    for _ in range(blocks):
        height, width = height // 2, width // 2
    return height, width


def best_network(recipe: BestRecipe, width: int, height: int, n_classes: int) -> BestCNN | BestEnsemble:
    """The recipe's network, freshly initialised, for (width, height) images."""
    from fexprune.models.best_cnn import BestCNN, BestCNNConfig, BestEnsemble

    pooled = tuple(recipe.pooled or last_map_size(height, width, len(recipe.channels)))
    config = BestCNNConfig(channels=tuple(recipe.channels), dropout=recipe.dropout, pooled=pooled,
                           hog=recipe.hog, members=recipe.members, input_size=(width, height), n_classes=n_classes)
    return BestEnsemble(config) if recipe.members > 1 else BestCNN(config)


def fit_best(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
    n_classes: int, epochs: int, lr: float, batch_size: int | None, seed: int,
    recipe: BestRecipe = BestRecipe(), x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
    eval_every: int = 10, on_epoch: Callable[[dict], None] | None = None, resume: dict | None = None,
    end_of_epoch: Callable[[int, Callable[[], dict]], None] | None = None,
) -> tuple[BestCNN | BestEnsemble, list[dict], dict]:
    """Train the best recipe's network (a BestEnsemble when `recipe.members` > 1); returns it with its
    last weights, or with those of the best validation epoch when `recipe.early_stop` (which also stops
    after `patience` epochs without gain). Train loss and accuracy in rows are the members' mean;
    validation and test scores are the ensemble's.
    An empty validation part is allowed without early stopping: rows then carry no validation scores."""
    import torch

    from fexprune.training.minibatch import check_finite_loss, train_epoch

    if recipe.early_stop and not len(x_val):
        raise ValueError("early stopping needs a validation part (val_fraction > 0)")
    torch.manual_seed(seed)  # one stream initialises every member in turn: member 0 is the single network
    height, width = x.shape[-2:]
    model = best_network(recipe, int(width), int(height), n_classes).to(x.device)
    members = list(model.members) if recipe.members > 1 else [model]
    batch_size = batch_size or BATCH
    steps = epochs * -(-len(x) // batch_size)
    trainers = []  # per member: its optimizer, one-cycle schedule and batch order
    for index, member in enumerate(members):
        optimizer = torch.optim.AdamW(member.parameters(), lr=lr, weight_decay=recipe.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
        trainers.append((member, optimizer, schedule, torch.Generator().manual_seed(seed + 1000 * index)))
    warmup = max(1, epochs // 4)  # a grouped validation part is small and noisy: no stopping during warm-up
    best_key, best_epoch, best_state = (-1.0, 0.0), 0, copy.deepcopy(model.state_dict())
    rows: list[dict] = []
    start = 0
    if resume is not None:  # every member's weights, optimizer, schedule and batch order, and the dropout stream
        for (member, optimizer, schedule, generator), saved in zip(trainers, resume["members"]):
            member.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            generator.set_state(saved["generator"])
        torch.set_rng_state(resume["rng"])
        rows, start = list(resume["metrics"]), int(resume["epochs_done"])
        best_key, best_epoch = tuple(resume["best_key"]), int(resume["best_epoch"])
        best_state = resume["best_state"]

    def state(epochs_done: int) -> dict:
        return {"epochs_done": epochs_done, "metrics": list(rows), "rng": torch.get_rng_state(),
                "best_key": list(best_key), "best_epoch": best_epoch, "best_state": best_state,
                "members": [{"model": member.state_dict(), "optimizer": optimizer.state_dict(),
                             "schedule": schedule.state_dict(), "generator": generator.get_state()}
                            for member, optimizer, schedule, generator in trainers]}

    for epoch in range(start + 1, epochs + 1):
        model.train()
        parts = [train_epoch(member, x, y, optimizer, generator, batch_size, schedule=schedule, augment_config=recipe.augment,
                             label_smoothing=recipe.label_smoothing, mixup=recipe.mixup, min_batch=2)
                 for member, optimizer, schedule, generator in trainers]  # every member one epoch, in lockstep
        row = {"epoch": epoch, **{key: float(np.mean([part[key] for part in parts])) for key in parts[0]}}
        row["lr"] = trainers[0][2].get_last_lr()[0]  # the one-cycle schedule's rate at the epoch's end
        if len(x_val):
            row["val_loss"], row["val_accuracy"] = scores(model, x_val, y_val, recipe.tta)
        if x_test is not None and (epoch % eval_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = scores(model, x_test, y_test, recipe.tta)
        check_finite_loss(row)
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
        stop = False
        if len(x_val):
            key = (row["val_accuracy"], -row["val_loss"])  # the best validation accuracy, then the lower loss
            if epoch >= warmup and key > best_key:
                best_key, best_epoch, best_state = key, epoch, copy.deepcopy(model.state_dict())
            elif recipe.early_stop and epoch >= warmup and epoch - best_epoch >= recipe.patience:
                stop = True
        if stop:
            break
        if end_of_epoch is not None:
            end_of_epoch(epoch, lambda: state(epoch))
    if recipe.early_stop:
        model.load_state_dict(best_state)
    model.eval()
    if not len(x_val):
        return model, rows, {"epochs_run": len(rows)}
    return model, rows, {"best_epoch": best_epoch, "epochs_run": len(rows), "best_val_accuracy": best_key[0],
                         "best_val_loss": -best_key[1]}
