"""The report of a `fexprune prune --curve` run: test accuracy against MACs, parameters and CPU latency for
each criterion and the two baselines (random at equal MACs, the pruned architecture trained from scratch),
each point the mean and sample sd over the training runs the curve covers, and the per-layer sensitivity
scan. Built from results.json and the run's figures alone; a run made before curves covered several runs
(no `summary` in results.json) reads as a curve over one run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexprune.report.curve_summary import curve_summary  # noqa: E402
from fexprune.report.intervals import wilson_errors  # noqa: E402
from fexprune.report.tables import Column, Figure, KeyValues, Report, Section, Table, number, percent, text  # noqa: E402


def points_summary(results: dict) -> list[dict]:
    return results.get("summary") or curve_summary(results["points"])


def _methods(summary: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in summary:
        grouped.setdefault(row["method"], []).append(row)
    return {name: sorted(rows, key=lambda r: r["macs_reduction"]) for name, rows in grouped.items()}


def _value(row: dict, key: str) -> float:
    value = row.get(f"{key}_mean")
    return float("nan") if value is None else value


def curve_figure(results: dict):
    """Three panels: mean test accuracy against MACs kept (Torch-Pruning's count where the run has it),
    parameters kept and batch-1 CPU latency, on the whole 0-1 scale. Error bars: the sd over the runs, or for
    one run the 95% Wilson interval for its n test images."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    base = results["unpruned"]
    summary = points_summary(results)
    macs_key = "tp_macs_ratio" if any("tp_macs_ratio_mean" in r for r in summary) else "macs_ratio"
    keys = (macs_key, "parameters_ratio", "latency_ms")
    runs = len(results.get("train_runs") or [results.get("train_run")])
    n_test = results.get("n_test")
    for name, rows in _methods(summary).items():
        style = "--" if "scratch" in name else (":" if name.startswith("random") else "-")
        accuracies = [_value(r, "test_accuracy") for r in rows]
        if runs > 1:
            errors = [r.get("test_accuracy_sd") or 0.0 for r in rows]
        else:
            errors = wilson_errors(accuracies, n_test) if n_test else None
        for axis, key in zip(axes, keys):
            axis.errorbar([_value(r, key) for r in rows], accuracies, yerr=errors,
                          linestyle=style, marker="o", capsize=3, label=name)
    macs_label = "MACs kept (tp.utils.count_ops_and_params)" if macs_key == "tp_macs_ratio" else "MACs kept (conv and linear)"
    for axis, key, label in zip(axes, keys, (macs_label, "parameters kept (fraction)", "CPU latency, batch 1 (ms, median)")):
        axis.axhline(base["test_accuracy"], color="gray", lw=1, label="unpruned" + (" (mean)" if runs > 1 else ""))
        if base.get("test_accuracy_sd"):
            axis.axhspan(base["test_accuracy"] - base["test_accuracy_sd"], base["test_accuracy"] + base["test_accuracy_sd"],
                         color="gray", alpha=0.15, lw=0)
        if key == "latency_ms":
            axis.axvline(base["latency_ms"], color="gray", lw=0.5)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)  # the whole scale: an image or two must not look like a gap
    if runs > 1:
        axes[0].set_ylabel(f"test accuracy (mean ± sd over {runs} runs)")
    else:
        axes[0].set_ylabel("test accuracy" + (f" (bars: 95% Wilson interval, n = {n_test})" if n_test else ""))
    axes[0].legend(fontsize=8)
    data = " (synthetic data)" if results.get("synthetic_data") else ""
    figure.suptitle(f"{results['architecture']} ({results['recipe']} recipe): pruned and fine-tuned{data}")
    figure.tight_layout()
    return figure


def sensitivity_figure(results: dict):
    """Test accuracy when one layer alone loses each fraction of its channels (mean ± sd over the runs)."""
    figure, axis = plt.subplots(figsize=(7, 4))
    rows = results.get("sensitivity_summary") or [
        {**r, "test_accuracy_mean": r["test_accuracy"], "test_accuracy_sd": None} for r in results["sensitivity"]]
    by_layer: dict[str, list[dict]] = {}
    for row in rows:
        by_layer.setdefault(row["layer"], []).append(row)
    runs = len(results.get("train_runs") or [results.get("train_run")])
    n_test = results.get("n_test")
    for layer, members in by_layer.items():
        accuracies = [r["test_accuracy_mean"] for r in members]
        if runs > 1:
            errors = [r.get("test_accuracy_sd") or 0.0 for r in members]
        else:
            errors = wilson_errors(accuracies, n_test) if n_test else None
        axis.errorbar([100 * r["fraction"] for r in members], accuracies, yerr=errors, marker="o", capsize=3, label=layer)
    axis.axhline(results["unpruned"]["test_accuracy"], color="gray", lw=1, label="unpruned")
    axis.set_ylim(0, 1)
    axis.set_xlabel("channels removed from this layer alone (%)")
    bars = f"sd over {runs} runs" if runs > 1 else (f"95% Wilson interval, n = {n_test}" if n_test else "")
    axis.set_ylabel("test accuracy (no fine-tuning)" + (f"\nbars: {bars}" if bars else ""))
    axis.legend(fontsize=7, ncol=2)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _mean_sd(key: str, inner, spread=None):
    """A summary row's `key` as 'mean ± sd' (the mean alone for one run); `spread` formats the sd (default: as
    the mean)."""
    def cell(row: dict) -> str:
        mean, sd = row.get(f"{key}_mean"), row.get(f"{key}_sd")
        if mean is None:
            return "–"
        return inner(mean) if sd is None else f"{inner(mean)} ± {(spread or inner)(sd)}"
    return cell


def _latency(row: dict) -> str:
    cell = _mean_sd("latency_ms", number(3))(row)
    return cell + (f" (IQR {number(3)(row['latency_iqr_ms_mean'])})" if row.get("latency_iqr_ms_mean") is not None else "")


def _latency_change(row: dict) -> str:
    change = _mean_sd("latency_change", lambda v: f"{100 * v:+.0f}%", lambda v: f"{100 * v:.0f}%")(row)
    return f"within noise ({change})" if row.get("latency_within_noise") and change != "–" else change


CELLS = {
    "tp_macs": lambda r: percent(1)(r.get("tp_macs_ratio_mean")),
    "macs": lambda r: percent(1)(r.get("macs_ratio_mean")),
    "params": lambda r: percent(1)(r.get("parameters_ratio_mean")),
    "pruned": _mean_sd("test_accuracy_before_finetune", percent(1)),
    "accuracy": _mean_sd("test_accuracy", percent(1)),
    "change": _mean_sd("accuracy_change", lambda v: f"{100 * v:+.1f} pp", lambda v: f"{100 * v:.1f} pp"),
    "latency": _latency,
    "latency_change": _latency_change,
    "warning": lambda r: "; ".join(w.split(": ", 1)[1].split(";")[0] for w in r.get("warnings", [])),
}


def curve_table(results: dict) -> Table:
    summary = points_summary(results)
    runs = max((row.get("n_runs", 1) for row in summary), default=1)
    rows = [{"method": r["method"], "macs_reduction": r["macs_reduction"], "widths": r.get("widths"),
             **{key: cell(r) for key, cell in CELLS.items()}} for r in summary]
    spread = f"mean ± sd over {runs} training runs; " if runs > 1 else ""
    return Table("Accuracy against cost", [
        Column("method", "method", kind="key"), Column("macs_reduction", "target MACs removed", percent(0)),
        Column("tp_macs", "MACs kept (tp)", text), Column("macs", "MACs kept (conv+linear)", text),
        Column("params", "params kept", text), Column("latency", "latency ms", text),
        Column("latency_change", "latency change (paired)", text), Column("widths", "channels", text),
        Column("pruned", "test acc, pruned", text), Column("accuracy", "test acc, fine-tuned / trained", text),
        Column("change", "change vs unpruned (paired)", text), Column("warning", "warning", text),
    ], rows, note=(f"{spread}change: each run's point minus that run's unpruned network. MACs kept (tp): "
                   "tp.utils.count_ops_and_params; MACs kept (conv+linear): fexprune's own count, on which the targets "
                   "are set. Latency: CPU, batch 1, each run's median over its interleaved rounds (IQR: the "
                   "rounds' interquartile range); its change is the median of each round's change against the same "
                   "round's unpruned network, 'within noise' where the rounds' or the runs' spread exceeds it. Scratch rows: the architecture re-initialised and trained from scratch, no "
                   "fine-tuning."))


def _unpruned_line(base: dict) -> str:
    accuracy = percent(1)(base["test_accuracy"]) + (f" ± {percent(1)(base['test_accuracy_sd'])}" if base.get("test_accuracy_sd") else "")
    macs = f"{base['macs']:,} MACs (conv+linear)" + (f", {base['tp_macs']:,} MACs (tp)" if base.get("tp_macs") else "")
    latency = f"{number(3)(base['latency_ms'])} ms" + (
        f" (IQR {number(3)(base['latency_iqr_ms'])})" if base.get("latency_iqr_ms") is not None else "")
    return f"{macs}, {base['parameters']:,} parameters, test accuracy {accuracy}, {latency}"


def build_prune_curve_report(run_dir: str | Path, results: dict) -> Report:
    run_dir = Path(run_dir)
    base = results["unpruned"]
    train_runs = results.get("train_runs") or [results["train_run"]]
    seeds = [str(r.get("seed")) for r in results.get("runs", [])]
    about = KeyValues("Setup", [
        ("train runs" if len(train_runs) > 1 else "train run", ", ".join(train_runs)
         + (f" (training seeds {', '.join(seeds)})" if len(train_runs) > 1 else "")),
        ("data", results.get("data", "not recorded (a run made before curves named their data)")
         + (f"; {results['n_train']} train, {results['n_test']} test images (the run's own split)" if "n_train" in results else "")),
        ("network", f"{results['architecture']} ({results['recipe']} recipe)"),
        ("unpruned" + (" (mean ± sd over the runs)" if len(train_runs) > 1 else ""), _unpruned_line(base)),
        ("criteria", ", ".join(results["criteria"]) + "; baselines: random at equal MACs, scratch (Liu et al. 2019)"),
        ("pruning", f"{'global' if results['global_pruning'] else 'per-layer'} ratios, {results['steps']} step(s), "
                    f"round_to {results['round_to']}, layers: {', '.join(results['layers'])}"
                    + ("; each removed channel merged into its most correlated kept channel (least squares) before the cut"
                       if results.get("merge") else "")),
        ("fine-tuning", f"{results['finetune_epochs']} epochs AdamW lr {results['finetune_lr']}"
                        + (f", {results['finetune_schedule']}" if results.get("finetune_schedule") else "")
                        + (f", distilled from the unpruned network (weight {results['distill']}, T {results['temperature']})"
                           if results.get("distill") else "")
                        + (", the recipe's augmentation" if results.get("augment") else "")),
        ("scratch", "off" if results.get("scratch_epochs") is None else
         f"{results['scratch_epochs']} epochs AdamW lr {results['scratch_lr']}, cosine"
         + (f", distilled from the same unpruned network (weight {results['scratch_distill']})" if results.get("scratch_distill")
            else ", no teacher" if "scratch_distill" in results else "")),
        ("MACs", results.get("macs_count", "fexprune.pruning.measure.count_macs (conv and linear layers)")),
    ])
    blocks = []
    if results.get("synthetic_data"):
        blocks.append(KeyValues("Synthetic data", [("data", "these networks were trained and tested on synthetic drawn faces, "
                                                    "not SFEW: the numbers test the tool, not pruning on real expressions, "
                                                    "and are not compared with the paper's")]))
    warnings = results.get("warnings") or [w for row in points_summary(results) for w in row.get("warnings", [])]
    if warnings:
        blocks.append(KeyValues("Warnings: read these before the numbers", [("warning", w) for w in warnings]))
    blocks += [about, curve_table(results)]
    if (run_dir / "figures" / "accuracy_vs_cost.png").is_file():
        blocks.append(Figure("Test accuracy against MACs, parameters and latency", run_dir / "figures" / "accuracy_vs_cost.png"))
    sections = [Section("Pruning curve", blocks)]
    if results.get("sensitivity"):
        several = len(train_runs) > 1 and results.get("sensitivity_summary")
        rows = results["sensitivity_summary"] if several else results["sensitivity"]
        columns = ([Column("layer", "layer", kind="key"), Column("fraction", "channels removed", percent(0))]
                   + ([Column("channels_after_mean", "channels left (mean)", number(1)),
                       Column("macs_ratio_mean", "MACs kept", percent(1)),
                       Column("test_accuracy", "test acc (mean ± sd)", text)] if several else
                      [Column("channels_before", "channels"), Column("channels_after", "left"),
                       Column("macs_ratio", "MACs kept", percent(1)), Column("test_accuracy", "test acc", percent(1))]))
        if several:
            rows = [{**r, "test_accuracy": _mean_sd("test_accuracy", percent(1))(r)} for r in rows]
        sensitivity = [Table("One layer at a time", columns, rows,
                             note="no fine-tuning; the first criterion chooses the channels"
                                  + ("; mean and sd over the training runs" if several else ""))]
        if (run_dir / "figures" / "sensitivity.png").is_file():
            sensitivity.append(Figure("Per-layer sensitivity", run_dir / "figures" / "sensitivity.png"))
        sections.append(Section("Sensitivity", sensitivity))
    return Report("fexprune prune --curve", sections, subtitle=str(run_dir.resolve()))
