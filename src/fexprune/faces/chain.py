"""Running a chain of detectors over one frame, in order, and ranking the boxes they find.

With several boxes the best is one that two detectors agree on (IoU >= 0.3), then the largest. Frames
where nothing is found fall back to the typical SFEW face region (`fallback_box`), and callers count them.
A chain may also name CLIP_NEIGHBOUR: not a detector but a pass over the whole image set
(fexprune.faces.clip_neighbour), which the loader runs after the chain; per frame it does nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fexprune.data.preprocess import to_gray
from fexprune.faces.detectors import FRAME_DETECTORS, Found, dlib_available
# the chains and step names, re-exported: code that runs a chain finds its names beside it
from fexprune.faces.steps import CLIP_NEIGHBOUR, DEFAULT_CHAIN, DETECTORS, FALLBACK, FULL_CHAIN, MTCNN, STRICT_CHAIN  # noqa: F401

AGREEMENT_IOU = 0.3
DETECT_HEIGHT = 288  # frames are shrunk to this height first: faces in SFEW are 72-291 px of 576


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    detector: str  # which detector found it ("+"-joined when two agree), or "fallback"
    roll: float | None = None  # degrees the crop is turned: its eyes' slope (--eye-align), or haar-rotated's turn
    landmark_roll: float | None = None  # the eyes' slope by mtcnn's landmarks: --eye-align takes it over the eye cascades'
    landmarks: tuple[float, ...] | None = None  # mtcnn's five points in frame pixels: --eye-align maps them to a template

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FaceBox":
        roll, landmark_roll, landmarks = values.get("roll"), values.get("landmark_roll"), values.get("landmarks")
        return cls(int(values["x"]), int(values["y"]), int(values["w"]), int(values["h"]), str(values["detector"]),
                   None if roll is None else float(roll), None if landmark_roll is None else float(landmark_roll),
                   None if landmarks is None else tuple(float(v) for v in landmarks))


def fallback_box(width: int, height: int) -> FaceBox:
    """Where faces sit in SFEW frames on average: centre (0.48 W, 0.38 H), side about 0.3 H."""
    side = int(round(0.3 * height))
    cx, cy = 0.48 * width, 0.38 * height
    return FaceBox(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side, FALLBACK)


def frame_steps(detectors: tuple[str, ...] | list[str]) -> list[str]:
    """The chain's steps that look at one frame: all but the pass over the set."""
    return [d for d in detectors if d != CLIP_NEIGHBOUR]


def default_chain() -> tuple[str, ...]:
    """DEFAULT_CHAIN as it can run here: without mtcnn where its weights (facenet-pytorch) are missing."""
    from fexprune.faces import mtcnn

    return DEFAULT_CHAIN if mtcnn.available() else tuple(d for d in DEFAULT_CHAIN if d != MTCNN)


def chain_name(detectors: tuple[str, ...] | list[str]) -> str:
    """The chain as it really runs here ("dlib-hog" drops out where dlib is missing), for configs and keys."""
    return ",".join(d for d in detectors if d != "dlib-hog" or dlib_available())


def iou(a: FaceBox | tuple, b: FaceBox | tuple) -> float:
    ax, ay, aw, ah = (a.x, a.y, a.w, a.h) if isinstance(a, FaceBox) else a
    bx, by, bw, bh = (b.x, b.y, b.w, b.h) if isinstance(b, FaceBox) else b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def detect_faces(image: np.ndarray, detectors: tuple[str, ...] | list[str] | None = None) -> list[FaceBox]:
    """Every face the chain finds in `image` ((H, W) gray or (H, W, 3) BGR uint8), best first.

    Boxes are in the pixels of `image`. Boxes two detectors agree on are merged into one (their mean,
    detector names joined by "+") and ranked first; then larger before smaller. A haar-rotated box carries
    the roll it was found at, so its crop is cut level; an mtcnn box, the slope of the eyes it marked and its
    five landmarks.
    """
    detectors = tuple(detectors or default_chain())
    gray = to_gray(image)
    scale = min(1.0, DETECT_HEIGHT / gray.shape[0])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.equalizeHist(small)
    found: list[tuple[str, Found]] = []
    for name in frame_steps(detectors):
        detector = FRAME_DETECTORS.get(name)
        if detector is None:
            raise ValueError(f"unknown face detector {name!r} (choose from {', '.join(DETECTORS)})")
        if detector.last_resort and found:
            continue
        found += [(name, item) for item in detector.detect(small, image, scale)]
    groups: list[list[tuple[str, Found]]] = []
    for name, item in sorted(found, key=lambda pair: -pair[1].box[2] * pair[1].box[3]):
        for group in groups:
            if iou(group[0][1].box, item.box) >= AGREEMENT_IOU:
                group.append((name, item))
                break
        else:
            groups.append([(name, item)])
    faces = []
    for group in groups:
        names = sorted({name for name, _ in group}, key=list(detectors).index)
        boxes = np.array([item.box for _, item in group], dtype=np.float64) / scale
        x, y, w, h = (int(round(v)) for v in boxes.mean(axis=0))
        slope = next((item.landmark_roll for _, item in group if item.landmark_roll is not None), None)
        points = next((item.landmarks for _, item in group if item.landmarks is not None), None)
        points = None if points is None else tuple(round(v / scale, 2) for v in points)
        face = FaceBox(x, y, w, h, "+".join(names), group[0][1].roll, slope, points)
        faces.append((len(names) > 1, w * h, face))
    faces.sort(key=lambda item: (not item[0], -item[1]))
    return [face for _, _, face in faces]


def best_face(image: np.ndarray, detectors: tuple[str, ...] | list[str] | None = None) -> FaceBox | None:
    faces = detect_faces(image, detectors)
    return faces[0] if faces else None


def face_or_fallback(image: np.ndarray, detectors: tuple[str, ...] | list[str] | None = None) -> FaceBox:
    """The best face, or the typical face region (detector "fallback") when none is found."""
    face = best_face(image, detectors)
    return face if face is not None else fallback_box(image.shape[1], image.shape[0])
