"""A run's spec: sections built from a flat record and made flat again, a recipe's section as it ran and back,
and an option of another recipe refused in one line."""

from __future__ import annotations

import dataclasses

import pytest

from fexprune import spec, spec_legacy
from fexprune.config import TrainConfig
from fexprune.errors import InputError
from fexprune.recipes import BestRecipe, PaperRecipe, TransferRecipe, recipe_for, recipe_from_spec, recipe_section


@pytest.mark.parametrize("recipe", ["paper", "best", "transfer", "probe"])
def test_a_trained_spec_gives_back_its_config_and_its_recipe(recipe):
    config = TrainConfig(recipe=recipe, data="/data/sfew", seed=3, split="movie", face_crop=True, epochs=7, lr=0.01)
    ran = recipe_for(config)
    written = spec.build("train", {**dataclasses.asdict(config), "data_fingerprint": "abc"}, recipe=recipe_section(ran, config))
    assert (written["kind"], written["version"], written["seed"]) == ("train", spec.VERSION, 3)
    assert written["data"]["path"] == "/data/sfew" and written["data"]["fingerprint"] == "abc"
    assert written["faces"]["crop"] is True and written["training"]["lr"] == 0.01
    assert written["recipe"]["name"] == recipe
    back = TrainConfig.from_dict(spec.flat(written))
    assert (back.recipe, back.seed, back.split, back.epochs, back.face_crop) == (recipe, 3, "movie", 7, True)
    assert recipe_from_spec(written, back) == ran


def test_a_best_run_records_the_values_that_ran_not_nulls():
    config = TrainConfig(recipe="best")  # members and margin_tta left to the recipe
    section = recipe_section(recipe_for(config), config)
    assert section["members"] == BestRecipe.members and section["margin_tta"] == BestRecipe.margin_tta
    assert section["augment"]["scale"] == list(BestRecipe().augment.scale)
    assert "kernel_size" not in section  # the paper's option is not the best recipe's


def test_a_field_set_in_the_spec_reaches_the_recipe():
    config = TrainConfig(recipe="transfer")
    written = spec.build("train", dataclasses.asdict(config), recipe={"name": "transfer", "head_epochs": 2,
                                                                       "augment": {"scale": [0.9, 1.1]}})
    recipe = recipe_from_spec(written, TrainConfig.from_dict(spec.flat(written)))
    assert recipe.head_epochs == 2 and recipe.augment.scale == (0.9, 1.1)
    assert recipe.augment.brightness == TransferRecipe().augment.brightness


def test_another_recipes_option_is_refused_in_one_line():
    config = TrainConfig(recipe="paper")
    written = spec.build("train", dataclasses.asdict(config), recipe={"name": "paper", "members": 3})
    with pytest.raises(InputError, match="recipe.members: not an option of recipe paper"):
        recipe_from_spec(written, config)


def test_an_older_flat_config_maps_to_the_current_shape():
    older = {**dataclasses.asdict(TrainConfig(recipe="best", seed=2)), "data_fingerprint": "f"}  # every option side by side
    mapped = spec_legacy.current(older, "train")
    assert mapped["mapped_from"] == 1 and mapped["seed"] == 2 and mapped["data"]["fingerprint"] == "f"
    assert "members" not in mapped["recipe"]  # null: left to the recipe, as it ran
    recipe = recipe_from_spec(mapped, TrainConfig.from_dict(spec.flat(mapped)))  # the paper's options it also held let be
    assert recipe == BestRecipe()
    assert spec_legacy.current(mapped, "train") is mapped


def test_a_runless_kind_keeps_its_settings_in_its_own_section():
    written = spec.build("prune-curve", {"run": "/runs/a", "curve": [0.5], "seed": 1, "criteria": ["l2"]})
    assert written["prune_curve"] == {"run": "/runs/a", "curve": [0.5], "criteria": ["l2"]} and written["seed"] == 1
    assert spec.flat(written)["curve"] == [0.5]
    sweep = spec.build("sweep", {"channels": [[16, 32]], "epochs": 5, "seed": 0})
    assert sweep["sweep"] == {"channels": [[16, 32]]} and sweep["training"] == {"epochs": 5}
    assert spec.without_seed(written) == {"prune_curve.run": "/runs/a", "prune_curve.curve": [0.5],
                                          "prune_curve.criteria": ["l2"]}


def test_paper_recipe_is_its_own_section_round_trip():
    config = TrainConfig(channels=(6, 12), kernel_size=3)
    section = recipe_section(recipe_for(config), config)
    assert section == {"name": "paper", "checkpoint_every": 50, "channels": [6, 12], "kernel_size": 3}
    assert recipe_from_spec({"recipe": section}, config) == PaperRecipe(channels=(6, 12), kernel_size=3)
