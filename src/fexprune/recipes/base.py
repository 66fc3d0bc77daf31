"""What every training recipe provides: its own command-line options and defaults, and `fit`, which trains
a network on prepared data and says how its test images were scored.

A recipe is a frozen dataclass of its knobs; `from_config` fills them from a run's TrainConfig, so a run
folder's spec (its recipe section) rebuilds the same recipe.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from fexprune.faces.steps import STRICT_CHAIN

# Face crops for a network pretrained on FER2013: boxes as OpenCV's cascades frame them, not turned, as
# FER2013's faces were cut. A from-scratch recipe learns whatever framing it is given, and gains from
# aligned faces; the FER2013 network lost 2.7 points on the real movie split with them (benchmarks/recipes.md).
PRETRAINED_FACES = {"detectors": STRICT_CHAIN, "eye_align": False}


@dataclass
class Fitted:
    """A trained model and its final numbers, whichever recipe made it."""

    model: nn.Module
    rows: list[dict]  # metrics.csv: one row per epoch
    final: dict  # train_loss, train_accuracy, test_loss, test_accuracy
    test_predictions: np.ndarray
    info: dict  # results.json's "training" entry: what the recipe did, how its test images were scored
    seconds: float


class Recipe(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `fexprune train --help`
    defaults: ClassVar[dict]  # TrainConfig values the user did not give: epochs, lr, batch_size, normalize; detectors, eye_align
    options: ClassVar[tuple[str, ...]] = ()  # TrainConfig fields that only this recipe reads
    unused: ClassVar[tuple[str, ...]] = ()  # training options this recipe has no use for: `train` refuses them
    checkpoints: ClassVar[bool] = False  # writes checkpoint.pt as it trains, so `--resume` can continue it
    # trains the paper's CNN (fexprune.models.cnn), the only network `fexprune prune`'s kernel procedure knows
    paper_network: ClassVar[bool] = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The recipe's own options, added to `fexprune train --recipe NAME`."""

    @classmethod
    @abstractmethod
    def from_config(cls, config) -> "Recipe":
        """The recipe as a TrainConfig asks for it (its own fields over the recipe's defaults)."""

    def check(self, config) -> None:
        """Refuse (InputError) settings this recipe cannot train, before any run folder is made."""

    def check_resume(self, config, state: dict, n_classes: int) -> None:
        """Refuse (ValueError, the reason) a checkpoint this run cannot continue from."""

    @abstractmethod
    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None) -> Fitted:
        """Train on `data` (fexprune.data.prepared.PreparedData); the test split is scored only to report
        it (the metrics rows may log it along the way), never to choose anything. A recipe whose network is
        not the paper's CNN of the spec's channels says what it is in `info["architecture"]` (the report
        describes the network from it)."""


def scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tta: bool,
           views: tuple[torch.Tensor, ...] = ()) -> tuple[float, float]:
    """(loss, accuracy) of `model` on (x, y), averaging mirror images and other cuts as asked."""
    import torch.nn.functional as F

    from fexprune.models.views import predict_logits

    logits = predict_logits(model, x, tta, views=views)
    loss = F.nll_loss(logits, y).item() if tta or views else F.cross_entropy(logits, y).item()
    return loss, (logits.argmax(1) == y).float().mean().item()
