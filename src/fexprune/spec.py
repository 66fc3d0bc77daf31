"""A run's spec: what its run folder keeps of how it was run, one nested, versioned record for every kind of run.

    {"kind": "train", "version": 2, "seed": 0,
     "data": {"path", "image_size", "variant", "split", "test_fraction", "cv", "fingerprint"},
     "faces": {"crop", "margin", "detectors", "eye_align"},
     "training": {"normalize", "epochs", "lr", "batch_size", "eval_every", "device", "deterministic"},
     "recipe": {"name": "best", ...the recipe's own fields...}}

Runs that are not trained (prune, prune-curve, pic, sweep, reproduce, baseline) keep what is not data, faces or
seed in a section named after their kind ("prune": {"run", "criteria", ...}). The sections are named once, here:
`build` turns a flat record (a config dataclass as dict, or an older flat spec) into a spec, and `flat` turns
a spec back into the flat record the experiments' config dataclasses read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fexprune.kinds import KINDS

VERSION = 2
HEADER = ("kind", "version", "mapped_from")

# flat key -> (section, key in the section), for the keys every kind shares
SHARED: dict[str, tuple[str, str]] = {
    "seed": ("", "seed"),
    "data": ("data", "path"), "image_size": ("data", "image_size"), "variant": ("data", "variant"),
    "split": ("data", "split"), "test_fraction": ("data", "test_fraction"), "cv": ("data", "cv"),
    "features": ("data", "features"), "data_fingerprint": ("data", "fingerprint"),
    "face_crop": ("faces", "crop"), "face_margin": ("faces", "margin"), "detectors": ("faces", "detectors"),
    "eye_align": ("faces", "eye_align"),
}
# ... and for trained runs (train, cv) also these
TRAINED: dict[str, tuple[str, str]] = {
    "normalize": ("training", "normalize"), "epochs": ("training", "epochs"), "lr": ("training", "lr"),
    "batch_size": ("training", "batch_size"), "eval_every": ("training", "eval_every"),
    "device": ("training", "device"), "deterministic": ("training", "deterministic"),
    "recipe": ("recipe", "name"),
}
# TrainConfig's recipe-specific keys: in a trained run's recipe section
RECIPE_KEYS = ("channels", "kernel_size", "pools", "checkpoint_every", "members", "hog", "margin_tta")
TRAINED_KINDS = tuple(name for name, kind in KINDS.items() if kind.trained)


def own_section(kind: str) -> str:
    """The section holding a kind's own settings: "prune-curve" -> "prune_curve"."""
    return kind.replace("-", "_")


def _places(name: str) -> dict[str, tuple[str, str]]:
    kind = KINDS.get(name)
    if kind is None:
        return SHARED
    if kind.trained:
        places = {**SHARED, **TRAINED, **{key: ("recipe", key) for key in RECIPE_KEYS}}
    elif kind.trains:  # networks of its own settings (a sweep's grid), no one recipe
        places = {**SHARED, **{k: v for k, v in TRAINED.items() if k != "recipe"}}
    else:
        places = dict(SHARED)
    return {key: place for key, place in places.items() if key not in kind.own}


def build(kind: str, record: dict[str, Any], recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec of a run of `kind` whose settings are the flat `record`; `recipe`: the recipe section as the
    recipe itself states it (its fields with their values), which a trained run records in full."""
    places = _places(kind)
    spec: dict[str, Any] = {"kind": kind, "version": VERSION}
    own: dict[str, Any] = {}
    for key, value in record.items():
        if key in HEADER or key == "command":
            continue
        section, name = places.get(key, (own_section(kind), key))
        if section == "":
            spec[name] = value
        elif section == own_section(kind):
            own[name] = value
        elif section == "recipe" and value is None and name != "name":
            continue  # a recipe option left to the recipe's default
        else:
            spec.setdefault(section, {})[name] = value
    if recipe is not None:  # the recipe states its own section: no other recipe's option is written
        spec["recipe"] = recipe
    if own:
        spec[own_section(kind)] = own
    return spec


def flat(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as one flat record (the keys of the experiments' config dataclasses), its kind kept; of the
    recipe section only its name and TrainConfig's recipe keys (the recipe reads the rest from the section)."""
    kind = spec.get("kind", "train")
    back = {(section, name): key for key, (section, name) in _places(kind).items()}
    record: dict[str, Any] = {"kind": kind}
    for key, value in spec.items():
        if key in HEADER:
            continue
        if isinstance(value, dict) and (key in {s for s, _ in back} or key == own_section(kind)):
            for name, item in value.items():
                if key == "recipe" and (key, name) not in back:
                    continue  # the recipe's other fields: the recipe reads them from its section
                record[back.get((key, name), name)] = item
        else:
            record[back.get(("", key), key)] = value
    return record


def is_current(values: dict[str, Any]) -> bool:
    return values.get("version") == VERSION and isinstance(values.get("kind"), str)


def without_seed(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's settings as dotted keys, the seed and the header left out: what the seeds of one
    configuration share."""
    return {key: value for key, value in dotted(spec).items() if key != "seed" and key not in HEADER}


def dotted(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"data.split": "movie", ...}: every leaf of the spec under its dotted path (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(dotted(item, f"{prefix}{key}.") if isinstance(item, dict) else {f"{prefix}{key}": item})
    return out


def settings(cls: type, record: dict[str, Any]):
    """The config dataclass `cls` holding a flat record's settings (see `flat`): keys that are no field of
    `cls` are left out, and JSON lists become tuples where the field is a tuple."""
    fields = {field.name: str(field.type) for field in dataclasses.fields(cls)}
    values = {}
    for key, value in record.items():
        if key not in fields:
            continue
        if isinstance(value, list) and "tuple" in fields[key]:
            value = tuple(tuple(item) if isinstance(item, list) else item for item in value)
        values[key] = value
    return cls(**values)
