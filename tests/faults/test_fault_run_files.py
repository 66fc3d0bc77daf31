"""Files read back from a run folder, edited by hand: each is checked against its schema, with bounds, before
anything is built from it, so a wrong value is one line naming the file and the field (exit 2), not a
traceback nor an allocation of gigabytes. Likewise a checkpoint or a workbook whose size would exhaust
memory is refused before it is read."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import openpyxl
import pytest
import torch

from .conftest import train_args
from .test_fault_tables import NAMES, PIC, TITLES, _rows


@pytest.fixture
def run(cli, images, tmp_path) -> Path:
    """A finished train run on the absolute path of the synthetic frames."""
    assert cli(*train_args(images.resolve(), tmp_path / "run")).code == 0
    return tmp_path / "run"


def _edit(path: Path, **values) -> None:
    data = json.loads(path.read_text())
    data.update(values)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("field, value, needle", [
    ("channels", [100000, 4], "channels must be between 1 and 4096, not 100000"),
    ("image_size", [20000, 20000], "image_size must be between 8 and 2048, not 20000"),
    ("kernel_size", "5", "kernel_size must be a whole number"),
])
def test_config_out_of_bounds_is_one_line_before_prune_builds_anything(cli, run, tmp_path, field, value, needle):
    _edit(run / "config.json", **{field: value})
    outcome = cli("prune", "--run", run, "--out", tmp_path / "pruned", "--sample-size", "4", "--quiet")
    outcome.one_error_line(str(run / "config.json"), needle)
    assert not (tmp_path / "pruned").exists()


def test_layer_shapes_with_groups_0_is_one_line(cli, run, tmp_path, images):
    state = torch.load(run / "model.pt", weights_only=True)
    state["model_config"]["layer_shapes"] = {"conv1": {"in": 1, "out": 2, "groups": 0}}
    torch.save(state, run / "model.pt")
    frame = sorted(images.rglob("*.png"))[0]
    outcome = cli("predict", "--run", run, frame, "--no-face-detect", "--quiet", "--out", tmp_path / "p.csv")
    outcome.one_error_line(str(run / "model.pt"), "layer_shapes['conv1'].groups must be between 1")


def test_split_entry_that_is_a_list_is_one_line(cli, run, tmp_path):
    split = json.loads((run / "split.json").read_text())
    split["train"][0] = [split["train"][0]]
    (run / "split.json").write_text(json.dumps(split))
    outcome = cli("prune", "--run", run, "--out", tmp_path / "pruned", "--sample-size", "4", "--quiet")
    outcome.one_error_line(str(run / "split.json"), "train[0] must be a file name")


def test_results_holding_nan_is_one_line_in_compare(cli, run):
    _edit(run / "results.json", test_accuracy=math.nan)
    cli("compare", run).one_error_line(str(run / "results.json"), "test_accuracy must be a finite number")


def test_a_nested_value_in_a_config_compare_reads_is_compared_as_a_value(cli, run):
    _edit(run / "config.json", note={"by": ["hand"]})
    outcome = cli("compare", run)
    assert outcome.code == 0 and "1 runs in 1 configurations" in outcome.out


def test_sweep_config_whose_channels_are_text_is_one_line(cli, tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"channels": "16,32", "repeats": 1, "epochs": 1}))
    cli("sweep", "--resume", folder, "--quiet").one_error_line(str(folder / "config.json"), "channels must be a list")


def _bomb(path: Path, declared: int) -> Path:
    """A torch zip checkpoint whose one tensor declares `declared` elements over a record of 16 bytes."""
    buffer = io.BytesIO()
    torch.save({"model_config": {}, "state_dict": {"w": torch.zeros(4)}}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for record in source.infolist():
            data = source.read(record)
            if record.filename.endswith("data.pkl"):
                data = data.replace(b"K\x04t", b"J" + declared.to_bytes(4, "little") + b"t")  # numel 4 -> declared
            out.writestr(record, data)
    return path


def test_a_checkpoint_declaring_more_than_it_holds_is_refused_before_loading(cli, tmp_path, images, monkeypatch):
    model = _bomb(tmp_path / "model.pt", 600_000_000)  # 2.4 GB of float32 once torch allocates it
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    frame = sorted(images.rglob("*.png"))[0]
    outcome = cli("predict", "--run", model, frame, "--no-face-detect", "--quiet", "--out", tmp_path / "p.csv")
    outcome.one_error_line(str(model), "declares 600,000,000 elements for a record of 16 bytes")


def test_a_compressed_checkpoint_record_is_refused_before_loading(cli, tmp_path, images, monkeypatch):
    with zipfile.ZipFile(tmp_path / "model.pt", "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("archive/data/0", bytes(50_000_000))  # 50 MB of zeros in 50 KB
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    frame = sorted(images.rglob("*.png"))[0]
    outcome = cli("predict", "--run", tmp_path / "model.pt", frame, "--no-face-detect", "--quiet", "--out", tmp_path / "p.csv")
    outcome.one_error_line(str(tmp_path / "model.pt"), "compressed")


def test_a_workbook_with_a_cell_at_column_xfd_is_refused_before_pandas_reads_it(cli, tmp_path, monkeypatch):
    import pandas

    book = openpyxl.Workbook()
    for row in [TITLES, NAMES, *_rows()]:
        book.active.append(row)
    book.active["XFD1"] = 1
    book.save(tmp_path / "table.xlsx")
    monkeypatch.setattr(pandas, "read_excel", lambda *a, **k: pytest.fail("pandas.read_excel reached"))
    outcome = cli("pic", "--features", tmp_path / "table.xlsx", "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(tmp_path / "table.xlsx"), "16,384 columns")
