"""The face detectors a chain can name, each looking at one frame, by name in FRAME_DETECTORS.

A detector has a `name` and `detect(small, image, scale) -> [Found]`: `small` is the frame shrunk by
`scale` and equalised to gray (what the cascades see), `image` the frame as decoded (mtcnn sees colour);
boxes are in `small`'s pixels. A `last_resort` detector is slow or less sure: it runs only when nothing
before it in the chain found a face.

OpenCV's Haar cascades (frontal default, frontal alt2, profile on the frame and its mirror image) and
dlib's HOG frontal detector (pip package `dlib-bin`, a dependency; it finds nothing where missing) are the
default chain. Opt-in: "haar-relaxed" runs the frontal cascades once more with every candidate kept and
takes the most confident box if it is confident enough; "haar-rotated" looks for tilted heads on the frame
turned by a few angles; "mtcnn" (fexprune.faces.mtcnn) is a CNN detector that also marks the eyes, nose and mouth corners.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from fexprune.data.preprocess import to_gray
from fexprune.faces.steps import MTCNN, RELAXED, ROTATED

ROTATIONS = (15.0, -15.0, 30.0, -30.0)  # degrees, tried in turn by haar-rotated; the first that finds a face gives its roll
# haar-relaxed keeps a box only above this confidence (the cascade's last-stage weight): on frames the
# strict chain missed, boxes above it lie on the true face far more often than the typical face region.
RELAXED_MIN_WEIGHT = 5.0

Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Found:
    """A box one detector found, in the shrunk frame's pixels."""

    box: Box
    roll: float | None = None  # the turn the frame was at when it was found (haar-rotated)
    landmark_roll: float | None = None  # the slope of the eyes it marked (mtcnn)
    landmarks: tuple[float, ...] | None = None  # mtcnn's five points (eyes, nose, mouth corners) as x0, y0, x1, y1, ...


class Detector(Protocol):
    name: str
    last_resort: bool  # run only when nothing before it in the chain found a face

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]: ...


_per_thread = threading.local()  # detectors keep scratch state: one of each per thread, never shared


def _cascade(file: str) -> cv2.CascadeClassifier:
    cascades = _per_thread.__dict__.setdefault("cascades", {})
    if file not in cascades:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + file)
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load {file}")
        cascades[file] = cascade
    return cascades[file]


def _min_side(gray: np.ndarray) -> int:
    return max(20, gray.shape[0] // 9)


@functools.lru_cache(maxsize=None)
def _dlib_module():
    try:
        import dlib
    except ImportError:
        return None
    return dlib


def dlib_available() -> bool:
    return _dlib_module() is not None


@dataclass(frozen=True)
class Cascade:
    """One of OpenCV's Haar cascades; `mirrored`: it knows one side of the face only, so the mirror image
    is searched too."""

    name: str
    file: str
    mirrored: bool = False
    last_resort: bool = False

    def boxes(self, gray: np.ndarray) -> list[Box]:
        min_side = _min_side(gray)
        cascade = _cascade(self.file)
        found = [tuple(int(v) for v in box) for box in cascade.detectMultiScale(gray, 1.15, 4, minSize=(min_side, min_side))]
        if self.mirrored:
            width = gray.shape[1]
            mirrored = cascade.detectMultiScale(gray[:, ::-1].copy(), 1.15, 4, minSize=(min_side, min_side))
            found += [(width - int(x) - int(w), int(y), int(w), int(h)) for x, y, w, h in mirrored]
        return found

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]:
        return [Found(box) for box in self.boxes(small)]


HAAR_DEFAULT = Cascade("haar-default", "haarcascade_frontalface_default.xml")
HAAR_ALT2 = Cascade("haar-alt2", "haarcascade_frontalface_alt2.xml")
HAAR_PROFILE = Cascade("haar-profile", "haarcascade_profileface.xml", mirrored=True, last_resort=True)
FRONTAL = (HAAR_DEFAULT, HAAR_ALT2)


class DlibHog:
    """dlib's HOG frontal face detector; finds nothing where dlib is not installed."""

    name = "dlib-hog"
    last_resort = False

    @staticmethod
    def _detector():
        dlib = _dlib_module()
        if dlib is None:
            return None
        if not hasattr(_per_thread, "dlib"):
            _per_thread.dlib = dlib.get_frontal_face_detector()
        return _per_thread.dlib

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]:
        detector = self._detector()
        if detector is None:
            return []
        return [Found((r.left(), r.top(), r.width(), r.height())) for r in detector(small, 1)]


class Relaxed:
    """The most confident box of both frontal cascades with no neighbour vote, if confident enough."""

    name = RELAXED
    last_resort = True

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]:
        min_side = _min_side(small)
        best = None
        for frontal in FRONTAL:
            boxes, _, weights = _cascade(frontal.file).detectMultiScale3(
                small, 1.05, 1, minSize=(min_side, min_side), outputRejectLevels=True)
            for box, weight in zip(boxes, np.ravel(weights)):
                if weight > RELAXED_MIN_WEIGHT and (best is None or weight > best[0]):
                    best = (float(weight), tuple(int(v) for v in box))
        return [Found(best[1])] if best else []


class Rotated:
    """The strict frontal cascades on the frame turned about its centre by each of ROTATIONS in turn, until
    one finds a face: the largest box, its centre turned back, its roll the turn. Upright cascades miss
    heads tilted past about 15 degrees."""

    name = ROTATED
    last_resort = True

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]:
        height, width = small.shape
        for angle in ROTATIONS:
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
            turned = cv2.warpAffine(small, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
            boxes = [box for frontal in FRONTAL for box in frontal.boxes(turned)]
            if boxes:
                x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
                cx, cy = cv2.invertAffineTransform(matrix) @ np.array([x + w / 2, y + h / 2, 1.0])
                return [Found((int(round(cx - w / 2)), int(round(cy - h / 2)), w, h), roll=angle)]
        return []


class Mtcnn:
    """Every face MTCNN finds in the frame (gray or BGR) shrunk by `scale`, with the slope of its eyes. It
    sees colour, not the equalised gray the cascades see."""

    name = MTCNN
    last_resort = False

    def detect(self, small: np.ndarray, image: np.ndarray, scale: float) -> list[Found]:
        from fexprune.faces import mtcnn  # its networks are built only for a chain that runs it

        if image.ndim == 3 and image.shape[2] >= 3:
            rgb = np.ascontiguousarray(image[:, :, 2::-1])
        else:
            rgb = np.repeat(to_gray(image)[:, :, None], 3, axis=2)
        if scale < 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = []
        for face in mtcnn.detect(rgb, min_face=_min_side(rgb)):
            x1, y1, x2, y2 = face.box
            box = (int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1)))
            points = tuple(round(float(v), 2) for v in np.asarray(face.landmarks).reshape(-1))
            found.append(Found(box, landmark_roll=face.roll, landmarks=points))
        return found


FRAME_DETECTORS: dict[str, Detector] = {
    d.name: d for d in (HAAR_DEFAULT, HAAR_ALT2, HAAR_PROFILE, DlibHog(), Mtcnn(), Rotated(), Relaxed())
}
