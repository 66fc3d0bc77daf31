"""Which of the images given to `predict` the run was trained or tested on (its split.json).

A prediction on a training image says how well the network remembers it, not how well it classifies:
such inputs are marked. An input matches a split file by its resolved path, or, for a copy elsewhere,
by file name and size together (the split file read from the data set the run names in results.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fexprune import runs
from fexprune.data.prepared import SPLIT_FILE
from fexprune.errors import InputError
from fexprune.run_folder import read_settings

SIDES = ("train", "test")


@dataclass
class SplitMembership:
    """The split files of a run, by resolved path and by (file name, size)."""

    by_path: dict[Path, str] = field(default_factory=dict)
    by_name_size: dict[tuple[str, int], str] = field(default_factory=dict)
    record: Path | None = None  # the split.json read; None: the run has none

    def side(self, path: str | Path) -> str:
        """"train", "test", or "" for an image outside the run's split."""
        path = Path(path)
        try:
            resolved = path.resolve()
            found = self.by_path.get(resolved)
            if found is None and self.by_name_size:
                found = self.by_name_size.get((path.name, path.stat().st_size))
        except OSError:
            return ""
        return found or ""


def split_membership(run_folder: Path, depth: int = 3) -> SplitMembership:
    """The split of the train run behind `run_folder` (a prune run is followed back to the run it pruned);
    empty where there is none or its data set cannot be found."""
    record, summary = run_folder / SPLIT_FILE, run_folder / "results.json"
    if not record.is_file():
        pruned = _settings(run_folder).get("run")
        if depth > 0 and isinstance(pruned, str):
            return split_membership(Path(pruned), depth - 1)
        return SplitMembership()
    split = _read(record)
    root = (_read(summary).get("data") or {}).get("root") or _settings(run_folder).get("data")
    if not isinstance(root, str) or not all(isinstance(split.get(side), list) for side in SIDES):
        return SplitMembership(record=record)
    membership = SplitMembership(record=record)
    for side in SIDES:
        for name in split[side]:
            path = Path(root) / name
            membership.by_path[path.resolve()] = side
            try:
                membership.by_name_size[(path.name, path.stat().st_size)] = side
            except OSError:  # the data set moved: copies cannot be told by size
                pass
    return membership


def _settings(folder: Path) -> dict:
    """The run's spec as a flat record; {} where it has none or it cannot be read (predictions go on)."""
    try:
        return read_settings(folder)
    except InputError:
        return {}


def _read(path: Path) -> dict:
    try:
        value = runs.read_json(path)
    except InputError:  # a missing or broken file: no split to mark, predictions go on
        return {}
    return value if isinstance(value, dict) else {}


def count_line(sides: list[str]) -> str | None:
    """The console's warning: how many inputs were in the run's training and test splits; None if none were."""
    n_train, n_test = sides.count("train"), sides.count("test")
    if not n_train and not n_test:
        return None
    parts = []
    if n_train:
        parts.append(f"{n_train} of {len(sides)} images were in this run's training split: their predictions are "
                     "not a measure of accuracy")
    if n_test:
        parts.append(f"{n_test} of {len(sides)} were in its test split (its reported test accuracy already counts them)")
    return "; ".join(parts) + " (CSV column in_split)"
