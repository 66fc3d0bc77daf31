"""Eye-level alignment of face crops (`--eye-align`): the roll of the head, read off the line through
the two eyes that OpenCV's eye cascades find inside a face box, so the crop can be turned level.

Faces in films tilt; every EmotiW entry on SFEW aligned its faces first, mostly with landmark models that
cannot be downloaded here. The eye cascades ship with OpenCV; faces the mtcnn step found carry its eye
landmarks instead (FaceBox.landmark_roll), and those are used first (faces.levelled). Where they find no plausible pair (one eye
either side of the box's middle, a believable distance apart, the line within MAX_ROLL of level) the
crop is not turned: a wrong turn costs more than none.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from fexprune.data.preprocess import to_gray

EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
MAX_ROLL = 30.0  # degrees; beyond it the pair is more likely an eye and a nostril or an eyebrow
EYE_DISTANCE = (0.25, 0.7)  # centre to centre, as fractions of the face box's width
_REGION_WIDTH = 160  # the face box is scaled to this width before the eye search: eyes then span 20-40 px
_per_thread = threading.local()


def _cascades() -> list[cv2.CascadeClassifier]:
    if not hasattr(_per_thread, "eyes"):
        cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in EYE_CASCADES]
        if any(c.empty() for c in cascades):
            raise RuntimeError(f"OpenCV could not load its eye cascades ({', '.join(EYE_CASCADES)})")
        _per_thread.eyes = cascades
    return _per_thread.eyes


def eye_pair_roll(eyes: list[tuple[float, float, float]], width: float) -> float | None:
    """The roll in degrees (positive: the eye on the image's right is lower) of the most plausible pair
    among `eyes` = (centre x, centre y, size) found in a region `width` wide, or None when no pair is.
    Among plausible pairs, the one with the most alike sizes and the levellest line wins."""
    best = None
    for left in eyes:
        for right in eyes:
            if not left[0] < width / 2 < right[0]:
                continue
            dx, dy = right[0] - left[0], right[1] - left[1]
            if not EYE_DISTANCE[0] * width < math.hypot(dx, dy) < EYE_DISTANCE[1] * width:
                continue
            roll = math.degrees(math.atan2(dy, dx))
            if abs(roll) > MAX_ROLL:
                continue
            score = abs(left[2] - right[2]) / max(left[2], right[2]) + abs(roll) / 90
            if best is None or score < best[0]:
                best = (score, roll)
    return None if best is None else round(best[1], 2)


def eye_roll(image: np.ndarray, box) -> float | None:
    """The head's roll inside `box` (a FaceBox, in `image`'s pixels) from its eyes, or None."""
    gray = to_gray(image)
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(gray.shape[1], box.x + box.w), min(gray.shape[0], box.y + int(0.6 * box.h))  # eyes sit in the upper part
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    factor = _REGION_WIDTH / box.w
    region = cv2.resize(gray[y0:y1, x0:x1], None, fx=factor, fy=factor,
                        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    region = cv2.equalizeHist(region)
    eyes = []
    for cascade in _cascades():
        found = cascade.detectMultiScale(region, 1.1, 3, minSize=(16, 16), maxSize=(_REGION_WIDTH // 2, _REGION_WIDTH // 2))
        eyes += [(ex + ew / 2, ey + eh / 2, float(ew)) for ex, ey, ew, eh in found]
    offset = (x0 - box.x) * factor  # the region starts at the box's left edge unless the box leaves the frame
    return eye_pair_roll([(ex + offset, ey, size) for ex, ey, size in eyes], _REGION_WIDTH)
