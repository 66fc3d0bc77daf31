"""The preprocessed-array cache: a second load decodes nothing; any change to the files misses."""

from __future__ import annotations

import os

import numpy as np

from fexprune.data import loading
from fexprune.data.loading import load_image_set
from fexprune.faces.loading import load_face_crops

from data_trees import make_tree, write_png


def forbid_decoding(monkeypatch):
    def refuse(path):
        raise AssertionError("decoded an image on a cache hit")

    monkeypatch.setattr(loading, "read_image", refuse)


def test_second_load_decodes_no_image(tmp_path, monkeypatch):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad", "Fear"], per_class=3)
    (tmp_path / "Images" / "Sad" / "broken_1_1.png").write_text("nope")
    first = load_image_set(tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert not first.from_cache
    forbid_decoding(monkeypatch)
    second = load_image_set(tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert second.from_cache
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels) and second.labels.dtype == np.int64
    assert first.samples == second.samples
    assert first.skipped == second.skipped and len(second.skipped) == 1
    assert first.classes == second.classes and first.layout == second.layout


def test_changed_added_or_resized_input_misses_the_cache(tmp_path):
    root = make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=2)
    cache_dir = tmp_path / "cache"
    assert not load_image_set(tmp_path, progress=False, cache_dir=cache_dir).from_cache
    assert not load_image_set(tmp_path, size=(45, 36), progress=False, cache_dir=cache_dir).from_cache
    assert load_image_set(tmp_path, size=(45, 36), progress=False, cache_dir=cache_dir).images.shape[1:] == (36, 45)
    write_png(root / "Sad" / "New_000000009_00000001.png", value=99)
    assert not load_image_set(tmp_path, progress=False, cache_dir=cache_dir).from_cache
    target = root / "Happy" / "Movie0_000123450_00000000.png"
    os.utime(target, ns=(1, 1))
    changed = load_image_set(tmp_path, progress=False, cache_dir=cache_dir)
    assert not changed.from_cache and len(changed.samples) == 5


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=1)
    cache_dir = tmp_path / "cache"
    load_image_set(tmp_path, progress=False, cache_dir=cache_dir)
    (entry,) = cache_dir.glob("*.npz")
    entry.write_bytes(b"garbage")
    again = load_image_set(tmp_path, progress=False, cache_dir=cache_dir)
    assert not again.from_cache and len(again.samples) == 2
    assert load_image_set(tmp_path, progress=False, cache_dir=cache_dir).from_cache


def test_default_cache_lives_under_cache_root(tmp_path, private_cache):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=1)
    load_image_set(tmp_path, progress=False)
    assert list((private_cache / "preprocessed").glob("*.npz"))
    assert load_image_set(tmp_path, progress=False).from_cache


def test_summary_counts_per_class(tmp_path):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=2)
    summary = load_image_set(tmp_path, progress=False).summary()
    assert summary["layout"] == "images"
    assert summary["counts"]["Happy"] == 2 and summary["counts"]["Angry"] == 0
    assert summary["n_images"] == 4 and summary["image_size"] == [90, 72]
    assert summary["n_skipped"] == 0 and summary["n_duplicates"] == 0


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, capsys):
    make_tree(tmp_path / "Images", classes=["Happy", "Sad"], per_class=1)
    load_image_set(tmp_path, progress=True, use_cache=False)
    captured = capsys.readouterr()
    assert captured.out == "" and "decoding images" in captured.err
    load_image_set(tmp_path, progress=False, use_cache=False)
    assert "decoding images" not in capsys.readouterr().err
    load_face_crops(tmp_path, progress=True, use_cache=False)  # what `data faces` runs
    err = capsys.readouterr().err
    assert "detecting faces" in err and "decoding images" not in err
