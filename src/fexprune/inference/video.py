"""Classify the faces of a video frame by frame, and follow each face over time.

`predict_video` reads any video OpenCV reads, takes frames at about `fps` a second, finds and scores the
faces of each with the very functions `predict` uses for still images (`face_crops`, `classify`: a
frame's probabilities are those of the same frame saved as a PNG), and gives every face a track id by
its box's overlap with the faces of the frames before, within one shot: at a scene cut
(fexprune.inference.scene_cuts) every track ends, so no track joins two shots. `write_video_predictions`
writes one CSV row per face and frame (with its shot) and a figure of each track's probabilities over time,
the cuts drawn as dashed lines; `annotate` also writes the sampled frames with boxes, track ids and labels
drawn, as a video.
"""

from __future__ import annotations

import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from tqdm import tqdm

from fexprune.errors import InputError
from fexprune.faces.chain import iou
from fexprune.inference.annotate import draw_faces
from fexprune.inference.predict import FALLBACK, csv_bytes, face_crops, mismatch_warnings, score_faces
from fexprune.inference.run_model import load_run_model
from fexprune.inference.scene_cuts import CutDetector
from fexprune.outputs import Outputs

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"})
DEFAULT_FPS = 5.0
TRACK_IOU = 0.3  # a face continues a track when its box overlaps the track's last box at least this much
TRACK_PATIENCE = 3  # sampled frames a track survives unmatched (a missed detection, a turned head) before it ends
FIGURE_TRACKS = 12  # panels in the figure at most: the tracks with the most frames
_FOURCC = "mp4v"  # in every OpenCV build with FFmpeg, unlike avc1 (H.264), which needs a licensed encoder


def is_video(path: str | os.PathLike) -> bool:
    """A file whose extension is a video container's (the CLI's cue to treat it as a video)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS and not Path(path).is_dir()


class VideoFrames:
    """A video file's frames taken at about `fps` a second, as (index, seconds, BGR frame), in order.

    Frame i is taken when it begins a new 1/fps slot of time (i * fps / rate passes a whole number): a
    25 fps video sampled at 5 gives every 5th frame, a 24 fps one 5 a second a frame apart unevenly, and a
    video slower than `fps` every frame. A video with no frame rate in its header is taken frame by frame,
    its times counted at `fps`. A file that breaks part way (truncated, damaged) gives every frame before
    the break; afterwards `frames_read` is fewer than the `reported` count of its header.
    """

    def __init__(self, path: str | os.PathLike, fps: float = DEFAULT_FPS):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("no such file", self.path)
        if self.path.stat().st_size == 0:
            raise InputError("empty file (0 bytes), not a video", self.path)
        # FFmpeg would print its own complaints about a broken file on stderr: the InputError's one line says it
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise InputError("not a video OpenCV can read (an unknown format, or a file cut short before its index)", self.path)
        rate = self._capture.get(cv2.CAP_PROP_FPS)
        self.rate = rate if math.isfinite(rate) and rate > 0 else None  # the video's own frames a second
        self.fps = min(fps, self.rate) if self.rate else fps  # the frames a second actually taken
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.reported = int(count) if math.isfinite(count) and count > 0 else None  # None: the header does not say
        self.frames_read = 0

    def seconds(self, index: int) -> float:
        return index / (self.rate or self.fps)

    @property
    def ended_early(self) -> bool:
        return self.reported is not None and 0 < self.frames_read < self.reported

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        slot, index = -1, 0
        try:
            while self._capture.grab():  # grab decodes; retrieve (the colour conversion) only for frames taken
                this = math.floor(index * self.fps / self.rate + 1e-9) if self.rate else index
                taken = this != slot
                if taken:
                    ok, frame = self._capture.retrieve()
                    if not ok:
                        break
                    slot = this
                self.frames_read = index + 1
                if taken:
                    yield index, self.seconds(index), frame
                index += 1
        finally:
            self._capture.release()


class Tracker:
    """Track ids for the faces of successive sampled frames, by box overlap (greedy IoU matching).

    A frame's boxes are matched to the live tracks' last boxes, the pair that overlaps most first, and only
    pairs with IoU of at least `min_iou`; a box left over starts a new track (ids count up from 0 and are
    never reused); a track left unmatched for more than `patience` sampled frames in a row ends. Greedy
    rather than optimal matching, and no motion model: faces in a film rarely overlap, and at a few frames
    a second a face moves less than its own width between samples.
    """

    def __init__(self, min_iou: float = TRACK_IOU, patience: int = TRACK_PATIENCE):
        self.min_iou, self.patience = min_iou, patience
        self.live: dict[int, tuple[tuple, int]] = {}  # track id -> (its last box, sampled frames missed since)
        self.next_id = 0

    def update(self, boxes: list[tuple[int, int, int, int]]) -> list[int]:
        """The track id of each of this frame's boxes (x, y, w, h)."""
        pairs = sorted(((iou(box, last), track, k) for track, (last, _) in self.live.items() for k, box in enumerate(boxes)),
                       key=lambda pair: (-pair[0], pair[1], pair[2]))
        ids: list[int | None] = [None] * len(boxes)
        for overlap, track, k in pairs:
            if overlap < self.min_iou:
                break
            if ids[k] is None and track not in ids:
                ids[k] = track
        for track, (last, missed) in list(self.live.items()):
            if track not in ids:
                if missed >= self.patience:
                    del self.live[track]
                else:
                    self.live[track] = (last, missed + 1)
        for k, box in enumerate(boxes):
            if ids[k] is None:
                ids[k], self.next_id = self.next_id, self.next_id + 1
            self.live[ids[k]] = (box, 0)
        return ids

    def end_all(self) -> None:
        """A scene cut: every live track ends; the next boxes start new ones."""
        self.live.clear()


@dataclass
class VideoPredictions:
    path: Path  # the video
    classes: list[str]
    faces: list[dict] = field(default_factory=list)  # {"time", "frame", "shot", "track", "box", "detector", "emotions", "label"}
    cuts: list[tuple[int, float]] = field(default_factory=list)  # (frame, time) of each sampled frame that starts a new shot
    fps: float = DEFAULT_FPS  # frames a second taken
    frames_read: int = 0
    frames_sampled: int = 0
    no_face: int = 0  # sampled frames where no face was found (scored on the typical face region)
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None  # the checkpoint used

    @property
    def tracks(self) -> list[int]:
        return sorted({face["track"] for face in self.faces})


def predict_video(
    run_dir: str | os.PathLike,
    video: str | os.PathLike,
    fps: float = DEFAULT_FPS,
    face_detect: bool | None = None,
    batch_size: int = 64,
    annotate: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = False,
    device: str = "cpu",
    outputs: Outputs | None = None,
) -> VideoPredictions:
    """Every face (or the whole frame, `face_detect=False`) of the video's frames taken at `fps`, classified
    and tracked. `face_detect=None` follows the run, as `predict` does. `annotate`: a video file (.mp4) to
    write the drawn frames to, planned in `outputs` (the command's other outputs already in it), or in a
    plan of its own over `overwrite`."""
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"frames a second must be a positive number, got {fps}")
    target = Path(annotate) if annotate is not None else None
    if target is not None and target.is_dir():  # as for images, where --annotate names a folder
        raise InputError("is a folder; for a video, --annotate names the video file to write (.mp4)", target)
    if target is not None:  # before the work, not after it
        outputs = outputs or Outputs(overwrite, inputs=[video, run_dir])
        outputs.plan(target, "--annotate")
    run = load_run_model(run_dir, device)
    if face_detect is None:
        face_detect = run.face_crop is not None
    frames = VideoFrames(video, fps)
    result = VideoPredictions(path=frames.path, classes=run.classes, fps=frames.fps,
                              warnings=mismatch_warnings(run, face_detect), source=run.source)
    tracker, cuts, shot = Tracker(), CutDetector(), 0
    pending: list[tuple[dict, np.ndarray]] = []  # faces waiting for a batch
    held: list[tuple[np.ndarray, list[dict]]] = []  # frames waiting to be drawn until their faces are scored
    writer, partial = None, None

    def flush() -> None:
        score_faces(run, pending, batch_size)
        for frame, faces in held:
            writer.write(draw_faces(frame, faces))
        held.clear()

    bar = tqdm(total=frames.reported, desc="predict", unit="frame", file=sys.stderr, disable=not progress, leave=False)
    try:
        for index, seconds, frame in frames:
            if cuts.starts_shot(frame):
                tracker.end_all()
                shot += 1
                result.cuts.append((index, seconds))
            found = face_crops(frame, run, face_detect)
            faces = []
            for (box, detector, crop), track in zip(found, tracker.update([box for box, _, _ in found])):
                face = {"time": seconds, "frame": index, "shot": shot, "track": track, "box": box, "detector": detector}
                faces.append(face)
                pending.append((face, crop))
            result.faces += faces
            result.frames_sampled += 1
            result.no_face += any(face["detector"] == FALLBACK for face in faces)
            if target is not None:
                if writer is None:
                    writer, partial = _open_writer(target, frames.fps, frame.shape[1], frame.shape[0])
                held.append((frame, faces))
            if len(pending) >= batch_size:
                flush()
            bar.update(frames.frames_read - bar.n)
        flush()
        bar.update(frames.frames_read - bar.n)
        if not result.frames_sampled:
            raise InputError("no frame could be decoded (a damaged file, or a codec this OpenCV lacks)", frames.path)
        if writer is not None:
            writer.release()
            outputs.place(partial, target)
    finally:
        bar.close()
        if writer is not None:
            writer.release()  # a second release is harmless
        if partial is not None and partial.exists():
            partial.unlink()
    result.frames_read = frames.frames_read
    if frames.ended_early:
        last = frames.frames_read - 1
        result.warnings.append(f"{frames.path}: the video ends early, at frame {last} ({frames.seconds(last):.2f} s) of "
                               f"the {frames.reported} its header reports (a truncated or damaged file): "
                               f"the output covers the frames up to there")
    return result


def _open_writer(target: Path, fps: float, width: int, height: int) -> tuple[cv2.VideoWriter, Path]:
    """A writer to a hidden sibling of `target` (with its extension, from which OpenCV picks the container),
    renamed into place once every frame is in: a reader never sees half a video."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*_FOURCC), fps, (width, height))
    if not writer.isOpened():
        if partial.exists():
            partial.unlink()
        raise InputError(f"OpenCV cannot write a {_FOURCC} video with this name (use .mp4)", target)
    return writer, partial


def video_rows(result: VideoPredictions) -> list[dict]:
    """One CSV row per face and sampled frame: time, frame, shot, track, x, y, w, h, p_<class>..., label, detector.
    `shot` counts the scene cuts before the frame (0 until the first): a track never spans two shots."""
    rows = []
    for face in result.faces:
        x, y, w, h = face["box"]
        row = {"time": round(face["time"], 4), "frame": face["frame"], "shot": face["shot"], "track": face["track"],
               "x": x, "y": y, "w": w, "h": h}
        row.update({f"p_{name}": round(p, 6) for name, p in face["emotions"].items()})
        row.update(label=face["label"], detector=face["detector"])
        rows.append(row)
    return rows


def tracks_path(out: str | os.PathLike) -> Path:
    """The track figure beside the CSV `out`: `<stem>.tracks.png`."""
    return Path(out).with_name(Path(out).stem + ".tracks.png")


def plan_video_predictions(out: str | os.PathLike, outputs: Outputs) -> None:
    """The CSV and its track figure, planned before any work."""
    outputs.plan(out, "--out")
    outputs.plan(tracks_path(out), "the track figure")


def write_video_predictions(out: str | os.PathLike, result: VideoPredictions, outputs: Outputs | None = None) -> Path:
    """Writes the CSV at `out` and the figure `<stem>.tracks.png` beside it, as `outputs` planned them
    (plan_video_predictions), or planned here over what is there; returns the figure's path."""
    out = Path(out)
    if outputs is None:
        outputs = Outputs(overwrite=True)
        plan_video_predictions(out, outputs)
    columns = ["time", "frame", "shot", "track", "x", "y", "w", "h", *(f"p_{name}" for name in result.classes), "label", "detector"]
    figure = tracks_path(out)
    try:
        outputs.write_bytes(out, csv_bytes(columns, video_rows(result)))
        outputs.write_bytes(figure, track_figure(result))
    except OSError as error:
        raise InputError(f"cannot write predictions ({error.strerror or error})", error.filename or out) from None
    return figure


def track_figure(result: VideoPredictions) -> bytes:
    """PNG bytes: one panel per track (the FIGURE_TRACKS with most frames), each class's probability over time;
    dashed vertical lines at the scene cuts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_track: dict[int, list[dict]] = {}
    for face in result.faces:
        by_track.setdefault(face["track"], []).append(face)
    shown = sorted(sorted(by_track, key=lambda track: -len(by_track[track]))[:FIGURE_TRACKS])
    figure, axes = plt.subplots(len(shown), 1, figsize=(8, 1.3 + 1.6 * len(shown)), sharex=True, squeeze=False)
    for axis, track in zip(axes[:, 0], shown):
        faces = by_track[track]
        times = [face["time"] for face in faces]
        for name in result.classes:
            axis.plot(times, [face["emotions"][name] for face in faces], marker=".", label=name)
        for _, seconds in result.cuts:
            axis.axvline(seconds, color="0.4", linestyle="--", linewidth=0.8)
        axis.set_ylim(0, 1)
        axis.set_ylabel("p")
        axis.set_title(f"track {track}: {len(faces)} frame{'s' if len(faces) != 1 else ''}", loc="left", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(ncol=min(len(result.classes), 7), fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.15))
    more = f", the {len(shown)} longest of {len(by_track)} tracks" if len(shown) < len(by_track) else ""
    cut_note = f"; dashed: {len(result.cuts)} scene cut{'s' if len(result.cuts) != 1 else ''}" if result.cuts else ""
    figure.suptitle(f"{result.path.name}: expression probabilities per track{more}{cut_note}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
