"""Test-time averaging over face cuts (BestRecipe.margin_tta): the extra views are the test faces cut at
other margins, aligned and normalised as the test split; the run records them, and predict cuts and
averages new faces the same way, so it reproduces the run's own test accuracy."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fexprune.data.synth import write_synthetic
from fexprune.recipes import BestRecipe
from fexprune.data.prepared import cut_margins
from fexprune.models.views import predict_logits
from fexprune.experiments.train import TrainConfig, train
from fexprune.data.prepared import prepare_data
from fexprune.faces.loading import load_images


@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("margin-tta")
    images = write_synthetic(root / "data", per_class=5, seed=6, progress=False)
    config = TrainConfig(data=str(images), recipe="best", face_crop=True, split="movie", image_size=(45, 36),
                         epochs=2, lr=3e-3, batch_size=16, members=1)
    return config, train(config, out=root / "run", progress=False).run_dir


def test_views_are_the_test_faces_cut_at_other_margins(face_run):
    config, _ = face_run
    data = prepare_data(config, load_images(config, progress=False))
    assert cut_margins(config, data, BestRecipe().margin_tta) == [0.15, 0.25]
    assert cut_margins(config, data, 0.0) == [] and cut_margins(TrainConfig(), data, 0.05) == []
    same, wider = data.views_at([config.face_margin, 0.25])
    torch.testing.assert_close(same, data.x_test)  # the configured margin gives the test split itself
    assert wider.shape == data.x_test.shape and not torch.allclose(wider, data.x_test)
    (train_same,) = data.views_at([config.face_margin], "train")
    torch.testing.assert_close(train_same, data.x_train)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(45 * 36, 3))
    one = predict_logits(model, data.x_test, tta=False).softmax(1)
    both = predict_logits(model, data.x_test, tta=False, views=(wider,)).exp()
    torch.testing.assert_close(both, (one + predict_logits(model, wider).softmax(1)) / 2)


def test_each_margin_is_cut_once_for_every_fold_and_view(face_run):
    config, _ = face_run
    image_set = load_images(config, progress=False)
    cut, calls = image_set.recut, []
    image_set.recut = lambda margin: calls.append(margin) or cut(margin)
    folds = [prepare_data(config, image_set), prepare_data(dataclasses.replace(config, seed=1), image_set)]
    views = [fold.views_at([0.15, 0.25], split) for fold in folds for split in ("test", "train")]
    assert calls == [0.15, 0.25]  # cut from the frames once per margin, then shared
    torch.testing.assert_close(views[2][1], folds[1].views_at([0.25])[0])


def test_predict_cuts_and_averages_as_the_run_scored(face_run):
    from fexprune.inference.predict import predict
    from fexprune.inference.run_model import load_run_model

    config, run_dir = face_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["training"]["tta_margins"] == [0.15, 0.25]
    assert "as cut, mirrored, cut at margins 0.15 and 0.25 too" in (run_dir / "report.md").read_text()
    data = prepare_data(config, load_images(config, progress=False))
    paths = [data.image_set.samples[i].path for i in data.test_index]
    records = {r["path"]: r["faces"][0] for r in predict(run_dir, paths)}
    classes = list(data.image_set.classes)
    predicted = np.array([classes.index(records[str(p)]["label"]) for p in paths])
    assert float((predicted == data.y_test.numpy()).mean()) == pytest.approx(results["test_accuracy"], abs=1e-6)
    model = load_run_model(run_dir).model
    expected = predict_logits(model, data.x_test, tta=True, views=tuple(data.views_at([0.15, 0.25]))).exp()
    got = np.array([list(records[str(p)]["emotions"].values()) for p in paths])
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)  # the same numbers, not just the same labels


def test_the_export_sidecar_and_compare_say_how_test_images_were_scored(face_run, tmp_path):
    import shutil

    from fexprune.inference.export import scoring_note
    from fexprune.report.compare import collect_runs, group_runs

    assert scoring_note({}) == "the softmax of the batch"
    assert "cut at margins 0.15 and 0.25" in scoring_note({"tta": "hflip", "tta_margins": [0.15, 0.25]})
    _, run_dir = face_run
    older = tmp_path / "older"
    shutil.copytree(run_dir, older)
    results = json.loads((older / "results.json").read_text())
    results["training"]["tta_margins"] = None  # a run scored before margin cuts were averaged
    (older / "results.json").write_text(json.dumps(results))
    groups = group_runs(collect_runs([run_dir, older]))
    assert len(groups) == 2 and {g.settings["tta_margins"] for g in groups} == {None, (0.15, 0.25)}


def test_the_spread_is_chosen_on_the_command_line_and_cv_runs_record_it(face_run, tmp_path, capsys):
    from fexprune.cli import main

    config, _ = face_run
    common = ["train", "--data", config.data, "--recipe", "best", "--split", "movie", "--epochs", "1", "--members", "1", "--quiet"]
    # folds of a random split: 5 frames a class grouped by movie into 2 folds can leave a class untrained, which is refused
    folds = [("random" if word == "movie" else word) for word in common]
    assert main([*folds, "--face-crop", "--margin-tta", "0.1", "--cv", "2", "--out", str(tmp_path / "cv")]) == 0
    results = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert results["training"]["tta_margins"] == [0.1, 0.3]  # every fold scored at margins 0.2 -/+ 0.1
    assert "cut at margins 0.1 and 0.3 too" in (tmp_path / "cv" / "report.md").read_text()
    assert main([*common, "--face-crop", "--margin-tta", "0", "--out", str(tmp_path / "once")]) == 0
    assert json.loads((tmp_path / "once" / "results.json").read_text())["training"]["tta_margins"] is None
    capsys.readouterr()
    assert main([*common, "--margin-tta", "0.1", "--out", str(tmp_path / "refused")]) == 2  # no face crops to cut again
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--face-crop" in error and not (tmp_path / "refused").exists()
