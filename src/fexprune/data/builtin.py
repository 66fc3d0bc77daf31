"""The built-in data set: synthetic SFEW-like frames, generated once and reused.

Commands that take `--data` fall back to it, so the tool runs end to end on a fresh machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fexprune.data.synth import GENERATOR_VERSION, write_synthetic
from fexprune.errors import InputError
from fexprune.runs import cache_root

BUILTIN_SEED = 0
BUILTIN_PER_CLASS = 100
_NAME = f"builtin-synthetic-v{GENERATOR_VERSION}-seed{BUILTIN_SEED}-{BUILTIN_PER_CLASS}"


def default_data_dir(progress: bool = True) -> Path:
    """The built-in Images/ folder, written under cache_root() on first use.

    Written to a temporary sibling and renamed when complete, so an interrupted generation is never
    mistaken for a finished one.
    """
    folder = cache_root() / _NAME
    images = folder / "Images"
    if images.is_dir():
        return images
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{_NAME}."))
    try:
        write_synthetic(staging, per_class=BUILTIN_PER_CLASS, seed=BUILTIN_SEED, progress=progress)
        try:
            os.replace(staging, folder)
        except OSError:
            if not images.is_dir():  # not a concurrent winner: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return images


def resolve_data(path: str | os.PathLike | None, progress: bool = True) -> Path:
    """The given data folder, or the built-in data when none is given, absolute with every link followed:
    one data set named relatively, absolutely or through a link is one data set for the cache, a run's
    split.json, resume and prune, from any working folder."""
    if path is None or str(path) == "":
        return default_data_dir(progress).resolve()
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError("no such file or folder", path)
    return path.resolve()


def describe_data(path: str | os.PathLike | None) -> tuple[str, bool]:
    """(what a report calls a run's data, whether it is synthetic). The synthetic sets are the built-in one
    (no path) and any folder `fexprune data synth` wrote: its true face boxes, faces.csv, lie beside Images/."""
    if path is None or str(path) == "":
        return "the built-in synthetic data (drawn faces, not SFEW)", True
    folder = Path(path).expanduser()
    for root in (folder, folder.parent):
        if (root / "faces.csv").is_file() and (root / "Images").is_dir() and folder in (root, root / "Images"):
            return f"synthetic data written by `fexprune data synth` (drawn faces, not SFEW): {folder}", True
    return str(folder), False
