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


def write_feature_table(path: Path, n: int = 120) -> Path:
    """An SFEW.xlsx-like table: two header rows, then name, label (1-7) and 5 LPQ + 5 PHOG features per row."""
    import openpyxl

    rng = np.random.default_rng(0)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([None, None, "LPQ features", None, None, None, None, "PHOG features", None, None, None, None])
    sheet.append(["Name", "label", 1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    for i in range(n):
        sheet.append([f"clip_{i}.png", int(rng.integers(1, 8))] + (rng.normal(size=10) * 0.05).tolist())
    book.save(path)
    return path
