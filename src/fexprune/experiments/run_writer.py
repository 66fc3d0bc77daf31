"""The one place a finished run folder is written: every kind of run (train, cv, baseline, sweep, prune,
pic, reproduce) hands its typed `RunOutput` here, and gets the same files in the same way: its face crop
sheet, models, metrics.csv, figures, results.json stamped with the schema, then report.html and report.md
built from those files alone (fexprune.report.build), so a report can be rebuilt from any run folder; last,
what it sends to TensorBoard and MLflow (fexprune.tracking)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from torch import nn

from fexprune import run_folder, runs
from fexprune.data.loading import ImageSet
from fexprune.models.checkpoint import save_model
from fexprune.report.build import write_run_report
from fexprune.report.faces import write_face_sheet
from fexprune.schema import stamp
from fexprune.tracking import Tracking
from fexprune.tracking import finish as finish_tracking


@dataclass
class RunOutput:
    """What a finished run leaves in its folder."""

    kind: str  # one of fexprune.schema.KINDS
    results: dict[str, Any]  # results.json
    metrics: list[dict] | None = None  # metrics.csv, one row per epoch or step
    figures: dict[str, Any] = field(default_factory=dict)  # figures/<name>.png: matplotlib figures
    models: dict[str, tuple[nn.Module, dict]] = field(default_factory=dict)  # file -> (model, its preprocessing)
    tables: dict[str, list[dict]] = field(default_factory=dict)  # other CSV files, e.g. a sweep's trials.csv
    image_set: ImageSet | None = None  # its face crops, drawn as figures/face_crops.png
    logged_live: bool = False  # its metrics went to TensorBoard epoch by epoch already


def write_run(run_dir: Path, output: RunOutput, tracking: Tracking = Tracking()) -> Path:
    """Write `output` into `run_dir` (which holds its spec already), then send it where `tracking` says;
    returns report.html's path."""
    run_dir = Path(run_dir)
    if output.image_set is not None:
        write_face_sheet(run_dir, output.image_set)
    for name, (model, preprocessing) in output.models.items():
        save_model(run_dir / name, model, preprocessing)
    if output.metrics is not None:
        runs.write_csv(run_dir / "metrics.csv", filled_rows(output.metrics))
    for name, rows in output.tables.items():
        runs.write_csv(run_dir / name, rows)
    for name, figure in output.figures.items():
        save_figure(figure, run_dir / "figures" / f"{name}.png")
    runs.write_json(run_dir / "results.json", stamp(output.results, output.kind))
    report = write_run_report(run_dir)
    spec = run_folder.read_spec(run_dir) if run_folder.has_spec(run_dir) else {}
    finish_tracking(run_dir, output.kind, spec, output.results, output.metrics, output.logged_live, tracking)
    return report


def filled_rows(rows: list[dict]) -> list[dict]:
    """Rows with every column any row has, in first-seen order; a cell a row lacks is empty."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key, "") for key in columns} for row in rows]


def save_figure(figure, path: Path, dpi: int = 110) -> Path:
    """A matplotlib figure as a PNG, written atomically, then closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    runs.atomic_write_bytes(path, buffer.getvalue())
    plt.close(figure)
    return path
