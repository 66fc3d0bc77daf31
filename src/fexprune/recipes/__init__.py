"""Training recipes, one module each: a new recipe is a new module here and a line in RECIPES."""

from __future__ import annotations

import dataclasses
from pathlib import Path

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


def recipe_section(recipe: Recipe, config) -> dict:
    """A trained run's spec section for its recipe: the name, every field of the recipe as it ran (the
    constructor is the config) and the TrainConfig options only this recipe reads."""
    from fexprune.runs import to_jsonable

    ran = to_jsonable(dataclasses.asdict(recipe))
    return {"name": recipe.name, **{key: to_jsonable(getattr(config, key)) for key in recipe.options if key not in ran}, **ran}


def recipe_from_spec(spec: dict, config, source: Path | None = None) -> Recipe:
    """The recipe a trained run's spec states: as its TrainConfig asks for it, then every field its recipe
    section records. A key that is no option of that recipe is refused. A spec mapped from an older run
    folder recorded TrainConfig's options of every recipe side by side (a best run the paper's channels):
    its recipe is built from its TrainConfig alone, as the older code built it."""
    from fexprune.spec import RECIPE_KEYS

    cls = recipe_class(config.recipe)
    section = dict(spec.get("recipe") or {})
    fields = {field.name for field in dataclasses.fields(cls)}
    known = {"name", *fields, *cls.options, *(RECIPE_KEYS if spec.get("mapped_from") else ())}
    unknown = [key for key in section if key not in known]
    if unknown:
        raise InputError(f"recipe.{unknown[0]}: not an option of recipe {cls.name} (its options: "
                         f"{', '.join(sorted(fields | set(cls.options)))})", source)
    recipe = cls.from_config(config)
    if spec.get("mapped_from"):
        return recipe
    return dataclasses.replace(recipe, **{key: _like(getattr(recipe, key), value)
                                          for key, value in section.items() if key in fields})


def _like(current, value):
    """A JSON value back in the type of the field it fills: tuples from lists, nested dataclasses from objects."""
    if dataclasses.is_dataclass(current) and isinstance(value, dict):
        return dataclasses.replace(current, **{key: _like(getattr(current, key), item) for key, item in value.items()})
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(_like(current[0], item) if current else item for item in value)
    return value


def recipe_defaults(name: str) -> dict:
    """TrainConfig values a recipe wants when the user gives none (epochs, lr, batch size, normalisation)."""
    return dict(recipe_class(name).defaults)


__all__ = ["RECIPES", "BestRecipe", "Fitted", "PaperRecipe", "ProbeRecipe", "Recipe", "TransferRecipe", "recipe_class", "recipe_defaults", "recipe_for", "recipe_from_spec", "recipe_section"]
