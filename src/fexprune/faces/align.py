"""Alignment of face crops (`--eye-align`). A face mtcnn found is cut by mapping its five landmarks (eyes,
nose, mouth corners) onto a fixed template with one similarity (`landmark_crop`): level, at one scale, the
features in one place. Any other face is turned by the roll of the head, read off the line through the two
eyes that OpenCV's eye cascades find inside its box, so the crop can be turned level.

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


# Five-point template of ArcFace's 112x112 crop (Deng et al., 2019, insightface): the eyes, nose tip and
# mouth corners as seen, in that order, the order mtcnn gives its landmarks in.
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
# Where the template sits in a crop: the distance from the eyes' centre to the mouth's centre, and how far
# the midpoint of that line lies below the box centre, in face-box heights. Measured (medians) on the chain's
# boxes of the real SFEW frames, so landmark crops come out at the scale and place of box crops.
EYE_TO_MOUTH = 0.45
MIDPOINT_BELOW_CENTRE = 0.09


def template_points(size: tuple[int, int], margin: float) -> np.ndarray:
    """The template's five points in a crop of `size` = (width, height) cut with `margin` around the face."""
    width, height = size
    box_height = height / (1 + 2 * margin)  # a face box's height in the crop, as crop_face cuts boxes
    eyes, mouth = TEMPLATE_112[:2].mean(axis=0), TEMPLATE_112[3:].mean(axis=0)
    scale = EYE_TO_MOUTH * box_height / np.linalg.norm(mouth - eyes)
    centre = np.array([width / 2, height / 2 + MIDPOINT_BELOW_CENTRE * box_height])
    return (TEMPLATE_112 - (eyes + mouth) / 2) * scale + centre


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (turn, one scale, shift; no mirror) that maps `source` points (N, 2) closest to
    `target` in least squares (Umeyama, 1991)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a / len(a))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / a.var(axis=0).sum()
    return np.hstack([scale * rotation, (target_mean - scale * rotation @ source_mean)[:, None]])


def landmark_crop(image: np.ndarray, landmarks, margin: float = 0.2, size: tuple[int, int] = (90, 72)) -> np.ndarray:
    """The face whose five `landmarks` (x0, y0, x1, y1, ...: eyes, nose, mouth corners, as mtcnn gives
    them) are mapped onto the template by one similarity: gray uint8 at `size` = (width, height)."""
    gray = to_gray(image)
    matrix = similarity(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), template_points(size, margin))
    scale = float(np.hypot(*matrix[:, 0]))
    if scale < 0.5:  # shrink with area averaging first, so the warp does not alias
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # a shrunk pixel q is the frame's (q + 0.5) / scale - 0.5
        matrix = np.hstack([matrix[:, :2] / scale, (matrix[:, :2] @ np.full(2, 0.5 / scale - 0.5) + matrix[:, 2])[:, None]])
    return cv2.warpAffine(gray, matrix, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
