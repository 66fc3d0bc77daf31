"""Classify the expression of every face in new images with a trained or pruned run.

Like fer's `detect_emotions`, the result is one record per image: `{"path", "faces": [{"box": (x, y,
w, h), "emotions": {class: p}, "label", "detector"}]}`. Faces are found with the detector chain of
`fexprune.faces` (the run's own chain and margin when it was trained on face crops); a frame where
none is found is classified on the typical face region (detector "fallback"), as in training, and
counted. Files that are not readable images are skipped and listed, never raised.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from fexprune import runs
from fexprune.data.layouts import IMAGE_EXTENSIONS
from fexprune.data.preprocess import DecodeError, decode_image, to_gray_resized
from fexprune.errors import InputError
from fexprune.faces import FALLBACK, crop_face, detect_faces, fallback_box, levelled
from fexprune.inference.annotate import annotated_path, write_annotated
from fexprune.inference.run_model import RunModel, face_crop_settings, load_run_model
from fexprune.inference.split_membership import count_line, split_membership
from fexprune.outputs import Outputs

WHOLE_FRAME = "whole-frame"


class Predictions(list):
    """The per-image records, plus the files skipped, the frames with no face found and any warnings."""

    def __init__(self, records: Iterable[dict] = (), classes: Iterable[str] = (), skipped: Iterable[dict] = (),
                 no_face: Iterable[str] = (), warnings: Iterable[str] = (), source: Path | None = None):
        super().__init__(records)
        self.classes = list(classes)
        self.skipped = list(skipped)  # {"path", "reason"}
        self.no_face = list(no_face)  # paths classified on the fallback region
        self.warnings = list(warnings)
        self.source = source  # the checkpoint used

    @property
    def n_faces(self) -> int:
        return sum(len(record["faces"]) for record in self)

    def split_line(self) -> str | None:
        """How many images were in the run's training or test split (None: none were)."""
        return count_line([record.get("in_split", "") for record in self])


def collect_images(paths: Iterable[str | os.PathLike]) -> tuple[list[tuple[Path, Path]], list[dict]]:
    """Files named, and files under folders named (recursively, sorted), each with the relative path its
    annotated copy gets; files in folders whose extension is not an image's are skipped with a reason."""
    found: list[tuple[Path, Path]] = []
    skipped: list[dict] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, relative))

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            label = Path(path.resolve().name or "images")
            for file in sorted(p for p in path.rglob("*") if not p.is_dir()):
                if not file.is_file():  # a broken link, a FIFO, a socket: listed, as train lists them
                    skipped.append({"path": runs.printable(file), "reason": "not a regular file (broken link?)"})
                elif file.suffix.lower() in IMAGE_EXTENSIONS:
                    add(file, label / file.relative_to(path))
                elif file.resolve() not in seen:
                    seen.add(file.resolve())
                    skipped.append({"path": runs.printable(file), "reason": f"not an image file (extension {file.suffix or 'none'!r})"})
        elif path.is_file():
            add(path, Path(path.name))  # named explicitly: the contents decide, whatever the extension
        else:
            raise InputError("no such file or folder", path)
    return found, skipped


def face_crops(image: np.ndarray, run: RunModel, face_detect: bool) -> list[tuple[tuple[int, int, int, int], str, np.ndarray]]:
    """(box, detector, gray crops (V, H, W) at the network's size) for every face in `image`, best first:
    V = 1, or one cut per margin where the run averaged its test faces over several (tta_margins)."""
    height, width = image.shape[:2]
    if not face_detect:
        return [((0, 0, width, height), WHOLE_FRAME, to_gray_resized(image, run.image_size)[None])]
    settings = run.face_crop or face_crop_settings(True)
    boxes = detect_faces(image, tuple(settings["detectors"])) or [fallback_box(width, height)]
    if settings.get("eye_align"):  # as training cut them: each found face turned to level its eyes
        boxes = [levelled(image, box) for box in boxes]
    margins = [settings["margin"], *run.preprocessing.get("tta_margins", [])]
    return [
        ((int(b.x), int(b.y), int(b.w), int(b.h)), b.detector,
         np.stack([crop_face(image, b, margin, run.image_size, bool(settings.get("landmarks"))) for margin in margins]))
        for b in boxes
    ]


def classify(run: RunModel, crops: list[np.ndarray]) -> np.ndarray:
    """(B, classes) probabilities of B faces given as `face_crops` cuts them ((V, H, W) each): the mean over
    each face's V cuts. Stills and video frames both go through here, so a frame scores as its PNG would."""
    stacked = np.stack(crops)  # (B, V, H, W)
    return run.probabilities(stacked.reshape(-1, *stacked.shape[2:])).reshape(len(crops), stacked.shape[1], -1).mean(1)


def predict(
    run_dir: str | os.PathLike | RunModel,
    paths: Iterable[str | os.PathLike],
    face_detect: bool | None = None,
    batch_size: int = 64,
    annotate: str | os.PathLike | None = None,
    progress: bool = False,
    device: str = "cpu",
    overwrite: bool = False,
    outputs: Outputs | None = None,
) -> Predictions:
    """Every face (or the whole frame, `face_detect=False`) of every image under `paths`, classified.

    `face_detect=None` follows the run: faces are detected when the model was trained on face crops, and
    whole frames are classified when it was trained on whole frames, so new images look like its training data.
    `run_dir` may be a model already loaded (`load_run_model`), so a caller that predicts often loads it once.
    The annotated copies are planned in `outputs` (the command's other outputs already in it), or in a plan
    of their own over `overwrite`.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    files, skipped = collect_images(paths)
    if not files and not skipped:
        raise InputError("no files found in " + ", ".join(str(p) for p in paths))
    annotate_dir = Path(annotate) if annotate is not None else None
    if annotate_dir is not None:  # before any work: an input image is never drawn over
        run_folder = run_dir.source.parent if isinstance(run_dir, RunModel) else run_dir
        outputs = outputs or Outputs(overwrite, inputs=[*paths, run_folder])
        planned: set[Path] = set()
        for _, relative in files:
            outputs.plan(annotated_path(annotate_dir, relative, planned), "an annotated copy")
    run = run_dir if isinstance(run_dir, RunModel) else load_run_model(run_dir, device)
    if face_detect is None:
        face_detect = run.face_crop is not None
    membership = split_membership(run.source.parent)
    result = Predictions(classes=run.classes, skipped=skipped, warnings=mismatch_warnings(run, face_detect),
                         source=run.source)
    pending: list[tuple[dict, np.ndarray]] = []  # faces waiting for a batch
    shown: list[tuple[Path, np.ndarray, dict]] = []  # images waiting to be annotated
    used: set[Path] = set()

    def flush() -> None:
        score_faces(run, pending, batch_size)
        for relative, image, record in shown:
            try:
                write_annotated(annotate_dir, relative, image, record["faces"], used, outputs)
            except OSError as error:
                raise InputError(f"cannot write annotated copy ({error.strerror or error})", annotate_dir / relative) from None
        shown.clear()

    for path, relative in tqdm(files, desc="predict", unit="img", file=sys.stderr, disable=not progress, leave=False):
        try:
            image = decode_image(path.read_bytes())
        except DecodeError as error:
            result.skipped.append({"path": runs.printable(path), "reason": str(error)})
            continue
        except OSError as error:
            result.skipped.append({"path": runs.printable(path), "reason": f"cannot read ({error.strerror or error})"})
            continue
        record = {"path": runs.printable(path), "faces": [],  # a non-UTF-8 name escaped: the CSV stays UTF-8
                  "in_split": membership.side(path)}
        for box, detector, crop in face_crops(image, run, face_detect):
            face = {"box": box, "detector": detector}
            record["faces"].append(face)
            pending.append((face, crop))
        if any(face["detector"] == FALLBACK for face in record["faces"]):
            result.no_face.append(runs.printable(path))
        result.append(record)
        if annotate_dir is not None:
            shown.append((relative, image, record))
        if len(pending) >= batch_size:
            flush()
    flush()
    if not result:
        first = result.skipped[0]["reason"] if result.skipped else "none found"
        raise InputError(f"no readable image among {len(result.skipped)} files (first: {first})",
                         ", ".join(str(p) for p in paths))
    return result


def mismatch_warnings(run: RunModel, face_detect: bool) -> list[str]:
    """What to tell a user who detects faces for a whole-frame run, or the other way round."""
    if face_detect and run.face_crop is None:
        return ["the model was trained on whole frames, not face crops: use --no-face-detect to classify "
                "whole frames as it saw them"]
    if not face_detect and run.face_crop is not None:
        return ["the model was trained on face crops: whole frames (--no-face-detect) may be classified poorly"]
    return []


def prediction_columns(predictions: Predictions) -> list[str]:
    return ["path", "face", "x", "y", "w", "h", "label", *(f"p_{name}" for name in predictions.classes), "detector", "in_split"]


def prediction_rows(predictions: Predictions, digits: int | None = 6) -> list[dict]:
    """One CSV row per face: path, face, x, y, w, h, label, p_<class>... (rounded to `digits`; None keeps
    them whole), detector, in_split (train, test or empty: whether the run was trained or tested on the image)."""
    rows = []
    for record in predictions:
        for index, face in enumerate(record["faces"]):
            x, y, w, h = face["box"]
            row = {"path": record["path"], "face": index, "x": x, "y": y, "w": w, "h": h, "label": face["label"]}
            row.update({f"p_{name}": p if digits is None else round(p, digits) for name, p in face["emotions"].items()})
            row["detector"] = face["detector"]
            row["in_split"] = record.get("in_split", "")
            rows.append(row)
    return rows


def plan_predictions(out: str | os.PathLike, outputs: Outputs) -> None:
    """The CSV and its skipped-files list, planned before any work."""
    outputs.plan(out, "--out")
    outputs.plan(companion_path(out), "the skipped-files list")


def write_predictions(out: str | os.PathLike, predictions: Predictions, outputs: Outputs | None = None) -> Path | None:
    """Writes the CSV and, where files were skipped, `<name>.skipped.csv` beside it (path, reason); returns
    the companion's path, or None when nothing was skipped (a stale companion from an earlier run is removed).
    Both as `outputs` planned them (plan_predictions), or planned here over what is there."""
    out = Path(out)
    if outputs is None:
        outputs = Outputs(overwrite=True)
        plan_predictions(out, outputs)
    columns = prediction_columns(predictions)
    companion = companion_path(out)
    try:
        outputs.write_bytes(out, csv_bytes(columns, prediction_rows(predictions)))
        if not predictions.skipped:
            companion.unlink(missing_ok=True)
            return None
        outputs.write_bytes(companion, csv_bytes(["path", "reason"], predictions.skipped))
    except OSError as error:
        raise InputError(f"cannot write predictions ({error.strerror or error})", out) from None
    return companion


def companion_path(out: str | os.PathLike) -> Path:
    """Where write_predictions lists the skipped files: `<name>.skipped.csv` beside the CSV."""
    return Path(out).with_name(Path(out).stem + ".skipped.csv")


def score_faces(run: RunModel, pending: list[tuple[dict, np.ndarray]], batch_size: int) -> None:
    """Classify the waiting (face record, crops) pairs a batch at a time, filling each record's emotions and
    label; `pending` is emptied."""
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        for (face, _), row in zip(chunk, classify(run, [crop for _, crop in chunk])):
            face["emotions"] = {name: float(p) for name, p in zip(run.classes, row)}
            face["label"] = run.classes[int(np.argmax(row))]
    pending.clear()


def csv_bytes(columns: list[str], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
