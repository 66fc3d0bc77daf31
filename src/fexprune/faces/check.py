"""How a detector chain cut a data set's faces: the counts a face-cropped run reports (face_summary), and how
well it cuts them, before any network is trained (`fexprune data faces`).

Training one seed of one split takes minutes and moves by several points from seed to seed; detection
takes seconds and answers the first question directly: how many frames got a face, from which step, and,
where true boxes are known (the built-in set writes them to faces.csv), how many crops lie on the face.
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from pathlib import Path

from fexprune.data.loading import LAYOUT_ALIGNED
from fexprune.errors import InputError
from fexprune.faces.chain import CLIP_NEIGHBOUR, FALLBACK, iou

ON_FACE_IOU = 0.3  # a crop "on the face": its box overlaps the true one this much
TRUTH_COLUMNS = ("path", "cx", "cy", "width", "height")  # and, optionally, "tilt" (degrees, as FaceBox.roll)


def read_true_boxes(path: str | Path) -> dict[Path, tuple[float, float, float, float, float | None]]:
    """{image path: (x, y, w, h, tilt or None)} from a CSV of box centres and sizes; image paths are
    relative to the CSV's folder unless absolute. InputError names the file and line of a bad row."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.open(newline="")))
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror or error})", path) from None
    missing = [c for c in TRUTH_COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise InputError(f"needs the columns {', '.join(TRUTH_COLUMNS)} (missing: {', '.join(missing)})", path)
    boxes = {}
    for line, row in enumerate(rows, start=2):
        try:
            cx, cy, w, h = (float(row[c]) for c in TRUTH_COLUMNS[1:])
            tilt = float(row["tilt"]) if row.get("tilt") not in (None, "") else None
        except ValueError:
            raise InputError(f"line {line}: a box value is not a number", path) from None
        if not (w > 0 and h > 0):
            raise InputError(f"line {line}: width and height must be positive", path)
        image = Path(row["path"])
        boxes[(image if image.is_absolute() else path.parent / image).resolve()] = (cx - w / 2, cy - h / 2, w, h, tilt)
    return boxes


def crop_kind(detector: str) -> str:
    """"detected" for a face some detector found, else how the frame was cut (fallback, clip-neighbour, layout-aligned)."""
    return detector if detector in (FALLBACK, CLIP_NEIGHBOUR, LAYOUT_ALIGNED) else "detected"


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


def check_faces(image_set, truth: dict | None = None) -> dict:
    """The image set's face counts (face_summary), and with `truth` (read_true_boxes), per kind of crop
    (detected, clip-neighbour, fallback): frames with a true box, the share on the face, the median IoU;
    and the median error of the rolls the crops were turned by against the true tilt."""
    if image_set.faces is None:
        raise ValueError("check_faces needs an image set cut to faces (fexprune.faces.loading.load_face_crops)")
    report = {"chain": image_set.summary()["face_crop"]}
    if truth is None:
        return report
    by_kind: dict[str, list[float]] = {}
    roll_errors, unmatched = [], 0
    for sample, face in zip(image_set.samples, image_set.faces):
        known = truth.get(Path(sample.path).resolve())
        if known is None:
            unmatched += 1
            continue
        box = (face["x"], face["y"], face["w"], face["h"])
        by_kind.setdefault(crop_kind(face["detector"]), []).append(iou(box, known[:4]))
        if face.get("roll") is not None and known[4] is not None:
            roll_errors.append(abs(face["roll"] - known[4]))
    report["truth"] = {
        "n_matched": len(image_set.samples) - unmatched,
        "n_without_truth": unmatched,
        "on_face_iou": ON_FACE_IOU,
        "by_kind": {kind: {"n": len(values), "on_face": sum(v > ON_FACE_IOU for v in values) / len(values),
                           "median_iou": statistics.median(values)}
                    for kind, values in sorted(by_kind.items())},
        "roll": {"n": len(roll_errors), "median_error_deg": statistics.median(roll_errors) if roll_errors else None},
    }
    return report
