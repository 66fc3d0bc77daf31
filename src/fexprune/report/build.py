"""report.html and report.md of any run folder, built from its files alone: the kind of run its results.json
records (fexprune.schema) picks the builder."""

from __future__ import annotations

from pathlib import Path

from fexprune import runs
from fexprune.report.baseline import build_baseline_report
from fexprune.report.crossval import build_cv_report
from fexprune.report.html import write_html
from fexprune.report.markdown import write_markdown
from fexprune.report.pic import build_pic_report
from fexprune.report.prune_curve import build_prune_curve_report
from fexprune.report.pruning import build_prune_report
from fexprune.report.reproduce import build_reproduce_report
from fexprune.report.sweep import build_sweep_report
from fexprune.report.tables import Report
from fexprune.report.training import build_train_report
from fexprune.schema import run_kind

BUILDERS = {
    "train": build_train_report, "cv": build_cv_report, "baseline": build_baseline_report, "sweep": build_sweep_report,
    "prune": build_prune_report, "pic": build_pic_report, "reproduce": build_reproduce_report,
    "prune-curve": build_prune_curve_report,
}


def build_run_report(run_dir: str | Path) -> Report:
    run_dir = Path(run_dir)
    results = runs.read_json(run_dir / "results.json")
    return BUILDERS[run_kind(results)](run_dir, results)


def write_run_report(run_dir: str | Path) -> Path:
    """report.html and report.md of `run_dir`; returns the HTML file."""
    return write_report(Path(run_dir), build_run_report(run_dir))


def write_report(folder: Path, report: Report) -> Path:
    """`folder`/report.html and report.md, the same report twice; returns the HTML file."""
    write_markdown(Path(folder) / "report.md", report)
    return write_html(Path(folder) / "report.html", report)
