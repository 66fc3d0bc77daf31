"""Training recipes, one module each: a new recipe is a new module here and a line in RECIPES."""

from __future__ import annotations

from fexprune.errors import InputError
from fexprune.recipes.base import Fitted, Recipe
from fexprune.recipes.best import BestRecipe
from fexprune.recipes.paper import PaperRecipe
from fexprune.recipes.probe import ProbeRecipe
from fexprune.recipes.transfer import TransferRecipe

RECIPES: dict[str, type[Recipe]] = {"paper": PaperRecipe, "best": BestRecipe, "transfer": TransferRecipe, "probe": ProbeRecipe}


def recipe_class(name: str) -> type[Recipe]:
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(f"unknown recipe {name!r} (choose from {', '.join(RECIPES)})") from None


def recipe_for(config) -> Recipe:
    """The recipe a TrainConfig names, with its knobs."""
    return recipe_class(config.recipe).from_config(config)


def recipe_defaults(name: str) -> dict:
    """TrainConfig values a recipe wants when the user gives none (epochs, lr, batch size, normalisation)."""
    return dict(recipe_class(name).defaults)


__all__ = ["RECIPES", "BestRecipe", "Fitted", "PaperRecipe", "ProbeRecipe", "Recipe", "TransferRecipe", "recipe_class", "recipe_defaults", "recipe_for"]
