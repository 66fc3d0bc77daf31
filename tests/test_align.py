"""Eye-level alignment (`--eye-align`): the crop turns by the roll it is given, the eye pair is chosen
sensibly, rolls read off drawn faces match their drawn tilt, and a run cut this way trains, says so and
predicts new frames cut the same way."""

from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest

from fexprune.faces.loading import load_face_crops
from fexprune.data.synth import write_synthetic
from fexprune.faces import STRICT_CHAIN, FaceBox, best_face, crop_face, levelled
from fexprune.faces.align import eye_pair_roll
from fexprune.run_folder import read_settings


def _orientation(image: np.ndarray) -> float:
    """Degrees of the main axis of the bright pixels (y down), from second moments."""
    ys, xs = np.nonzero(image > 128)
    xs, ys = xs - xs.mean(), ys - ys.mean()
    return math.degrees(0.5 * math.atan2(2 * (xs * ys).mean(), (xs**2).mean() - (ys**2).mean()))


@pytest.mark.parametrize("roll", [-20.0, 12.0])
def test_crop_turns_by_the_roll_about_the_box_centre(roll):
    image = np.zeros((400, 500), np.uint8)
    centre, direction = np.array([250.0, 180.0]), np.array([math.cos(math.radians(roll)), math.sin(math.radians(roll))])
    a, b = centre - 70 * direction, centre + 70 * direction
    cv2.line(image, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, 9)
    box = FaceBox(200, 130, 100, 100, "haar-default")  # centred on the line's middle
    plain = crop_face(image, box, 0.2, (90, 72))
    turned = crop_face(image, FaceBox(200, 130, 100, 100, "haar-default", roll), 0.2, (90, 72))
    assert abs(_orientation(plain) - roll) < 2  # as drawn
    assert abs(_orientation(turned)) < 2  # level
    ys, xs = np.nonzero(turned > 128)
    assert abs(xs.mean() - 44.5) < 1.5 and abs(ys.mean() - 35.5) < 1.5  # still about the centre
    np.testing.assert_array_equal(crop_face(image, FaceBox(200, 130, 100, 100, "haar-default", 0.0)), plain)


def test_eye_pair_is_one_each_side_a_believable_distance_apart_and_near_level():
    left, right = (50.0, 60.0, 30.0), (110.0, 70.0, 30.0)
    assert eye_pair_roll([left, right], 160) == pytest.approx(math.degrees(math.atan2(10, 60)), abs=0.01)
    assert eye_pair_roll([left, (60.0, 62.0, 28.0)], 160) is None  # both on one side
    assert eye_pair_roll([(75.0, 60.0, 20.0), (86.0, 60.0, 20.0)], 160) is None  # too close: one eye found twice
    assert eye_pair_roll([(40.0, 40.0, 30.0), (110.0, 110.0, 30.0)], 160) is None  # 45 degrees: not a pair of eyes
    brow = (112.0, 30.0, 50.0)  # a large box over the brow beside the right eye: the alike-sized pair wins
    assert eye_pair_roll([left, right, brow], 160) == eye_pair_roll([left, right], 160)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("align"), per_class=6, seed=2, progress=False)
    return images, {row["path"]: row for row in csv.DictReader(open(images.parent / "faces.csv"))}


def test_rolls_read_off_drawn_faces_match_their_tilt(drawn):
    images, rows = drawn
    found = []
    for path, row in rows.items():
        frame = cv2.imread(str(images.parent / path))
        face = best_face(frame, STRICT_CHAIN)  # no landmarks: the eye cascades read the roll
        if face is not None and (roll := levelled(frame, face).roll) is not None:
            found.append((roll, float(row["tilt"])))
    assert found  # drawn eyes are hard for the cascade: 2 of 42 frames here
    assert all(abs(roll - tilt) < 5 for roll, tilt in found)
    blank = np.full((300, 300), 128, np.uint8)  # no eyes: a face haar-rotated found keeps the turn it was found at
    assert levelled(blank, FaceBox(50, 50, 150, 150, "haar-rotated", 15.0)).roll == 15.0
    assert levelled(blank, FaceBox(50, 50, 150, 150, "haar-default")).roll is None
    fallback = FaceBox(0, 0, 200, 200, "fallback")
    assert levelled(cv2.imread(str(images.parent / next(iter(rows)))), fallback) is fallback  # never turned


def test_levelled_crops_differ_only_where_a_pair_was_found(drawn, tmp_path):
    images, _ = drawn
    plain = load_face_crops(images, detectors=STRICT_CHAIN, progress=False, cache_dir=tmp_path)
    aligned = load_face_crops(images, detectors=STRICT_CHAIN, eye_align=True, progress=False, cache_dir=tmp_path)
    turned = [i for i, face in enumerate(aligned.faces) if face["roll"] is not None]
    assert turned and aligned.summary()["face_crop"]["n_turned"] == len(turned)
    assert aligned.summary()["face_crop"]["eye_align"] and not plain.summary()["face_crop"]["eye_align"]
    same = np.setdiff1d(np.arange(len(aligned)), turned)
    np.testing.assert_array_equal(aligned.images[same], plain.images[same])
    assert all((aligned.images[i] != plain.images[i]).any() for i in turned)
    again = load_face_crops(images, detectors=STRICT_CHAIN, eye_align=True, progress=False, cache_dir=tmp_path)
    assert again.from_cache and again.summary()["face_crop"]["eye_align"] and [f["roll"] for f in again.faces] == [f["roll"] for f in aligned.faces]


def test_an_eye_aligned_run_says_so_and_predicts_as_it_trained(drawn, tmp_path, capsys):
    from fexprune.cli import main
    from fexprune.inference.predict import predict
    from fexprune.inference.run_model import load_run_model

    images, _ = drawn
    assert main(["train", "--data", str(images), "--eye-align", "--epochs", "1", "--quiet", "--out", str(tmp_path / "no")]) == 2
    assert "add --face-crop" in capsys.readouterr().err and not (tmp_path / "no").exists()
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(images), "--face-crop", "--eye-align", "--epochs", "1", "--channels", "4,8",
                 "--quiet", "--out", str(run_dir)]) == 0
    assert "cut turned level" in capsys.readouterr().out
    assert read_settings(run_dir)["eye_align"] is True
    assert "cut turned level (--eye-align's eye pair, or haar-rotated)" in (run_dir / "report.md").read_text()
    faces = json.loads((run_dir / "results.json").read_text())["data"]["face_crop"]
    assert faces["eye_align"] and faces["n_turned"] >= 1
    assert load_run_model(run_dir).face_crop["eye_align"] is True
    data = load_face_crops(images, eye_align=True, progress=False)
    index = next(i for i, face in enumerate(data.faces) if face["roll"] is not None)
    predicted = predict(run_dir, [data.samples[index].path])[0]["faces"][0]
    assert predicted["detector"] == data.faces[index]["detector"]
    expected = load_run_model(run_dir).probabilities(data.images[index:index + 1])[0]
    np.testing.assert_allclose(list(predicted["emotions"].values()), expected, atol=1e-5)
