"""The `reproduce` report: every table of the paper with its numbers beside ours, every figure, and
what a reader needs to trust them (settings, data, versions, timings). Built from a reproduce run
folder's files alone, so it can be rebuilt at any time."""

from __future__ import annotations

import json
from pathlib import Path

from fexprune import run_folder, runs
from fexprune.report.data import data_section
from fexprune.report.pic import pic_section
from fexprune.report.pruning import pruning_section
from fexprune.report.sweep import sweep_section
from fexprune.report.tables import Column, KeyValues, Report, Section, Table, Text, number
from fexprune.report.training import test_fraction_note, training_section

STAGES = ("pic", "sweep", "train", "prune")  # the stage folders of a reproduce run, in the order they run


def build_reproduce_report(run_dir: str | Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    config = run_folder.read_settings(run_dir)
    train_results = _results(run_dir / "train")
    sections = [
        _summary(config, train_results),
        _stage(run_dir / "pic", "PIC: distinctiveness pruning of the 11-10-11 autoencoder (section 3.1)", pic_section),
        _stage(run_dir / "sweep", "Channel sweep (section 2.2)", sweep_section),
        training_section(run_dir / "train", train_results) if train_results else _missing_stage("Training log (section 3.2)", run_dir / "train"),
        _stage(run_dir / "prune", "Importance pruning of conv1 kernels (section 3.3)", pruning_section),
        data_section(train_results, run_dir / "train"),
        _run_section(config, results.get("timings", {}), results.get("versions", {}), STAGES),
    ]
    mode = "quick settings" if config.get("quick") else "the paper's settings"
    return Report("fexprune: reproduction of Luan's SFEW paper", [s for s in sections if s is not None],
                  subtitle=f"{run_dir.resolve()} — {mode}")


def _results(folder: Path) -> dict | None:
    path = folder / "results.json"
    return runs.read_json(path) if path.is_file() else None


def _summary(config: dict, train_results: dict | None) -> Section:
    settings = "quick" if config.get("quick") else "the paper's"
    batches = "full batch" if config.get("batch_size") is None else f"mini-batches of {config['batch_size']}"
    lines = [
        f"Settings: {settings} (PIC {config['pic_epochs']} + {config['pic_retrain_epochs']} retrain epochs; sweep "
        f"{config['sweep_repeats']} repeats x {config['sweep_epochs']} epochs at lr {config['sweep_lr']:g}; single run "
        f"{config['train_epochs']} epochs at lr {config['train_lr']:g}; Adam, {batches}; pruning criteria {', '.join(config.get('criteria', ['l2']))}).",
        f"Data: {config.get('data') or 'the built-in synthetic data set'}; PIC features: "
        f"{config.get('features') or 'LPQ + PHOG computed from the images'}.",
    ]
    if train_results is not None:
        lines.append(test_fraction_note(config.get("test_fraction", 0.2), train_results.get("n_train"), train_results.get("n_test")))
    else:
        lines.append(test_fraction_note(config.get("test_fraction", 0.2)))
    lines.append("Every table shows the paper's number beside ours and Δ = ours − paper (accuracies in percentage points).")
    return Section("Summary", [Text("\n\n".join(lines))])


def _missing_stage(title: str, folder: Path) -> Section:
    return Section(title, [Text(f"This stage has not finished: no {folder.name}/results.json.")])


def _stage(folder: Path, title: str, section) -> Section:
    """A stage's section, built from its folder's files, or a line saying it has not finished."""
    results = _results(folder)
    if results is None:
        return _missing_stage(title, folder)
    return section(folder, results, run_folder.read_settings(folder))


def _run_section(config: dict, timings: dict[str, float], versions: dict[str, str], stages) -> Section:
    settings = [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in config.items()]
    timing_rows = [{"stage": s, "seconds": timings.get(s)} for s in stages]
    timing_rows.append({"stage": "total", "seconds": sum(v for v in timings.values())})
    return Section("Configuration, versions and timings", [
        KeyValues("Configuration (the run's spec)", settings),
        KeyValues("Versions", list(versions.items()) or [("versions", "not recorded")]),
        Table("Time per stage", [Column("stage", "stage", kind="key"), Column("seconds", "seconds", number(1))], timing_rows),
    ])

