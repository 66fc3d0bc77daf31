"""Run folders written by the code of the first run-folder format (tests/fixtures/runs_v1/, recorded by
tests/record_old_runs.py) still open, predict, export and compare as they did then.

Each test reads a copy in tmp_path: the fixture is never written. The folders name the paths of the machine
and folders that wrote them (their train run, the built-in data under that machine's cache), none of which
exist here, as for a run folder moved to another machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import old_runs  # noqa: E402

from fexprune.cli import main  # noqa: E402

EXPECTED = json.loads((old_runs.FIXTURE / "expected.json").read_text())
NAMES = sorted(EXPECTED["runs"])
PREDICTING = [name for name in NAMES if EXPECTED["runs"][name]["predicts"]]


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory) -> Path:
    """The recorded folders and frames, copied once for the module: the tests only read them."""
    root = tmp_path_factory.mktemp("runs_v1") / "runs"
    shutil.copytree(old_runs.FIXTURE, root)
    return root


def test_every_kind_is_recorded():
    kinds = {EXPECTED["runs"][name]["kind"] for name in NAMES}
    assert {"train", "cv", "prune", "prune-curve", "baseline", "pic", "sweep"} <= kinds, kinds
    assert {"paper", "best", "prune"} <= set(PREDICTING)


@pytest.mark.parametrize("name", NAMES)
def test_old_run_folder_reads_as_recorded(name, fixture_copy, tmp_path):
    """Kind, compare's numbers, and for a run with a model its predictions of the four frames and its ONNX
    export's outputs on them, to 1e-6, with the same files written."""
    expected = {key: value for key, value in EXPECTED["runs"][name].items() if key != "refused"}
    if expected["predicts"]:
        _needs_onnx()
    images = old_runs.frames(fixture_copy)
    before = _contents(fixture_copy / name)
    actual = old_runs.read_run(fixture_copy / name, images, tmp_path / "exports")
    actual.pop("refused", None)
    if expected["compare"] is None:  # compare refused the folder on its own then; taking it is no regression
        actual["compare"] = None
    problems = old_runs.differences(expected, actual)
    assert not problems, "\n".join(problems[:20])
    assert _contents(fixture_copy / name) == before, "reading the run folder changed it"
    if expected["predicts"] and not expected["face_crop"]:  # the ONNX file agrees with the run's own predictions too
        assert actual["onnx"] == [pytest.approx(p, abs=1e-5) for p in actual["probabilities"]]


def test_old_run_folders_compare_together(fixture_copy):
    from fexprune import api

    table = api.compare([fixture_copy / name for name in NAMES])
    problems = old_runs.differences(EXPECTED["compare"], old_runs.compare_rows(table, fixture_copy))
    assert not problems, "\n".join(problems[:20])


@pytest.mark.slow
def test_old_train_run_is_pruned_again_as_then(fixture_copy, tmp_path):
    """The recorded prune run's settings on the recorded train run: its data (the built-in set, found anew
    here) and split are read from the old folder, and the same kernels go, leaving the same network."""
    from fexprune import api

    pruned = api.prune(fixture_copy / "paper", criterion="l2", remove=True, seed=6, out=tmp_path, tensorboard=False)
    recorded = EXPECTED["runs"]["prune"]
    rows = old_runs.compare_rows(api.compare([pruned.path]), tmp_path)
    for row in [*rows, *recorded["compare"]]:
        row.pop("folders")
    assert not old_runs.differences(recorded["compare"], rows)
    predicted = old_runs.prediction_record(pruned.predict(old_runs.frames(fixture_copy)).to_dict("records"),
                                           recorded["classes"])
    assert predicted["labels"] == recorded["labels"]
    assert predicted["probabilities"] == [pytest.approx(p, abs=1e-6) for p in recorded["probabilities"]]


def _needs_onnx() -> None:
    pytest.importorskip("onnx", reason="the export needs onnx and onnxruntime: pip install 'fexprune[onnx]'")
    pytest.importorskip("onnxruntime", reason="the export needs onnx and onnxruntime: pip install 'fexprune[onnx]'")


def _contents(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", PREDICTING)
def test_old_run_folder_predicts_and_exports_from_the_command_line(name, fixture_copy, tmp_path):
    _needs_onnx()
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(fixture_copy / name), str(fixture_copy / old_runs.FRAMES),
                 "--out", str(predictions), "--quiet"]) == 0
    recorded = EXPECTED["runs"][name]
    written = old_runs.prediction_record(pd.read_csv(predictions).to_dict("records"), recorded["classes"])
    assert written["faces"] == recorded["faces"] and written["labels"] == recorded["labels"]
    # the CSV rounds to 6 digits
    assert written["probabilities"] == [pytest.approx(p, abs=1e-6) for p in recorded["probabilities"]]
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", "--run", str(fixture_copy / name), "--onnx", str(onnx_file)]) == 0
    assert old_runs.onnx_probabilities(onnx_file, old_runs.frames(fixture_copy)) == [
        pytest.approx(p, abs=1e-6) for p in recorded["onnx"]]


def test_old_run_folders_compare_from_the_command_line(fixture_copy, tmp_path):
    table = tmp_path / "compare.csv"
    assert main(["compare", *(str(fixture_copy / name) for name in NAMES), "--out", str(table)]) == 0
    written = pd.read_csv(table)
    # a row per configuration, each named by its first run; prune and pic runs are the terminal's own tables
    recorded = {Path(row["folders"][0]).name: round(100 * row["test_accuracy"], 1)
                for row in EXPECTED["compare"] if row["kind"] != "prune"}
    assert dict(zip(written["run"], written["test accuracy %"])) == recorded
