"""Copies of the input images with each face's box and predicted expression drawn on, for a person to check."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fexprune.outputs import Outputs

_KEEP_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_FOUND = (60, 200, 60)  # BGR: green for a detected face
_GUESSED = (0, 165, 255)  # orange for the fallback region or the whole frame


def draw_faces(image: np.ndarray, faces: list[dict]) -> np.ndarray:
    """A BGR copy of `image` with every face's box and "id: label p" above it; the id is the face's
    track where it has one (video), else its rank in the image."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[:, :, :3].copy()
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 250))
    scale = max(0.4, min(height, width) / 600)
    for index, face in enumerate(faces):
        x, y, w, h = face["box"]
        color = _FOUND if face["detector"] not in ("fallback", "whole-frame") else _GUESSED
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), color, thickness)
        text = f"{face.get('track', index)}: {face['label']} {face['emotions'][face['label']]:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y - text_h - baseline - 2 if y - text_h - baseline - 2 >= 0 else min(y + 2, height - text_h - baseline)
        left = min(max(0, x), max(0, width - text_w))
        cv2.rectangle(canvas, (left, top), (left + text_w, top + text_h + baseline), color, cv2.FILLED)
        cv2.putText(canvas, text, (left, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def write_annotated(out_dir: Path, relative: Path, image: np.ndarray, faces: list[dict], used: set[Path],
                    outputs: Outputs) -> Path:
    """Writes the drawn copy at `out_dir/relative` (PNG where the format is not one cv2 writes), a path
    `outputs` planned before the work (annotated_path, in the same order)."""
    target = annotated_path(out_dir, relative, used)
    ok, encoded = cv2.imencode(target.suffix, draw_faces(image, faces))
    if not ok:
        raise OSError(f"OpenCV could not encode {target.name}")
    return outputs.write_bytes(target, encoded.tobytes())


def annotated_path(out_dir: Path, relative: Path, used: set[Path]) -> Path:
    """Where the drawn copy of `relative` goes, a name not in `used` (which it joins)."""
    target = Path(out_dir) / relative
    if target.suffix.lower() not in _KEEP_SUFFIXES:
        target = target.with_name(target.name + ".png")
    stem, k = target, 1
    while target in used:  # two inputs with the same name: keep both
        target = stem.with_name(f"{stem.stem}-{k}{stem.suffix}")
        k += 1
    used.add(target)
    return target
