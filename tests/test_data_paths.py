"""One data set, however its folder is named: relatively, absolutely or through a link, from any working
folder. A run trained on it resumes, prunes (also along a curve) and predicts from another working folder,
and the preprocessing cache and the run's split.json see one form of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from fexprune import runs
from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.run_folder import read_settings

FORMS = ("relative", "absolute", "symlink")


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A working folder holding the data set (sets/syn/Images) and a link to it (link -> sets/syn)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("paths")
    write_synthetic(root / "sets" / "syn", per_class=3, size=(180, 144), progress=False)
    (root / "link").symlink_to(root / "sets" / "syn", target_is_directory=True)
    (root / "elsewhere").mkdir()
    return root


def _spelled(form: str, place: Path) -> str:
    return {"relative": "sets/syn/Images", "absolute": str(place / "sets" / "syn" / "Images"),
            "symlink": "link/Images"}[form]


def _train(data: str, out: str) -> None:
    assert main(["train", "--data", data, "--epochs", "2", "--channels", "2,4", "--quiet", "--out", out]) == 0


@pytest.fixture(scope="module")
def trained(place) -> dict[str, Path]:
    """A finished train run per form, each started in `place` with the data named that way, on a cache of
    their own (the per-test cache is not set up yet for a module's fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(place / "cache"))
        patch.chdir(place)
        for form in FORMS:
            _train(_spelled(form, place), f"runs/{form}")
    return {form: place / "runs" / form for form in FORMS}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return runs.load_checkpoint(run_dir / "model.pt")["state_dict"]


def test_every_form_is_one_data_set_for_the_cache_and_the_run_folder(trained, place):
    configs = [read_settings(trained[form]) for form in FORMS]
    assert {c["data"] for c in configs} == {str((place / "sets" / "syn" / "Images").resolve())}
    assert len({c["data_fingerprint"] for c in configs}) == 1
    splits = {(trained[form] / "split.json").read_bytes() for form in FORMS}
    assert len(splits) == 1
    assert len(list((place / "cache" / "preprocessed").glob("*.npz"))) == 1  # decoded once, served three times
    for form in FORMS[1:]:
        for name, tensor in _weights(trained[FORMS[0]]).items():
            assert torch.equal(tensor, _weights(trained[form])[name]), (form, name)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", ["same folder", "another folder"])
def test_resume_takes_the_runs_own_data_and_split(trained, place, form, where, tmp_path, monkeypatch):
    """What a kill before the first checkpoint leaves (config.json and split.json) resumes to the same weights."""
    run_dir = tmp_path / "interrupted"
    run_dir.mkdir()
    for name in ("config.json", "split.json"):
        shutil.copy(trained[form] / name, run_dir / name)
    monkeypatch.chdir(place if where == "same folder" else place / "elsewhere")
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    expected = _weights(trained[form])
    for name, tensor in _weights(run_dir).items():
        assert torch.equal(tensor, expected[name]), name


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("where", ["same folder", "another folder"])
def test_prune_reopens_the_run(trained, place, form, where, tmp_path, monkeypatch):
    monkeypatch.chdir(place if where == "same folder" else place / "elsewhere")
    assert main(["prune", "--run", str(trained[form]), "--quiet", "--out", str(tmp_path / "pruned")]) == 0
    assert (tmp_path / "pruned" / "results.json").is_file()


@pytest.mark.parametrize("form", FORMS)
def test_prune_curve_reopens_the_run_from_another_folder(trained, place, form, tmp_path, monkeypatch):
    monkeypatch.chdir(place / "elsewhere")
    assert main(["prune-curve", "--run", str(trained[form]), "--curve", "0.5", "--finetune", "0", "--scratch-epochs", "0",
                 "--sensitivity", "none", "--quiet", "--out", str(tmp_path / "curve")]) == 0
    assert (tmp_path / "curve" / "results.json").is_file()


def test_a_run_given_a_relative_path_predicts_from_another_folder(trained, place, tmp_path, monkeypatch):
    monkeypatch.chdir(place / "elsewhere")
    image = next((place / "sets" / "syn" / "Images").rglob("*.png"))
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--run", os.path.relpath(trained["relative"], place / "elsewhere"), str(image),
                 "--out", str(out), "--quiet"]) == 0
    assert len(out.read_text().splitlines()) >= 2


@pytest.fixture
def interrupted_relative(place, tmp_path, monkeypatch) -> Path:
    """A run on the relatively named data, stopped after its last checkpoint, before its results."""
    from fexprune.experiments import train as train_module

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the results")

    monkeypatch.chdir(place)
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "write_run", killed)
        code = main(["train", "--data", _spelled("relative", place), "--epochs", "2", "--channels", "2,4", "--quiet",
                     "--checkpoint-every", "1", "--out", str(tmp_path / "run")])
    assert code == 130 and (tmp_path / "run" / "checkpoint.pt").is_file()
    return tmp_path / "run"


def test_a_checkpointed_relative_run_resumes_to_the_uninterrupted_weights(trained, interrupted_relative, place, monkeypatch):
    monkeypatch.chdir(place / "elsewhere")
    assert main(["train", "--resume", str(interrupted_relative), "--quiet"]) == 0
    expected = _weights(trained["relative"])
    for name, tensor in _weights(interrupted_relative).items():
        assert torch.equal(tensor, expected[name]), name


def test_a_relative_runs_checkpoint_of_another_architecture_is_refused_in_one_line(interrupted_relative, capsys):
    from fexprune.models.cnn import CNNConfig, ExpressionCNN

    state = runs.load_checkpoint(interrupted_relative / "checkpoint.pt")
    state["model"] = ExpressionCNN(CNNConfig(channels=(3, 6), n_classes=7)).state_dict()
    runs.save_checkpoint(interrupted_relative / "checkpoint.pt", state)
    capsys.readouterr()
    assert main(["train", "--resume", str(interrupted_relative), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt: cannot resume" in err[0], err
