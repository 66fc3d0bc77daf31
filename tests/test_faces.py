"""Face detection and cropping: faces found on synthetic frames where they are, the optional relaxed and
clip-neighbour steps, crops of the right shape, boxes cached with the preprocessed arrays, fallbacks
counted and listed in the run's report, the chain set from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fexprune.faces import FULL_CHAIN, STRICT_CHAIN, FaceBox, FaceCropper, best_face, crop_face, detect_faces, fallback_box, iou
from fexprune.data.loading import load_image_set
from fexprune.faces.loading import load_face_crops
from fexprune.data.synth import write_synthetic
from fexprune.run_folder import read_settings


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("faces"), per_class=4, seed=5, progress=False)  # 720x576, as SFEW
    rows = list(csv.DictReader(open(images.parent / "faces.csv")))
    return images, rows


def test_detector_finds_most_synthetic_faces_where_they_are(frames):
    images, rows = frames
    found = correct = 0
    for row in rows:
        frame = cv2.imread(str(images.parent / row["path"]))
        face = best_face(frame, STRICT_CHAIN)
        cx, cy, w, h = (float(row[k]) for k in ("cx", "cy", "width", "height"))
        if face is not None:
            found += 1
            correct += iou(face, (cx - w / 2, cy - h / 2, w, h)) > 0.3
    assert found / len(rows) >= 0.2  # 25-55% on synthetic sets: cartoon faces are hard for Haar (84% on real SFEW)
    assert correct >= 0.75 * found  # and what it finds is the face, not the scenery


def test_relaxed_pass_finds_faces_the_strict_chain_missed(frames):
    images, rows = frames
    extra = correct = 0
    for row in rows:
        frame = cv2.imread(str(images.parent / row["path"]))
        if best_face(frame, STRICT_CHAIN) is not None:  # the strict chain found it
            continue
        face = best_face(frame, FULL_CHAIN)
        cx, cy, w, h = (float(row[k]) for k in ("cx", "cy", "width", "height"))
        if face is not None:
            assert face.detector == "haar-relaxed"
            extra += 1
            correct += iou(face, (cx - w / 2, cy - h / 2, w, h)) > 0.3
    assert extra >= 2 and correct >= 0.6 * extra  # 4 more faces here, 3 of them right


def test_rotated_pass_finds_tilted_faces_the_upright_chain_missed(tmp_path):
    from fexprune.faces import ROTATED, ROTATIONS, STRICT_CHAIN

    images = write_synthetic(tmp_path, per_class=10, seed=5, progress=False)
    rows = list(csv.DictReader(open(images.parent / "faces.csv")))
    extra = correct = 0
    for row in rows:
        frame = cv2.imread(str(images.parent / row["path"]))
        if best_face(frame, STRICT_CHAIN) is not None:  # the upright chain found it
            continue
        face = best_face(frame, STRICT_CHAIN + (ROTATED,))
        cx, cy, w, h = (float(row[k]) for k in ("cx", "cy", "width", "height"))
        if face is not None:
            assert face.detector == ROTATED and face.roll in ROTATIONS
            extra += 1
            if iou(face, (cx - w / 2, cy - h / 2, w, h)) > 0.3:
                correct += 1
                assert face.roll * float(row["tilt"]) > 0  # turned the way the head tilts
    assert extra >= 5 and correct >= 0.75 * extra  # 15 of the 31 faces missed here, 13 of them right


def test_detector_on_real_sample(sfew_images):
    from fexprune.data.layouts import discover
    from fexprune.data.preprocess import decode_image

    samples = discover(sfew_images).samples[:30]
    found = sum(best_face(decode_image(s.path.read_bytes())) is not None for s in samples)
    assert found >= 0.6 * len(samples)


def test_boxes_best_first_and_agreeing_boxes_merged():
    frame = np.full((240, 320), 128, np.uint8)
    assert detect_faces(frame) == []  # a flat frame has no face
    a, b = FaceBox(10, 10, 50, 50, "x"), FaceBox(15, 12, 50, 50, "y")
    assert iou(a, b) > 0.6 and iou(a, FaceBox(200, 200, 10, 10, "z")) == 0.0


def test_crop_shape_and_content():
    frame = np.zeros((576, 720, 3), np.uint8)
    frame[200:300, 300:380] = 255  # a bright "face"
    crop = crop_face(frame, FaceBox(300, 200, 80, 100, "test"), margin=0.0, size=(90, 72))
    assert crop.shape == (72, 90) and crop.dtype == np.uint8
    assert crop[36, 45] == 255 and crop[36, 0] == 0  # centred; widened to the aspect ratio, not squashed
    corner = crop_face(frame, FaceBox(-40, -40, 80, 80, "edge"), size=(45, 36))  # off the frame: padded
    assert corner.shape == (36, 45)


def test_fallback_is_the_typical_face_region():
    box = fallback_box(720, 576)
    assert box.detector == "fallback"
    assert abs(box.x + box.w / 2 - 0.48 * 720) <= 1 and abs(box.y + box.h / 2 - 0.38 * 576) <= 1
    assert abs(box.h - 0.3 * 576) <= 1


def test_face_crops_cached_with_boxes_and_fallbacks_counted(frames, tmp_path, monkeypatch):
    images, rows = frames
    first = load_face_crops(images, detectors=FULL_CHAIN, progress=False, cache_dir=tmp_path)
    assert first.images.shape == (len(rows), 72, 90)
    summary = first.summary()["face_crop"]
    assert summary["n_detected"] + summary["n_clip_neighbour"] + summary["n_fallback"] == len(rows)
    assert summary["n_clip_neighbour"] >= 1 and summary["by_detector"].get("haar-relaxed", 0) >= 1  # both steps ran here
    assert len(summary["fallback"]) == summary["n_fallback"] and len(summary["clip_neighbour"]) == summary["n_clip_neighbour"]
    for index, face in enumerate(first.faces):  # a borrowed box is a clip neighbour's, and the crop is cut with it
        if face["detector"] == "clip-neighbour":
            clip = first.samples[index].clip
            assert any(f["detector"] not in ("fallback", "clip-neighbour") and {k: f[k] for k in "xywh"} == {k: face[k] for k in "xywh"}
                       and first.samples[i].clip == clip for i, f in enumerate(first.faces))
            frame = cv2.imread(str(first.samples[index].path))
            assert np.array_equal(first.images[index], crop_face(frame, FaceBox.from_dict(face)))
    plain = load_image_set(images, progress=False, cache_dir=tmp_path)
    assert plain.faces is None and not np.array_equal(plain.images, first.images)
    strict = load_face_crops(images, detectors=STRICT_CHAIN, progress=False, cache_dir=tmp_path)  # neither step
    assert not strict.from_cache and {f["detector"] for f in strict.faces}.isdisjoint({"haar-relaxed", "clip-neighbour"})

    def no_detection(*args, **kwargs):
        raise AssertionError("detector ran although the boxes are cached")

    monkeypatch.setattr("fexprune.faces.crop.face_or_fallback", no_detection)
    again = load_face_crops(images, detectors=FULL_CHAIN, progress=False, cache_dir=tmp_path)
    assert again.from_cache and again.faces == first.faces
    wider = load_face_crops(images, detectors=FULL_CHAIN, face_margin=0.4, progress=False, cache_dir=tmp_path)
    assert not wider.from_cache and wider.faces == first.faces  # re-cropped from cached boxes


def test_frames_without_a_face_borrow_the_nearest_clip_neighbours_box():
    from fexprune.faces import borrow_clip_boxes
    from fexprune.data.layouts import Sample

    def sample(name):
        movie, clip, _ = name.split("_")
        return Sample(Path(f"/x/Happy/{name}.png"), 0, movie, f"{movie}_{clip}", None)

    names = ("M_1_00000002", "M_1_00000009", "M_1_00000005", "M_2_00000001", "N_1_00000003", "N_1_00000004")
    samples = [sample(n) for n in names]
    fallback = fallback_box(720, 576)
    boxes = [FaceBox(10, 10, 50, 50, "haar-default"), FaceBox(40, 40, 60, 60, "haar-alt2"), fallback, fallback,
             fallback, FaceBox(5, 5, 20, 20, "haar-relaxed")]
    borrowed = borrow_clip_boxes(samples, boxes)
    assert set(borrowed) == {2}  # M_2 has no other frame, N_1 only an unsure one: they keep the typical region
    assert borrowed[2] == FaceBox(10, 10, 50, 50, "clip-neighbour")  # frame 5 is nearer frame 2 than frame 9
    # names that are not <Movie>_<clip>_<frame> say nothing about clips: img_0001 and img_0002 share no shot
    plain = [Sample(Path(f"/x/Sad/img_000{k}.png"), 0, "img", "img", None) for k in (1, 2)]
    assert borrow_clip_boxes(plain, [FaceBox(10, 10, 50, 50, "haar-default"), fallback]) == {}


def test_unknown_detector_is_an_input_error():
    from fexprune.errors import InputError

    with pytest.raises(InputError):
        FaceCropper(detectors=("haar-nonsense",))


def test_train_with_face_crops_reports_how_each_frame_was_cut(frames, tmp_path, capsys):
    from fexprune.cli import main

    images, rows = frames
    code = main(["train", "--data", str(images), "--face-crop", "--detectors", ",".join(FULL_CHAIN), "--face-margin", "0.3",
                 "--epochs", "2", "--channels", "4,8", "--quiet", "--out", str(tmp_path / "run")])
    assert code == 0
    saved = read_settings(tmp_path / "run")
    assert saved["detectors"] == list(FULL_CHAIN) and saved["face_margin"] == 0.3
    faces = json.loads((tmp_path / "run" / "results.json").read_text())["data"]["face_crop"]
    assert faces["n_detected"] + faces["n_clip_neighbour"] + faces["n_fallback"] == len(rows)
    out = capsys.readouterr().out
    assert f"{faces['n_detected']} of {len(rows)} frames with a face found" in out
    report = (tmp_path / "run" / "report.md").read_text()
    assert "**Face crops**" in report and f"cut at the typical face region**: {faces['n_fallback']}" in report
    if faces["n_fallback"]:
        assert Path(faces["fallback"][0]).name in report  # listed, not only counted
    assert (tmp_path / "run" / "figures" / "face_crops.png").is_file() and "Face crops as the network saw them" in report


def test_face_options_without_face_crop_or_unknown_are_refused(frames, tmp_path, capsys):
    from fexprune.cli import main

    images, _ = frames
    assert main(["baseline", "--data", str(images), "--detectors", "haar-default", "--out", str(tmp_path / "a")]) == 2
    assert "add --face-crop" in capsys.readouterr().err and not (tmp_path / "a").exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse: one line naming the bad value, exit code 2
        main(["train", "--face-crop", "--detectors", "haar-default,viola", "--out", str(tmp_path / "b")])
    assert exit_info.value.code == 2 and "unknown face detector 'viola'" in capsys.readouterr().err


def test_face_sheet_rows_by_kind():
    from fexprune.report.faces import crops_by_kind

    images = np.arange(12, dtype=np.uint8)[:, None, None] * np.ones((12, 4, 5), np.uint8)
    kinds = ["haar-default"] * 9 + ["haar-relaxed", "clip-neighbour", "fallback"]
    rows = crops_by_kind(images, [{"detector": k} for k in kinds], names=[f"frame_{k:02d}.png" for k in range(12)])
    assert [(label, count, len(crops)) for label, count, crops, _ in rows] == [
        ("face found", 9, 8), ("haar-relaxed", 1, 1), ("clip neighbour's face", 1, 1), ("typical face region", 1, 1)]
    assert rows[0][3][0] == "frame_00.png" and rows[0][3][-1] == "frame_08.png" and rows[3][3] == ["frame_11.png"]
    assert rows[0][2][0][0, 0] == 0 and rows[0][2][-1][0, 0] == 8  # spread from the first to the last
    assert rows[3][2][0][0, 0] == 11


def test_the_aligned_faces_layout_is_used_whole_not_cut_again(tmp_path, capsys):
    """SFEW's *_Aligned_Faces images are faces already; where the chain found none, the typical frame region
    would cut out the eyes alone. They are used as they are, and the run says so."""
    from data_trees import make_tree

    from fexprune.cli import main

    make_tree(tmp_path / "data" / "Train_Aligned_Faces", per_class=3, start=0)
    make_tree(tmp_path / "data" / "Val_Aligned_Faces", per_class=1, start=100)
    plain = load_image_set(tmp_path / "data", progress=False, cache_dir=tmp_path / "cache")
    faced = load_face_crops(tmp_path / "data", progress=False, cache_dir=tmp_path / "cache")
    assert faced.layout == "aligned" and plain.faces is None
    np.testing.assert_array_equal(faced.images, plain.images)
    summary = faced.summary()["face_crop"]
    assert summary["n_layout_aligned"] == len(faced) and summary["n_detected"] == summary["n_fallback"] == 0
    assert main(["train", "--data", str(tmp_path / "data"), "--face-crop", "--epochs", "1", "--channels", "4,8",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert f"the layout's {len(faced)} aligned faces, used whole" in capsys.readouterr().out
    assert "already cut and aligned" in (tmp_path / "run" / "report.md").read_text()
    from fexprune.inference.predict import predict
    from fexprune.inference.run_model import load_run_model

    assert load_run_model(tmp_path / "run").face_crop is None  # new aligned faces are classified whole, as trained
    assert predict(tmp_path / "run", [faced.samples[0].path])[0]["faces"][0]["detector"] == "whole-frame"


def test_face_sheet_names_its_crops_and_says_how_many_it_shows(tmp_path, monkeypatch):
    import matplotlib.figure

    from fexprune.report.faces import save_face_sheet

    texts = []
    real_savefig = matplotlib.figure.Figure.savefig

    def record_texts(figure, *args, **kwargs):
        texts.extend(t.get_text() for t in figure.findobj(lambda o: hasattr(o, "get_text")))
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record_texts)
    images = np.zeros((20, 8, 10), np.uint8)
    names = [f"Movie_{k:03d}_frame.png" for k in range(20)]
    assert save_face_sheet(tmp_path / "sheet.png", images, [{"detector": "haar-default"}] * 19 + [{"detector": "fallback"}], names).is_file()
    assert "face found: 8 of 19 frames shown" in texts and "typical face region: 1 of 1 frames shown" in texts
    assert any(t.startswith("9 of 20 face crops shown") for t in texts)
    assert "Movie_000_frame.png" in texts and "Movie_019_frame.png" in texts
    from fexprune.report.faces import _label

    lines = _label("HarryPotter_Half_Blood_Prince_001259094_00000033.png").split("\n")
    assert len(lines) == 2 and all(len(line) <= 24 for line in lines) and lines[0].startswith("HarryPotter")
    assert lines[1].endswith("00000033.png")  # the frame number, which tells a clip's frames apart, is kept
