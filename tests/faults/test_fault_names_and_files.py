"""Hostile names and files: a file name that is not UTF-8, a broken link and a FIFO beside the images,
a class folder that cannot be read, a PNG that declares 30000x30000 pixels, and a file rewritten with
the same size and time. Each is kept or listed, never a traceback and never silently dropped or stale."""

from __future__ import annotations

import csv
import errno
import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fexprune.data.loading import load_image_set

from .conftest import skip_reasons, train_args


def _frame(images, name="Sad") -> Path:
    return sorted((images / name).glob("*.png"))[0]


def _non_utf8(folder: Path, stem: bytes) -> Path:
    return Path(os.fsdecode(bytes(folder) + b"/" + stem + b"_1_1.png"))


@pytest.fixture
def run_dir(cli, images, tmp_path) -> Path:
    assert cli(*train_args(images, tmp_path / "run")).code == 0
    return tmp_path / "run"


def test_file_names_that_are_not_utf8_train_and_are_written_escaped(cli, images, tmp_path):
    _non_utf8(images / "Happy", b"kept\xff").write_bytes(_frame(images).read_bytes())
    _non_utf8(images / "Happy", b"junk\xfe").write_bytes(b"not an image")
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    report = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")  # strict: valid UTF-8
    assert "junk\\xfe_1_1.png" in report
    assert "junk\\xfe_1_1.png" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")


def test_file_names_that_are_not_utf8_are_predicted_and_written_escaped(cli, images, run_dir, tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    _non_utf8(folder, b"face\xff").write_bytes(_frame(images).read_bytes())
    _non_utf8(folder, b"junk\xfe").write_bytes(b"not an image")
    outcome = cli("predict", "--run", run_dir, folder, "--out", tmp_path / "p.csv", "--quiet")
    assert outcome.code == 0, outcome.err
    with open(tmp_path / "p.csv", encoding="utf-8", newline="") as handle:  # strict: valid UTF-8
        assert [row["path"] for row in csv.DictReader(handle)] == [f"{folder}/face\\xff_1_1.png"]
    skipped = (tmp_path / "p.skipped.csv").read_text(encoding="utf-8")
    assert f"{folder}/junk\\xfe_1_1.png" in skipped
    assert "face\\xff_1_1.png" in outcome.out


def test_predict_lists_a_broken_link_and_a_fifo_like_train(cli, images, run_dir, tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "good_1_1.png").write_bytes(_frame(images).read_bytes())
    os.symlink(tmp_path / "gone.png", folder / "gone_1_1.png")
    os.mkfifo(folder / "pipe_1_1.png")
    outcome = cli("predict", "--run", run_dir, folder, "--out", tmp_path / "p.csv", "--quiet")
    assert outcome.code == 0, outcome.err
    with open(tmp_path / "p.skipped.csv", newline="") as handle:
        reasons = {Path(row["path"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert reasons == {"gone_1_1.png": "not a regular file (broken link?)", "pipe_1_1.png": "not a regular file (broken link?)"}
    assert "1 faces in 1 images" in outcome.out and "2 files skipped" in outcome.out


@pytest.mark.parametrize("layout", ["expressions", "generic"])
def test_an_unreadable_class_folder_is_listed_as_skipped(cli, images, tmp_path, monkeypatch, layout):
    """As root chmod stops nothing, so the folder's listing fails as it would for another user."""
    if layout == "generic":
        for folder in list(images.iterdir()):
            folder.rename(images / f"set_{folder.name.lower()}")
    locked = images / ("Happy" if layout == "expressions" else "set_happy")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert skip_reasons(results) == {locked.name: "cannot read folder (Permission denied)"}
    assert results["data"]["n_images"] == 18 and results["data"]["n_skipped"] == 1


def _png_declaring(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header declares width x height gray pixels (its data covers 1 row)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
            + chunk(b"IEND", b""))


def test_a_png_declaring_too_many_pixels_is_skipped_before_decoding(cli, images, tmp_path):
    (images / "Happy" / "bomb_1_1.png").write_bytes(_png_declaring(10000, 6000))
    outcome = cli(*train_args(images, tmp_path / "run"))
    assert outcome.code == 0, outcome.err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert skip_reasons(results) == {
        "bomb_1_1.png": "image too large to decode (10000x6000 = 60 megapixels; the limit is 50)"}


def test_a_file_rewritten_with_the_same_size_and_time_is_not_served_from_the_cache(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("Happy", "Sad"):
        (tmp_path / "Images" / name).mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(tmp_path / "Images" / name / f"m_{k}_1.bmp"), rng.integers(0, 256, (144, 180, 3), dtype=np.uint8))
    target = tmp_path / "Images" / "Happy" / "m_0_1.bmp"
    first = load_image_set(tmp_path / "Images", cache_dir=tmp_path / "cache", progress=False)
    stat = target.stat()
    cv2.imwrite(str(target), 255 - cv2.imread(str(target)))  # a BMP's size is its pixel count: unchanged
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    second = load_image_set(tmp_path / "Images", cache_dir=tmp_path / "cache", progress=False)
    index = [s.path for s in second.samples].index(target)
    assert not second.from_cache
    assert np.abs(second.images[index].astype(int) - (255 - first.images[index].astype(int))).max() <= 1
