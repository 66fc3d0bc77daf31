"""Synthetic SFEW-like data: course layout, SFEW-style names, deterministic, loadable; the CLI; built-in data."""

from __future__ import annotations

import csv
import hashlib
import re

import cv2
import numpy as np
import pytest

from fexprune.cli import main
from fexprune.data import builtin
from fexprune.data.classes import EXPRESSIONS
from fexprune.data.loading import load_image_set
from fexprune.data.splits import split_indices
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError

SFEW_NAME = re.compile(r"^[A-Za-z]+\d*_\d{6,9}_\d{8}\.png$")


def digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))}


def test_layout_names_and_frames(tmp_path):
    images = write_synthetic(tmp_path / "a", per_class=6, seed=1, size=(160, 128), progress=False)
    assert images == tmp_path / "a" / "Images"
    assert sorted(p.name for p in images.iterdir()) == sorted(EXPRESSIONS)
    files = sorted(images.rglob("*.png"))
    assert len(files) == 42
    assert all(SFEW_NAME.match(p.name) for p in files), [p.name for p in files if not SFEW_NAME.match(p.name)]
    frame = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    assert frame.shape == (128, 160, 3)
    assert frame[0].max() == 0 and frame[-1].max() == 0  # letterbox bars
    assert frame[64].std() > 5  # a scene between them


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = write_synthetic(tmp_path / "a", per_class=3, seed=5, size=(160, 128), progress=False)
    b = write_synthetic(tmp_path / "b", per_class=3, seed=5, size=(160, 128), progress=False)
    c = write_synthetic(tmp_path / "c", per_class=3, seed=6, size=(160, 128), progress=False)
    assert digests(a) == digests(b)
    assert digests(a) != digests(c)


def test_movies_and_clips_repeat_so_grouped_splits_mean_something(tmp_path):
    write_synthetic(tmp_path, per_class=10, seed=0, size=(160, 128), progress=False)
    image_set = load_image_set(tmp_path, progress=False)
    summary = image_set.summary()
    assert summary["layout"] == "images" and set(summary["counts"].values()) == {10}
    assert summary["n_clips"] < summary["n_images"]  # several frames per clip
    assert summary["n_movies"] < summary["n_clips"]  # several clips per movie
    assert summary["n_duplicates"] == 1  # one frame copied into a second class, as in SFEW
    train, test = split_indices(image_set, "movie", 0.2, 0)
    assert not {image_set.samples[i].movie for i in train} & {image_set.samples[i].movie for i in test}


def test_refuses_to_write_over_an_existing_set(tmp_path):
    write_synthetic(tmp_path, per_class=1, seed=0, size=(160, 128), progress=False)
    with pytest.raises(InputError, match="already holds"):
        write_synthetic(tmp_path, per_class=1, seed=0, size=(160, 128), progress=False)


def test_face_centres_sit_where_sfew_faces_do(tmp_path):
    """faces.csv holds the true face boxes; centres scatter around (0.48 W, 0.38 H), on a face."""
    images = write_synthetic(tmp_path, per_class=4, seed=2, size=(360, 288), progress=False)
    with open(tmp_path / "faces.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 28 and all((tmp_path / row["path"]).is_file() for row in rows)
    cx = np.array([float(r["cx"]) for r in rows]) / 360
    cy = np.array([float(r["cy"]) for r in rows]) / 288
    assert abs(cx.mean() - 0.48) < 0.05 and abs(cy.mean() - 0.38) < 0.05
    assert cx.std() > 0.01 and cy.std() > 0.01  # jittered, not fixed
    heights = np.array([float(r["height"]) for r in rows]) / 288
    assert 0.15 < heights.min() and heights.max() < 0.45
    row = rows[0]  # the box centre is on the face: brighter than the black bars, not background-uniform
    frame = cv2.imread(str(tmp_path / row["path"]))
    assert frame[int(float(row["cy"])), int(float(row["cx"]))].sum() > 30
    assert images.name == "Images"


def test_cli_synth_and_info(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--per-class", "2", "--seed", "3", "--quiet"]) == 0
    assert len(list((tmp_path / "s" / "Images").rglob("*.png"))) == 14
    assert main(["data", "info", "--data", str(tmp_path / "s"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "layout: images" in out and "Happy" in out
    assert main(["data", "info", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_builtin_data_generated_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FEXPRUNE_CACHE", str(tmp_path / "cache"))
    calls = []

    def small(out, per_class, seed, progress):
        calls.append(out)
        return write_synthetic(out, per_class=1, seed=seed, size=(160, 128), progress=False)

    monkeypatch.setattr(builtin, "write_synthetic", small)
    first = builtin.resolve_data(None)
    second = builtin.default_data_dir()
    assert first == second and first.name == "Images" and len(calls) == 1
    assert len(list(first.rglob("*.png"))) == 7
    assert not [p for p in first.parent.parent.iterdir() if p.name.startswith(".")]  # no staging left over
    assert builtin.resolve_data(str(tmp_path)) == tmp_path
    with pytest.raises(InputError):
        builtin.resolve_data(str(tmp_path / "nowhere"))
