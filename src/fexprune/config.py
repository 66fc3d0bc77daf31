"""A run's settings as one flat record: the images and their split (every method), and a training run's.
The experiments and recipes read these; a run folder keeps them as a nested spec (fexprune.spec: data, faces,
training, recipe), and fexprune.spec.flat turns a spec back into this record. Which fields a recipe reads is
said by the recipe (fexprune.recipes: Recipe.options), and the command line offers only those."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),)}


def _check_type(key: str, value, annotation: str) -> None:
    """A spec edited by hand (or by another program) fails here with the key's name, not later in
    a traceback. `annotation` is the field's type as written ("int | None", "tuple[int, int]", ...)."""
    for part in (p.strip() for p in annotation.split("|")):
        if part.startswith("tuple["):
            inner = part[len("tuple["):-1].split(",")[0].strip()
            if isinstance(value, (list, tuple)) and all(_is(item, inner) for item in value):
                return
        elif _is(value, part):
            return
    raise TypeError(f"{key} must be {annotation}, not {value!r}")


def _is(value, name: str) -> bool:
    if isinstance(value, bool) and name != "bool":  # JSON true is not the number 1 here
        return False
    return isinstance(value, _TYPES.get(name, (object,)))


@dataclass
class ImageDataConfig:
    """The images, how they are cut and how they are split: the same for a network and the SVM baseline."""

    data: str | None = None  # None: the built-in synthetic data
    image_size: tuple[int, int] = (90, 72)  # (width, height)
    variant: str = "auto"  # which image variant when a data set has both frames and aligned faces
    seed: int = 0
    test_fraction: float = 0.2
    split: str = "random"  # random | movie | clip
    face_crop: bool = False  # cut each frame to its detected face before resizing
    face_margin: float = 0.2
    detectors: tuple[str, ...] | None = None  # the face-detection chain (None: the default chain)
    eye_align: bool = False  # turn each detected face so its eyes are level
    cv: int | None = None  # K: K-fold cross-validation instead of one split

    def face_options(self) -> dict:
        """fexprune.faces.load_face_crops's arguments ({} without face crops)."""
        if not self.face_crop:
            return {}
        return {"face_margin": self.face_margin, "detectors": self.detectors, "eye_align": self.eye_align}

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in values.items():
            _check_type(key, value, str(fields[key].type))
        for key in ("channels", "pools", "image_size", "detectors"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class TrainConfig(ImageDataConfig):
    normalize: str = "per-image"  # per-image | dataset (train-split mean/std) | none | clahe
    # training: every recipe, with the recipe's own defaults where the user gives none
    recipe: str = "paper"  # paper | best | transfer (fexprune.recipes)
    epochs: int = 700
    lr: float = 3e-5
    batch_size: int | None = None  # None: full batch, one step per epoch
    eval_every: int = 10
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (fexprune.device)
    deterministic: bool = False  # the same numbers from the same seed on the same GPU
    # one recipe's own
    channels: tuple[int, int] = (16, 32)  # paper: conv1, conv2
    kernel_size: int = 5  # paper
    pools: tuple[int, int] = (2, 3)  # paper
    checkpoint_every: int = 50  # paper
    members: int | None = None  # best: networks averaged (None: the recipe's default)
    hog: bool = False  # best: a HOG branch beside the conv blocks
    margin_tta: float | None = None  # best, transfer, probe with face crops (None: the recipe's default)
