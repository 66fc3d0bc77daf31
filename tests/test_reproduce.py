"""`fexprune reproduce` on tiny data: every stage, every table and figure of the paper, resume, the CLI."""

from __future__ import annotations

import json
import re

import pytest

from fexprune import paper
from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.experiments.reproduce import QUICK, ReproduceConfig, run_reproduce
from fexprune.report.build import build_run_report as build_report
from fexprune.report.reproduce import build_reproduce_report
from fexprune.run_folder import read_settings
from fexprune.tracking import Tracking


def tiny_config(data) -> ReproduceConfig:
    """Everything small: 42 images, the paper's smallest network (6/12), a few epochs."""
    return ReproduceConfig(
        data=str(data), quick=True, channels=(6, 12), sweep_channels=[(6, 12)], sweep_repeats=2, sweep_epochs=3,
        train_epochs=6, pic_epochs=60, pic_retrain_epochs=10, workers=1,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    data = write_synthetic(tmp_path_factory.mktemp("tiny"), per_class=6, size=(180, 144), progress=False)
    (data / "Angry" / "broken.png").write_bytes(b"not an image")  # must be listed as skipped
    return run_reproduce(tiny_config(data), out=tmp_path_factory.mktemp("runs") / "reproduce", progress=False)


def test_every_stage_writes_its_folder_and_the_report_has_every_table_and_figure(tiny_run):
    run_dir = tiny_run.run_dir
    for stage in ("pic", "sweep", "train", "prune"):
        assert (run_dir / stage / "results.json").is_file()
    assert set(tiny_run.timings) == {"pic", "sweep", "train", "prune"}
    report = build_report(run_dir)
    titles = [t.title for t in report.tables()]
    for expected in ("Progressive reduction", "PIC test loss", "Channel sweep", "Train loss and accuracy",
                     "Test loss and accuracy", "Kernels pruned one by one (l2, conv1)", "Test after pruning (l2)",
                     "Images per class", "Time per stage"):
        assert any(title.startswith(expected) for title in titles), expected
    assert all(f.path.is_file() for f in report.figures())
    names = {f.path.name for f in report.figures()}
    assert {"progressive.png", "channel_sweep.png", "training_curve.png", "fig6_train_loss.png",
            "fig7_train_accuracy.png", "fig8_min_importance.png", "confusion.png"} <= names


def test_single_run_reuses_a_sweep_trial_with_the_same_settings(tiny_run, tmp_path):
    """At paper settings the single run is trial 16/32 r0 of the sweep: copied, not trained twice."""
    import dataclasses

    from fexprune.experiments.reproduce import _finished_twin, _train
    from fexprune.experiments.train import TrainConfig

    sweep_dir = tiny_run.run_dir / "sweep"
    trial = sweep_dir / "c6-12_r0"
    same = TrainConfig.from_dict(read_settings(trial))
    assert _finished_twin(sweep_dir, dataclasses.replace(same, checkpoint_every=7)) == trial
    assert _finished_twin(sweep_dir, dataclasses.replace(same, epochs=same.epochs + 1)) is None

    config = dataclasses.replace(tiny_config(same.data), train_epochs=same.epochs, train_lr=same.lr,
                                 batch_size=same.batch_size).resolved()
    run_dir = tmp_path / "reproduce"
    (run_dir).mkdir()
    (run_dir / "sweep").symlink_to(sweep_dir)
    _train(config, run_dir / "train", run_dir, progress=False, tracking=Tracking())
    assert (run_dir / "train" / "results.json").read_bytes() == (trial / "results.json").read_bytes()


def test_report_puts_the_papers_numbers_beside_ours(tiny_run):
    html = tiny_run.report_html.read_text()
    markdown = tiny_run.report_md.read_text()
    for text in (markdown, html):
        assert "0.1523" in text  # PIC test loss
        assert "37.87%" in text  # the single run's test accuracy
        assert "34.32%" in text and "0.2841" in text  # test after pruning
        assert "84.01%" in text and "27.21%" in text  # the 6/12 row of the sweep table
        assert "62.64" in text and "1.9478" in text  # PIC table, training log
        assert "Test fraction used for every comparison here: 0.2" in text
    sweep = json.loads((tiny_run.run_dir / "sweep" / "results.json").read_text())["combinations"][0]
    expected = f"{100 * (sweep['test_accuracy'] - paper.CHANNEL_SWEEP[(6, 12)]['test_accuracy']):+.2f} pp"
    assert expected in markdown
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (tiny_run.run_dir / link).is_file(), link
    assert html.count("data:image/png;base64,") == len(build_report(tiny_run.run_dir).figures())
    assert "torch" in markdown and "Angry" in markdown and "Identical frames" in markdown
    assert "Skipped files (1)" in markdown and "broken.png" in markdown


def test_resume_reruns_only_unfinished_stages(tiny_run):
    run_dir = tiny_run.run_dir
    kept = {s: (run_dir / s / "results.json").stat().st_mtime_ns for s in ("pic", "sweep", "train")}
    before = json.loads((run_dir / "prune" / "results.json").read_text())["criteria"]["l2"]
    (run_dir / "prune" / "results.json").unlink()
    again = run_reproduce(ReproduceConfig(), resume=run_dir, progress=False)
    assert {s: (run_dir / s / "results.json").stat().st_mtime_ns for s in kept} == kept
    after = json.loads((run_dir / "prune" / "results.json").read_text())["criteria"]["l2"]
    assert after["test_loss"] == before["test_loss"] and after["pruned_channels"] == before["pruned_channels"]
    assert again.report_html.is_file()


def test_unfinished_stages_are_reported_as_such(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({"quick": True, **QUICK}))
    report = build_reproduce_report(tmp_path / "r", {})  # no results.json yet: the run has not finished
    text = "\n".join(b.body for s in report.sections for b in s.blocks if hasattr(b, "body"))
    assert text.count("This stage has not finished") == 4


def test_cli_rejects_bad_input_before_any_work(tmp_path, capsys):
    assert main(["reproduce", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "--data not found" in capsys.readouterr().err
    assert main(["reproduce", "--criteria", "bogus", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "unknown pruning criterion" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
