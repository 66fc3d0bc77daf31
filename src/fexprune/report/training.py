"""The training curve and log table, ours beside the paper's (section 3.2)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexprune import paper  # noqa: E402


def training_curve_figure(rows: list[dict], show_paper: bool = True):
    """Train loss and accuracy per epoch (test where evaluated), with the paper's log as markers."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [row["epoch"] for row in rows]
    loss_axis.plot(epochs, [row["train_loss"] for row in rows], label="train (ours)")
    accuracy_axis.plot(epochs, [100 * row["train_accuracy"] for row in rows], label="train (ours)")
    tested = [row for row in rows if row.get("test_loss") not in (None, "")]
    if tested:
        loss_axis.plot([r["epoch"] for r in tested], [float(r["test_loss"]) for r in tested], label="test (ours)")
        accuracy_axis.plot(
            [r["epoch"] for r in tested], [100 * float(r["test_accuracy"]) for r in tested], label="test (ours)"
        )
    if show_paper:
        log = paper.TRAINING_LOG
        loss_axis.plot([r["epoch"] for r in log], [r["train_loss"] for r in log], "ko", ms=4, label="train (paper)")
        accuracy_axis.plot(
            [r["epoch"] for r in log], [100 * r["train_accuracy"] for r in log], "ko", ms=4, label="train (paper)"
        )
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 100))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def training_log_rows(rows: list[dict], epochs: list[int]) -> list[dict]:
    """Our train loss/accuracy at the given epochs, beside the paper's where it reports that epoch."""
    by_epoch = {int(row["epoch"]): row for row in rows}
    reported = {row["epoch"]: row for row in paper.TRAINING_LOG}
    table = []
    for epoch in epochs:
        ours = by_epoch.get(epoch)
        if ours is None:
            continue
        theirs = reported.get(epoch, {})
        table.append(
            {
                "epoch": epoch,
                "train_loss": float(ours["train_loss"]),
                "train_accuracy": float(ours["train_accuracy"]),
                "paper_train_loss": theirs.get("train_loss"),
                "paper_train_accuracy": theirs.get("train_accuracy"),
            }
        )
    return table
