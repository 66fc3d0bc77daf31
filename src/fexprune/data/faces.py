"""Face detection before resizing (the paper's own future work): find the face, crop around it.

A chain of detectors, each run on a downscaled gray copy of the frame: OpenCV's Haar cascades
(frontal default, frontal alt2, and, when neither found a face, the profile cascade on the frame and
its mirror image), and dlib's HOG frontal detector (pip package `dlib-bin`, a dependency; skipped where missing).
With several boxes the best is one that two detectors agree on (IoU >= 0.3), then the largest. Two
optional steps follow: "haar-relaxed" runs the frontal cascades once more with every candidate kept and
takes the most confident box if it is confident enough; "clip-neighbour" gives a frame still without a
face the box of the nearest frame of its clip that has a sure one (`borrow_clip_boxes`). "haar-rotated"
(opt-in too) looks for tilted heads on the frame turned by a few angles; "mtcnn" (opt-in, fexprune.data.mtcnn)
is a CNN detector that also marks the eyes. Frames where
nothing is found fall back to the typical SFEW face region, and callers count them. With eye alignment
on, each found face is cut turned so its eyes are level (`levelled`, fexprune.data.align). Images of the
aligned-faces layout are faces already: they are not cut again (LAYOUT_ALIGNED).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fexprune.data.preprocess import to_gray
from fexprune.runs import atomic_write_bytes, cache_root

HAAR_FILES = {
    "haar-default": "haarcascade_frontalface_default.xml",
    "haar-alt2": "haarcascade_frontalface_alt2.xml",
    "haar-profile": "haarcascade_profileface.xml",
}
FALLBACK = "fallback"
LAYOUT_ALIGNED = "layout-aligned"  # the data set's own aligned faces (SFEW's *_Aligned_Faces): used as they are
RELAXED = "haar-relaxed"  # the frontal cascades again, no neighbour vote: only when nothing else fired
ROTATED = "haar-rotated"  # the strict frontal cascades on the frame turned by ROTATIONS: tilted heads
ROTATIONS = (15.0, -15.0, 30.0, -30.0)  # degrees, tried in turn; the first that finds a face gives its roll
CLIP_NEIGHBOUR = "clip-neighbour"  # a chain step over the whole set: a frame without a face takes a clip neighbour's box
MTCNN = "mtcnn"  # fexprune.data.mtcnn: three small CNNs, weights from the facenet-pytorch wheel; gives eye landmarks
DETECTORS = ("haar-default", "haar-alt2", "haar-profile", "dlib-hog", MTCNN, ROTATED, RELAXED, CLIP_NEIGHBOUR)
DEFAULT_CHAIN = ("haar-default", "haar-alt2", "dlib-hog", "haar-profile")  # dlib-hog: only where dlib is installed
# The two steps after it put more crops on the face (below) but gained no accuracy on the built-in data
# (benchmarks/recipes.md, rows 27-31), so they are opt-in: --detectors ...,haar-relaxed,clip-neighbour.
# haar-rotated is opt-in as well: +2.8 on the movie split over 5 seeds but -1.3 on the random one (row 50).
FULL_CHAIN = DEFAULT_CHAIN + (RELAXED, CLIP_NEIGHBOUR)
LAST_RESORT = ("haar-profile", ROTATED, RELAXED)  # slow or less sure: only when nothing before them fired
# haar-relaxed keeps a box only above this confidence (the cascade's last-stage weight). On frames of
# three synthetic sets that the strict chain missed, boxes above 5 lay on the true face (IoU > 0.3) in
# 88% of 215 frames, median IoU 0.75-0.78; the typical face region on the same frames: 68%, 0.37-0.42.
RELAXED_MIN_WEIGHT = 5.0
AGREEMENT_IOU = 0.3
_DETECT_HEIGHT = 288  # frames are shrunk to this height first: faces in SFEW are 72-291 px of 576


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    w: int
    h: int
    detector: str  # which detector found it ("+"-joined when two agree), or "fallback"
    roll: float | None = None  # degrees the crop is turned: its eyes' slope (--eye-align), or haar-rotated's turn
    landmark_roll: float | None = None  # the eyes' slope by mtcnn's landmarks: --eye-align takes it over the eye cascades'

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FaceBox":
        roll, landmark_roll = values.get("roll"), values.get("landmark_roll")
        return cls(int(values["x"]), int(values["y"]), int(values["w"]), int(values["h"]), str(values["detector"]),
                   None if roll is None else float(roll), None if landmark_roll is None else float(landmark_roll))


def fallback_box(width: int, height: int) -> FaceBox:
    """Where faces sit in SFEW frames on average: centre (0.48 W, 0.38 H), side about 0.3 H."""
    side = int(round(0.3 * height))
    cx, cy = 0.48 * width, 0.38 * height
    return FaceBox(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side, FALLBACK)


def dlib_available() -> bool:
    return _dlib_module() is not None


_per_thread = threading.local()  # detectors keep scratch state: one of each per thread, never shared


def _cascade(name: str) -> cv2.CascadeClassifier:
    cascades = _per_thread.__dict__.setdefault("cascades", {})
    if name not in cascades:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_FILES[name])
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load {HAAR_FILES[name]}")
        cascades[name] = cascade
    return cascades[name]


@functools.lru_cache(maxsize=None)
def _dlib_module():
    try:
        import dlib
    except ImportError:
        return None
    return dlib


def _dlib_detector():
    dlib = _dlib_module()
    if dlib is None:
        return None
    if not hasattr(_per_thread, "dlib"):
        _per_thread.dlib = dlib.get_frontal_face_detector()
    return _per_thread.dlib


def _run_detector(name: str, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) in `gray`'s pixels."""
    min_side = max(20, gray.shape[0] // 9)
    if name == "dlib-hog":
        detector = _dlib_detector()
        if detector is None:
            return []
        return [(r.left(), r.top(), r.width(), r.height()) for r in detector(gray, 1)]
    if name == RELAXED:
        return _relaxed(gray, min_side)
    if name == CLIP_NEIGHBOUR:
        return []  # not a detector of one frame: load_image_set runs borrow_clip_boxes over the set
    if name not in HAAR_FILES:
        raise ValueError(f"unknown face detector {name!r} (choose from {', '.join(DETECTORS)})")
    cascade = _cascade(name)
    found = [tuple(int(v) for v in box) for box in cascade.detectMultiScale(gray, 1.15, 4, minSize=(min_side, min_side))]
    if name == "haar-profile":  # the cascade knows one side only: look at the mirror image too
        width = gray.shape[1]
        mirrored = cascade.detectMultiScale(gray[:, ::-1].copy(), 1.15, 4, minSize=(min_side, min_side))
        found += [(width - int(x) - int(w), int(y), int(w), int(h)) for x, y, w, h in mirrored]
    return found


def _rotated(gray: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
    """[(box, roll)] from the strict frontal cascades on `gray` turned about its centre by each of ROTATIONS
    in turn, until one finds a face: the largest box, its centre turned back, its roll the turn. Upright
    cascades miss heads tilted past about 15 degrees; on the built-in set the frames no step found were the
    tilted ones (recipes.md, row 49)."""
    height, width = gray.shape
    for angle in ROTATIONS:
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        turned = cv2.warpAffine(gray, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        boxes = _run_detector("haar-default", turned) + _run_detector("haar-alt2", turned)
        if boxes:
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            cx, cy = cv2.invertAffineTransform(matrix) @ np.array([x + w / 2, y + h / 2, 1.0])
            return [((int(round(cx - w / 2)), int(round(cy - h / 2)), w, h), angle)]
    return []


def _mtcnn(image: np.ndarray, scale: float) -> list[tuple[tuple[int, int, int, int], float]]:
    """[(box, the eyes' slope)] for every face MTCNN finds in `image` (gray or BGR) shrunk by `scale`, in the
    shrunk pixels. It sees colour, not the equalised gray the cascades see."""
    from fexprune.data import mtcnn

    if image.ndim == 3 and image.shape[2] >= 3:
        rgb = np.ascontiguousarray(image[:, :, 2::-1])
    else:
        rgb = np.repeat(to_gray(image)[:, :, None], 3, axis=2)
    if scale < 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = []
    for face in mtcnn.detect(rgb, min_face=max(20, rgb.shape[0] // 9)):
        x1, y1, x2, y2 = face.box
        found.append(((int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1))), face.roll))
    return found


def _relaxed(gray: np.ndarray, min_side: int) -> list[tuple[int, int, int, int]]:
    """The most confident box of both frontal cascades with no neighbour vote, if confident enough."""
    best = None
    for name in ("haar-default", "haar-alt2"):
        boxes, _, weights = _cascade(name).detectMultiScale3(
            gray, 1.05, 1, minSize=(min_side, min_side), outputRejectLevels=True)
        for box, weight in zip(boxes, np.ravel(weights)):
            if weight > RELAXED_MIN_WEIGHT and (best is None or weight > best[0]):
                best = (float(weight), tuple(int(v) for v in box))
    return [best[1]] if best else []


def iou(a: FaceBox | tuple, b: FaceBox | tuple) -> float:
    ax, ay, aw, ah = (a.x, a.y, a.w, a.h) if isinstance(a, FaceBox) else a
    bx, by, bw, bh = (b.x, b.y, b.w, b.h) if isinstance(b, FaceBox) else b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def detect_faces(image: np.ndarray, detectors: tuple[str, ...] | list[str] = DEFAULT_CHAIN) -> list[FaceBox]:
    """Every face the chain finds in `image` ((H, W) gray or (H, W, 3) BGR uint8), best first.

    Boxes are in the pixels of `image`. Boxes two detectors agree on are merged into one (their mean,
    detector names joined by "+") and ranked first; then larger before smaller. A haar-rotated box carries
    the roll it was found at, so its crop is cut level; an mtcnn box, the slope of the eyes it marked.
    """
    gray = to_gray(image)
    scale = min(1.0, _DETECT_HEIGHT / gray.shape[0])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.equalizeHist(small)
    found: list[tuple[str, tuple[int, int, int, int]]] = []
    rolls: dict[tuple, float] = {}  # haar-rotated's box, and the turn it was found at
    eye_slopes: dict[tuple, float] = {}  # mtcnn's boxes, and the slope of the eyes it marked
    for name in detectors:
        if name in LAST_RESORT and found:
            continue
        if name == ROTATED:
            rolls = dict(_rotated(small))
            found += [(name, box) for box in rolls]
            continue
        if name == MTCNN:
            eye_slopes = dict(_mtcnn(image, scale))
            found += [(name, box) for box in eye_slopes]
            continue
        found += [(name, box) for box in _run_detector(name, small)]
    groups: list[list[tuple[str, tuple]]] = []
    for name, box in sorted(found, key=lambda item: -item[1][2] * item[1][3]):
        for group in groups:
            if iou(group[0][1], box) >= AGREEMENT_IOU:
                group.append((name, box))
                break
        else:
            groups.append([(name, box)])
    faces = []
    for group in groups:
        names = sorted({name for name, _ in group}, key=list(detectors).index)
        boxes = np.array([box for _, box in group], dtype=np.float64) / scale
        x, y, w, h = (int(round(v)) for v in boxes.mean(axis=0))
        slope = next((eye_slopes[box] for name, box in group if name == MTCNN), None)
        face = FaceBox(x, y, w, h, "+".join(names), rolls.get(group[0][1]), slope)
        faces.append((len(names) > 1, w * h, face))
    faces.sort(key=lambda item: (not item[0], -item[1]))
    return [face for _, _, face in faces]


def best_face(image: np.ndarray, detectors: tuple[str, ...] | list[str] = DEFAULT_CHAIN) -> FaceBox | None:
    faces = detect_faces(image, detectors)
    return faces[0] if faces else None


def face_or_fallback(image: np.ndarray, detectors: tuple[str, ...] | list[str] = DEFAULT_CHAIN) -> FaceBox:
    """The best face, or the typical face region (detector "fallback") when none is found."""
    face = best_face(image, detectors)
    return face if face is not None else fallback_box(image.shape[1], image.shape[0])


def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.2, size: tuple[int, int] = (90, 72)) -> np.ndarray:
    """The face with `margin` (a fraction of the box side) around it, gray uint8 at `size` = (width, height).

    The crop is widened to the output's aspect ratio around the box centre, so faces are not squashed;
    parts outside the frame are filled by replicating the border. A box with a `roll` is cut turned by
    it about its centre, so that its eyes come out level.
    """
    gray = to_gray(image)
    width, height = int(size[0]), int(size[1])
    crop_h = max(box.h, box.w / (width / height)) * (1 + 2 * margin)
    crop_w = crop_h * width / height
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    # an affine map from output pixels to the crop: one warp does the cut, the padding and the resize
    sx, sy = crop_w / width, crop_h / height
    matrix = np.array([[sx, 0, cx - crop_w / 2 + sx / 2 - 0.5], [0, sy, cy - crop_h / 2 + sy / 2 - 0.5]])
    if box.roll:  # output offsets from the centre, turned by the roll: the crop's x axis runs along the eyes
        c, s = np.cos(np.radians(box.roll)), np.sin(np.radians(box.roll))
        u, v = sx * (width / 2 - 0.5), sy * (height / 2 - 0.5)
        matrix = np.array([[c * sx, -s * sy, cx - 0.5 - c * u + s * v], [s * sx, c * sy, cy - 0.5 - s * u - c * v]])
    interpolation = cv2.INTER_AREA if sx > 1 else cv2.INTER_LINEAR
    if sx > 2:  # shrink with area averaging first, so the warp does not alias
        factor = 1 / min(sx, sy)
        gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        matrix = matrix * factor
        matrix[:, 2] += 0.5 * factor - 0.5
        interpolation = cv2.INTER_LINEAR
    return cv2.warpAffine(gray, matrix, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def levelled(image: np.ndarray, box: FaceBox) -> FaceBox:
    """`box` with the roll its eyes show (mtcnn's landmarks, else the eye cascades: fexprune.data.align),
    else the roll it was found at (haar-rotated); the typical face region is never turned."""
    if box.detector == FALLBACK:
        return box
    from fexprune.data.align import eye_roll

    roll = box.landmark_roll if box.landmark_roll is not None else eye_roll(image, box)
    return dataclasses.replace(box, roll=roll if roll is not None else box.roll)


def borrow_clip_boxes(samples: list, boxes: list[FaceBox]) -> dict[int, FaceBox]:
    """{index: box} for each fallback frame whose clip has a frame with a sure face (not haar-relaxed):
    the box of the frame nearest it in frame number, marked CLIP_NEIGHBOUR. Frames of one clip are one
    shot a few frames apart (SFEW, and the built-in set), so the face has barely moved. On the built-in
    frames such boxes lay on the true face (IoU > 0.3) in 93% of 28 frames, the typical face region in
    75%; borrowing from haar-relaxed boxes too reached 66% on the 48 frames it added, so it does not. No
    label is used. Only SFEW-style names (`<Movie>_<clip>_<frame>`) say which frames share a clip; other
    files neither lend nor borrow."""
    from fexprune.data.layouts import frame_number

    frames = [frame_number(sample.path) for sample in samples]
    by_clip: dict[str, list[int]] = {}
    for index, (sample, box) in enumerate(zip(samples, boxes)):
        if frames[index] is not None and box.detector not in (FALLBACK, CLIP_NEIGHBOUR, RELAXED):
            by_clip.setdefault(sample.clip, []).append(index)
    borrowed = {}
    for index, (sample, box) in enumerate(zip(samples, boxes)):
        donors = by_clip.get(sample.clip) if frames[index] is not None else None
        if box.detector == FALLBACK and donors:
            donor = boxes[min(donors, key=lambda d: (abs(frames[d] - frames[index]), d))]
            borrowed[index] = FaceBox(donor.x, donor.y, donor.w, donor.h, CLIP_NEIGHBOUR)  # its own roll comes later
    return borrowed


def chain_name(detectors: tuple[str, ...] | list[str]) -> str:
    """The chain as it really runs here ("dlib-hog" drops out where dlib is missing), for configs and keys."""
    return ",".join(d for d in detectors if d != "dlib-hog" or dlib_available())


def crop_options(margin: float = 0.2, detectors: tuple[str, ...] | list[str] | None = None, eye_align: bool = False) -> dict:
    """How crops are cut ({"detectors", "margin"}, and "eye_align" when on), for cache keys, configs
    and checkpoints; without eye alignment the keys of earlier runs stay valid."""
    options = {"detectors": chain_name(detectors or DEFAULT_CHAIN), "margin": float(margin)}
    return {**options, "eye_align": True} if eye_align else options


class BoxCache:
    """Detected boxes on disk, one JSON file per detector chain, keyed by file path, size and mtime.

    Detection is the slow part of face cropping (0.1-0.3 s a frame); with boxes cached, a new crop
    margin or input size re-crops without detecting again.
    """

    def __init__(self, detectors: tuple[str, ...] | list[str] = DEFAULT_CHAIN, folder: str | os.PathLike | None = None):
        name = chain_name([d for d in detectors if d != CLIP_NEIGHBOUR])  # a frame's own boxes do not depend on it
        digest = hashlib.sha256(f"v1 {_DETECT_HEIGHT} {name}".encode()).hexdigest()[:16]
        self.path = Path(folder or cache_root() / "faces") / f"{digest}.json"
        self.changed = False
        try:
            self.entries: dict[str, dict] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    @staticmethod
    def key(file: str | os.PathLike) -> str:
        stat = os.stat(file)
        return f"{os.path.abspath(file)}\0{stat.st_size}\0{stat.st_mtime_ns}"

    def get(self, file: str | os.PathLike) -> FaceBox | None:
        """The cached box (a fallback box when detection found none), or None when never detected."""
        entry = self.entries.get(self.key(file))
        return FaceBox.from_dict(entry) if entry else None

    def put(self, file: str | os.PathLike, box: FaceBox) -> None:
        self.entries[self.key(file)] = box.to_dict()
        self.changed = True

    def save(self) -> None:
        if self.changed:
            atomic_write_bytes(self.path, json.dumps(self.entries).encode())
            self.changed = False


class FaceCropper:
    """Decode a file, find its face (box cache first), crop it: what load_image_set does per file."""

    def __init__(self, size: tuple[int, int] = (90, 72), margin: float = 0.2, detectors=None, cache_folder=None,
                 eye_align: bool = False):
        self.size = (int(size[0]), int(size[1]))
        self.margin = float(margin)
        self.eye_align = bool(eye_align)
        self.detectors = tuple(detectors or DEFAULT_CHAIN)
        from fexprune.errors import InputError

        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown:
            raise InputError(f"unknown face detector {unknown[0]!r} (choose from {', '.join(DETECTORS)})")
        if MTCNN in self.detectors:  # torch is imported only for a chain that runs it
            from fexprune.data import mtcnn

            if not mtcnn.available():
                raise InputError(f"the mtcnn detector reads its weights from facenet-pytorch, which is not installed: "
                                 f"pip install --no-deps {mtcnn.WEIGHTS_PACKAGE}")
        self.boxes = BoxCache(self.detectors, cache_folder)

    def options(self) -> dict:
        """What the preprocessed-array cache key and config.json need to know."""
        return crop_options(self.margin, self.detectors, self.eye_align)

    def _levelled(self, image: np.ndarray, box: FaceBox) -> FaceBox:
        # eye rolls are not kept in the box cache: the eye search takes milliseconds, and the crops are cached
        return levelled(image, box) if self.eye_align else box

    def decode(self, path: Path):
        """((pixels, box), content hash, "") or (None, "", reason), as loading._decode answers."""
        from fexprune.data.preprocess import DecodeError, decode_image

        try:
            data = Path(path).read_bytes()
            image = decode_image(data)
        except DecodeError as error:
            return None, "", str(error)
        except OSError as error:
            return None, "", f"cannot read ({error.strerror or error})"
        box = self.boxes.get(path)
        if box is None:
            box = face_or_fallback(image, self.detectors)
            self.boxes.put(path, box)
        box = self._levelled(image, box)
        return (crop_face(image, box, self.margin, self.size), box), hashlib.sha1(data).hexdigest(), ""

    def recrop(self, path: Path, box: FaceBox) -> tuple[np.ndarray, FaceBox]:
        """The file cut with a box found elsewhere (a clip neighbour's), and that box as it was cut."""
        from fexprune.data.preprocess import decode_image

        image = decode_image(Path(path).read_bytes())
        box = self._levelled(image, box)
        return crop_face(image, box, self.margin, self.size), box

    def save(self) -> None:
        try:
            self.boxes.save()
        except OSError:
            pass  # a read-only cache only costs time next run


def face_summary(faces: list[dict], samples: list, eye_align: bool = False) -> dict:
    """Counts for results.json: how many frames had a face, by which detector, which borrowed a clip
    neighbour's box, which fell back to the typical face region, and which were cut turned level (by their eyes
    with `eye_align`, or at the turn haar-rotated found them);
    `n_layout_aligned` counts the aligned-faces layout's images, used whole."""
    fallback = [str(s.path) for s, f in zip(samples, faces) if f["detector"] == FALLBACK]
    borrowed = [str(s.path) for s, f in zip(samples, faces) if f["detector"] == CLIP_NEIGHBOUR]
    given = sum(f["detector"] == LAYOUT_ALIGNED for f in faces)
    detected = len(faces) - len(fallback) - len(borrowed) - given
    by_detector = Counter(f["detector"] for f in faces)
    return {
        "n_images": len(faces),
        "n_detected": detected,
        "n_layout_aligned": given,
        "eye_align": eye_align,
        "n_turned": sum(f.get("roll") is not None for f in faces),
        "n_clip_neighbour": len(borrowed),
        "n_fallback": len(fallback),
        "detection_rate": detected / len(faces) if faces else 0.0,
        "by_detector": dict(sorted(by_detector.items())),
        "clip_neighbour": borrowed,
        "fallback": fallback,
    }
