"""Kernel pruning figures (the paper's Figs. 6-8) and tables, ours beside the paper's (section 3.3).

Everything takes plain step rows (dicts with the columns of a prune run's metrics.csv: criterion,
layer, total_pruned, pruned, channel, train_loss, train_accuracy, min_importance, removed_importance,
over_limit) and the run's results.json, so `reproduce` can rebuild them from the files alone.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

from fexprune import paper, run_folder, runs  # noqa: E402
from fexprune.report.intervals import wilson_errors  # noqa: E402
from fexprune.report.tables import (  # noqa: E402
    Column,
    Figure,
    KeyValues,
    Report,
    Section,
    Table,
    comparison_columns,
    number,
    percent,
    text,
    with_differences,
)

FIGURES = {
    "fig6_train_loss.png": ("train_loss", "train loss", "Fig. 6: train loss against kernels pruned"),
    "fig7_train_accuracy.png": ("train_accuracy", "train accuracy (%)", "Fig. 7: train accuracy against kernels pruned"),
    "fig8_min_importance.png": ("min_importance", "minimum importance", "Fig. 8: minimum importance against kernels pruned"),
}


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _flag(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _by_criterion(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(str(row["criterion"]), []).append(row)
    return grouped


def _scale(column: str) -> float:
    return 100.0 if column == "train_accuracy" else 1.0


def _plot_series(axis, rows: list[dict], column: str, label: str, color: str) -> None:
    """One criterion's steps, one line per layer (conv2 dash-dotted); rejected steps as crosses."""
    layers: dict[str, list[dict]] = {}
    for row in rows:
        layers.setdefault(str(row["layer"]), []).append(row)
    for index, (layer, series) in enumerate(layers.items()):
        kept = [r for r in series if not _flag(r["over_limit"])]
        over = [r for r in series if _flag(r["over_limit"])]
        x = [_num(r["total_pruned"]) for r in kept]
        name = label if len(layers) == 1 else f"{label} {layer}"
        axis.plot(x, [_scale(column) * _num(r[column]) for r in kept], "o-" if index == 0 else "o-.", ms=4,
                  color=color, label=name)
        for r in over:  # the rejected step, drawn from the last kept point
            axis.plot([x[-1], _num(r["total_pruned"])],
                      [_scale(column) * _num(kept[-1][column]), _scale(column) * _num(r[column])],
                      "x:", color=color, ms=7)


def _colors(names) -> dict[str, str]:
    return {name: f"C{i}" for i, name in enumerate(names)}


def _plot_paper(axis, column: str) -> None:
    table = paper.PRUNING_TABLE
    axis.plot([r["pruned"] for r in table], [_scale(column) * r[column] for r in table], "ks:", ms=5,
              label="paper (l2, conv1; last row over the limit)")


def pruning_figures(rows: list[dict], show_paper: bool = True) -> dict[str, plt.Figure]:
    """Figs. 6-8: one figure per column; one line per criterion, rejected steps as crosses.

    Fig. 8 gets one panel per criterion: the criteria's scores have different units (and so do one
    criterion's scores on conv1 and conv2). x counts kernels pruned in all layers so far.
    """
    grouped = _by_criterion(rows)
    colors = _colors(grouped)
    figures = {}
    for filename, (column, ylabel, title) in FIGURES.items():
        panels = list(grouped) if column == "min_importance" else [None]
        figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1.2, 3.8), squeeze=False)
        for axis, panel in zip(axes[0], panels):
            for name, series in grouped.items():
                if panel is None or panel == name:
                    _plot_series(axis, series, column, name, colors[name])
            if show_paper and panel in (None, "l2"):
                _plot_paper(axis, column)
            axis.set(xlabel="kernels pruned", ylabel=ylabel, title=title if panel is None else f"{panel}")
            if column == "train_accuracy":
                axis.set_ylim(0, 100)  # the whole scale, so a frame or two does not look like a gap
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
        if len(panels) > 1:
            figure.suptitle(title)
        figure.tight_layout()
        figures[filename] = figure
    return figures


def criteria_table_rows(results: dict) -> list[dict]:
    """One row per criterion: kernels pruned within the limit, then train/test loss and accuracy and,
    with removal, the size and speed of the smaller model."""
    table = []
    for name, summary in results["criteria"].items():
        row = {
            "criterion": name,
            "kernels_pruned": summary["kernels_pruned"],
            **{f"pruned_{layer}": len(channels) for layer, channels in summary["pruned_channels"].items()},
            "train_loss": summary["train_loss"], "train_accuracy": summary["train_accuracy"],
            "test_loss": summary["test_loss"], "test_accuracy": summary["test_accuracy"],
        }
        if "cost" in summary:
            row["parameters"] = summary["cost"]["parameters"]
            row["flops_drop"] = summary["cost_change"]["flops_per_image_drop"]
            row["latency_full_batch_drop"] = summary["cost_change"]["latency_full_batch_ms_drop"]
            row["latency_batch1_drop"] = summary["cost_change"]["latency_batch1_ms_drop"]
        table.append(row)
    base = results["unpruned"]
    unpruned = {key: None for key in (table[0] if table else {})}
    unpruned.update({"criterion": "(unpruned)", "kernels_pruned": 0, **{k: base[k] for k in
                     ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}})
    if "cost" in base:
        unpruned["parameters"] = base["cost"]["parameters"]
    return [unpruned, *table]


def criteria_comparison_figure(rows: list[dict], results: dict, max_loss_increase: float) -> plt.Figure:
    """All criteria on the same trained model: train loss as kernels go, and what each ends with."""
    figure, (curve, bars) = plt.subplots(1, 2, figsize=(11, 4))
    grouped = _by_criterion(rows)
    for name, color in _colors(grouped).items():
        _plot_series(curve, grouped[name], "train_loss", name, color)
    limit = results["unpruned"]["train_loss"] + max_loss_increase
    curve.axhline(limit, color="grey", ls="--", lw=1, label=f"limit (+{max_loss_increase})")
    curve.set(xlabel="kernels pruned", ylabel="train loss", title="Train loss as kernels are pruned")
    curve.grid(alpha=0.3)
    curve.legend(fontsize=7)
    table = criteria_table_rows(results)[1:]
    names = [r["criterion"] for r in table]
    positions = range(len(names))
    bars.bar([p - 0.2 for p in positions], [r["kernels_pruned"] for r in table], 0.4, label="kernels pruned")
    twin = bars.twinx()
    accuracies = [r["test_accuracy"] for r in table]
    n_test = results.get("n_test")
    twin.bar([p + 0.2 for p in positions], [100 * a for a in accuracies], 0.4, color="tab:orange",
             yerr=wilson_errors(accuracies, n_test, 100) if n_test else None, capsize=3, label="test accuracy (%)")
    twin.axhline(100 * results["unpruned"]["test_accuracy"], color="tab:orange", ls=":", lw=1)
    twin.set_ylim(0, 100)  # the whole scale: a bar an image or two shorter must not look like a gap
    bars.set_xticks(list(positions), names)
    bars.set(ylabel="kernels pruned within the limit", title="Where each criterion stops")
    twin.set_ylabel("test accuracy after pruning (%) (dotted: unpruned)"
                    + (f"\nbars: 95% Wilson interval, n = {n_test}" if n_test else ""))
    figure.tight_layout()
    return figure


def pruning_table_rows(rows: list[dict], criterion: str, layer: str = "conv1") -> list[dict]:
    """The paper's table for one criterion and layer, with the paper's numbers beside (l2 on conv1 only)."""
    reference = {r["pruned"]: r for r in paper.PRUNING_TABLE} if (criterion, layer) == ("l2", "conv1") else {}
    table = []
    for row in rows:
        if row["criterion"] != criterion or row["layer"] != layer:
            continue
        pruned = int(_num(row["pruned"]))
        theirs = reference.get(pruned, {})
        table.append({
            "pruned": pruned, "channel": row["channel"],
            "train_loss": _num(row["train_loss"]), "train_accuracy": _num(row["train_accuracy"]),
            "min_importance": _num(row["min_importance"]), "over_limit": _flag(row["over_limit"]),
            "paper_train_loss": theirs.get("train_loss"), "paper_train_accuracy": theirs.get("train_accuracy"),
            "paper_min_importance": theirs.get("min_importance"),
        })
    return table


def _steps_table(steps: list[dict], criterion: str, layer: str, limit: float) -> list[Table]:
    """One criterion's steps on one layer, beside the paper's table where it has one (l2 on conv1)."""
    rows = with_differences(pruning_table_rows(steps, criterion, layer), ["train_loss", "train_accuracy", "min_importance"])
    if not rows:
        return []
    for row in rows:
        row["over_limit"] = "over the limit: undone" if row["over_limit"] else ""
    return [Table(f"Kernels pruned one by one ({criterion}, {layer})", [
        Column("pruned", "pruned", kind="key"), Column("channel", "kernel"),
        *comparison_columns("train_loss", "train loss"),
        *comparison_columns("train_accuracy", "train acc", "accuracy"),
        *comparison_columns("min_importance", "min importance"),
        Column("over_limit", "stop rule", text),
    ], rows, f"Stop before the step that raises the train loss by more than {limit} over the unpruned loss. "
             "min importance: the least importance among the kernels left after the step.")]


def _test_table(results: dict, criterion: str, summary: dict) -> Table:
    count = summary["kernels_pruned"]
    after = with_differences([
        {"what": "unpruned", "test_loss": results["unpruned"]["test_loss"], "test_accuracy": results["unpruned"]["test_accuracy"]},
        {"what": f"after pruning {count} kernel{'' if count == 1 else 's'}", "test_loss": summary["test_loss"],
         "test_accuracy": summary["test_accuracy"], "paper_test_loss": paper.PRUNING_TEST["test_loss"],
         "paper_test_accuracy": paper.PRUNING_TEST["test_accuracy"]},
    ], ["test_loss", "test_accuracy"])
    return Table(f"Test after pruning ({criterion})", [
        Column("what", "", kind="key"), *comparison_columns("test_loss", "test loss"),
        *comparison_columns("test_accuracy", "test acc", "accuracy"),
    ], after)


def pruning_section(folder: Path, results: dict, config: dict) -> Section:
    """Each criterion's steps beside the paper's table (l2 on conv1), the test split after pruning, Figs. 6-8."""
    steps = runs.read_csv(folder / "metrics.csv")
    limit = config.get("max_loss_increase", paper.PRUNING_MAX_LOSS_INCREASE)
    layers = sorted({str(r["layer"]) for r in steps}) or ["conv1"]
    blocks: list = []
    for name, summary in results["criteria"].items():
        for layer in layers:
            blocks += _steps_table(steps, name, layer, limit)
        blocks.append(_test_table(results, name, summary))
    for filename, (_, _, caption) in FIGURES.items():
        blocks.append(Figure(caption, folder / "figures" / filename))
    if len(results["criteria"]) > 1 and (folder / "figures" / "criteria_comparison.png").is_file():
        blocks.append(Figure("Criteria compared on the same model", folder / "figures" / "criteria_comparison.png"))
    return Section(f"Importance pruning of {', '.join(layers)} kernels (section 3.3)", blocks)


def criteria_table(results: dict) -> Table:
    """Every criterion on the same trained model and the same rule, the unpruned network first."""
    rows = criteria_table_rows(results)
    keys = list(dict.fromkeys(key for row in rows for key in row))
    columns = [Column("criterion", "criterion", kind="key")]
    for key in keys[1:]:
        fmt = percent(2) if "accuracy" in key or key.endswith("_drop") else (number(4) if "loss" in key else text)
        columns.append(Column(key, key.replace("_", " "), fmt))
    return Table("Criteria compared (same trained model, same rule)", columns, rows,
                 f"Paper after pruning (l2, conv1): test loss {paper.PRUNING_TEST['test_loss']}, "
                 f"test accuracy {100 * paper.PRUNING_TEST['test_accuracy']:.2f}%.")


def prune_warnings(results: dict) -> list[str]:
    """The run's warnings (results.json "warnings"), then each criterion's, named by it."""
    return [*results.get("warnings", []),
            *(f"{name}: {warning}" for name, summary in results["criteria"].items() for warning in summary.get("warnings", []))]


def model_file_note(results: dict) -> str:
    """Which criterion's model model.pt holds; the others are under models/."""
    name = results.get("model_criterion") or next(iter(results["criteria"]))
    removed = "channels_after" in results["criteria"][name]
    state = "pruned channels removed" if removed else "pruned kernels zeroed (masked)"
    others = ", every criterion's" if len(results["criteria"]) > 1 else ""
    return f"the {name} criterion's pruned model, {state} (models/ holds the masked and removed models{others})"


def build_prune_report(run_dir: Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    config = run_folder.read_settings(run_dir)
    base = results["unpruned"]
    about = KeyValues("Pruned run", [
        ("train run", str(results["train_run"])),
        ("images", f"{results['n_train']} train / {results['n_test']} test"),
        ("unpruned", f"channels {base['channels']}, train loss {base['train_loss']:.4f}, train accuracy "
                     f"{100 * base['train_accuracy']:.2f}%, test accuracy {100 * base['test_accuracy']:.2f}%"),
        ("model.pt", model_file_note(results)),
    ])
    warnings = prune_warnings(results)
    read_first = [KeyValues("Warnings: read these before the numbers", [("warning", w) for w in warnings])] if warnings else []
    sections = [Section("Criteria", [*read_first, about, criteria_table(results)]), pruning_section(run_dir, results, config)]
    return Report("fexprune prune", sections, subtitle=str(run_dir.resolve()))
