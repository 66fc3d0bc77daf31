"""The report of a `fexprune baseline` run (HOG + RBF-SVM): the same metrics, confusion matrix, crop sheet
and data section as a train run's, so the two reports read side by side. Built from results.json alone."""

from __future__ import annotations

from pathlib import Path

from fexprune.report.data import data_section
from fexprune.report.tables import Column, Figure, KeyValues, Report, Section, Table, number, percent


def build_baseline_report(run_dir: str | Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    about = [("method", "HOG (8 px cells, 9 bins) + RBF-SVM (C = 10, balanced class weights)"),
             ("protocol", results["protocol"]), ("face crops", "yes" if results["face_crop"] else "no")]
    if "summary" in results:  # --cv: one row per fold
        summary = results["summary"]
        about += [(f"mean {name}", f"{fmt(summary[key]['mean'])} ± {fmt(summary[key]['sd'])}")
                  for key, name, fmt in (("accuracy", "test accuracy", percent(1)), ("macro_f1", "macro-F1", number(3)))]
        blocks = [KeyValues("Baseline", about), Table("Per fold", [
            Column("fold", "fold", kind="key"), Column("train_accuracy", "train acc", percent(1)),
            Column("accuracy", "test acc", percent(1)), Column("macro_f1", "macro-F1", number(3)),
        ], [dict(row, fold=i + 1) for i, row in enumerate(results["folds"])])]
        data_counts = {"n_train": f"{len(results['folds']) - 1} folds", "n_test": "1 fold"}
    else:
        per_class = ", ".join(f"{name} {'-' if value is None else f'{100 * value:.1f}%'}"
                              for name, value in results["classification"]["per_class_accuracy"].items())
        about += [("train accuracy", percent(1)(results["train_accuracy"])), ("test accuracy", percent(1)(results["test_accuracy"])),
                  ("macro-F1", number(3)(results["macro_f1"])), ("accuracy per class", per_class)]
        blocks = [KeyValues("Baseline", about)]
        data_counts = {}
    if (run_dir / "figures" / "confusion.png").is_file():
        blocks.append(Figure("Confusion matrix", run_dir / "figures" / "confusion.png", "rows: true class"))
    data = data_section(dict(results, **data_counts), run_dir)
    return Report("fexprune baseline", [Section("HOG + SVM on the same split as train", blocks)] + ([data] if data else []),
                  subtitle=str(run_dir.resolve()))
