"""The PIC experiment's table beside the paper's, its figures and its report section.

Figures are returned as matplotlib `Figure` objects (no pyplot state), rows as plain dicts, so
the `reproduce` report reuses them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import figure as mpl

from fexprune import paper, run_folder
from fexprune.report.tables import (
    Column,
    Figure,
    KeyValues,
    Report,
    Section,
    Table,
    comparison_columns,
    number,
    with_differences,
)

LOSS_DEFINITION = (
    "loss = mean squared reconstruction error over all patterns and all inputs, "
    "(1 / (N * D)) * sum (x_hat - x)^2, on the normalised inputs"
)


def comparison_rows(rows: list[dict], reference: list[dict] = paper.PIC_TABLE) -> list[dict]:
    """Ours beside the paper's, one row per hidden-unit count the paper reports (9 .. 2)."""
    ours = {r["hidden_units"]: r for r in rows}
    out = []
    for ref in reference:
        mine = ours.get(ref["hidden_units"], {})
        out.append({
            "hidden_units": ref["hidden_units"],
            "train_loss": mine.get("train_loss", float("nan")),
            "test_loss": mine.get("test_loss", float("nan")),
            "min_angle": mine.get("min_angle", float("nan")),
            "paper_loss": ref["loss"],
            "paper_min_angle": ref["min_angle"],
        })
    return out


def angle_agreement(rows: list[dict], reference: list[dict] = paper.PIC_TABLE) -> str:
    """One sentence: do our minimum angles fall in the paper's range (tiny at 9..5 units)?"""
    table = comparison_rows(rows, reference)
    small = [r for r in table if r["hidden_units"] >= 5 and not math.isnan(r["min_angle"])]
    if not small:
        return "No rows with 5 or more hidden units to compare angles with."
    ours = [r["min_angle"] for r in small]
    if max(ours) < 20:
        return (f"Our minimum angles at 9..5 units ({min(ours):.2f}-{max(ours):.2f} deg) are small like the paper's "
                "(0.15-1.76 deg): this setting matches the paper.")
    return (f"Our minimum angles at 9..5 units ({min(ours):.1f}-{max(ours):.1f} deg) are far above the paper's "
            "(0.15-1.76 deg): this setting does not match it.")


def progressive_figure(rows: list[dict], reference: list[dict] = paper.PIC_TABLE) -> mpl.Figure:
    """Fig. 4 as the paper draws it: loss and minimum angle on x, hidden units on y."""
    figure = mpl.Figure(figsize=(9, 4), layout="constrained")
    loss_axes, angle_axes = figure.subplots(1, 2, sharey=True)
    units = [r["hidden_units"] for r in rows]
    loss_axes.plot([r["train_loss"] for r in rows], units, "o-", label="ours, train")
    loss_axes.plot([r["test_loss"] for r in rows], units, "s--", label="ours, test")
    loss_axes.plot([r["loss"] for r in reference], [r["hidden_units"] for r in reference], "k^:", label="paper")
    loss_axes.set_xlabel("loss (MSE)")
    loss_axes.set_ylabel("hidden units")
    loss_axes.legend()
    angle_axes.plot([r["min_angle"] for r in rows], units, "o-", label="ours")
    angle_axes.plot([r["min_angle"] for r in reference], [r["hidden_units"] for r in reference], "k^:", label="paper")
    angle_axes.set_xlabel("minimum angle between hidden units (deg)")
    angle_axes.legend()
    figure.suptitle("PIC: progressive reduction of the hidden layer")
    return figure


def threshold_figure(rows: list[dict]) -> mpl.Figure:
    """Hidden units and losses after each threshold-rule action."""
    figure = mpl.Figure(figsize=(6, 4), layout="constrained")
    axes = figure.subplots()
    steps = [r["step"] for r in rows]
    axes.plot(steps, [r["train_loss"] for r in rows], "o-", label="train loss")
    axes.plot(steps, [r["test_loss"] for r in rows], "s--", label="test loss")
    axes.set_xlabel("action")
    axes.set_ylabel("loss (MSE)")
    for r in rows:
        axes.annotate(f'{r["hidden_units"]}', (r["step"], r["train_loss"]), textcoords="offset points", xytext=(3, 5))
    axes.legend()
    axes.set_title("PIC: threshold pruning (labels: hidden units)")
    return figure


def angles_figure(angles: np.ndarray, title: str = "angles between hidden units (deg)") -> mpl.Figure:
    figure = mpl.Figure(figsize=(5, 4), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(angles, vmin=0, vmax=180, cmap="coolwarm")
    axes.set_xlabel("hidden unit")
    axes.set_ylabel("hidden unit")
    axes.set_title(title)
    figure.colorbar(image, ax=axes)
    return figure


def pic_section(folder: Path, results: dict, config: dict) -> Section:
    """The progressive reduction's table beside the paper's, its test loss, Fig. 4 and the setup."""
    title = "PIC: distinctiveness pruning of the 11-10-11 autoencoder (section 3.1)"
    if results.get("mode", "progressive") != "progressive":
        return threshold_section(folder, results, config)
    rows = [r | {"loss": r["train_loss"]} for r in results.get("paper_comparison", [])]
    rows = with_differences(rows, ["loss", "min_angle"])
    table = Table("Progressive reduction: loss and minimum angle by hidden units", [
        Column("hidden_units", "hidden units", kind="key"),
        *comparison_columns("loss", "train loss"),
        Column("test_loss", "test loss", number(4)),
        *comparison_columns("min_angle", "min angle (deg)", "angle"),
    ], rows, f"{results.get('loss_definition', '')}. {results.get('angle_agreement', '')}")
    by_units = {r["hidden_units"]: r for r in results.get("rows", [])}
    first, last = (by_units[max(by_units)], by_units[min(by_units)]) if by_units else ({}, {})
    test_rows = with_differences([
        {"when": f"after training ({first.get('hidden_units', '?')} units)", "test_loss": first.get("test_loss")},
        {"when": f"at the end ({last.get('hidden_units', '?')} units)", "test_loss": last.get("test_loss"),
         "paper_test_loss": paper.PIC_TEST_LOSS},
    ], ["test_loss"])
    test_table = Table("PIC test loss", [Column("when", "", kind="key"), *comparison_columns("test_loss", "test loss")],
                       test_rows, "The paper reports one test loss, 'at last'; we read that as after the last reduction.")
    setup = _setup(results)
    blocks = [table, test_table, *_outliers(results), Figure("Fig. 4: loss and minimum angle against hidden units", folder / "figures" / "progressive.png",
                                        "ours (circles) beside the paper's table (triangles)")]
    if (folder / "figures" / "angles_initial.png").is_file():
        blocks.append(Figure("Angles between the 10 hidden units after training", folder / "figures" / "angles_initial.png"))
    return Section(title, blocks + [setup])


def threshold_section(folder: Path, results: dict, config: dict) -> Section:
    """Gedeon and Harris's rules, one action a row."""
    rules = (f"Rules: dead (output range < {config.get('dead_tolerance')}), complementary (> {config.get('complementary_above')} deg: "
             f"remove both, mean contribution moved to the output bias), similar (< {config.get('similar_below')} deg: merge).")
    rows = results.get("rows", [])
    table = Table("Threshold pruning, one action a row", [
        Column("step", "step", kind="key"), Column("action", "action"), Column("units", "units"),
        Column("angle", "angle (deg)", number(2)), Column("hidden_units", "hidden units"),
        Column("train_loss", "train loss", number(4)), Column("test_loss", "test loss", number(4)),
        Column("min_angle", "min angle (deg)", number(2)),
    ], rows, rules + (" No rule applied: every pair is between the thresholds and no unit is dead." if len(rows) == 1 else ""))
    return Section("PIC: threshold pruning (Gedeon and Harris)", [
        table, *_outliers(results), Figure("Hidden units and losses after each action", folder / "figures" / "threshold.png"), _setup(results)])


def _outliers(results: dict) -> list[Table]:
    """The feature table's flagged rows, with what the rule is and whether they were left out."""
    flagged = results.get("outliers") or []
    if not flagged:
        return []
    fate = ("They were left out (--drop-outliers)." if results.get("outliers_dropped") else
            "They were kept (imputed where values were missing); --drop-outliers leaves them out.")
    rows = [{"name": o["name"], "file_row": o.get("file_row"), "reasons": "; ".join(o["reasons"])} for o in flagged]
    return [Table(f"Rows flagged as outliers ({len(flagged)})", [
        Column("name", "row name", kind="key"), Column("file_row", "file row"), Column("reasons", "why")],
        rows, f"{str(results.get('outlier_rule', '')).capitalize()}. {fate}")]


def _normalisation(normalizer: dict) -> str:
    method = normalizer.get("method", "?")
    return "none (raw values)" if method == "none" else f"{method} (fitted on the training rows)"


def _setup(results: dict) -> KeyValues:
    return KeyValues("PIC setup", [
        ("train / test rows", f"{results.get('n_train')} / {results.get('n_test')}"),
        ("inputs", ", ".join(results.get("inputs", []))),
        ("normalisation", _normalisation(results.get("normalizer") or {})),
        ("missing values", str(results.get("missing", ""))),
        ("flagged rows", _flagged_summary(results)),
        ("loss", str(results.get("loss_definition", ""))),
        ("seconds", f"{results.get('seconds', 0):.1f}"),
    ])


def _flagged_summary(results: dict) -> str:
    if "outliers" not in results:
        return "not checked"
    flagged = results["outliers"]
    if not flagged:
        return "none"
    return f"{len(flagged)}, " + ("left out" if results.get("outliers_dropped") else "kept")


def build_pic_report(run_dir: Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    config = run_folder.read_settings(run_dir)
    return Report("fexprune pic", [pic_section(run_dir, results, config)], subtitle=str(run_dir.resolve()))
