"""Every layout found from its path; bad files skipped and listed; duplicates across classes reported."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fexprune.data.classes import EXPRESSIONS
from fexprune.data.layouts import discover, movie_and_clip
from fexprune.data.loading import load_image_set
from fexprune.data.preprocess import normalize_images, to_gray_resized
from fexprune.errors import InputError

from data_trees import make_tree, write_png


def test_course_layout_from_images_or_its_parent(tmp_path):
    make_tree(tmp_path / "sfew" / "Images")
    for path in (tmp_path / "sfew", tmp_path / "sfew" / "Images"):
        found = discover(path)
        assert found.layout == "images"
        assert found.classes == list(EXPRESSIONS)
        assert len(found.samples) == 14
        assert {s.subset for s in found.samples} == {None}
        assert [found.classes[s.label] for s in found.samples if s.path.parent.name == "Sad"] == ["Sad", "Sad"]


def test_class_folder_names_match_case_insensitively(tmp_path):
    make_tree(tmp_path / "Images", classes=["angry", "HAPPY", "Surprised"])
    found = discover(tmp_path)
    assert found.classes == list(EXPRESSIONS)  # stable label indices for every expression data set
    assert sorted({found.classes[s.label] for s in found.samples}) == ["Angry", "Happy", "Surprise"]


def test_train_val_layout_uses_val_as_test(tmp_path):
    make_tree(tmp_path / "Train", per_class=2)
    make_tree(tmp_path / "Val", per_class=1, start=500)
    found = discover(tmp_path)
    assert found.layout == "train-val"
    subsets = [s.subset for s in found.samples]
    assert subsets.count("train") == 14 and subsets.count("test") == 7


def test_aligned_variant_chosen_by_variant_flag(tmp_path):
    make_tree(tmp_path / "Train", per_class=1)
    make_tree(tmp_path / "Val", per_class=1, start=100)
    make_tree(tmp_path / "Train_Aligned_Faces", per_class=2, start=200)
    make_tree(tmp_path / "Val_Aligned_Faces", per_class=2, start=300)
    assert discover(tmp_path).layout == "train-val"
    aligned = discover(tmp_path, variant="aligned")
    assert aligned.layout == "aligned"
    assert all("Aligned" in str(s.path) for s in aligned.samples)
    assert len(aligned.samples) == 28


def test_aligned_only_is_found_automatically_and_frames_refused(tmp_path):
    make_tree(tmp_path / "Train" / "Train_Aligned_Faces", per_class=1)
    make_tree(tmp_path / "Val" / "Val_Aligned_Faces", per_class=1, start=50)
    assert discover(tmp_path).layout == "aligned"
    with pytest.raises(InputError, match="variant"):
        discover(tmp_path, variant="frames")


def test_generic_tree_keeps_its_own_class_names(tmp_path):
    make_tree(tmp_path / "pets", classes=["cat", "dog", "owl"])
    found = discover(tmp_path / "pets")
    assert found.layout == "generic"
    assert found.classes == ["cat", "dog", "owl"]


def test_wrapper_folder_is_looked_through(tmp_path):
    make_tree(tmp_path / "data" / "sfew-sample" / "Images")
    (tmp_path / "data" / "README.md").write_text("about the data")
    assert discover(tmp_path / "data").layout == "images"


def test_movie_and_clip_from_sfew_file_names():
    assert movie_and_clip(Path("Airheads_000519240_00000005.png")) == ("Airheads", "Airheads_000519240")
    assert movie_and_clip(Path("Harry_Potter_6_004201440_00000012.png")) == ("Harry_Potter_6", "Harry_Potter_6_004201440")
    assert movie_and_clip(Path("face.png")) == ("face", "face")
    # the irregular names of the SFEW course set join their movie and clip
    assert movie_and_clip(Path("IAmSam_013827920__00000055.png")) == ("IAmSam", "IAmSam_013827920")
    assert movie_and_clip(Path("OceansThirteen-010619400_00000087.png")) == ("OceansThirteen", "OceansThirteen_010619400")


def test_missing_path_and_empty_folder_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        discover(tmp_path / "nowhere")
    (tmp_path / "empty" / "Happy").mkdir(parents=True)
    with pytest.raises(InputError) as error:
        load_image_set(tmp_path / "empty", progress=False)
    assert "\n" not in str(error.value)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder"):
        discover(tmp_path / "file.png")


def test_folder_of_only_unreadable_images_is_an_input_error(tmp_path):
    for name in ("Happy", "Sad"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a_1_1.png").write_text("not a png")
    with pytest.raises(InputError, match="no readable image"):
        load_image_set(tmp_path, progress=False)


def test_bad_files_are_skipped_and_listed_with_reasons(tmp_path):
    root = make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=2)
    (root / "Happy" / "empty_1_1.png").write_bytes(b"")
    (root / "Happy" / "text_1_1.png").write_text("hello, I am not an image")
    good = write_png(tmp_path / "whole.png", value=7, size=(60, 50)).read_bytes()
    (root / "Sad" / "truncated_1_1.png").write_bytes(good[: len(good) // 2])
    (root / "Sad" / "notes.txt").write_text("labels checked")
    jpeg = write_png(tmp_path / "whole.jpg", value=8, size=(60, 50)).read_bytes()
    (root / "Sad" / "cut_1_2.jpg").write_bytes(jpeg[: len(jpeg) - 40])
    image_set = load_image_set(tmp_path, progress=False, use_cache=False)
    assert len(image_set.samples) == 4
    reasons = {Path(item["path"]).name: item["reason"] for item in image_set.skipped}
    assert set(reasons) == {"empty_1_1.png", "text_1_1.png", "truncated_1_1.png", "notes.txt", "cut_1_2.jpg"}
    assert "truncated" in reasons["cut_1_2.jpg"]
    assert "empty" in reasons["empty_1_1.png"]
    assert "not an image" in reasons["notes.txt"]
    assert image_set.summary()["n_skipped"] == 5


def test_odd_pixel_formats_and_tiny_images_load(tmp_path):
    root = tmp_path / "Images"
    write_png(root / "Happy" / "rgba_1_1.png", mode="RGBA")
    write_png(root / "Happy" / "palette_1_2.png", mode="P")
    write_png(root / "Sad" / "gray_1_1.png", mode="L", size=(5, 4))
    sixteen = (np.arange(20 * 24, dtype=np.uint16).reshape(20, 24) * 100)
    Image.fromarray(sixteen).save(root / "Sad" / "deep_1_2.png")
    write_png(root / "Sad" / "photo_1_3.jpg")
    image_set = load_image_set(tmp_path, progress=False, use_cache=False)
    assert image_set.skipped == []
    assert image_set.images.shape == (5, 72, 90) and image_set.images.dtype == np.uint8
    deep = image_set.images[[s.path.name for s in image_set.samples].index("deep_1_2.png")]
    assert 150 < deep.max() < 200  # 16-bit peak 47900 scaled to ~186, not clipped to 255 or wrapped


def test_symlink_loop_does_not_hang(tmp_path):
    root = make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=1)
    os.symlink(root / "Happy", root / "Happy" / "again")
    found = discover(tmp_path)
    assert len(found.samples) == 2


def test_same_content_under_two_classes_is_reported(tmp_path):
    root = make_tree(tmp_path / "Images", classes=["Fear", "Sad"], per_class=2)
    (root / "Sad" / "Copy_000000001_00000001.png").write_bytes((root / "Fear" / "Movie0_000123450_00000000.png").read_bytes())
    image_set = load_image_set(tmp_path, progress=False, use_cache=False)
    assert len(image_set.duplicates) == 1
    assert image_set.duplicates[0]["classes"] == ["Fear", "Sad"]
    assert len(image_set.duplicates[0]["paths"]) == 2


def test_to_gray_resized_matches_opencv_gray_and_size():
    bgr = np.zeros((576, 720, 3), dtype=np.uint8)
    bgr[..., 2] = 255  # pure red
    gray = to_gray_resized(bgr)
    assert gray.shape == (72, 90)
    assert abs(int(gray[0, 0]) - 76) <= 1  # 0.299 * 255


def test_normalizations():
    images = np.stack([np.full((4, 5), 10, np.uint8), np.arange(20, dtype=np.uint8).reshape(4, 5)])
    per_image, _ = normalize_images(images, "per-image")
    assert per_image.shape == (2, 1, 4, 5) and per_image.dtype == np.float32
    assert np.allclose(per_image[0], 0)  # a flat image stays finite
    assert abs(per_image[1].mean()) < 1e-6 and abs(per_image[1].std() - 1) < 1e-5
    train, stats = normalize_images(images, "dataset")
    again, same = normalize_images(images[:1], "dataset", stats)
    assert same == stats and np.allclose(again[0], train[0])
    scaled, _ = normalize_images(images, "none")
    assert scaled.max() <= 1.0
    with pytest.raises(ValueError):
        normalize_images(images, "zscore-ish")


def test_clahe_evens_out_light_falling_off_across_a_face():
    texture = np.random.default_rng(0).integers(60, 200, (72, 90)).astype(np.float32)
    fall_off = np.linspace(1.0, 0.25, 90, dtype=np.float32)[None, :]  # a lamp on the left
    lit = (texture * fall_off).astype(np.uint8)[None]
    spread = lambda x: x[0, 0, :, 60:].std() / x[0, 0, :, :30].std()  # dim side's contrast over the bright side's
    per_image, _ = normalize_images(lit, "per-image")
    clahe, stats = normalize_images(lit, "clahe")
    assert spread(per_image) < 0.5 and spread(clahe) > 1.15 * spread(per_image)  # per-image keeps the fall-off; CLAHE lifts the dim side
    assert abs(clahe.mean()) < 1e-5 and abs(clahe.std() - 1) < 1e-4 and stats["method"] == "clahe"
    assert normalize_images(lit[:0], "clahe")[0].shape == (0, 1, 72, 90)


def test_val_is_the_test_split_even_beside_a_labelled_test_folder(tmp_path):
    make_tree(tmp_path / "Train", classes=["Happy", "Sad"], per_class=2)
    make_tree(tmp_path / "Test", classes=["Happy", "Sad"], per_class=3, start=300)
    make_tree(tmp_path / "Val", classes=["Happy", "Sad"], per_class=1, start=600)
    found = discover(tmp_path)
    assert {s.path.parts[-3] for s in found.samples if s.subset == "test"} == {"Val"}


def test_aligned_variant_requested_where_there_is_none(tmp_path):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=1)
    with pytest.raises(InputError, match="aligned"):
        discover(tmp_path, variant="aligned")
