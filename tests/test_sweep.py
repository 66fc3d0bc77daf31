"""The channel sweep: trial plan, aggregation, a parallel run on tiny data, resume, the CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.experiments.sweep import SweepConfig, aggregate, longest_first, plan_trials, run_sweep


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("tiny"), per_class=6, size=(180, 144), progress=False)


def tiny_config(data, **changes) -> SweepConfig:
    values = dict(channels=[(2, 4)], repeats=2, epochs=3, lr=1e-3, data=str(data), seed=7, workers=2)
    return SweepConfig(**(values | changes))


def test_plan_gives_every_repeat_its_own_seed_shared_across_combinations():
    trials = plan_trials(SweepConfig(channels=[(16, 32), (6, 12)], repeats=3, seed=10))
    assert [t.name for t in trials] == ["c16-32_r0", "c16-32_r1", "c16-32_r2", "c6-12_r0", "c6-12_r1", "c6-12_r2"]
    assert [t.config.seed for t in trials] == [10, 11, 12, 10, 11, 12]
    assert {t.config.channels for t in trials} == {(16, 32), (6, 12)}
    assert all(t.config.epochs == 700 and t.config.lr == 3e-5 for t in trials)  # the paper's settings by default


def test_pool_gets_the_longest_trials_first():
    trials = plan_trials(SweepConfig(repeats=2))  # the paper's grid: 16/32, 12/24, 20/40, 6/12
    order = [t.channels for t in longest_first(trials)]
    assert order == [(20, 40)] * 2 + [(16, 32)] * 2 + [(12, 24)] * 2 + [(6, 12)] * 2
    one_epoch = [dataclasses.replace(t, config=dataclasses.replace(t.config, epochs=1)) for t in trials[:1]]
    mixed = one_epoch + [t for t in trials if t.channels == (6, 12)]
    assert longest_first(mixed)[-1] == one_epoch[0]  # a 1-epoch 16/32 trial is shorter than 700 of 6/12


def test_aggregate_gives_mean_and_sample_std_per_combination():
    rows = [
        {"channels": (2, 4), "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 2.0, "test_accuracy": 0.2},
        {"channels": (2, 4), "train_loss": 3.0, "train_accuracy": 0.7, "test_loss": 2.0, "test_accuracy": 0.4},
        {"channels": (1, 1), "train_loss": 5.0, "train_accuracy": 0.1, "test_loss": 6.0, "test_accuracy": 0.0},
    ]
    first, second = aggregate(rows)
    assert first["channels"] == (2, 4) and first["n"] == 2
    assert first["train_loss"] == pytest.approx(2.0) and first["train_loss_std"] == pytest.approx(2 ** 0.5)
    assert first["test_accuracy"] == pytest.approx(0.3) and first["test_loss_std"] == 0.0
    assert second["n"] == 1 and second["train_loss_std"] == 0.0


def test_parallel_sweep_writes_trials_and_table_and_resume_reruns_only_unfinished(tiny_data, tmp_path):
    result = run_sweep(tiny_config(tiny_data), out=tmp_path / "sweep", progress=False)
    run_dir = result.run_dir
    assert run_dir == tmp_path / "sweep"
    for name in ("c2-4_r0", "c2-4_r1"):
        assert (run_dir / name / "results.json").is_file() and (run_dir / name / "model.pt").is_file()
    first, second = result.trials
    assert (first["seed"], second["seed"]) == (7, 8)
    assert first["test_loss"] != second["test_loss"]  # own initial weights and own split
    (row,) = result.rows
    assert row["n"] == 2 and row["test_loss"] == pytest.approx((first["test_loss"] + second["test_loss"]) / 2)
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["combinations"][0]["test_accuracy"] == pytest.approx(row["test_accuracy"])
    assert saved["data"]["n_images"] == 42
    assert "16/32" not in (run_dir / "report.md").read_text()  # only the swept combination
    assert "2/4" in (run_dir / "report.md").read_text() and (run_dir / "figures" / "channel_sweep.png").is_file()

    # Interrupt-like state: trial r1 lost its results. Resume must keep r0 untouched and redo r1 exactly.
    kept = (run_dir / "c2-4_r0" / "results.json").stat().st_mtime_ns
    (run_dir / "c2-4_r1" / "results.json").unlink()
    resumed = run_sweep(SweepConfig(), resume=run_dir, progress=False)  # the config comes from the folder
    assert (run_dir / "c2-4_r0" / "results.json").stat().st_mtime_ns == kept
    assert resumed.trials[1]["test_loss"] == second["test_loss"]
    assert resumed.trials[1]["train_loss"] == second["train_loss"]
    assert [t["trial"] for t in resumed.trials] == ["c2-4_r0", "c2-4_r1"]


def test_cli_prints_the_table_and_rejects_bad_input(tiny_data, tmp_path, capsys):
    code = main(["sweep", "--channels", "2,4", "--repeats", "1", "--epochs", "2", "--lr", "1e-3",
                 "--data", str(tiny_data), "--workers", "1", "--out", str(tmp_path / "s"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "2/4" in printed and "test acc (paper)" in printed
    assert (tmp_path / "s" / "report.html").is_file()
    assert main(["sweep", "--address", "x:1", "--data", str(tiny_data), "--out", str(tmp_path / "t")]) == 2
    assert "--address only applies" in capsys.readouterr().err
    assert main(["sweep", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "u"), "--quiet"]) == 2


def test_sweep_figure_legend_covers_no_bar_and_stays_in_the_figure():
    from fexprune.report.sweep import sweep_figure

    rows = [{"channels": [c1, c2], **{f"{k}_{m}": v for k in ("train", "test") for m, v in
             (("accuracy", 1.0 if k == "train" else 0.4), ("accuracy_std", 0.0), ("loss", 0.1), ("loss_std", 0.0))}}
            for c1, c2 in ((4, 8), (8, 16), (16, 32))]
    figure = sweep_figure(rows)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    whole = figure.bbox
    for axis in figure.axes:
        legend = axis.get_legend().get_window_extent(renderer)
        assert whole.x0 <= legend.x0 and legend.x1 <= whole.x1 and whole.y0 <= legend.y0 and legend.y1 <= whole.y1
        for bar in axis.patches:
            assert not legend.overlaps(bar.get_window_extent(renderer))
