"""Kernel pruning figures (the paper's Figs. 6-8) and tables, ours beside the paper's (section 3.3).

Everything takes plain step rows (dicts with the columns of a prune run's metrics.csv: criterion,
layer, total_pruned, pruned, channel, train_loss, train_accuracy, min_importance, removed_importance,
over_limit) and the run's results.json, so `reproduce` can rebuild them from the files alone.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexprune import paper  # noqa: E402

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
    for number, (layer, series) in enumerate(layers.items()):
        kept = [r for r in series if not _flag(r["over_limit"])]
        over = [r for r in series if _flag(r["over_limit"])]
        x = [_num(r["total_pruned"]) for r in kept]
        name = label if len(layers) == 1 else f"{label} {layer}"
        axis.plot(x, [_scale(column) * _num(r[column]) for r in kept], "o-" if number == 0 else "o-.", ms=4,
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
    twin.bar([p + 0.2 for p in positions], [100 * r["test_accuracy"] for r in table], 0.4, color="tab:orange",
             label="test accuracy (%)")
    twin.axhline(100 * results["unpruned"]["test_accuracy"], color="tab:orange", ls=":", lw=1)
    bars.set_xticks(list(positions), names)
    bars.set(ylabel="kernels pruned within the limit", title="Where each criterion stops")
    twin.set_ylabel("test accuracy after pruning (%) (dotted: unpruned)")
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


def _cell(value, column: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "over the limit" if value else ""
    if "accuracy" in column or column.endswith("_drop"):
        return f"{100 * float(value):.2f}%"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c), c) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pruning_report_markdown(rows: list[dict], results: dict, max_loss_increase: float) -> str:
    base = results["unpruned"]
    parts = [
        "# Kernel pruning (paper 2.3 / 3.3)\n",
        f"Train run: `{results['train_run']}` ({results['n_train']} train / {results['n_test']} test images). "
        f"Unpruned: channels {base['channels']}, train loss {base['train_loss']:.4f}, "
        f"train accuracy {100 * base['train_accuracy']:.2f}%, test loss {base['test_loss']:.4f}, "
        f"test accuracy {100 * base['test_accuracy']:.2f}%. Stop before a step that raises the train loss by "
        f"more than {max_loss_increase} over the unpruned loss; that step is shown as over the limit, then undone.\n",
        "`min_importance` is the least importance among the kernels left after the step (row 0: the unpruned "
        "layer), as the paper's column reads.\n",
        "## Criteria compared (same trained model, same rule)\n",
        markdown_table(criteria_table_rows(results)),
        f"Paper after pruning (l2, conv1): test loss {paper.PRUNING_TEST['test_loss']}, "
        f"test accuracy {100 * paper.PRUNING_TEST['test_accuracy']:.2f}%.\n",
    ]
    layers = sorted({str(r["layer"]) for r in rows}, key=lambda name: name)
    for name in results["criteria"]:
        for layer in layers:
            table = pruning_table_rows(rows, name, layer)
            if not table:
                continue
            columns = ["pruned", "channel", "train_loss", "train_accuracy", "min_importance", "over_limit"]
            if any(r["paper_train_loss"] is not None for r in table):
                columns += ["paper_train_loss", "paper_train_accuracy", "paper_min_importance"]
            parts += [f"## {name} on {layer}\n", markdown_table(table, columns)]
    parts.append("## Figures\n")
    parts += [f"![{name}](figures/{name})\n" for name in [*FIGURES, "criteria_comparison.png"]]
    return "\n".join(parts)
