"""The report of a `--cv K` run: each fold's row, the mean and spread, the HOG + SVM baseline on the same
folds and the confusion matrix summed over every test fold. Built from results.json alone."""

from __future__ import annotations

from pathlib import Path

from fexprune.report.data import data_section
from fexprune.report.tables import Column, Figure, KeyValues, Report, Section, Table, number, percent
from fexprune.report.training import scoring_summary

_SUMMARY_LABELS = {
    "train_accuracy": "train accuracy", "test_accuracy": "test accuracy", "macro_f1": "macro-F1",
    "test_loss": "test loss", "svm_test_accuracy": "HOG + SVM test accuracy", "svm_macro_f1": "HOG + SVM macro-F1",
}


def build_cv_report(run_dir: str | Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    baseline = "svm_test_accuracy" in results["summary"]
    folds = Table(f"Per fold ({results['cv']} folds)", [
        Column("fold", "fold", kind="key"), Column("n_train", "train"), Column("n_test", "test"),
        Column("train_accuracy", "train acc", percent(1)), Column("test_loss", "test loss", number(4)),
        Column("test_accuracy", "test acc", percent(1)), Column("macro_f1", "macro-F1", number(3)),
        *([Column("svm_test_accuracy", "HOG+SVM test acc", percent(1))] if baseline else []),
    ], [dict(row, fold=row["fold"] + 1) for row in results["folds"]])
    rows = []
    for key, value in results["summary"].items():
        fmt = number(4) if key == "test_loss" else (number(3) if "f1" in key else percent(1))
        rows.append({"what": _SUMMARY_LABELS.get(key, key), "mean": fmt(value["mean"]), "sd": fmt(value["sd"]),
                     "min": fmt(value["min"]), "max": fmt(value["max"])})
    summary = Table("Mean and spread over the folds", [
        Column("what", "", kind="key"), Column("mean", "mean"), Column("sd", "sd"), Column("min", "min"), Column("max", "max"),
    ], rows, "sd: sample standard deviation over the folds. Every fold's test part is unseen by its network "
             "and by its baseline, which trains on the same folds.")
    about = [("protocol", results["protocol"]), ("recipe", results["recipe"]), ("face crops", "yes" if results["face_crop"] else "no")]
    if results.get("training"):  # runs from before it was recorded say nothing rather than something wrong
        about.append(("test images scored", scoring_summary(results["training"])))
    if "provenance" in results:  # --recipe transfer: not trained from scratch
        about.append(("pretrained weights", str(results["provenance"])))
    blocks = [KeyValues("Protocol", about), summary, folds]
    if (run_dir / "figures" / "confusion.png").is_file():
        blocks.append(Figure("Confusion matrix", run_dir / "figures" / "confusion.png", "rows: true class; summed over every test fold"))
    n_test = sum(row["n_test"] for row in results["folds"])
    data = data_section(dict(results, n_train=f"{results['cv'] - 1} folds", n_test=f"1 fold ({n_test} frames over all folds)"), run_dir)
    sections = [Section(f"Cross-validation, --recipe {results['recipe']}", blocks)] + ([data] if data else [])
    return Report("fexprune train --cv", sections, subtitle=str(run_dir.resolve()))
