"""Reopen finished runs and compare them: runs whose settings differ only in the seed are one group,
reported as the mean and spread of their test accuracy and macro-F1. This is how a protocol over seeds is
read, and how a sweep's trials add up to its table. Prune runs get a row per criterion and PIC runs a row
each; other kinds are counted and said to be skipped, with why.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from fexprune import run_folder, runs, spec, spec_legacy
from fexprune.config import TrainConfig
from fexprune.errors import InputError
from fexprune.kinds import KINDS
from fexprune.schema import run_kind

CONSOLE_WIDTH = 120  # characters a line of the console table may take
CELL_LIMIT = 28  # a longer setting (a data path) is cut short on the console, whole in the file

# Settings that never change a result: left out of a group's key (the seed is what a group spans).
_NOT_SETTINGS = ("recipe.checkpoint_every", "training.eval_every", "data.fingerprint")
BUILTIN_DATA = "built-in synthetic data"


@dataclass(frozen=True)
class RunRecord:
    """One finished run: its folder, its settings (its spec without the seed) and its scores."""

    folder: Path
    settings: tuple[tuple[str, object], ...]
    seed: object
    test_accuracy: float
    macro_f1: float | None
    provenance: str = ""  # where pretrained weights came from (--recipe transfer); "" when trained from scratch
    n_test: int | None = None  # images its test accuracy is measured on (all folds together for --cv)


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
    """A setting as a value rows can be grouped by: lists as tuples, an object (a hand-edited config) as
    its sorted items."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


@functools.lru_cache(maxsize=1)
def _config_defaults() -> dict:
    return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}


def run_spec(folder: Path, results: dict) -> dict:
    """The run's spec, a trained run's with TrainConfig's defaults for the settings it does not state (a run
    from before a setting existed ran with its default), so runs of every version group alike."""
    if not run_folder.has_spec(folder):
        return spec_legacy.current({}, run_kind(results))
    values = run_folder.read_spec(folder)
    if values["kind"] not in spec.TRAINED_KINDS:
        return values
    recipe = {k: v for k, v in (values.get("recipe") or {}).items() if k not in spec.RECIPE_KEYS}
    filled = spec.build(values["kind"], {**_config_defaults(), **spec.flat(values)})
    filled["recipe"].update(recipe)
    return filled


def read_run(folder: str | os.PathLike) -> RunRecord | None:
    """The run in `folder`, or None when it holds no single-model test score (a prune, PIC or sweep
    summary folder). Its settings are its spec without the seed, every kind alike. A results.json that
    cannot be read is an InputError naming it."""
    folder = Path(folder)
    results = runs.read_json(folder / "results.json")
    if not isinstance(results, dict) or not isinstance(results.get("test_accuracy"), (int, float)):
        return None
    values = run_spec(folder, results)
    method = str(results.get("method") or "cnn")
    settings = {"method": method, **{key: _hashable(value) for key, value in spec.without_seed(values).items()
                                     if key not in _NOT_SETTINGS}}
    settings["data.path"] = data_name(values)
    if method == "cnn":
        # how the test split was scored: runs from before margin cuts were averaged stand apart
        settings["tta_margins"] = _hashable((results.get("training") or {}).get("tta_margins"))
    macro_f1 = results.get("macro_f1")
    if macro_f1 is None and isinstance(results.get("summary"), dict):  # a --cv run: the mean over its folds
        macro_f1 = results["summary"].get("macro_f1", {}).get("mean")
    return RunRecord(folder=folder, settings=tuple(settings.items()), seed=values.get("seed"),
                     test_accuracy=float(results["test_accuracy"]),
                     macro_f1=float(macro_f1) if isinstance(macro_f1, (int, float)) else None,
                     provenance=str(results.get("provenance") or ""), n_test=test_size(results))


def test_size(results: dict) -> int | None:
    """The number of test images behind a run's test accuracy: its test split, or with K folds every image
    once (each is in one fold's test part)."""
    if isinstance(results.get("n_test"), int):
        return results["n_test"]
    folds = results.get("folds")
    if isinstance(folds, list) and folds and all(isinstance(f, dict) and isinstance(f.get("n_test"), int) for f in folds):
        return sum(f["n_test"] for f in folds)
    n_images = (results.get("data") or {}).get("n_images") if isinstance(results.get("data"), dict) else None
    return n_images if isinstance(folds, list) and isinstance(n_images, int) else None


def data_name(values: dict) -> str:
    """The data set a spec names: its path, or the built-in data."""
    path = (values.get("data") or {}).get("path")
    return str(path) if path else BUILTIN_DATA


@dataclass
class Collection:
    """What `collect` found: train, cv and baseline runs (grouped later), a row per prune criterion, a row
    per PIC run, and how many runs of each other kind were skipped."""

    records: list[RunRecord] = field(default_factory=list)
    prune_rows: list[dict] = field(default_factory=list)
    pic_rows: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def prune_rows(folder: Path, results: dict) -> list[dict]:
    """A prune run: per criterion, kernels pruned, test accuracy before and after, and the MACs left."""
    base = results["unpruned"]
    rows = []
    for name, summary in results["criteria"].items():
        ratio = "-"  # masked only: the network still computes every channel
        if "cost" in summary and "cost" in base and base["cost"].get("macs_per_image"):
            ratio = f"{summary['cost']['macs_per_image'] / base['cost']['macs_per_image']:.3f}"
        rows.append({"run": str(folder), "criterion": name, "kernels pruned": str(summary["kernels_pruned"]),
                     "test accuracy %": f"{100 * base['test_accuracy']:.1f} -> {100 * summary['test_accuracy']:.1f}",
                     "MACs ratio": ratio, "warnings": str(len(summary.get("warnings", [])) + len(results.get("warnings", [])))})
    return rows


def pic_row(folder: Path, results: dict) -> dict:
    rows = results.get("rows") or [{}]
    first, last = rows[0], rows[-1]
    units = f"{first.get('hidden_units', '?')} -> {last.get('hidden_units', '?')}"
    loss = last.get("test_loss")
    return {"run": str(folder), "mode": str(results.get("mode", "")), "hidden units": units,
            "final test loss": f"{loss:.4f}" if isinstance(loss, (int, float)) else "-"}


def collect(paths: list[str | os.PathLike]) -> Collection:
    """Every run in `paths`: each path is a run folder or a folder searched (recursively) for them."""
    found = Collection()
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise InputError("no such run folder" if not path.exists() else "not a folder", path)
        for folder in run_folders(path):
            record = read_run(folder)
            if record is not None:
                found.records.append(record)
                continue
            results = runs.read_json(folder / "results.json")
            kind = run_kind(results) if isinstance(results, dict) else "unreadable"
            shown = KINDS[kind].compared if kind in KINDS else "skipped"
            if shown == "criteria" and isinstance(results.get("criteria"), dict):
                found.prune_rows += prune_rows(folder, results)
            elif shown == "row":
                found.pic_rows.append(pic_row(folder, results))
            else:
                found.skipped[kind] = found.skipped.get(kind, 0) + 1
    if not (found.records or found.prune_rows or found.pic_rows):
        raise InputError(f"no finished runs (results.json with a test accuracy, or prune and pic runs) under "
                         f"{', '.join(map(str, paths))}")
    return found


def run_folders(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) that holds a results.json; a symlinked folder is followed
    (a run linked into a folder of runs is one of them), each real folder visited once, so a link to a run
    already there, or a link loop, adds nothing."""
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()
        if "results.json" in files:
            found.append(Path(folder))
    return sorted(found)


def collect_runs(paths: list[str | os.PathLike]) -> list[RunRecord]:
    """The runs with one test accuracy (train, cv, baseline) in `paths`."""
    records = collect(paths).records
    if not records:
        raise InputError(f"no finished runs (results.json with a test accuracy) under {', '.join(map(str, paths))}")
    return records


def skipped_lines(skipped: dict[str, int]) -> list[str]:
    return [f"skipped {count} {kind} run{'s' if count > 1 else ''}: "
            f"{KINDS[kind].skipped_because if kind in KINDS else 'no test accuracy to compare'}"
            for kind, count in sorted(skipped.items())]


def other_tables(found: Collection) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for the prune and PIC runs found."""
    tables = []
    for title, rows in (("Prune runs (a row per criterion)", found.prune_rows), ("PIC runs", found.pic_rows)):
        if rows:
            header = list(rows[0])
            tables.append((title, header, [[row[k] for k in header] for row in rows]))
    return tables


def group_runs(records: list[RunRecord]) -> list[RunGroup]:
    """Runs with the same settings but the seed, in the order their first run was found."""
    groups: dict[tuple, RunGroup] = {}
    for record in records:
        groups.setdefault(record.settings, RunGroup(dict(record.settings))).records.append(record)
    return list(groups.values())


def varying_settings(groups: list[RunGroup]) -> list[str]:
    """The settings that tell the groups apart (method and split always), in spec order."""
    keys: list[str] = []
    for group in groups:
        keys += [k for k in group.settings if k not in keys]
    always = ("method", "data.split")
    return [k for k in keys if k in always or len({g.settings.get(k) for g in groups}) > 1]


_LABELS = {"tta_margins": "scored margins"}


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


SCORE_COLUMNS = ["run", "n", "runs", "test accuracy %", "macro-F1 %", "range %"]  # always on the console


def group_name(group: RunGroup) -> str:
    """A configuration by its first run's folder name, "+K" for the K other seeds' runs."""
    first = group.records[0].folder.name
    return first if len(group.records) == 1 else f"{first} +{len(group.records) - 1}"


def _test_sizes(group: RunGroup) -> str:
    sizes = sorted({r.n_test for r in group.records if r.n_test is not None})
    return "-" if not sizes else str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"


def comparison_rows(groups: list[RunGroup]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the comparison table: the configuration's name and test-set size (n), the scores,
    then the settings that differ. The margins a run scored its test faces at show only where the settings
    (recipe.margin_tta) do not tell rows apart."""
    keys = varying_settings(groups)
    if "tta_margins" in keys:
        others = [k for k in keys if k != "tta_margins"]
        if len({tuple(g.settings.get(k) for k in others) for g in groups}) == len(groups):
            keys = others
    header = SCORE_COLUMNS + ["seeds"] + [_LABELS.get(k, k) for k in keys]
    rows = []
    for group in groups:
        seeds = sorted({r.seed for r in group.records}, key=str)
        accuracies = group.accuracies
        rows.append([group_name(group), _test_sizes(group), str(len(group.records)), _spread(accuracies), _spread(group.f1s),
                     f"{100 * min(accuracies):.1f}-{100 * max(accuracies):.1f}" if len(accuracies) > 1 else "-",
                     ",".join(_value(s) for s in seeds)] + [_value(group.settings.get(k)) for k in keys])
    return header, rows


def provenance_notes(groups: list[RunGroup]) -> list[str]:
    """One line per source of pretrained weights among the rows: such numbers are never from scratch."""
    sources = sorted({r.provenance for g in groups for r in g.records if r.provenance})
    return [f"Not trained from scratch: the transfer rows start from {source}" for source in sources]


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in rows)]


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def _clip(cell: str, limit: int) -> str:
    return cell if len(cell) <= limit else cell[:limit - 3] + "..."


def fitted_text_table(header: list[str], rows: list[list[str]], width: int = CONSOLE_WIDTH,
                      keep: int = 1) -> tuple[list[str], list[str]]:
    """(lines, left-out column names): the first `keep` columns always, then each further column in order
    while the lines stay within `width` characters; a cell longer than CELL_LIMIT is cut short with "..."."""
    rows = [[_clip(cell, CELL_LIMIT) for cell in row] for row in rows]
    chosen: list[int] = []
    left_out: list[str] = []
    for index in range(len(header)):
        trial = chosen + [index]
        used = sum(max(len(row[k]) for row in [header, *rows]) for k in trial) + 2 * (len(trial) - 1)
        if index < keep or used <= width:
            chosen = trial
        else:
            left_out.append(header[index])
    return _text_table([header[k] for k in chosen], [[row[k] for k in chosen] for row in rows]), left_out


def _console_runs(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    """A "run" column shows the folder's name on the console (its full path in the file)."""
    if "run" not in header:
        return rows
    k = header.index("run")
    return [row[:k] + [Path(row[k]).name] + row[k + 1:] for row in rows]


def render_markdown(groups: list[RunGroup], found: Collection | None = None) -> str:
    lines = _markdown_table(*comparison_rows(groups)) if groups else []
    notes = provenance_notes(groups)
    lines += ["", *notes] if notes else []
    if found is not None:
        for title, header, rows in other_tables(found):
            lines += ["", f"**{title}**", "", *_markdown_table(header, rows)]
        lines += ["", *skipped_lines(found.skipped)] if found.skipped else []
    return "\n".join(lines).lstrip("\n") + "\n"


def render_csv(groups: list[RunGroup]) -> str:
    """The comparison table, every column, as CSV (the prune and PIC tables go to the Markdown file)."""
    header, rows = comparison_rows(groups)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, *rows])
    return buffer.getvalue()


def render_text(groups: list[RunGroup], found: Collection | None = None, width: int = CONSOLE_WIDTH) -> str:
    """The table with aligned columns for a terminal, at most `width` characters a line: the run, its
    test-set size and scores always, then as many of the differing settings as fit (the rest are named, and
    written by --out). Then where pretrained weights came from, the prune and PIC runs and what was skipped."""
    lines: list[str] = []
    if groups:
        table, left_out = fitted_text_table(*comparison_rows(groups), width=width, keep=len(SCORE_COLUMNS))
        lines += table
        if left_out:
            lines.append(_clip(f"not shown here (--out FILE.md or FILE.csv writes them): {', '.join(left_out)}", width))
    lines += provenance_notes(groups)
    if found is not None:
        for title, header, rows in other_tables(found):
            table, left_out = fitted_text_table(header, _console_runs(header, rows), width=width, keep=2)
            lines += ["", title, *table]
            if left_out:
                lines.append(_clip(f"not shown here (--out FILE.md writes them): {', '.join(left_out)}", width))
        lines += skipped_lines(found.skipped)
    return "\n".join(lines).lstrip("\n") + "\n"
