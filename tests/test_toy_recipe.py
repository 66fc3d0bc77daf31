"""Adding a recipe is one class and one line in `fexprune.recipes.RECIPES`: a toy recipe, defined here and
registered by that line alone, is offered by `fexprune train`, trains through the API, and its run opens,
predicts and exports to ONNX as any other run does; `prune` refuses it as its declared properties say."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import pytest
import torch

import fexprune
from fexprune.errors import InputError
from fexprune.recipes.base import Fitted, Recipe

TOY_CHANNELS = (2, 4)


@dataclass(frozen=True)
class ToyRecipe(Recipe):
    """The paper's kind of CNN (a checkpoint architecture fexprune already rebuilds), narrower, with a
    smaller kernel, two epochs of mini-batch Adam."""

    name: ClassVar[str] = "toy"
    summary: ClassVar[str] = "a two-channel CNN, two epochs of mini-batch Adam"
    defaults: ClassVar[dict] = {"epochs": 2, "lr": 1e-2, "batch_size": 32, "normalize": "per-image"}

    @classmethod
    def from_config(cls, config) -> "ToyRecipe":
        return cls()

    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None) -> Fitted:
        from fexprune.models.cnn import CNNConfig, ExpressionCNN
        from fexprune.training.loop import fit

        started = time.perf_counter()
        torch.manual_seed(config.seed)
        network = CNNConfig(channels=TOY_CHANNELS, kernel_size=3, pools=tuple(config.pools),
                            input_size=tuple(config.image_size), n_classes=len(data.image_set.classes))
        model = ExpressionCNN(network).to(data.x_train.device)
        rows: list[dict] = []

        def record(row: dict) -> None:
            rows.append(row)
            if on_epoch is not None:
                on_epoch(row)

        fit(model, data.x_train, data.y_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
            seed=config.seed, x_test=data.x_test, y_test=data.y_test, eval_every=config.eval_every, on_epoch=record)
        final = {key: rows[-1][key] for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        model.eval()
        with torch.no_grad():
            predictions = model(data.x_test).argmax(1).cpu().numpy()
        info = {"recipe": self.name, "architecture": network.to_dict()}
        return Fitted(model, rows, final, predictions, info, time.perf_counter() - started)


@pytest.fixture
def toy_registered(monkeypatch, tmp_path):
    from fexprune import recipes

    monkeypatch.setitem(recipes.RECIPES, "toy", ToyRecipe)  # the one line a new recipe adds
    monkeypatch.setenv("FEXPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(threads)


def test_the_command_line_offers_a_registered_recipe(toy_registered):
    from fexprune.cli import build_parser

    parser = build_parser(["train", "--recipe", "toy"])
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    recipe = next(a for a in train._actions if a.dest == "recipe")
    assert "toy" in recipe.choices
    assert "toy: a two-channel CNN" in train.description
    assert "default for --recipe toy: 2" in train.format_help()  # its own epochs default


def test_a_registered_recipe_trains_opens_predicts_and_exports(toy_registered):
    tmp_path = toy_registered
    run = fexprune.train(recipe="toy", out=tmp_path / "runs", seed=0, quiet=True, tensorboard=False)
    assert run.kind == "train" and run.results["recipe"] == "toy" and run.config["epochs"] == 2
    assert list(run.metrics["epoch"]) == [0, 1, 2]  # epoch 0: the untrained network
    assert 0.0 <= run.results["test_accuracy"] <= 1.0
    assert "--recipe toy" in (run.path / "report.md").read_text()

    reopened = fexprune.open_run(run.path)
    assert tuple(reopened.model.config.channels) == TOY_CHANNELS
    root = Path(run.results["data"]["root"])
    faces = [root / name for name in run.split["test"][:4]]
    with pytest.warns(UserWarning, match="4 of 4 were in its test split"):
        predictions = reopened.predict(faces)
    assert len(predictions) == 4
    assert set(predictions["label"]) <= set(reopened.classes)
    probabilities = predictions[[f"p_{name}" for name in reopened.classes]].to_numpy(dtype=float)
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-6)

    info = reopened.export_onnx(tmp_path / "toy.onnx")
    assert (tmp_path / "toy.onnx").is_file() and info["classes"] == reopened.classes

    with pytest.raises(InputError, match="pruning works on the paper's CNN; this run trained --recipe toy"):
        fexprune.prune(run, out=tmp_path / "runs")
