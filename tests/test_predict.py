"""fexprune predict: the training preprocessing on new images, every face, CSV, annotation, skipped files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fexprune.cli import main
from fexprune.faces import crop_face, detect_faces, fallback_box
from fexprune.data.preprocess import decode_image
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError
from fexprune.inference.trained_run import load_run
from fexprune.models.checkpoint import load_model, save_model
from fexprune.inference.predict import collect_images, predict, write_predictions
from fexprune.inference.run_model import load_run_model
from fexprune.run_folder import read_settings
from inference_runs import make_prune_run, make_train_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_train_run(tmp_path_factory.mktemp("predict"))


@pytest.fixture
def small_folder(runs, tmp_path) -> Path:
    """Three frames of the training set, a text file and a truncated PNG, in nested folders."""
    folder = tmp_path / "new"
    frames = sorted(runs.images.rglob("*.png"))[:3]
    for k, frame in enumerate(frames):
        target = folder / f"sub{k % 2}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(frame, target / frame.name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub0" / "broken.png").write_bytes(frames[0].read_bytes()[:200])
    return folder


def test_whole_frames_are_prepared_exactly_as_in_training(runs):
    trained = load_run(runs.train)  # the training pipeline's own tensors for the training split
    with torch.no_grad():
        expected = torch.softmax(trained.model(trained.x_train), dim=1).numpy()
    paths = [trained.data.image_set.samples[i].path for i in trained.data.train_index]
    predictions = predict(runs.train, paths, face_detect=False)
    assert [r["path"] for r in predictions] == [str(p) for p in paths]
    got = np.array([list(r["faces"][0]["emotions"].values()) for r in predictions])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    for record in predictions:
        (face,) = record["faces"]
        assert face["box"] == (0, 0, 180, 144) and face["detector"] == "whole-frame"
        assert face["label"] == max(face["emotions"], key=face["emotions"].get)
        assert list(face["emotions"]) == trained.classes


def test_clahe_runs_predict_with_the_same_equalisation(runs, tmp_path):
    from dataclasses import replace

    from fexprune.experiments.train import train

    run_dir = train(replace(runs.config, normalize="clahe", epochs=1), out=tmp_path / "clahe", progress=False).run_dir
    trained = load_run(run_dir)
    with torch.no_grad():
        expected = torch.softmax(trained.model(trained.x_train), dim=1).numpy()
    paths = [trained.data.image_set.samples[i].path for i in trained.data.train_index]
    got = np.array([list(r["faces"][0]["emotions"].values()) for r in predict(run_dir, paths, face_detect=False)])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert read_settings(run_dir)["normalize"] == "clahe"


def test_batch_size_does_not_change_the_answer(runs):
    one = predict(runs.train, [runs.images / "Happy"], face_detect=False, batch_size=1)
    many = predict(runs.train, [runs.images / "Happy"], face_detect=False, batch_size=64)
    assert len(one) == len(many) == 4
    for a, b in zip(one, many):
        assert a["path"] == b["path"]
        np.testing.assert_allclose(list(a["faces"][0]["emotions"].values()), list(b["faces"][0]["emotions"].values()), atol=1e-6)


def test_folder_with_non_images_skips_and_reports_them(runs, small_folder, tmp_path, capsys):
    predictions = predict(runs.train, [small_folder], face_detect=False)
    assert len(predictions) == 3
    reasons = {Path(item["path"]).name: item["reason"] for item in predictions.skipped}
    assert set(reasons) == {"notes.txt", "broken.png"}
    assert "not an image file" in reasons["notes.txt"]

    out = tmp_path / "out" / "predictions.csv"
    code = main(["predict", "--run", str(runs.train), str(small_folder), "--no-face-detect", "--out", str(out), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped 2 files" in err and "notes.txt" in err and "broken.png" in err
    rows = list(csv.DictReader(out.open()))
    classes = load_run_model(runs.train).classes
    assert list(rows[0]) == ["path", "face", "x", "y", "w", "h", "label", *(f"p_{c}" for c in classes), "detector", "in_split"]
    assert all(row["in_split"] in ("train", "test") for row in rows)  # copies of the run's frames: same name and size
    assert len(rows) == 3
    for row in rows:
        assert abs(sum(float(row[f"p_{c}"]) for c in classes) - 1) < 1e-4
        assert row["label"] == max(classes, key=lambda c: float(row[f"p_{c}"]))
    skipped = list(csv.DictReader((out.parent / "predictions.skipped.csv").open()))
    assert {Path(row["path"]).name for row in skipped} == {"notes.txt", "broken.png"}


def test_no_skipped_companion_when_nothing_was_skipped(runs, small_folder, tmp_path):
    predictions = predict(runs.train, [small_folder], face_detect=False)
    out = tmp_path / "predictions.csv"
    assert write_predictions(out, predictions) == tmp_path / "predictions.skipped.csv"
    assert (tmp_path / "predictions.skipped.csv").is_file()
    predictions.skipped = []
    assert write_predictions(out, predictions) is None
    assert out.is_file() and not (tmp_path / "predictions.skipped.csv").exists()  # the stale one is gone too


def test_nothing_readable_or_missing_path_is_one_clear_error(runs, tmp_path, capsys):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(InputError, match="no readable image among 1 files"):
        predict(runs.train, [tmp_path], face_detect=False)
    assert main(["predict", "--run", str(runs.train), str(tmp_path / "absent.png"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "absent.png: no such file or folder" in err[0]
    assert main(["predict", "--run", str(tmp_path), str(tmp_path / "only.txt")]) == 2
    assert "no model.pt" in capsys.readouterr().err


def test_collect_images_recurses_sorted_without_duplicates(small_folder):
    found, skipped = collect_images([small_folder, small_folder / "sub0"])
    names = [path.name for path, _ in found]
    assert len(names) == 4 and len(set(names)) == 4  # 3 frames + broken.png, each once
    assert all(rel.parts[0] == "new" for _, rel in found)
    assert [s["path"] for s in skipped] == [str(small_folder / "notes.txt")]


def test_annotate_draws_boxes_on_copies(runs, small_folder, tmp_path):
    predictions = predict(runs.train, [small_folder], face_detect=False, annotate=tmp_path / "drawn")
    drawn = sorted((tmp_path / "drawn").rglob("*.png"))
    assert len(drawn) == 3
    for record in predictions:
        original = decode_image(Path(record["path"]).read_bytes())
        copy = next(p for p in drawn if p.name == Path(record["path"]).name)
        pixels = decode_image(copy.read_bytes())
        assert pixels.shape == original.shape
        changed = np.any(pixels != original, axis=2)
        assert changed[0, :].mean() > 0.5 and changed[72, 60] == 0  # box edge drawn, inside left alone


def test_face_detection_finds_the_drawn_faces(runs, tmp_path):
    data = write_synthetic(tmp_path / "big", per_class=1, size=(360, 288), progress=False, seed=1)
    truth = {Path(row["path"]).name: row for row in csv.DictReader((tmp_path / "big" / "faces.csv").open())}
    predictions = predict(runs.train, [data], face_detect=True, annotate=tmp_path / "drawn")
    assert len(predictions) == 7 and len(list((tmp_path / "drawn").rglob("*.png"))) == 7
    assert any("whole frames" in w for w in predictions.warnings)  # the run was trained on whole frames
    on_face = 0
    for record in predictions:
        assert record["faces"], "every readable frame gets at least the fallback region"
        for face in record["faces"]:
            assert abs(sum(face["emotions"].values()) - 1) < 1e-6
        best = record["faces"][0]
        assert (best["detector"] == "fallback") == (record["path"] in predictions.no_face)
        if best["detector"] != "fallback":
            x, y, w, h = best["box"]
            true = truth[Path(record["path"]).name]
            on_face += abs(x + w / 2 - float(true["cx"])) < float(true["width"]) / 2 and \
                abs(y + h / 2 - float(true["cy"])) < float(true["height"]) / 2
    found = len(predictions) - len(predictions.no_face)
    assert found >= 3 and on_face >= found / 2


def test_by_default_a_whole_frame_run_classifies_whole_frames(runs):
    frame = sorted(runs.images.rglob("*.png"))[0]
    default = predict(runs.train, [frame])
    whole = predict(runs.train, [frame], face_detect=False)
    assert default.warnings == []
    assert [f["box"] for f in default[0]["faces"]] == [f["box"] for f in whole[0]["faces"]] == [(0, 0, 180, 144)]
    forced = predict(runs.train, [frame], face_detect=True)
    assert forced.warnings and forced[0]["faces"][0]["detector"] != "whole-frame"


def test_face_crop_runs_crop_with_their_own_margin(runs, tmp_path):
    model, preprocessing = load_model(runs.train / "model.pt")
    settings = {"margin": 0.5, "detectors": ["haar-default"]}
    save_model(tmp_path / "crops" / "model.pt", model, {**preprocessing, "face_crop": settings})
    frame = sorted(runs.images.rglob("*.png"))[0]
    predictions = predict(tmp_path / "crops", [frame])
    assert predictions.warnings == []
    image = decode_image(frame.read_bytes())
    boxes = detect_faces(image, ("haar-default",)) or [fallback_box(image.shape[1], image.shape[0])]
    assert [f["box"] for f in predictions[0]["faces"]] == [(b.x, b.y, b.w, b.h) for b in boxes]
    run = load_run_model(tmp_path / "crops")
    expected = run.probabilities(crop_face(image, boxes[0], 0.5, (90, 72))[None])[0]
    np.testing.assert_allclose(list(predictions[0]["faces"][0]["emotions"].values()), expected, atol=1e-6)


def test_face_crop_setting_is_found_through_a_prune_run(runs, tmp_path):
    train_dir = tmp_path / "train"
    shutil.copytree(runs.train, train_dir)
    config = read_settings(train_dir)
    (train_dir / "config.json").write_text(json.dumps({**config, "face_crop": {"margin": 0.3}}))
    prune_dir = tmp_path / "prune"
    prune_dir.mkdir()
    shutil.copy(train_dir / "model.pt", prune_dir / "model.pt")
    (prune_dir / "config.json").write_text(json.dumps({"run": str(train_dir)}))
    assert load_run_model(prune_dir).face_crop["margin"] == 0.3
    assert load_run_model(runs.train).face_crop is None


def test_predict_with_a_pruned_run(runs, tmp_path):
    prune_dir = make_prune_run(runs, tmp_path)
    pruned = load_run_model(prune_dir)
    assert pruned.model.config.channels[0] < runs.config.channels[0]  # channels really removed
    predictions = predict(prune_dir, [runs.images / "Sad"], face_detect=False)
    assert len(predictions) == 4
    for record in predictions:
        assert abs(sum(record["faces"][0]["emotions"].values()) - 1) < 1e-6


def test_real_sample_frames_have_faces_found(runs, sfew_images, tmp_path):
    frames = sorted(p for p in sfew_images.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:12]
    assert frames, f"no frames under {sfew_images}"
    predictions = predict(runs.train, frames, face_detect=True)
    assert len(predictions) == len(frames) and not predictions.skipped
    for record in predictions:
        for face in record["faces"]:
            assert abs(sum(face["emotions"].values()) - 1) < 1e-6
    found = len(predictions) - len(predictions.no_face)
    assert found >= len(frames) / 2, f"faces found in only {found} of {len(frames)} real frames"
    out = tmp_path / "real.csv"
    write_predictions(out, predictions)
    assert len(list(csv.DictReader(out.open()))) == predictions.n_faces


def test_face_crop_chain_from_a_checkpoint_is_split_into_detectors():
    """A face-crop run's checkpoint stores the chain as FaceCropper.options() writes it (comma-joined);
    predict on such a run (any recipe) needs the detector names back."""
    from fexprune.faces import FaceCropper
    from fexprune.inference.run_model import face_crop_settings

    options = FaceCropper((90, 72), 0.2, detectors=("haar-default", "haar-alt2")).options()
    assert face_crop_settings(options) == {"margin": 0.2, "detectors": ["haar-default", "haar-alt2"], "eye_align": False,
                                           "landmarks": False}
    levelled = FaceCropper((90, 72), 0.2, detectors=("haar-default",), eye_align=True).options()
    assert face_crop_settings(levelled)["eye_align"] is True  # predict turns faces as training did
    assert face_crop_settings(levelled)["landmarks"] is True  # and cuts mtcnn's faces onto the template
    older = {key: value for key, value in levelled.items() if key != "landmarks"}
    assert face_crop_settings(older)["landmarks"] is False  # a run from before landmark crops: levelled only



def test_inputs_from_the_runs_split_are_marked_by_path_and_as_copies(runs, tmp_path, capsys):
    split = json.loads((runs.train / "split.json").read_text())
    root = Path(json.loads((runs.train / "results.json").read_text())["data"]["root"])
    train_frame, test_frame = root / split["train"][0], root / split["test"][0]
    copy = tmp_path / "elsewhere" / train_frame.name  # the same file copied: same name and size
    copy.parent.mkdir()
    shutil.copy(train_frame, copy)
    renamed = tmp_path / "renamed.png"  # a copy under another name is not recognised: the name is half the key
    shutil.copy(test_frame, renamed)
    new = tmp_path / "new.png"
    cv2.imwrite(str(new), np.full((144, 180), 128, np.uint8))
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(runs.train), "--no-face-detect", "--quiet", "--out", str(out),
                 str(train_frame), str(test_frame), str(copy), str(renamed), str(new)]) == 0
    said = capsys.readouterr().out
    assert "2 of 5 images were in this run's training split: their predictions are not a measure of accuracy" in said
    assert "1 of 5 were in its test split" in said
    with open(out, newline="") as handle:
        marks = {Path(row["path"]).name if "elsewhere" not in row["path"] else "copy": row["in_split"]
                 for row in csv.DictReader(handle)}
    assert marks == {train_frame.name: "train", test_frame.name: "test", "copy": "train", "renamed.png": "", "new.png": ""}


def test_a_pruned_runs_inputs_are_marked_with_its_train_runs_split(runs, tmp_path):
    split = json.loads((runs.train / "split.json").read_text())
    root = Path(json.loads((runs.train / "results.json").read_text())["data"]["root"])
    prune_dir = tmp_path / "prune"
    prune_dir.mkdir()
    shutil.copy(runs.train / "model.pt", prune_dir / "model.pt")
    (prune_dir / "config.json").write_text(json.dumps({"run": str(runs.train)}))
    predictions = predict(prune_dir, [root / split["train"][0]], face_detect=False)
    assert [record["in_split"] for record in predictions] == ["train"]
    assert predictions.split_line().startswith("1 of 1 images were in this run's training split")
