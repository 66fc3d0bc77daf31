"""A finished run's spec is enough to run it again: `fexprune run` / `fexprune.run` hand any kind's spec to that
kind's experiment (fexprune.experiments.runner), and the new run folder states the same spec and, on the
same seed, gives the same numbers."""

from __future__ import annotations

import json

import pytest
import torch

import fexprune
from data_trees import write_feature_table
from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError
from fexprune.kinds import KINDS


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Runs of several kinds made by the command line on small data: {kind: run folder}."""
    root = tmp_path_factory.mktemp("rerun")
    images = write_synthetic(root / "data", per_class=4, size=(64, 48), progress=False, duplicates=0)
    table = root / "sfew.xlsx"
    write_feature_table(table)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the reruns below compare numbers to 1e-6
    try:
        common = ["--quiet", "--no-tensorboard"]
        assert main(["train", "--data", str(images), "--channels", "2,4", "--epochs", "2",
                     *common, "--out", str(root / "train")]) == 0
        assert main(["prune", "--run", str(root / "train"), "--sample-size", "4", *common,
                     "--out", str(root / "prune")]) == 0
        assert main(["prune-curve", "--run", str(root / "train"), "--curve", "0.3", "--finetune", "1",
                     "--scratch-epochs", "1", "--sensitivity", "0.5", *common,
                     "--out", str(root / "curve")]) == 0
        assert main(["baseline", "--data", str(images), *common, "--out", str(root / "baseline")]) == 0
        assert main(["sweep", "--data", str(images), "--channels", "2,4", "--repeats", "1", "--epochs", "1",
                     "--workers", "1", *common, "--out", str(root / "sweep")]) == 0
        assert main(["pic", "--features", str(table), "--epochs", "20", "--retrain-epochs", "2", *common,
                     "--out", str(root / "pic")]) == 0
    finally:
        torch.set_num_threads(threads)
    return {kind: root / folder for kind, folder in
            (("train", "train"), ("prune", "prune"), ("prune-curve", "curve"), ("baseline", "baseline"), ("pic", "pic"), ("sweep", "sweep"))}


NUMBERS = {"train": ("test_accuracy", "test_loss", "train_loss"), "baseline": ("test_accuracy",),
           "prune": (), "prune-curve": (), "pic": (), "sweep": ()}


@pytest.mark.parametrize("kind", ["train", "prune", "prune-curve", "baseline", "pic", "sweep"])
def test_a_runs_spec_runs_again_to_the_same_spec_and_numbers(made, kind, tmp_path):
    runs = made
    first = fexprune.open_run(runs[kind])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = fexprune.run(runs[kind], out=tmp_path, progress=False, tensorboard=False)
    finally:
        torch.set_num_threads(threads)
    assert again.kind == kind and again.path.parent == tmp_path
    assert again.spec == first.spec
    for key in NUMBERS[kind]:
        assert again.results[key] == pytest.approx(first.results[key], abs=1e-6), key
    if kind == "prune":
        assert again.results["criteria"]["l2"]["test_accuracy"] == pytest.approx(first.results["criteria"]["l2"]["test_accuracy"], abs=1e-6)
    if kind == "prune-curve":
        assert again.metrics["test_accuracy"].tolist() == pytest.approx(first.metrics["test_accuracy"].tolist(), abs=1e-6)
    if kind == "sweep":
        assert again.results["trials"][0]["test_accuracy"] == pytest.approx(first.results["trials"][0]["test_accuracy"], abs=1e-6)
    if kind == "pic":
        assert again.metrics["test_loss"].tolist() == pytest.approx(first.metrics["test_loss"].tolist(), abs=1e-6)


def test_every_kind_names_the_module_that_runs_it():
    import importlib

    for name, kind in KINDS.items():
        assert kind.experiment, name
        assert callable(importlib.import_module(kind.experiment).run), name


def test_the_command_runs_a_spec_on_more_seeds_and_compare_groups_them(made, tmp_path, capsys):
    runs = made
    assert main(["run", str(runs["train"]), "--seed", "1", "2", "--quiet", "--no-tensorboard", "--out-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and printed[0].startswith("train run, seed 1, test accuracy")
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    seeds = sorted(fexprune.open_run(p).spec["seed"] for p in folders)
    assert seeds == [1, 2]
    table = fexprune.compare([runs["train"], *folders])
    assert len(table) == 1 and table.loc[0, "runs"] == 3 and table.loc[0, "seeds"] == [0, 1, 2]


def test_an_edited_spec_runs_what_it_now_states(made, tmp_path):
    runs = made
    spec = fexprune.open_run(runs["train"]).spec
    edited = {**spec, "training": {**spec["training"], "epochs": 1}}
    again = fexprune.run(edited, out=tmp_path, progress=False, tensorboard=False)
    assert again.spec["training"]["epochs"] == 1 and len(again.metrics) == 2  # epoch 0 and 1


def test_a_spec_that_cannot_run_is_one_clear_error(made, tmp_path, capsys):
    runs = made
    spec = fexprune.open_run(runs["train"]).spec
    with pytest.raises(InputError, match="kind 'nonsense': no experiment runs it"):
        fexprune.run({**spec, "kind": "nonsense"}, out=tmp_path)
    with pytest.raises(InputError, match="recipe.members: not an option of recipe paper"):
        fexprune.run({**spec, "recipe": {**spec["recipe"], "members": 3}}, out=tmp_path)
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"data": None, "epochs": 1}))
    assert main(["run", str(flat), "--out-dir", str(tmp_path / "runs")]) == 2
    assert "holds no spec of version 2" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "runs")]) == 2
    assert "no such run folder or spec file" in capsys.readouterr().err
    assert not any((tmp_path / "runs").glob("*/config.json"))
