"""Tiny image trees in tmp folders, for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fexprune.data.classes import EXPRESSIONS


def write_png(path: Path, value: int = 128, size=(24, 20), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def make_tree(root: Path, classes=EXPRESSIONS, per_class=2, start=0) -> Path:
    for c, name in enumerate(classes):
        for k in range(per_class):
            write_png(root / name / f"Movie{c}_00012345{k}_0000000{k}.png", value=start + 10 * c + k)
    return root
