"""The `reproduce` report: every table of the paper with its numbers beside ours, every figure, and
what a reader needs to trust them (settings, data, versions, timings). Built from a reproduce run
folder's files alone, so it can be rebuilt at any time."""

from __future__ import annotations

import json
from pathlib import Path

from fexprune import paper, runs
from fexprune.report.tables import (
    Column, Figure, KeyValues, Report, Section, Table, Text, comparison_columns, number, text,
    with_differences,
)


def build_report(run_dir: str | Path) -> Report:
    from fexprune.experiments.reproduce import STAGES, ReproduceConfig, stage_timings, versions

    run_dir = Path(run_dir)
    config = ReproduceConfig.from_dict(runs.read_json(run_dir / "config.json"))
    train_results = _results(run_dir / "train")
    sections = [
        _summary(config, train_results),
        _pic_section(run_dir / "pic"),
        _sweep_section(run_dir / "sweep"),
        _training_section(run_dir / "train", train_results),
        _pruning_section(run_dir / "prune"),
        data_section(train_results, run_dir / "train"),
        _run_section(config, stage_timings(run_dir), versions(), STAGES),
    ]
    mode = "quick settings" if config.quick else "the paper's settings"
    return Report("fexprune: reproduction of Luan's SFEW paper", [s for s in sections if s is not None],
                  subtitle=f"{run_dir.resolve()} — {mode}")


def write_train_report(run_dir: str | Path, results: dict) -> Path:
    """report.html and report.md of one `fexprune train` run: its curve, test split, classes and data."""
    from fexprune.report.html import write_report

    run_dir = Path(run_dir)
    sections = [_training_section(run_dir, results), data_section(results, run_dir)]
    return write_report(run_dir, Report("fexprune train", [s for s in sections if s is not None], subtitle=str(run_dir.resolve())))


def _results(folder: Path) -> dict | None:
    path = folder / "results.json"
    return runs.read_json(path) if path.is_file() else None


def test_fraction_note(test_fraction: float, n_train: int | None = None, n_test: int | None = None) -> str:
    counts = f" ({n_train} train / {n_test} test images)" if n_train is not None else ""
    return (
        f"Test fraction used for every comparison here: {test_fraction:g}{counts}. The paper says it kept 20% "
        "for testing, but its accuracies are exact fractions of 169 test frames (64/169 = 37.87%, "
        "58/169 = 34.32%), that is a 25% split of its 675 frames; --test-fraction 0.25 matches its counts."
    )


def _summary(config, train_results: dict | None) -> Section:
    settings = "quick" if config.quick else "the paper's"
    batches = "full batch" if config.batch_size is None else f"mini-batches of {config.batch_size}"
    lines = [
        f"Settings: {settings} (PIC {config.pic_epochs} + {config.pic_retrain_epochs} retrain epochs; sweep "
        f"{config.sweep_repeats} repeats x {config.sweep_epochs} epochs at lr {config.sweep_lr:g}; single run "
        f"{config.train_epochs} epochs at lr {config.train_lr:g}; Adam, {batches}; pruning criteria {', '.join(config.criteria)}).",
        f"Data: {config.data or 'the built-in synthetic data set'}; PIC features: "
        f"{config.features or 'LPQ + PHOG computed from the images'}.",
    ]
    if train_results is not None:
        lines.append(test_fraction_note(config.test_fraction, train_results.get("n_train"), train_results.get("n_test")))
    else:
        lines.append(test_fraction_note(config.test_fraction))
    lines.append("Every table shows the paper's number beside ours and Δ = ours − paper (accuracies in percentage points).")
    return Section("Summary", [Text("\n\n".join(lines))])


def _missing_stage(title: str, folder: Path) -> Section:
    return Section(title, [Text(f"This stage has not finished: no {folder.name}/results.json.")])


def _pic_section(folder: Path) -> Section:
    title = "PIC: distinctiveness pruning of the 11-10-11 autoencoder (section 3.1)"
    results = _results(folder)
    if results is None:
        return _missing_stage(title, folder)
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
    setup = KeyValues("PIC setup", [
        ("train / test rows", f"{results.get('n_train')} / {results.get('n_test')}"),
        ("inputs", ", ".join(results.get("inputs", []))),
        ("missing values", str(results.get("missing", ""))),
        ("seconds", f"{results.get('seconds', 0):.1f}"),
    ])
    blocks = [table, test_table, Figure("Fig. 4: loss and minimum angle against hidden units", folder / "figures" / "progressive.png",
                                        "ours (circles) beside the paper's table (triangles)")]
    if (folder / "figures" / "angles_initial.png").is_file():
        blocks.append(Figure("Angles between the 10 hidden units after training", folder / "figures" / "angles_initial.png"))
    return Section(title, blocks + [setup])


def _sweep_section(folder: Path) -> Section:
    from fexprune.experiments.sweep import load_sweep
    from fexprune.report.sweep import sweep_section

    if _results(folder) is None:
        return _missing_stage("Channel sweep (section 2.2)", folder)
    result, config = load_sweep(folder)
    return sweep_section(result, config)


def _training_section(folder: Path, results: dict | None) -> Section:
    from fexprune.experiments.reproduce import read_csv
    from fexprune.experiments.train import table_epochs
    from fexprune.report.training import training_log_rows

    if results is None:
        return _missing_stage("Training log (section 3.2)", folder)
    channels = runs.read_json(folder / "config.json")["channels"]
    title = f"Training log of the {channels[0]}/{channels[1]} network (section 3.2)"
    if results.get("recipe", "paper") != "paper":
        title = f"Training log, --recipe {results['recipe']} (beyond the paper; its numbers beside section 3.2's)"
    metrics = read_csv(folder / "metrics.csv")
    rows = with_differences(training_log_rows(metrics, table_epochs(int(results["epochs"]))), ["train_loss", "train_accuracy"])
    log = Table(f"Train loss and accuracy ({results['epochs']} epochs)", [
        Column("epoch", "epoch", kind="key"),
        *comparison_columns("train_loss", "train loss"),
        *comparison_columns("train_accuracy", "train acc", "accuracy"),
    ], rows, "The paper logs every 100 epochs of a 700-epoch run; shorter runs are compared where the epochs meet.")
    final = with_differences([{
        "what": "after training", "test_loss": results["test_loss"], "test_accuracy": results["test_accuracy"],
        "paper_test_accuracy": paper.TRAINING_TEST_ACCURACY,
    }], ["test_loss", "test_accuracy"])
    test = Table("Test loss and accuracy", [
        Column("what", "", kind="key"), Column("test_loss", "test loss", number(4)),
        *comparison_columns("test_accuracy", "test acc", "accuracy"),
    ], final, test_fraction_note(results["test_fraction"], results.get("n_train"), results.get("n_test")))
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
    training = results.get("training") or {}
    if training.get("recipe") == "best":  # beyond the paper: what the best recipe's network was
        shape = training["architecture"]
        blocks.append(KeyValues("Best recipe", [
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
    from fexprune.models.views import scored_views

    views = scored_views(training)
    return ", ".join(views) + (" (probabilities averaged; predict does the same)" if len(views) > 1 else "")


def _pruning_section(folder: Path) -> Section:
    from fexprune.experiments.reproduce import read_csv
    from fexprune.report.pruning import FIGURES, pruning_table_rows

    title = "Importance pruning of conv1 kernels (section 3.3)"
    results = _results(folder)
    if results is None:
        return _missing_stage(title, folder)
    steps = read_csv(folder / "metrics.csv")
    blocks: list = []
    limit = runs.read_json(folder / "config.json").get("max_loss_increase", paper.PRUNING_MAX_LOSS_INCREASE)
    for name, summary in results["criteria"].items():
        rows = with_differences(pruning_table_rows(steps, name, "conv1"), ["train_loss", "train_accuracy", "min_importance"])
        for row in rows:
            row["over_limit"] = "over the limit: undone" if row["over_limit"] else ""
        blocks.append(Table(f"Kernels pruned one by one ({name})", [
            Column("pruned", "pruned", kind="key"), Column("channel", "kernel"),
            *comparison_columns("train_loss", "train loss"),
            *comparison_columns("train_accuracy", "train acc", "accuracy"),
            *comparison_columns("min_importance", "min importance"),
            Column("over_limit", "stop rule", text),
        ], rows, f"Stop before the step that raises the train loss by more than {limit} over the unpruned loss. "
                 "min importance: the least importance among the kernels left after the step."))
        after = with_differences([
            {"what": "unpruned", "test_loss": results["unpruned"]["test_loss"], "test_accuracy": results["unpruned"]["test_accuracy"]},
            {"what": f"after pruning {summary['kernels_pruned']} kernel{'' if summary['kernels_pruned'] == 1 else 's'}", "test_loss": summary["test_loss"],
             "test_accuracy": summary["test_accuracy"], "paper_test_loss": paper.PRUNING_TEST["test_loss"],
             "paper_test_accuracy": paper.PRUNING_TEST["test_accuracy"]},
        ], ["test_loss", "test_accuracy"])
        blocks.append(Table(f"Test after pruning ({name})", [
            Column("what", "", kind="key"), *comparison_columns("test_loss", "test loss"),
            *comparison_columns("test_accuracy", "test acc", "accuracy"),
        ], after))
    for filename, (_, _, caption) in FIGURES.items():
        blocks.append(Figure(caption, folder / "figures" / filename))
    if len(results["criteria"]) > 1 and (folder / "figures" / "criteria_comparison.png").is_file():
        blocks.append(Figure("Criteria compared on the same model", folder / "figures" / "criteria_comparison.png"))
    return Section(title, blocks)


def data_section(results: dict | None, folder: Path | None = None) -> Section | None:
    """The data a run saw: folder, classes, face crops (with `folder`'s crop sheet), skipped and duplicate files."""
    if results is None or "data" not in results:
        return None
    data = results["data"]
    counts = Table("Images per class", [Column("class", "class", kind="key"), Column("images", "images")],
                   [{"class": name, "images": count} for name, count in data["counts"].items()]
                   + [{"class": "total", "images": data["n_images"]}],
                   f"{data['n_movies']} movies, {data['n_clips']} clips; layout {data['layout']}; "
                   f"split {results.get('split')}: {results.get('n_train')} train / {results.get('n_test')} test.")
    blocks: list = [KeyValues("Data set", [("folder", data["root"]), ("image size (w x h)", "x".join(map(str, data["image_size"] or [])))]), counts]
    if data.get("face_crop"):
        blocks += _face_blocks(data["face_crop"])
        sheet = folder / "figures" / "face_crops.png" if folder is not None else None
        if sheet is not None and sheet.is_file():
            blocks.append(Figure("Face crops as the network saw them", sheet,
                                 "a spread of crops for each way a frame was cut; look for frames that are not faces"))
    skipped = data.get("skipped", [])
    if skipped:
        blocks.append(Table(f"Skipped files ({len(skipped)})", [Column("path", "file", kind="key"), Column("reason", "reason", kind="key")],
                            skipped[:50], "first 50 shown; all are in train/results.json" if len(skipped) > 50 else ""))
    else:
        blocks.append(Text("Skipped files: none; every file found was read."))
    duplicates = [{"paths": ", ".join(d["paths"]), "classes": ", ".join(d["classes"])} for d in data.get("duplicates", [])]
    if duplicates:
        blocks.append(Table(f"Identical frames under different classes ({len(duplicates)})",
                            [Column("paths", "files", kind="key"), Column("classes", "classes", kind="key")], duplicates,
                            "Kept in the training split only, so no test frame has a twin in training."))
    else:
        blocks.append(Text("Identical frames under different classes: none."))
    return Section("Data", blocks)


def _face_blocks(faces: dict) -> list:
    """How each frame was cut: its own detected face, a clip neighbour's box, or the typical face region."""
    if faces.get("n_layout_aligned"):
        return [Text(f"Face crops: the layout holds faces already cut and aligned by the data set's makers; all "
                     f"{faces['n_layout_aligned']} are used whole, not detected and cut again.")]
    by = ", ".join(f"{name} {count}" for name, count in faces["by_detector"].items())
    counts = [("face found in the frame", f"{faces['n_detected']} of {faces['n_images']} ({100 * faces['detection_rate']:.1f}%)")]
    if faces.get("n_clip_neighbour"):  # only where the chain has the clip-neighbour step and it fired
        counts.append(("cut at a clip neighbour's face", str(faces["n_clip_neighbour"])))
    counts += [("cut at the typical face region", str(faces["n_fallback"])), ("by detector", by)]
    if faces.get("n_turned") or faces.get("eye_align"):
        counts.append(("cut turned level (--eye-align's eye pair, or haar-rotated)", f"{faces['n_turned']} of {faces['n_images']}"))
    blocks: list = [KeyValues("Face crops", counts)]
    for key, title in (("clip_neighbour", "Frames cut at a clip neighbour's face"), ("fallback", "Frames cut at the typical face region")):
        paths = faces.get(key) or []
        if paths:
            blocks.append(Table(f"{title} ({len(paths)})", [Column("path", "file", kind="key")], [{"path": p} for p in paths[:50]],
                                "first 50 shown; all are in results.json" if len(paths) > 50 else ""))
    return blocks


def _run_section(config, timings: dict[str, float], versions: dict[str, str], stages) -> Section:
    import dataclasses

    settings = [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in dataclasses.asdict(config).items()]
    timing_rows = [{"stage": s, "seconds": timings.get(s)} for s in stages]
    timing_rows.append({"stage": "total", "seconds": sum(v for v in timings.values())})
    return Section("Configuration, versions and timings", [
        KeyValues("Configuration (config.json)", settings),
        KeyValues("Versions", list(versions.items())),
        Table("Time per stage", [Column("stage", "stage", kind="key"), Column("seconds", "seconds", number(1))], timing_rows),
    ])

