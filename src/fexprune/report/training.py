"""A train run's report: the training curve and log table, ours beside the paper's (section 3.2), its test
split by class, and how its test images were scored."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fexprune import paper, run_folder, runs  # noqa: E402
from fexprune.models.views import scored_views
from fexprune.report.data import data_section  # noqa: E402
from fexprune.report.intervals import wilson, wilson_errors  # noqa: E402
from fexprune.report.tables import (  # noqa: E402
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


def training_curve_figure(rows: list[dict], show_paper: bool = True, n_test: int | None = None):
    """Train loss and accuracy per epoch (test where evaluated), with the paper's log as markers where
    its epochs fall inside this run's; the axes span this run's epochs, accuracy the whole 0-100%. With
    `n_test`, the test accuracy's 95% Wilson interval is shaded: how much n images leave it uncertain."""
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [int(row["epoch"]) for row in rows]
    loss_axis.plot(epochs, [float(row["train_loss"]) for row in rows], label="train (ours)")
    accuracy_axis.plot(epochs, [100 * float(row["train_accuracy"]) for row in rows], label="train (ours)")
    tested = [row for row in rows if row.get("test_loss") not in (None, "")]
    if tested:
        style = "o-" if len(tested) == 1 else "-"  # a lone point has no line to show
        loss_axis.plot([int(r["epoch"]) for r in tested], [float(r["test_loss"]) for r in tested], style, label="test (ours)")
        tested_epochs, tested_accuracy = [int(r["epoch"]) for r in tested], [float(r["test_accuracy"]) for r in tested]
        line, = accuracy_axis.plot(tested_epochs, [100 * a for a in tested_accuracy], style,
                                   label="test (ours)" + (f", 95% interval for n = {n_test}" if n_test else ""))
        if n_test and len(tested) > 1:
            bounds = [wilson(a, n_test) for a in tested_accuracy]
            accuracy_axis.fill_between(tested_epochs, [100 * low for low, _ in bounds], [100 * high for _, high in bounds],
                                       color=line.get_color(), alpha=0.2, linewidth=0)
        elif n_test:
            accuracy_axis.errorbar(tested_epochs, [100 * a for a in tested_accuracy], yerr=wilson_errors(tested_accuracy, n_test, 100),
                                   fmt="none", ecolor=line.get_color(), capsize=4)
    first, last = (min(epochs), max(epochs)) if epochs else (0, 1)
    log = [r for r in paper.TRAINING_LOG if first <= r["epoch"] <= last] if show_paper else []
    if log:
        loss_axis.plot([r["epoch"] for r in log], [r["train_loss"] for r in log], "ko", ms=4, label="train (paper)")
        accuracy_axis.plot(
            [r["epoch"] for r in log], [100 * r["train_accuracy"] for r in log], "ko", ms=4, label="train (paper)"
        )
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 100))
    margin = max(0.5, 0.02 * (last - first))  # room for the markers at both ends
    for axis in (loss_axis, accuracy_axis):
        axis.set_xlim(first - margin, last + margin)
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


def table_epochs(epochs: int) -> list[int]:
    """The epochs the paper's training table shows: every 100, or 8 evenly spaced for short runs."""
    if epochs >= 200 and epochs % 100 == 0:
        return list(range(0, epochs + 1, 100))
    return sorted({int(round(e)) for e in np.linspace(0, epochs, 8)})


def test_fraction_note(test_fraction: float, n_train: int | None = None, n_test: int | None = None) -> str:
    counts = f" ({n_train} train / {n_test} test images)" if n_train is not None else ""
    return (
        f"Test fraction used for every comparison here: {test_fraction:g}{counts}. The paper says it kept 20% "
        "for testing, but its accuracies are exact fractions of 169 test frames (64/169 = 37.87%, "
        "58/169 = 34.32%), that is a 25% split of its 675 frames; --test-fraction 0.25 matches its counts."
    )


def training_section(folder: Path, results: dict) -> Section:
    config = run_folder.read_settings(folder)
    unlike = unlike_the_paper(config)
    caveat = (" Not like for like with the paper: " + "; ".join(f"{k} {v}" for k, v in unlike) + ".") if unlike else ""
    training = results.get("training") or {}
    if "architecture" in training or "channels" not in config:  # a recipe with a network of its own
        title = f"Training log, --recipe {results['recipe']} (beyond the paper; its numbers beside section 3.2's)"
    else:  # the paper's CNN of the spec's channels
        channels = config["channels"]
        title = f"Training log of the {channels[0]}/{channels[1]} network (section 3.2)"
    metrics = runs.read_csv(folder / "metrics.csv")
    rows = with_differences(training_log_rows(metrics, table_epochs(int(results["epochs"]))), ["train_loss", "train_accuracy"])
    log = Table(f"Train loss and accuracy ({results['epochs']} epochs)", [
        Column("epoch", "epoch", kind="key"),
        *comparison_columns("train_loss", "train loss"),
        *comparison_columns("train_accuracy", "train acc", "accuracy"),
    ], rows, "The paper logs every 100 epochs of a 700-epoch run; shorter runs are compared where the epochs meet." + caveat)
    final = with_differences([{
        "what": "after training", "test_loss": results["test_loss"], "test_accuracy": results["test_accuracy"],
        "paper_test_accuracy": paper.TRAINING_TEST_ACCURACY,
    }], ["test_loss", "test_accuracy"])
    test = Table("Test loss and accuracy", [
        Column("what", "", kind="key"), Column("test_loss", "test loss", number(4)),
        *comparison_columns("test_accuracy", "test acc", "accuracy"),
    ], final, test_fraction_note(results["test_fraction"], results.get("n_train"), results.get("n_test")) + caveat)
    blocks = [log, test, Figure("Training curve", folder / "figures" / "training_curve.png",
                                "train and test loss and accuracy per epoch; black dots: the paper's log")]
    if "macro_f1" in results:  # beyond the paper: how the errors spread over the classes
        per_class = ", ".join(f"{name} {'-' if value is None else f'{100 * value:.1f}%'}"  # None: no test frame of the class
                              for name, value in results["per_class_accuracy"].items())
        blocks.append(KeyValues("Test split by class", [
            ("protocol", str(results["protocol"])),
            ("macro-F1", f"{results['macro_f1']:.3f}"),
            ("accuracy per class", per_class),
        ]))
    shape = training.get("architecture")
    if isinstance(shape, dict) and shape.get("architecture") == "best":  # beyond the paper: a BestCNN (models/best_cnn.py)
        blocks.append(KeyValues(f"{str(training.get('recipe', results.get('recipe'))).capitalize()} recipe", [
            ("network", f"conv blocks {'/'.join(map(str, shape['channels']))}, last map {shape['pooled'][0]}x{shape['pooled'][1]}"
                        + (", HOG branch" if shape.get("hog") else "")),
            ("members", f"{shape['members']} (probabilities averaged)" if shape.get("members", 1) > 1 else "1"),
            ("trained on", f"{training['n_fit']} frames" + (f", {training['n_validation']} kept for early stopping" if training["n_validation"] else "")),
            ("test images scored", scoring_summary(training)),
        ]))
    if "provenance" in results:  # --recipe transfer: not trained from scratch
        blocks.append(KeyValues("Pretrained weights", [
            ("provenance", str(results["provenance"])),
            ("zero-shot test accuracy", f"{100 * results['zero_shot_test_accuracy']:.1f}% (FER2013 classifier, no training)"),
        ]))
    if (folder / "figures" / "confusion.png").is_file():
        blocks.append(Figure("Confusion matrix", folder / "figures" / "confusion.png", "test split, rows: true class"))
    return Section(title, blocks)


def scoring_summary(training: dict) -> str:
    """How the best recipe's test accuracy was measured: which views of each test image were averaged."""
    views = scored_views(training)
    return ", ".join(views) + (" (probabilities averaged; predict does the same)" if len(views) > 1 else "")


def data_name(config: dict) -> str:
    return str(config["data"]) if config.get("data") else "built-in synthetic data"


def settings_items(config: dict) -> list[tuple[str, str]]:
    """A train run's settings as its spec keeps them, in words."""
    batch = config.get("batch_size")
    if config.get("face_crop"):
        detectors = ", ".join(config["detectors"]) if config.get("detectors") else "the default chain"
        faces = f"yes, margin {config.get('face_margin', 0.2):g}, detectors {detectors}" + (", eyes levelled" if config.get("eye_align") else "")
    else:
        faces = "no (whole frames)"
    return [
        ("recipe", str(config.get("recipe", "paper"))),
        ("learning rate", f"{config['lr']:g}"),
        ("batch size", "full batch (one step per epoch)" if batch is None else str(batch)),
        ("epochs", str(config["epochs"])),
        ("seed", str(config.get("seed"))),
        ("split, test fraction", f"{config.get('split', 'random')}, {config.get('test_fraction', 0.2):g}"),
        ("face crop", faces),
        ("data", data_name(config)),
    ]


def unlike_the_paper(config: dict) -> list[tuple[str, str]]:
    """Where this run's comparison with the paper is not like for like, and why."""
    notes = []
    if int(config["epochs"]) != 700:
        notes.append(("epochs", f"{config['epochs']}, the paper trained 700: its log is compared only at the epochs both have"))
    if not config.get("data"):
        notes.append(("data", "the built-in synthetic data, not SFEW: the paper's numbers are beside ours for their form only"))
    if config.get("split", "random") != "random" or float(config.get("test_fraction", 0.2)) not in (0.2, 0.25):
        notes.append(("split", f"{config.get('split')} with test fraction {config.get('test_fraction'):g}; the paper "
                               "split its frames at random, 0.2 by its text (0.25 by its counts)"))
    return notes


def settings_section(config: dict) -> Section:
    blocks: list = [KeyValues("Settings (the run's spec)", settings_items(config))]
    notes = unlike_the_paper(config)
    if notes:
        blocks.append(KeyValues("Not like for like with the paper", notes))
    return Section("Settings", blocks)


def build_train_report(run_dir: str | Path, results: dict) -> Report:
    """One `fexprune train` run: its settings, curve, test split, classes and data."""
    run_dir = Path(run_dir)
    config = run_folder.read_settings(run_dir)
    sections = [settings_section(config), training_section(run_dir, results), data_section(results, run_dir)]
    return Report("fexprune train", [s for s in sections if s is not None], subtitle=str(run_dir.resolve()))
