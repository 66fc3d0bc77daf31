"""Folder-level faults: empty, nested, looping, duplicated, stray and missing. Every file on disk is
either kept or listed as skipped (kept + skipped == files on disk); hopeless input is one line, exit 2."""

from __future__ import annotations

import os
import shutil

from .conftest import accounted_results, files_on_disk, run_subprocess, skip_reasons, train_args


def _frame(images, name="Sad"):
    return sorted((images / name).glob("*.png"))[0]


def _train(cli, data, tmp_path) -> dict:
    outcome = cli(*train_args(data, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    return accounted_results(tmp_path / "run", data)


def test_empty_class_folder_is_counted_as_zero(cli, images, tmp_path):
    shutil.rmtree(images / "Angry")
    (images / "Angry").mkdir()
    results = _train(cli, images, tmp_path)
    assert results["data"]["counts"]["Angry"] == 0 and results["data"]["n_images"] == 18
    assert results["classes"][0] == "Angry"  # label indices stay those of the seven expressions


def test_folder_with_no_class_folders_is_one_line_and_exit_2(cli, images, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    for frame in sorted(images.rglob("*.png"))[:4]:
        shutil.copy(frame, loose / frame.name)
    outcome = cli(*train_args(loose, tmp_path / "run"))
    outcome.one_error_line(str(loose), "found no class folders with images")
    assert not (tmp_path / "run").exists()


def test_class_folders_without_images_are_one_line_and_exit_2(cli, tmp_path):
    for name in ("Happy", "Sad"):
        (tmp_path / "Images" / name).mkdir(parents=True)
    outcome = cli(*train_args(tmp_path / "Images", tmp_path / "run"))
    outcome.one_error_line(str(tmp_path / "Images"), "found no class folders with images")


def test_unknown_folder_names_become_classes_and_are_listed(cli, images, tmp_path):
    """Folders that name no expression form a generic data set: their names are the classes."""
    for folder in list(images.iterdir()):
        folder.rename(images / f"set_{folder.name.lower()}")
    results = _train(cli, images, tmp_path)
    assert results["data"]["layout"] == "generic"
    assert results["classes"] == sorted(f"set_{name.lower()}" for name in
                                        ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"))


def test_nested_folder_inside_a_class_belongs_to_that_class(cli, images, tmp_path):
    (images / "Happy" / "more").mkdir()
    shutil.copy(_frame(images, "Happy"), images / "Happy" / "more" / "Extra_1_1.png")
    results = _train(cli, images, tmp_path)
    assert results["data"]["counts"]["Happy"] == 4 and results["skipped"] == []


def test_symlink_loop_to_itself_does_not_hang_or_double_count(cli, images, tmp_path):
    os.symlink(images / "Happy", images / "Happy" / "again")
    results = _train(cli, images, tmp_path)
    assert results["data"]["counts"]["Happy"] == 3 and results["data"]["n_images"] == 21


def test_symlink_to_the_enclosing_folder_does_not_relabel_other_classes(cli, images, tmp_path):
    """`Happy/up -> ..` once brought every other class in again, labelled Happy (39 images from 21 files)."""
    os.symlink("..", images / "Happy" / "up")
    results = _train(cli, images, tmp_path)
    assert results["data"]["counts"]["Happy"] == 3 and results["data"]["n_images"] == 21


def test_file_symlink_loop_and_broken_link_are_skipped_and_listed(cli, images, tmp_path):
    os.symlink(images / "Happy" / "b_1_1.png", images / "Happy" / "a_1_1.png")
    os.symlink(images / "Happy" / "a_1_1.png", images / "Happy" / "b_1_1.png")
    os.symlink(tmp_path / "gone.png", images / "Happy" / "gone_1_1.png")
    results = _train(cli, images, tmp_path)
    reasons = skip_reasons(results)
    assert set(reasons) == {"a_1_1.png", "b_1_1.png", "gone_1_1.png"}
    assert set(reasons.values()) == {"not a regular file (broken link?)"}


def test_same_frame_under_two_classes_is_kept_and_listed_as_duplicate(cli, images, tmp_path):
    frame = _frame(images, "Fear")
    shutil.copy(frame, images / "Happy" / "Copy_000000001_00000001.png")
    results = _train(cli, images, tmp_path)
    groups = [g for g in results["data"]["duplicates"] if str(images / "Happy" / "Copy_000000001_00000001.png") in g["paths"]]
    assert len(groups) == 1
    assert str(frame) in groups[0]["paths"] and groups[0]["classes"] == ["Fear", "Happy"]
    assert results["data"]["n_duplicates"] == len(results["data"]["duplicates"])


def test_files_beside_the_class_folders_are_listed_not_dropped(cli, images, tmp_path):
    """A loose frame in Images/ and a folder that names no class (data path: the folder above Images/)."""
    shutil.copy(_frame(images), images / "Loose_1_1.png")
    (images / "Unsorted").mkdir()
    shutil.copy(_frame(images), images / "Unsorted" / "Later_1_1.png")
    data = images.parent
    results = _train(cli, data, tmp_path)
    assert results["data"]["layout"] == "images" and results["data"]["n_images"] == 21
    assert files_on_disk(data) == files_on_disk(images) == 23
    reasons = skip_reasons(results)
    assert reasons == {"Loose_1_1.png": "not in a class folder",
                       "Later_1_1.png": "not in a class folder (folder 'Unsorted' names no class)"}


def test_a_stray_folder_inside_images_keeps_the_expression_layout(cli, images, tmp_path):
    """Images/ itself as the data path, with a folder that names no class: still the 7 expressions
    (labels unchanged), the stray folder's frames listed as skipped."""
    (images / "Unsorted").mkdir()
    shutil.copy(_frame(images), images / "Unsorted" / "Later_1_1.png")
    results = _train(cli, images, tmp_path)
    assert results["data"]["layout"] == "images" and results["data"]["n_images"] == 21
    assert results["classes"] == ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    assert skip_reasons(results) == {"Later_1_1.png": "not in a class folder (folder 'Unsorted' names no class)"}


def test_nonexistent_data_path_is_one_line_and_exit_2(cli, tmp_path):
    outcome = cli(*train_args(tmp_path / "nowhere", tmp_path / "run"))
    outcome.one_error_line(f"{tmp_path / 'nowhere'}: no such file or folder")
    assert not (tmp_path / "run").exists()


def test_data_path_that_is_a_file_is_one_line_and_exit_2(cli, images, tmp_path):
    outcome = cli(*train_args(_frame(images), tmp_path / "run"))
    outcome.one_error_line(str(_frame(images)), "not a folder")


def test_nonexistent_resume_folder_is_one_line_and_exit_2(cli, tmp_path):
    outcome = cli("train", "--resume", tmp_path / "nowhere", "--quiet")
    outcome.one_error_line(f"{tmp_path / 'nowhere'}: not a train run folder (no config.json)")


def test_bad_data_in_a_real_process_is_one_line_and_exit_2(tmp_path):
    outcome = run_subprocess(*train_args(tmp_path / "nowhere", tmp_path / "run"))
    assert outcome.one_error_line() == f"fexprune train: error: {tmp_path / 'nowhere'}: no such file or folder"
    assert outcome.out == ""


def test_skipped_files_in_a_real_process_leave_stderr_clean(images, tmp_path):
    (images / "Happy" / "empty_1_1.png").write_bytes(b"")
    outcome = run_subprocess(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0 and outcome.err == ""
    assert "1 files skipped" in outcome.out
    assert skip_reasons(accounted_results(tmp_path / "run", images)) == {"empty_1_1.png": "empty file (0 bytes)"}
