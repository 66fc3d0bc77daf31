"""Landmark alignment (`--eye-align` on faces mtcnn found): the similarity fitted to five points is exact
for a turned, scaled and shifted copy of them, and the crop puts each landmark on its template point, at
any size of face, while a box without landmarks is cut as before."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fexprune.faces import STRICT_CHAIN, FaceBox, crop_face
from fexprune.faces.align import similarity, template_points


def _turned(points: np.ndarray, degrees: float, scale: float, shift) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rotation.T * scale + np.asarray(shift)


def test_similarity_undoes_a_turn_a_scale_and_a_shift():
    target = template_points((90, 72), 0.2)
    source = _turned(target - target.mean(axis=0), 25.0, 3.5, (400, 260))
    matrix = similarity(source, target)
    np.testing.assert_allclose(matrix[:, :2] @ source.T + matrix[:, 2:], target.T, atol=1e-9)
    assert math.isclose(abs(np.linalg.det(matrix[:, :2])) ** 0.5, 1 / 3.5, rel_tol=1e-9)  # one scale, no shear
    assert np.linalg.det(matrix[:, :2]) > 0  # never a mirror image


def test_template_sits_level_and_in_the_middle_and_shrinks_with_the_margin():
    points = template_points((90, 72), 0.2)
    assert abs(points[0, 1] - points[1, 1]) < 0.2 and points[0, 0] < 45 < points[1, 0]  # eyes level, either side
    assert points[0, 1] < points[2, 1] < points[3, 1]  # eyes above the nose above the mouth
    wider = template_points((90, 72), 0.5)
    assert np.ptp(wider[:, 0]) < np.ptp(points[:, 0])


@pytest.mark.parametrize("degrees, scale", [(-20.0, 2.0), (15.0, 6.0)])
def test_each_landmark_lands_on_its_template_point(degrees, scale):
    size, margin = (90, 72), 0.2
    template = template_points(size, margin)
    frame_points = _turned(template - template.mean(axis=0), degrees, scale, (360, 290))
    box = FaceBox(300, 230, 120, 120, "mtcnn", landmarks=tuple(frame_points.reshape(-1)))
    for (fx, fy), (x, y) in zip(frame_points, template):  # one dot at a time, found again in the crop
        frame = np.zeros((576, 720), np.uint8)
        cv2.circle(frame, (int(round(fx)), int(round(fy))), int(2 * scale), 255, -1)
        crop = crop_face(frame, box, margin, size, align=True).astype(float)
        ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
        assert math.hypot((xs * crop).sum() / crop.sum() - x, (ys * crop).sum() / crop.sum() - y) < 0.6
    np.testing.assert_array_equal(crop_face(frame, box, margin, size), crop_face(frame, FaceBox(300, 230, 120, 120, "x"), margin, size))


def test_landmarks_survive_the_box_cache_format():
    box = FaceBox(1, 2, 3, 4, "mtcnn", None, 5.0, tuple(float(v) for v in range(10)))
    assert FaceBox.from_dict(box.to_dict()) == box
    assert FaceBox.from_dict({"x": 1, "y": 2, "w": 3, "h": 4, "detector": "haar-default"}).landmarks is None


@pytest.mark.parametrize("argv, detectors, eye_align", [
    (["--recipe", "best", "--face-crop"], None, True),  # None: the default chain, mtcnn first
    (["--recipe", "best", "--face-crop", "--no-eye-align"], None, False),
    (["--recipe", "probe", "--face-crop"], STRICT_CHAIN, False),  # FER2013's framing
    (["--recipe", "transfer", "--face-crop", "--eye-align"], STRICT_CHAIN, True),
    (["--recipe", "paper", "--face-crop", "--detectors", "haar-default"], ("haar-default",), True),
    (["--recipe", "best"], None, False),  # no crops: nothing to align
])
def test_each_recipe_cuts_faces_its_own_way_unless_told(argv, detectors, eye_align):
    from fexprune.cli import build_parser
    from fexprune.commands.train import train_config

    args = build_parser(["train", *argv]).parse_args(["train", *argv])
    config = train_config(args)
    assert config.detectors == detectors and config.eye_align is eye_align


def test_the_baseline_aligns_by_default():
    from fexprune.cli import build_parser
    from fexprune.commands.baseline import BASELINE_FACES
    from fexprune.commands.common import face_settings

    parser = build_parser(["baseline"])
    assert face_settings(parser.parse_args(["baseline", "--face-crop"]), BASELINE_FACES)["eye_align"] is True
    assert face_settings(parser.parse_args(["baseline"]), BASELINE_FACES)["eye_align"] is False
