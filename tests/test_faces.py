"""Face detection and cropping: faces found on synthetic frames where they are, crops of the right
shape, boxes cached with the preprocessed arrays, fallbacks counted."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from fexprune.data.faces import FaceBox, FaceCropper, best_face, crop_face, detect_faces, fallback_box, iou
from fexprune.data.loading import load_image_set
from fexprune.data.synth import write_synthetic


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("faces"), per_class=4, seed=5, progress=False)  # 720x576, as SFEW
    rows = list(csv.DictReader(open(images.parent / "faces.csv")))
    return images, rows


def test_detector_finds_most_synthetic_faces_where_they_are(frames):
    images, rows = frames
    found = correct = 0
    for row in rows:
        frame = cv2.imread(str(images.parent / row["path"]))
        face = best_face(frame)
        cx, cy, w, h = (float(row[k]) for k in ("cx", "cy", "width", "height"))
        if face is not None:
            found += 1
            correct += iou(face, (cx - w / 2, cy - h / 2, w, h)) > 0.3
    assert found / len(rows) >= 0.2  # 25-55% on synthetic sets: cartoon faces are hard for Haar (84% on real SFEW)
    assert correct >= 0.75 * found  # and what it finds is the face, not the scenery


def test_detector_on_real_sample(shared_data):
    from fexprune.data.layouts import discover
    from fexprune.data.preprocess import decode_image

    samples = discover(shared_data).samples[:30]
    found = sum(best_face(decode_image(s.path.read_bytes())) is not None for s in samples)
    assert found >= 0.6 * len(samples)


def test_boxes_best_first_and_agreeing_boxes_merged():
    frame = np.full((240, 320), 128, np.uint8)
    assert detect_faces(frame) == []  # a flat frame has no face
    a, b = FaceBox(10, 10, 50, 50, "x"), FaceBox(15, 12, 50, 50, "y")
    assert iou(a, b) > 0.6 and iou(a, FaceBox(200, 200, 10, 10, "z")) == 0.0


def test_crop_shape_and_content():
    frame = np.zeros((576, 720, 3), np.uint8)
    frame[200:300, 300:380] = 255  # a bright "face"
    crop = crop_face(frame, FaceBox(300, 200, 80, 100, "test"), margin=0.0, size=(90, 72))
    assert crop.shape == (72, 90) and crop.dtype == np.uint8
    assert crop[36, 45] == 255 and crop[36, 0] == 0  # centred; widened to the aspect ratio, not squashed
    corner = crop_face(frame, FaceBox(-40, -40, 80, 80, "edge"), size=(45, 36))  # off the frame: padded
    assert corner.shape == (36, 45)


def test_fallback_is_the_typical_face_region():
    box = fallback_box(720, 576)
    assert box.detector == "fallback"
    assert abs(box.x + box.w / 2 - 0.48 * 720) <= 1 and abs(box.y + box.h / 2 - 0.38 * 576) <= 1
    assert abs(box.h - 0.3 * 576) <= 1


def test_face_crops_cached_with_boxes_and_fallbacks_counted(frames, tmp_path, monkeypatch):
    images, rows = frames
    first = load_image_set(images, face_crop=True, progress=False, cache_dir=tmp_path)
    assert first.images.shape == (len(rows), 72, 90)
    summary = first.summary()["face_crop"]
    assert summary["n_detected"] + summary["n_fallback"] == len(rows)
    assert len(summary["fallback"]) == summary["n_fallback"]
    plain = load_image_set(images, progress=False, cache_dir=tmp_path)
    assert plain.faces is None and not np.array_equal(plain.images, first.images)

    def no_detection(*args, **kwargs):
        raise AssertionError("detector ran although the boxes are cached")

    monkeypatch.setattr("fexprune.data.faces.face_or_fallback", no_detection)
    again = load_image_set(images, face_crop=True, progress=False, cache_dir=tmp_path)
    assert again.from_cache and again.faces == first.faces
    wider = load_image_set(images, face_crop=True, face_margin=0.4, progress=False, cache_dir=tmp_path)
    assert not wider.from_cache and wider.faces == first.faces  # re-cropped from cached boxes


def test_unknown_detector_is_an_input_error():
    from fexprune.errors import InputError

    with pytest.raises(InputError):
        FaceCropper(detectors=("haar-nonsense",))
