"""fexprune predict on a video: frames sampled at --fps, faces scored as stills are, tracks, CSV, figure,
the annotated video, and broken, truncated and non-video files."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from fexprune.cli import main
from fexprune.faces.chain import detect_faces
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError
from fexprune.inference.predict import predict
from fexprune.inference.scene_cuts import is_cut, signature
from fexprune.inference.video import Tracker, VideoFrames, predict_video
from fexprune.models.checkpoint import load_model, save_model
from inference_runs import make_train_run

CHAIN = ["haar-default", "haar-alt2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_train_run(tmp_path_factory.mktemp("video"))


@pytest.fixture(scope="module")
def face_run(runs, tmp_path_factory) -> Path:
    """The tiny run's model, marked as trained on face crops (the Haar chain): predict detects faces."""
    folder = tmp_path_factory.mktemp("face-run")
    model, preprocessing = load_model(runs.train / "model.pt")
    save_model(folder / "model.pt", model, {**preprocessing, "face_crop": {"margin": 0.2, "detectors": CHAIN}})
    return folder


@pytest.fixture(scope="module")
def face_frame(tmp_path_factory) -> np.ndarray:
    """A 360x288 synthetic frame in which the chain finds exactly one face."""
    data = write_synthetic(tmp_path_factory.mktemp("big"), per_class=1, size=(360, 288), progress=False, seed=1)
    for path in sorted(data.rglob("*.png")):
        frame = cv2.imread(str(path))
        if len(detect_faces(frame, CHAIN)) == 1:
            return frame
    pytest.fail("no synthetic frame with one face found")


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10, fourcc: str = "mp4v") -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving(frame: np.ndarray, count: int, step: int = 3) -> list[np.ndarray]:
    """`frame` shifted right by `step` pixels more each time: one face walking across the picture."""
    height, width = frame.shape[:2]
    return [cv2.warpAffine(frame, np.float32([[1, 0, k * step], [0, 1, 0]]), (width, height), borderMode=cv2.BORDER_REPLICATE)
            for k in range(count)]


def decoded(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_tracker_follows_overlapping_boxes_and_ends_lost_tracks():
    tracker = Tracker(min_iou=0.3, patience=2)
    assert tracker.update([(0, 0, 10, 10), (50, 50, 10, 10)]) == [0, 1]
    assert tracker.update([(52, 50, 10, 10), (1, 0, 10, 10)]) == [1, 0]  # order within a frame does not matter
    assert tracker.update([(2, 0, 10, 10)]) == [0]  # track 1 missed once
    assert tracker.update([(3, 0, 10, 10)]) == [0]  # twice
    assert tracker.update([(3, 0, 10, 10), (53, 50, 10, 10)]) == [0, 1]  # back within its patience
    for _ in range(3):
        tracker.update([(3, 0, 10, 10)])  # track 1 missed three times: over
    assert tracker.update([(53, 50, 10, 10)]) == [2]  # a new track, ids never reused
    assert tracker.update([(30, 30, 10, 10)]) == [3]  # no overlap with anything live


def test_frames_are_sampled_at_fps(runs, tmp_path):
    ramp = np.tile(np.linspace(0, 200, 180, dtype=np.uint8)[None, :, None], (144, 1, 3))
    frames = [ramp + k for k in range(20)]  # one shot, a little brighter each frame
    video = write_video(tmp_path / "clip.mp4", frames, fps=10)
    taken = [(index, seconds) for index, seconds, _ in VideoFrames(video, fps=5)]
    assert taken == [(k, k / 10) for k in range(0, 20, 2)]
    every = VideoFrames(video, fps=30)  # a video slower than --fps: every frame
    assert [index for index, _, _ in every] == list(range(20)) and every.fps == 10 and not every.ended_early
    result = predict_video(runs.train, video, fps=2.5)
    assert [face["frame"] for face in result.faces] == [0, 4, 8, 12, 16]
    assert result.tracks == [0] and {face["box"] for face in result.faces} == {(0, 0, 180, 144)}  # whole frames


def test_one_track_per_face_and_frames_score_as_their_stills(face_run, face_frame, tmp_path):
    video = write_video(tmp_path / "walk.mp4", moving(face_frame, 12), fps=10)
    result = predict_video(face_run, video, fps=10)
    assert result.frames_sampled == result.frames_read == 12 and result.warnings == []
    assert result.no_face == 0 and len(result.faces) == 12  # one face a frame
    assert result.tracks == [0]

    stills = tmp_path / "stills"
    stills.mkdir()
    for k, frame in enumerate(decoded(video)):  # the frames as the video holds them, saved losslessly
        cv2.imwrite(str(stills / f"{k:03d}.png"), frame)
    by_frame = {face["frame"]: face for face in result.faces}
    for record in predict(face_run, [stills]):
        (still,) = record["faces"]
        face = by_frame[int(Path(record["path"]).stem)]
        assert face["box"] == still["box"] and face["label"] == still["label"]
        np.testing.assert_allclose(list(face["emotions"].values()), list(still["emotions"].values()), atol=1e-5)


def test_cli_writes_csv_figure_and_annotated_video_and_refuses_to_overwrite(face_run, face_frame, tmp_path, capsys):
    video = write_video(tmp_path / "walk.mp4", moving(face_frame, 20), fps=10)
    out, drawn = tmp_path / "out" / "walk.csv", tmp_path / "out" / "walk.drawn.mp4"
    args = ["predict", "--run", str(face_run), str(video), "--out", str(out), "--annotate", str(drawn), "--quiet"]
    assert main(args) == 0
    assert "10 faces in 10 frames taken at 5 a second (of 20 read), 1 tracks" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    classes = [name[2:] for name in rows[0] if name.startswith("p_")]
    assert list(rows[0]) == ["time", "frame", "shot", "track", "x", "y", "w", "h", *(f"p_{c}" for c in classes), "label", "detector"]
    assert [(float(r["time"]), int(r["frame"]), int(r["track"])) for r in rows] == [(k / 10, k, 0) for k in range(0, 20, 2)]
    for row in rows:
        assert abs(sum(float(row[f"p_{c}"]) for c in classes) - 1) < 1e-4
        assert row["label"] == max(classes, key=lambda c: float(row[f"p_{c}"]))
    figure = cv2.imread(str(out.with_name("walk.tracks.png")))
    assert figure is not None and figure.shape[0] > 100

    written = decoded(drawn)
    assert len(written) == 10 and written[0].shape == face_frame.shape
    capture = cv2.VideoCapture(str(drawn))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    assert not [p for p in drawn.parent.iterdir() if "partial" in p.name]

    before = drawn.read_bytes()
    assert main(args) == 2
    assert "walk.csv: exists; not writing over it" in one_line_error(capsys)  # the CSV is refused first, before any work
    assert drawn.read_bytes() == before
    assert main(args + ["--overwrite", "--fps", "10"]) == 0
    assert len(decoded(drawn)) == 20
    assert main(args[:-3] + ["--annotate", str(tmp_path), "--overwrite", "--quiet"]) == 2
    assert "is a folder; for a video, --annotate names the video file" in one_line_error(capsys)


def test_a_truncated_video_is_read_up_to_the_break(runs, tmp_path, capsys):
    frames = [np.full((144, 180, 3), 10 * k, np.uint8) for k in range(20)]
    whole = write_video(tmp_path / "whole.avi", frames, fps=10, fourcc="MJPG")  # AVI: frames first, index last
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = predict_video(runs.train, cut, fps=10)
    assert 0 < result.frames_read < 20 and result.frames_sampled == result.frames_read
    last = result.frames_read - 1
    assert any(f"ends early, at frame {last} " in w and "of the 20" in w for w in result.warnings)

    out = tmp_path / "cut.csv"
    assert main(["predict", "--run", str(runs.train), str(cut), "--out", str(out), "--fps", "10", "--quiet"]) == 0
    assert f"warning: {cut}: the video ends early, at frame {last}" in capsys.readouterr().err
    assert len(list(csv.DictReader(out.open()))) == result.frames_read

    mp4 = write_video(tmp_path / "whole.mp4", frames, fps=10)  # MP4 from OpenCV: its index is at the end
    half = tmp_path / "half.mp4"
    half.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    assert main(["predict", "--run", str(runs.train), str(half), "--out", str(tmp_path / "half.csv"), "--quiet"]) == 2
    assert "half.mp4: not a video OpenCV can read" in one_line_error(capsys)
    assert not (tmp_path / "half.csv").exists()


@pytest.mark.parametrize("content, problem", [(b"just some text\n", "not a video OpenCV can read"),
                                              (b"", "empty file (0 bytes)")])
def test_a_file_that_is_not_a_video_is_one_line(runs, tmp_path, capsys, content, problem):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(content)
    drawn = tmp_path / "drawn.mp4"
    assert main(["predict", "--run", str(runs.train), str(fake), "--annotate", str(drawn), "--quiet"]) == 2
    assert f"fake.mp4: {problem}" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == [fake]  # nothing written, no partial video left


def test_a_video_is_predicted_on_its_own(runs, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", [np.zeros((144, 180, 3), np.uint8)] * 3)
    image = min(runs.images.rglob("*.png"))
    assert main(["predict", "--run", str(runs.train), str(image), str(video), "--quiet"]) == 2
    assert "clip.mp4: a video is predicted on its own" in one_line_error(capsys)
    with pytest.raises(InputError, match="no such file"):
        predict_video(runs.train, tmp_path / "absent.mp4")


@pytest.fixture(scope="module")
def two_scenes(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """Two scenes, each with one face: a synthetic frame, and another synthetic person's head set on a flat
    backdrop where the first face is, so the boxes overlap across the cut as a tracker by overlap alone
    would join."""
    data = write_synthetic(tmp_path_factory.mktemp("scenes"), per_class=2, size=(360, 288), progress=False, seed=1)
    found = []
    for path in sorted(data.rglob("*.png")):
        frame = cv2.imread(str(path))
        boxes = detect_faces(frame, CHAIN)
        if len(boxes) == 1:
            found.append((frame, boxes[0]))
    assert len(found) >= 2, "two synthetic frames with one face each"
    (first, a), (other, b) = found[:2]
    pad = b.w  # the head with the frame around it: the cascades need some of it
    head = other[max(0, b.y - pad):b.y + b.h + pad, max(0, b.x - pad):b.x + b.w + pad]
    height, width = first.shape[:2]
    second = np.full_like(first, (90, 140, 60))  # a flat backdrop in no colour of the first scene
    top, left = max(0, a.y - pad), max(0, a.x - pad)
    second[top:top + head.shape[0], left:left + head.shape[1]] = head[:height - top, :width - left]
    assert len(detect_faces(second, CHAIN)) == 1
    return first, second


def test_cut_tests_tell_a_new_scene_from_motion_within_one(face_frame, two_scenes):
    first, second = two_scenes
    assert is_cut(signature(first), signature(second))
    walk = moving(face_frame, 4, step=6)
    assert not any(is_cut(signature(a), signature(b)) for a, b in zip(walk, walk[1:]))
    black = np.zeros_like(first)
    assert not is_cut(signature(black), signature(black)) and is_cut(signature(black), signature(first))


def test_no_track_crosses_a_scene_cut(face_run, two_scenes, tmp_path, capsys):
    first, second = two_scenes
    (a,), (b,) = (detect_faces(frame, CHAIN) for frame in (first, second))
    naive = Tracker()
    assert naive.update([(a.x, a.y, a.w, a.h)]) == naive.update([(b.x, b.y, b.w, b.h)]) == [0]  # overlap alone joins them
    video = write_video(tmp_path / "two.mp4", moving(first, 6, step=2) + moving(second, 6, step=2), fps=10)
    result = predict_video(face_run, video, fps=10)
    assert [frame for frame, _ in result.cuts] == [6]
    before = {face["track"] for face in result.faces if face["frame"] < 6}
    after = {face["track"] for face in result.faces if face["frame"] >= 6}
    assert before and after and not before & after
    assert {face["shot"] for face in result.faces if face["frame"] < 6} == {0}
    assert {face["shot"] for face in result.faces if face["frame"] >= 6} == {1}

    out = tmp_path / "two.csv"
    assert main(["predict", "--run", str(face_run), str(video), "--fps", "10", "--out", str(out), "--quiet"]) == 0
    assert "1 scene cuts (no track crosses one)" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    tracks_by_shot = {shot: {row["track"] for row in rows if row["shot"] == shot} for shot in ("0", "1")}
    assert tracks_by_shot["0"] and tracks_by_shot["1"] and not tracks_by_shot["0"] & tracks_by_shot["1"]
