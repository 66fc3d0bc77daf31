"""Nothing written over what the command did not create: predict's CSV, export's ONNX file and the
annotated copies refuse an existing file in one line and exit 2, before any work, unless --overwrite asks
for it, and a run's results.json, its model.pt or the input images even then; an unwritable --out names
the user's path. Every rule over every command: test_fault_outputs.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .conftest import train_args


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def run_dir(cli, images, tmp_path) -> Path:
    assert cli(*train_args(images, tmp_path / "run")).code == 0
    return tmp_path / "run"


def test_predict_out_onto_a_runs_results_is_refused_and_keeps_them(cli, images, run_dir):
    before = _digest(run_dir / "results.json")
    outcome = cli("predict", "--run", run_dir, images / "Happy", "--out", run_dir / "results.json", "--quiet")
    outcome.one_error_line(f"{run_dir / 'results.json'}: is a file of the run folder {run_dir}", "even with --overwrite")
    assert _digest(run_dir / "results.json") == before


def test_predict_out_with_overwrite_writes_the_csv(cli, images, run_dir, tmp_path):
    (tmp_path / "p.csv").write_text("old")
    outcome = cli("predict", "--run", run_dir, images / "Happy", "--out", tmp_path / "p.csv", "--quiet", "--overwrite")
    assert outcome.code == 0, outcome.err
    assert (tmp_path / "p.csv").read_text().startswith("path,face,")


def test_export_onto_the_runs_checkpoint_is_refused_and_keeps_it(cli, run_dir):
    """Refused before the export is tried, so it holds without onnx installed too."""
    before = _digest(run_dir / "model.pt")
    outcome = cli("export", "--run", run_dir, "--onnx", run_dir / "model.pt")
    outcome.one_error_line(f"{run_dir / 'model.pt'}: is a file of the run folder {run_dir}", "even with --overwrite")
    assert _digest(run_dir / "model.pt") == before


def test_annotate_into_the_folder_of_the_inputs_is_refused_and_keeps_the_images(cli, images, run_dir, tmp_path):
    """`predict data/Images/Happy --annotate data/Images` would draw over Images/Happy/*.png."""
    originals = {p: _digest(p) for p in sorted((images / "Happy").glob("*.png"))}
    outcome = cli("predict", "--run", run_dir, images / "Happy", "--annotate", images, "--out", tmp_path / "p.csv", "--quiet")
    line = outcome.one_error_line(": is an input of this command", "even with --overwrite")
    assert str(images / "Happy") in line
    assert {p: _digest(p) for p in originals} == originals
    assert not (tmp_path / "p.csv").exists()  # refused before any work


def test_features_out_that_cannot_be_written_names_the_users_path(cli, images, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    out = blocker / "features.csv"
    outcome = cli("features", "--data", images, "--out", out, "--quiet")
    line = outcome.one_error_line(f"error: {out}: ")
    assert ".tmp" not in line


def test_features_out_onto_an_existing_file_is_refused(cli, images, tmp_path):
    (tmp_path / "features.csv").write_text("mine")
    outcome = cli("features", "--data", images, "--out", tmp_path / "features.csv", "--quiet")
    outcome.one_error_line(f"{tmp_path / 'features.csv'}: exists; not writing over it")
    assert (tmp_path / "features.csv").read_text() == "mine"
