"""fexprune train: learning on synthetic data, the run folder, checkpoints and resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from fexprune import runs
from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.training import loop as loop_module  # the paper recipe's training loop
from fexprune.experiments.train import TrainConfig, train
from fexprune.inference.trained_run import load_run
from fexprune.report.training import table_epochs


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth"), per_class=20, seed=3, size=(180, 144), progress=False)


def quick_config(data, **overrides) -> TrainConfig:
    values = dict(data=str(data), channels=(6, 12), epochs=8, lr=2e-3, seed=1, checkpoint_every=3, eval_every=2)
    values.update(overrides)
    return TrainConfig(**values)


def test_short_training_beats_chance(tiny_data, tmp_path):
    result = train(quick_config(tiny_data, epochs=60, channels=(8, 16)), out=tmp_path / "run", progress=False)
    chance = 1 / 7
    assert result.results["train_accuracy"] > 0.6
    assert result.results["test_accuracy"] > chance + 0.15
    assert result.metrics[0]["epoch"] == 0 and result.metrics[-1]["epoch"] == 60
    assert result.metrics[-1]["train_loss"] < result.metrics[0]["train_loss"]


def test_run_folder_holds_everything(tiny_data, tmp_path):
    result = train(quick_config(tiny_data), out=tmp_path / "run", progress=False)
    folder = result.run_dir
    for name in ("config.json", "metrics.csv", "results.json", "model.pt", "figures/training_curve.png"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoint.pt").exists()
    results = json.loads((folder / "results.json").read_text())
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "epochs", "seconds", "n_train", "n_test", "skipped"):
        assert key in results
    assert results["n_train"] + results["n_test"] == 140
    lines = (folder / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 9  # header + epochs 0..8
    report = (folder / "report.md").read_text()
    for setting in ("**recipe**: paper", "**learning rate**: 0.002", "**batch size**: full batch", "**epochs**: 8",
                    "**seed**: 1", "**split, test fraction**: random, 0.2", "**face crop**: no (whole frames)",
                    f"**data**: {tiny_data}"):
        assert setting in report, setting
    assert "**Not like for like with the paper**" in report and "8, the paper trained 700" in report
    assert "Not like for like with the paper: epochs 8, the paper trained 700" in report  # beside the log table


def test_settings_say_where_the_paper_comparison_is_not_like_for_like():
    from fexprune.report.training import settings_items, unlike_the_paper

    paper_like = {"data": "/sfew", "epochs": 700, "lr": 3e-5, "split": "random", "test_fraction": 0.25}
    assert unlike_the_paper(paper_like) == []
    builtin = {**paper_like, "data": None, "split": "movie", "face_crop": True, "detectors": ["haar-default"]}
    notes = dict(unlike_the_paper(builtin))
    assert "built-in synthetic data, not SFEW" in notes["data"] and "movie" in notes["split"]
    items = dict(settings_items(builtin))
    assert items["data"] == "built-in synthetic data" and items["face crop"] == "yes, margin 0.2, detectors haar-default"


def test_same_seed_same_numbers(tiny_data, tmp_path):
    first = train(quick_config(tiny_data), out=tmp_path / "a", progress=False).results
    second = train(quick_config(tiny_data), out=tmp_path / "b", progress=False).results
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
        assert first[key] == second[key]


def test_new_run_never_overwrites(tiny_data, tmp_path):
    first = train(quick_config(tiny_data, epochs=2), out=tmp_path / "run", progress=False)
    second = train(quick_config(tiny_data, epochs=2), out=tmp_path / "run", progress=False)
    assert first.run_dir != second.run_dir
    assert (first.run_dir / "results.json").is_file()


def _weights(run_dir):
    return runs.load_checkpoint(run_dir / "model.pt")["state_dict"]


def test_resume_after_crash_equals_uninterrupted(tiny_data, tmp_path, monkeypatch):
    reference = train(quick_config(tiny_data), out=tmp_path / "reference", progress=False)

    real_save = runs.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        raise SystemExit("killed after first checkpoint")

    monkeypatch.setattr(runs, "save_checkpoint", save_then_die)
    with pytest.raises(SystemExit):
        train(quick_config(tiny_data), out=tmp_path / "crashed", progress=False)
    monkeypatch.setattr(runs, "save_checkpoint", real_save)
    assert runs.load_checkpoint(tmp_path / "crashed" / "checkpoint.pt")["epochs_done"] == 3

    stale = tmp_path / "crashed" / ".metrics.csv.x1y2.tmp"  # a write the crash cut short
    stale.write_text("epoch,train_lo")

    resumed = train(TrainConfig(), resume=tmp_path / "crashed", progress=False)
    for name, tensor in _weights(reference.run_dir).items():
        assert torch.equal(tensor, _weights(resumed.run_dir)[name]), name
    assert resumed.metrics == reference.metrics
    assert not stale.exists()


def test_ctrl_c_writes_checkpoint_then_resumes(tiny_data, tmp_path, monkeypatch):
    reference = train(quick_config(tiny_data, batch_size=32), out=tmp_path / "reference", progress=False)
    real_fit = loop_module.fit

    def fit_with_ctrl_c(*args, on_epoch, **kwargs):
        def on_epoch_then_interrupt(row):
            on_epoch(row)
            if row["epoch"] == 4:
                os.kill(os.getpid(), signal.SIGINT)

        return real_fit(*args, on_epoch=on_epoch_then_interrupt, **kwargs)

    monkeypatch.setattr(loop_module, "fit", fit_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(quick_config(tiny_data, batch_size=32), out=tmp_path / "stopped", progress=False)
    monkeypatch.setattr(loop_module, "fit", real_fit)
    assert (tmp_path / "stopped" / "checkpoint.pt").is_file()

    resumed = train(TrainConfig(), resume=tmp_path / "stopped", progress=False)
    for name, tensor in _weights(reference.run_dir).items():
        assert torch.equal(tensor, _weights(resumed.run_dir)[name]), name


def test_load_run_gives_back_model_and_split(tiny_data, tmp_path):
    result = train(quick_config(tiny_data), out=tmp_path / "run", progress=False)
    loaded = load_run(result.run_dir)
    assert len(loaded.x_train) == result.results["n_train"]
    from fexprune.training.loop import evaluate

    loss, accuracy = evaluate(loaded.model, loaded.x_test, loaded.y_test)
    assert loss == pytest.approx(result.results["test_loss"], abs=1e-6)
    assert accuracy == pytest.approx(result.results["test_accuracy"])


def test_a_reopened_run_takes_the_split_it_recorded(tiny_data, tmp_path, monkeypatch):
    """split.json, not the split code of the day, says which frames a reopened run was tested on."""
    from fexprune.errors import InputError

    result = train(quick_config(tiny_data, epochs=2), out=tmp_path / "run", progress=False)
    record = json.loads((result.run_dir / "split.json").read_text())
    assert len(record["train"]) == result.results["n_train"] and len(record["test"]) == result.results["n_test"]
    monkeypatch.setattr("fexprune.data.prepared.split_indices", lambda *a: pytest.fail("the split was drawn again"))
    loaded = load_run(result.run_dir)
    tested = [s.path.relative_to(loaded.data.image_set.root).as_posix() for s in (loaded.data.image_set.samples[i] for i in loaded.data.test_index)]
    assert tested == record["test"]
    record["test"][0] = "Angry/not-there.png"
    (result.run_dir / "split.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="1 file.* no longer holds .Angry/not-there.png") as error:
        load_run(result.run_dir)
    assert error.value.path == result.run_dir / "split.json"
    (result.run_dir / "split.json").write_text("[]")
    with pytest.raises(InputError, match="is not a split record"):
        load_run(result.run_dir)


def test_cli_train_prints_table_and_rejects_missing_data(tiny_data, tmp_path, capsys):
    code = main(["train", "--data", str(tiny_data), "--epochs", "3", "--channels", "4,8", "--quiet", "--out", str(tmp_path / "r")])
    assert code == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "run folder" in out
    code = main(["train", "--data", str(tmp_path / "nowhere"), "--epochs", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_table_epochs():
    assert table_epochs(700) == [0, 100, 200, 300, 400, 500, 600, 700]
    assert table_epochs(7)[0] == 0 and table_epochs(7)[-1] == 7


@pytest.mark.parametrize("command", ["train", "sweep", "reproduce", "baseline"])
def test_test_fraction_outside_0_1_is_refused_by_every_command(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--test-fraction", "1.5"])
    assert stopped.value.code == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def _bar_text(rows) -> str:
    import io

    from tqdm import tqdm

    from fexprune.experiments.train import epoch_progress

    out = io.StringIO()
    bar = tqdm(total=len([r for r in rows if r["epoch"] > 0]), file=out, mininterval=0, ascii=True)
    on_epoch = epoch_progress(bar)
    for row in rows:
        on_epoch(row)
    return out.getvalue().split("\r")[-1]


def test_best_recipe_progress_bar_shows_no_validation_it_does_not_have():
    """The best recipe without early stopping keeps no validation part: its rows carry no val scores
    (transfer's carry NaN), and the bar must not show val=0.000 or val=nan."""
    from fexprune.recipes.best import BestRecipe, fit_best

    torch.manual_seed(0)
    x, y = torch.rand(14, 1, 24, 20), torch.arange(14) % 7
    empty = x[:0], y[:0]
    _, rows, _ = fit_best(x, y, *empty, n_classes=7, epochs=2, lr=1e-3, batch_size=8, seed=0,
                          recipe=BestRecipe(channels=(2, 2), members=1, tta=False))
    assert not any("val_accuracy" in row for row in rows)
    shown = _bar_text(rows)
    assert "val" not in shown and f"loss={rows[-1]['train_loss']:.4f}" in shown
    nan_val = [{**row, "val_loss": float("nan"), "val_accuracy": float("nan")} for row in rows]
    assert "val" not in _bar_text(nan_val)
    with_val = [{**row, "val_accuracy": 0.5} for row in rows]
    assert "val=0.500" in _bar_text(with_val)


def test_progress_bar_shows_the_epoch_it_counts():
    """The numbers beside "2/2" are epoch 2's, not epoch 1's."""
    rows = [{"epoch": e, "train_loss": 2.0 - e / 10, "train_accuracy": e / 10} for e in range(3)]
    shown = _bar_text(rows)
    assert "2/2" in shown and "loss=1.8000" in shown, shown
