"""The channel sweep table and figure, ours (mean ± sd over repeats) beside the paper's (section 2.2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexprune import paper, run_folder  # noqa: E402
from fexprune.report.tables import (  # noqa: E402
    Column,
    Figure,
    KeyValues,
    Report,
    Section,
    Table,
    difference,
    mean_std,
    number,
    percent,
    signed,
)

METRICS = [
    ("train_loss", "train loss", "loss"),
    ("train_accuracy", "train acc", "accuracy"),
    ("test_loss", "test loss", "loss"),
    ("test_accuracy", "test acc", "accuracy"),
]
PAPER_NOTE = (
    "The paper's table repeats each train loss as its test loss (a typo in the paper); its numbers are the "
    "mean of 5 runs of 700 epochs. Δ = ours − paper (accuracies in percentage points)."
)


def sweep_table_rows(rows: list[dict]) -> list[dict]:
    """One row per channel combination: (mean, sd) of ours, the paper's value and the difference."""
    table = []
    for row in rows:
        channels = tuple(row["channels"])
        theirs = paper.CHANNEL_SWEEP.get(channels, {})
        entry = {"channels": f"{channels[0]}/{channels[1]}", "n": row["n"]}
        for key, _, _ in METRICS:
            entry[key] = (row[key], row[f"{key}_std"])
            entry[f"paper_{key}"] = theirs.get(key)
            entry[f"diff_{key}"] = difference(row[key], theirs.get(key))
        table.append(entry)
    return table


def sweep_table(rows: list[dict], epochs: int | None = None) -> Table:
    columns = [Column("channels", "conv1/conv2", kind="key"), Column("n", "runs")]
    for key, label, kind in METRICS:
        ours = percent() if kind == "accuracy" else number(4)
        diff = signed(2, 100.0, " pp") if kind == "accuracy" else signed(4)
        columns += [
            Column(key, f"{label} (mean ± sd)", mean_std(ours)),
            Column(f"paper_{key}", f"{label} (paper)", ours, "paper"),
            Column(f"diff_{key}", "Δ", diff, "difference"),
        ]
    title = "Channel sweep" + (f" ({epochs} epochs)" if epochs else "")
    return Table(title, columns, sweep_table_rows(rows), PAPER_NOTE)


def sweep_figure(rows: list[dict]):
    """Train and test accuracy per combination: our mean with sd as error bars, the paper's as markers."""
    labels = [f"{r['channels'][0]}/{r['channels'][1]}" for r in rows]
    positions = range(len(rows))
    figure, (accuracy_axis, loss_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    for offset, key, name in ((-0.2, "train", "train"), (0.2, "test", "test")):
        xs = [p + offset for p in positions]
        accuracy_axis.bar(
            xs, [100 * r[f"{key}_accuracy"] for r in rows], width=0.38,
            yerr=[100 * r[f"{key}_accuracy_std"] for r in rows], capsize=3, label=f"{name} (ours)",
        )
        loss_axis.bar(xs, [r[f"{key}_loss"] for r in rows], width=0.38, yerr=[r[f"{key}_loss_std"] for r in rows], capsize=3, label=f"{name} (ours)")
        reported = [paper.CHANNEL_SWEEP.get(tuple(r["channels"])) for r in rows]
        marker = "k^" if key == "train" else "kv"
        points = [(x, 100 * p[f"{key}_accuracy"]) for x, p in zip(xs, reported) if p]
        if points:
            accuracy_axis.plot(*zip(*points), marker, label=f"{name} (paper)")
        if key == "train":  # the paper's test losses are a copy of its train losses
            points = [(x, p["train_loss"]) for x, p in zip(xs, reported) if p]
            if points:
                loss_axis.plot(*zip(*points), marker, label="train (paper)")
    accuracy_axis.set(ylabel="accuracy (%)", title="Accuracy by channels", ylim=(0, 105))
    loss_axis.set(ylabel="cross-entropy loss", title="Loss by channels")
    for axis in (accuracy_axis, loss_axis):
        axis.set_xticks(list(positions), labels)
        axis.set_xlabel("conv1/conv2 channels")
        axis.grid(alpha=0.3, axis="y")
        # below the axes: inside, it covers the tall bars (16/32 reaches 100% train accuracy)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    figure.tight_layout()
    return figure


def sweep_section(run_dir: Path, results: dict, config: dict) -> Section:
    """The sweep's table, figure and trial count, for the sweep's own report and for `reproduce`."""
    rows = results["combinations"]
    settings = KeyValues("Sweep settings", [
        ("channel combinations", ", ".join(f"{c1}/{c2}" for c1, c2 in config["channels"])),
        ("repeats (seeds)", f"{config['repeats']} (seeds {config['seed']}..{config['seed'] + config['repeats'] - 1})"),
        ("epochs, learning rate", f"{config['epochs']}, {config['lr']:g}"),
        ("batches", "full batch" if config.get("batch_size") is None else f"mini-batches of {config['batch_size']}"),
        ("split, test fraction", f"{config['split']}, {config['test_fraction']:g}"),
        ("backend", config.get("backend", "local") + (f" at {config['address']}" if config.get("address") else "")),
        ("trials, seconds", f"{len(results['trials'])}, {results['seconds']:.0f}"),
    ])
    return Section("Channel sweep (section 2.2)", [
        sweep_table(rows, config["epochs"]),
        Figure("Channel sweep", Path(run_dir) / "figures" / "channel_sweep.png",
               "bars: our mean, whiskers: sd over repeats; black markers: the paper"),
        settings,
    ])


def build_sweep_report(run_dir: Path, results: dict) -> Report:
    config = run_folder.read_settings(Path(run_dir))
    return Report("fexprune sweep", [sweep_section(run_dir, results, config)], subtitle=str(Path(run_dir).resolve()))
