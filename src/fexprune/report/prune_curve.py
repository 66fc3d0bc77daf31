"""The report of a `fexprune prune --curve` run: test accuracy against MACs, parameters and CPU latency for
each criterion and the two baselines (random at equal MACs, the pruned architecture trained from scratch),
and the per-layer sensitivity scan. Built from results.json and the run's figures alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexprune.report.intervals import wilson_errors  # noqa: E402
from fexprune.report.tables import Column, Figure, KeyValues, Report, Section, Table, number, percent, text  # noqa: E402


def _methods(points: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in points:
        grouped.setdefault(row["method"], []).append(row)
    return {name: sorted(rows, key=lambda r: r["macs_reduction"]) for name, rows in grouped.items()}


def curve_figure(results: dict):
    """Three panels: test accuracy against MACs kept, parameters kept and batch-1 CPU latency; each point
    with its 95% Wilson interval for the run's n test images, on the whole 0-1 scale."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    base = results["unpruned"]
    n_test = results.get("n_test")
    for name, rows in _methods(results["points"]).items():
        style = "--" if "scratch" in name else (":" if name.startswith("random") else "-")
        accuracies = [r["test_accuracy"] for r in rows]
        for axis, key in zip(axes, ("macs_ratio", "parameters_ratio", "latency_ms")):
            axis.errorbar([r.get(key, float("nan")) for r in rows], accuracies, yerr=wilson_errors(accuracies, n_test) if n_test else None,
                          fmt=style, marker="o", capsize=2, label=name)
    for axis, key, label in zip(axes, ("macs_ratio", "parameters_ratio", "latency_ms"),
                                ("MACs kept (fraction)", "parameters kept (fraction)", "CPU latency, batch 1 (ms)")):
        axis.axhline(base["test_accuracy"], color="gray", lw=1, label="unpruned")
        if key == "latency_ms":
            axis.axvline(base["latency_ms"], color="gray", lw=0.5)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)  # the whole scale: an image or two must not look like a gap
    axes[0].set_ylabel("test accuracy" + (f" (bars: 95% Wilson interval, n = {n_test})" if n_test else ""))
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{results['architecture']} ({results['recipe']} recipe): pruned and fine-tuned")
    figure.tight_layout()
    return figure


def sensitivity_figure(results: dict):
    figure, axis = plt.subplots(figsize=(7, 4))
    by_layer: dict[str, list[dict]] = {}
    for row in results["sensitivity"]:
        by_layer.setdefault(row["layer"], []).append(row)
    n_test = results.get("n_test")
    for layer, rows in by_layer.items():
        accuracies = [r["test_accuracy"] for r in rows]
        axis.errorbar([100 * r["fraction"] for r in rows], accuracies, yerr=wilson_errors(accuracies, n_test) if n_test else None,
                      marker="o", capsize=2, label=layer)
    axis.axhline(results["unpruned"]["test_accuracy"], color="gray", lw=1, label="unpruned")
    axis.set_ylim(0, 1)
    axis.set_xlabel("channels removed from this layer alone (%)")
    axis.set_ylabel("test accuracy (no fine-tuning)" + (f"\nbars: 95% Wilson interval, n = {n_test}" if n_test else ""))
    axis.legend(fontsize=7, ncol=2)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def curve_table(results: dict) -> Table:
    return Table("Accuracy against cost", [
        Column("method", "method", kind="key"), Column("macs_reduction", "target MACs removed", percent(0)),
        Column("macs_ratio", "MACs kept", percent(1)), Column("parameters_ratio", "params kept", percent(1)),
        Column("latency_ms", "latency ms", number(3)), Column("widths", "channels", text),
        Column("test_accuracy_before_finetune", "test acc, pruned", percent(1)),
        Column("test_accuracy", "test acc, fine-tuned / trained", percent(1)),
    ], results["points"], note="scratch rows: the architecture re-initialised and trained from scratch, no fine-tuning")


def build_prune_curve_report(run_dir: str | Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    base = results["unpruned"]
    about = KeyValues("Setup", [
        ("train run", results["train_run"]), ("network", f"{results['architecture']} ({results['recipe']} recipe)"),
        ("unpruned", f"{base['macs']:,} MACs, {base['parameters']:,} parameters, test accuracy {percent(1)(base['test_accuracy'])}, "
                     f"{number(3)(base['latency_ms'])} ms"),
        ("criteria", ", ".join(results["criteria"]) + "; baselines: random at equal MACs, scratch (Liu et al. 2019)"),
        ("pruning", f"{'global' if results['global_pruning'] else 'per-layer'} ratios, {results['steps']} step(s), "
                    f"round_to {results['round_to']}, layers: {', '.join(results['layers'])}"),
        ("fine-tuning", f"{results['finetune_epochs']} epochs AdamW lr {results['finetune_lr']}"
                        + (f", {results['finetune_schedule']}" if results.get("finetune_schedule") else "")
                        + (f", distilled from the unpruned network (weight {results['distill']}, T {results['temperature']})"
                           if results.get("distill") else "")
                        + (", the recipe's augmentation" if results.get("augment") else "")),
        ("scratch", "off" if results.get("scratch_epochs") is None else f"{results['scratch_epochs']} epochs AdamW lr {results['scratch_lr']}, cosine"),
        ("split", f"{results['n_train']} train, {results['n_test']} test images (the run's own)"),
    ])
    blocks = [about, curve_table(results)]
    if (run_dir / "figures" / "accuracy_vs_cost.png").is_file():
        blocks.append(Figure("Test accuracy against MACs, parameters and latency", run_dir / "figures" / "accuracy_vs_cost.png"))
    sections = [Section("Pruning curve", blocks)]
    if results.get("sensitivity"):
        sensitivity = [Table("One layer at a time", [
            Column("layer", "layer", kind="key"), Column("fraction", "channels removed", percent(0)),
            Column("channels_before", "channels"), Column("channels_after", "left"),
            Column("macs_ratio", "MACs kept", percent(1)), Column("test_accuracy", "test acc", percent(1)),
        ], results["sensitivity"], note="no fine-tuning; the first criterion chooses the channels")]
        if (run_dir / "figures" / "sensitivity.png").is_file():
            sensitivity.append(Figure("Per-layer sensitivity", run_dir / "figures" / "sensitivity.png"))
        sections.append(Section("Sensitivity", sensitivity))
    return Report("fexprune prune --curve", sections, subtitle=str(run_dir.resolve()))
