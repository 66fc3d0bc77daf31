"""`fexprune data faces`: true boxes are read with clear errors, crops are scored against them, and the
command reports a chain's counts without training anything."""

from __future__ import annotations

import csv
import json

import pytest

from fexprune.faces.check import check_faces, read_true_boxes
from fexprune.data.loading import load_image_set
from fexprune.faces.loading import load_face_crops
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    images = write_synthetic(tmp_path_factory.mktemp("check"), per_class=3, seed=4, progress=False)
    return images, images.parent / "faces.csv"


def _write(path, rows, columns=("path", "cx", "cy", "width", "height", "tilt")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_true_boxes_are_read_relative_to_their_file_and_bad_rows_named(tmp_path):
    boxes = read_true_boxes(_write(tmp_path / "t.csv", [("a/x.png", 50, 40, 20, 10, ""), (str(tmp_path / "y.png"), 5, 5, 2, 2, 7)]))
    assert boxes[(tmp_path / "a" / "x.png").resolve()] == (40.0, 35.0, 20.0, 10.0, None)
    assert boxes[(tmp_path / "y.png").resolve()][4] == 7.0
    with pytest.raises(InputError, match=r"bad\.csv: line 3: a box value is not a number"):
        read_true_boxes(_write(tmp_path / "bad.csv", [("x.png", 1, 1, 1, 1, 0), ("y.png", 1, "wide", 1, 1, 0)]))
    with pytest.raises(InputError, match="line 2: width and height must be positive"):
        read_true_boxes(_write(tmp_path / "zero.csv", [("x.png", 1, 1, 0, 1, 0)]))
    with pytest.raises(InputError, match="missing: cy, width"):
        read_true_boxes(_write(tmp_path / "cols.csv", [("x.png", 1, 1)], columns=("path", "cx", "height")))
    with pytest.raises(InputError, match="none.csv: cannot read"):
        read_true_boxes(tmp_path / "none.csv")


def test_crops_are_scored_against_the_true_boxes(drawn, tmp_path):
    images, truth_file = drawn
    image_set = load_face_crops(images, progress=False)
    truth = read_true_boxes(truth_file)
    report = check_faces(image_set, truth)
    found = report["truth"]
    assert found["n_matched"] == len(image_set) and found["n_without_truth"] == 0
    assert found["by_kind"]["detected"]["n"] == report["chain"]["n_detected"] > 0
    assert found["by_kind"]["detected"]["on_face"] > 0.9  # 99% on the built-in set
    assert sum(kind["n"] for kind in found["by_kind"].values()) == len(image_set)
    moved = {path: (x + 2000, y, w, h, tilt) for path, (x, y, w, h, tilt) in truth.items()}
    assert all(kind["on_face"] == 0 for kind in check_faces(image_set, moved)["truth"]["by_kind"].values())
    half = dict(list(truth.items())[: len(truth) // 2])
    assert check_faces(image_set, half)["truth"]["n_without_truth"] == len(truth) - len(half)
    assert "truth" not in check_faces(image_set)
    with pytest.raises(ValueError):
        check_faces(load_image_set(images, progress=False))


def test_the_command_reports_a_chain_and_refuses_a_bad_truth_file(drawn, tmp_path, capsys):
    from fexprune.cli import main

    images, truth_file = drawn
    assert main(["data", "faces", "--data", str(images), "--truth", str(truth_file), "--quiet",
                 "--sheet", str(tmp_path / "sheet.png")]) == 0
    out = capsys.readouterr().out
    assert "haar-default,haar-alt2" in out.split("chain:")[1].split("\n")[0] and "on the face" in out and (tmp_path / "sheet.png").is_file()
    assert main(["data", "faces", "--data", str(images), "--truth", str(truth_file), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["truth"]["n_matched"] == report["chain"]["n_images"] == 21
    bad = _write(tmp_path / "bad.csv", [("x.png", 1, 1, -1, 1, 0)])
    assert main(["data", "faces", "--data", str(images), "--truth", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv" in err and "line 2" in err
