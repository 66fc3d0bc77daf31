"""The face crop the loader is handed (FaceCropper): decode a file, find its face (box cache first), cut it.

The crop keeps the output's aspect ratio around the box. With eye alignment on, a face with mtcnn's
landmarks is cut by mapping them onto a template, any other found face turned so its eyes are level
(`levelled`, fexprune.faces.align). Images of the aligned-faces layout are
faces already: the loader does not cut them again (fexprune.data.loading.LAYOUT_ALIGNED).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np

from fexprune.data.preprocess import decode_image, read_image, to_gray
from fexprune.errors import InputError
from fexprune.faces.align import eye_roll, landmark_crop
from fexprune.faces.chain import (CLIP_NEIGHBOUR, DETECT_HEIGHT, DETECTORS, FALLBACK, FaceBox, chain_name,
                                  default_chain, face_or_fallback, frame_steps)
from fexprune.faces.clip_neighbour import borrow_clip_boxes
from fexprune.faces.detectors import MTCNN
from fexprune.runs import atomic_write_bytes, cache_root


def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.2, size: tuple[int, int] = (90, 72),
              align: bool = False) -> np.ndarray:
    """The face with `margin` (a fraction of the box side) around it, gray uint8 at `size` = (width, height).

    With `align`, a box that carries landmarks (mtcnn's) is cut by mapping them onto the template
    (fexprune.faces.align.landmark_crop) instead.

    The crop is widened to the output's aspect ratio around the box centre, so faces are not squashed;
    parts outside the frame are filled by replicating the border. A box with a `roll` is cut turned by
    it about its centre, so that its eyes come out level.
    """
    if align and box.landmarks is not None:
        return landmark_crop(image, box.landmarks, margin, size)
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
    """`box` with the roll its eyes show (mtcnn's landmarks, else the eye cascades: fexprune.faces.align),
    else the roll it was found at (haar-rotated); the typical face region is never turned."""
    if box.detector == FALLBACK:
        return box
    roll = box.landmark_roll if box.landmark_roll is not None else eye_roll(image, box)
    return dataclasses.replace(box, roll=roll if roll is not None else box.roll)


def crop_options(margin: float = 0.2, detectors: tuple[str, ...] | list[str] | None = None, eye_align: bool = False) -> dict:
    """How crops are cut ({"detectors", "margin"}, and "eye_align" only when on), for cache keys, configs
    and checkpoints: a crop without eye alignment has one key whether or not the option is known.
    "landmarks" tells runs whose mtcnn faces were cut onto the template from those that were only levelled."""
    options = {"detectors": chain_name(detectors or default_chain()), "margin": float(margin)}
    return {**options, "eye_align": True, "landmarks": True} if eye_align else options


class BoxCache:
    """Detected boxes on disk, one JSON file per detector chain, keyed by file path, size and mtime.

    Detection is the slow part of face cropping (0.1-0.3 s a frame); with boxes cached, a new crop
    margin or input size re-crops without detecting again.
    """

    def __init__(self, detectors: tuple[str, ...] | list[str], folder: str | os.PathLike | None = None):
        name = chain_name(frame_steps(detectors))  # a frame's own boxes do not depend on the pass over the set
        digest = hashlib.sha256(f"v2 {DETECT_HEIGHT} {name}".encode()).hexdigest()[:16]
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
        self.detectors = tuple(detectors or default_chain())
        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown:
            raise InputError(f"unknown face detector {unknown[0]!r} (choose from {', '.join(DETECTORS)})")
        if MTCNN in self.detectors:  # its module is imported only for a chain that runs it
            from fexprune.faces import mtcnn

            if not mtcnn.available():
                raise InputError(f"the mtcnn detector's weights (from {mtcnn.WEIGHTS_PACKAGE}) are not here: "
                                 f"{mtcnn.FETCH_HINT}")
        self.boxes = BoxCache(self.detectors, cache_folder)

    @property
    def borrows_clip_boxes(self) -> bool:
        """Whether the chain names the clip-neighbour pass, which the loader runs over the set (borrow_clip_boxes)."""
        return CLIP_NEIGHBOUR in self.detectors

    def options(self) -> dict:
        """What the preprocessed-array cache key and the run's spec need to know."""
        return crop_options(self.margin, self.detectors, self.eye_align)

    def _levelled(self, image: np.ndarray, box: FaceBox) -> FaceBox:
        # eye rolls are not kept in the box cache: the eye search takes milliseconds, and the crops are cached
        return levelled(image, box) if self.eye_align else box

    def decode(self, path: Path):
        """((pixels, box), content hash, "") or (None, "", the reason the file is skipped), as read_image answers."""
        image, digest, reason = read_image(path)
        if image is None:
            return None, digest, reason
        box = self.boxes.get(path)
        if box is None:
            box = face_or_fallback(image, self.detectors)
            self.boxes.put(path, box)
        box = self._levelled(image, box)
        return (crop_face(image, box, self.margin, self.size, self.eye_align), box), digest, ""

    def recrop(self, path: Path, box: FaceBox) -> tuple[np.ndarray, FaceBox]:
        """The file cut with a box found elsewhere (a clip neighbour's), and that box as it was cut."""
        image = decode_image(Path(path).read_bytes())
        box = self._levelled(image, box)
        return crop_face(image, box, self.margin, self.size, self.eye_align), box

    def borrow_clip_boxes(self, samples: list, images: list[np.ndarray], faces: list[dict]) -> None:
        """The pass over the whole set the loader runs after `decode`: where the chain names it, each faceless
        frame is cut again (in `images`, `faces`) with a clip neighbour's box (fexprune.faces.clip_neighbour)."""
        if not self.borrows_clip_boxes:
            return
        for index, box in borrow_clip_boxes(samples, [FaceBox.from_dict(f) for f in faces]).items():
            images[index], box = self.recrop(samples[index].path, box)
            faces[index] = box.to_dict()

    def save(self) -> None:
        try:
            self.boxes.save()
        except OSError:
            pass  # a read-only cache only costs time next run
