"""Reopen finished runs and compare them: runs whose settings differ only in the seed are one group,
reported as the mean and spread of their test accuracy and macro-F1. This is how a protocol over seeds is
read, and how a sweep's trials add up to its table.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from fexprune import runs
from fexprune.config import TrainConfig
from fexprune.errors import InputError

# Settings that never change a result: left out of a group's key.
_NOT_SETTINGS = ("seed", "checkpoint_every", "eval_every")
# The paper network's shape: the best and transfer recipes build their own and refuse these options.
_PAPER_NETWORK = ("channels", "kernel_size", "pools")
# The CNN's own settings: a baseline run's config.json carries them too, but the SVM never reads them.
_CNN_SETTINGS = ("channels", "kernel_size", "pools", "normalize", "epochs", "lr", "batch_size", "recipe", "members", "hog")


@dataclass(frozen=True)
class RunRecord:
    """One finished run: its folder, its settings (config.json without the seed) and its scores."""

    folder: Path
    settings: tuple[tuple[str, object], ...]
    seed: object
    test_accuracy: float
    macro_f1: float | None
    provenance: str = ""  # where pretrained weights came from (--recipe transfer); "" when trained from scratch


@dataclass
class RunGroup:
    settings: dict
    records: list[RunRecord] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.records]

    @property
    def f1s(self) -> list[float]:
        return [r.macro_f1 for r in self.records if r.macro_f1 is not None]


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=1)
def _config_defaults() -> dict:
    return {f.name: _hashable(list(f.default) if isinstance(f.default, tuple) else f.default)
            for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}


def read_run(folder: str | os.PathLike) -> RunRecord | None:
    """The run in `folder`, or None when it holds no single-model test score (a prune, PIC or sweep
    summary folder). A results.json that cannot be read is an InputError naming it."""
    folder = Path(folder)
    results = runs.read_json(folder / "results.json")
    if not isinstance(results, dict) or not isinstance(results.get("test_accuracy"), (int, float)):
        return None
    config_path = folder / "config.json"
    config = runs.read_json(config_path) if config_path.exists() else {}
    if not isinstance(config, dict):
        raise InputError("not a run configuration (expected a JSON object)", config_path)
    method = str(results.get("method") or "cnn")
    ignored = _NOT_SETTINGS + ("method",) + (_CNN_SETTINGS if method != "cnn" else ())
    if config.get("recipe", "paper") != "paper":
        ignored += _PAPER_NETWORK
    config = {**_config_defaults(), **config}  # a run from before a setting existed ran with its default
    settings = {"method": method, **{key: _hashable(value) for key, value in config.items() if key not in ignored}}
    if method == "cnn":  # how the test split was scored: runs from before margin cuts were averaged stand apart
        settings["tta_margins"] = _hashable((results.get("training") or {}).get("tta_margins"))
    macro_f1 = results.get("macro_f1")
    if macro_f1 is None and isinstance(results.get("summary"), dict):  # a --cv run: the mean over its folds
        macro_f1 = results["summary"].get("macro_f1", {}).get("mean")
    return RunRecord(folder=folder, settings=tuple(settings.items()), seed=config.get("seed"),
                     test_accuracy=float(results["test_accuracy"]),
                     macro_f1=float(macro_f1) if isinstance(macro_f1, (int, float)) else None,
                     provenance=str(results.get("provenance") or ""))


def collect_runs(paths: list[str | os.PathLike]) -> list[RunRecord]:
    """Every run in `paths`: each path is a run folder or a folder searched (recursively) for them."""
    records = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise InputError("no such run folder" if not path.exists() else "not a folder", path)
        found = sorted(p.parent for p in path.rglob("results.json"))
        records += [r for r in (read_run(folder) for folder in found) if r is not None]
    if not records:
        raise InputError(f"no finished runs (results.json with a test accuracy) under {', '.join(map(str, paths))}")
    return records


def group_runs(records: list[RunRecord]) -> list[RunGroup]:
    """Runs with the same settings but the seed, in the order their first run was found."""
    groups: dict[tuple, RunGroup] = {}
    for record in records:
        groups.setdefault(record.settings, RunGroup(dict(record.settings))).records.append(record)
    return list(groups.values())


def varying_settings(groups: list[RunGroup]) -> list[str]:
    """The settings that tell the groups apart (method and split always), in config order."""
    keys: list[str] = []
    for group in groups:
        keys += [k for k in group.settings if k not in keys]
    always = ("method", "split")
    return [k for k in keys if k in always or len({g.settings.get(k) for g in groups}) > 1]


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "/".join(_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def comparison_rows(groups: list[RunGroup]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the comparison table: the settings that differ, then the scores."""
    keys = varying_settings(groups)
    header = keys + ["runs", "seeds", "test accuracy %", "macro-F1 %", "range %"]
    rows = []
    for group in groups:
        seeds = sorted({r.seed for r in group.records}, key=str)
        accuracies = group.accuracies
        rows.append([_value(group.settings.get(k)) for k in keys] + [
            str(len(group.records)), ",".join(_value(s) for s in seeds), _spread(accuracies), _spread(group.f1s),
            f"{100 * min(accuracies):.1f}-{100 * max(accuracies):.1f}" if len(accuracies) > 1 else "-"])
    return header, rows


def provenance_notes(groups: list[RunGroup]) -> list[str]:
    """One line per source of pretrained weights among the rows: such numbers are never from scratch."""
    sources = sorted({r.provenance for g in groups for r in g.records if r.provenance})
    return [f"Not trained from scratch: the transfer rows start from {source}" for source in sources]


def render_markdown(groups: list[RunGroup]) -> str:
    header, rows = comparison_rows(groups)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    notes = provenance_notes(groups)
    lines += ["", *notes] if notes else []
    return "\n".join(lines) + "\n"


def render_text(groups: list[RunGroup]) -> str:
    """The table with aligned columns, for a terminal, and where pretrained weights came from."""
    header, rows = comparison_rows(groups)
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines + provenance_notes(groups)) + "\n"
