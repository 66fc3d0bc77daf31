"""Feature tables as users have them: SFEW.xlsx-like sheets with two header rows, and CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest

from fexprune.data.tables import read_feature_table
from fexprune.errors import InputError

RNG = np.random.default_rng(0)
VALUES = RNG.normal(size=(30, 10)).round(6)
LABELS = (np.arange(30) % 7) + 1


def write_sfew_like(path: Path, holes: dict[tuple[int, int], object] | None = None) -> Path:
    """A faithful fake of SFEW.xlsx: a group-title row with blanks, then Name/label/1..5/1..5."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "SFEW.csv"
    sheet.append([None, None, "LPQ features", None, None, None, None, "PHOG features", None, None, None, None])
    sheet.append(["Name", "label", 1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    for i in range(30):
        row = [f"Movie_{i:03d}_{i % 4}.png", int(LABELS[i])] + VALUES[i].tolist()
        for (r, c), value in (holes or {}).items():
            if r == i:
                row[c] = value
        sheet.append(row)
    book.save(path)
    return path


def test_the_real_sheets_one_multi_line_header_row_gives_lpq_and_phog_names(tmp_path):
    """SFEW.xlsx as distributed: one header row, the group titles (multi-line) over the first column of
    each group only; the inputs are named as the reproduce report names them, not by the raw header."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([None, "label", "First 5 Principal Components of Local Phase Quantization (LPQ) features\n"
                  "Local Phase Quantization (LPQ) features", None, None, None, None,
                  "First 5 Principal Components of Pyramid of Histogram of Gradients (PHOG) features", None, None, None, None])
    for i in range(30):
        sheet.append([f"Movie_{i:03d}.mat", int(LABELS[i])] + VALUES[i].tolist())
    book.save(tmp_path / "SFEW.xlsx")
    table = read_feature_table(tmp_path / "SFEW.xlsx")
    assert table.input_names() == ["label", *(f"LPQ {i}" for i in range(1, 6)), *(f"PHOG {i}" for i in range(1, 6))]


def test_openpyxls_unknown_extension_warning_is_silenced_and_others_kept(tmp_path, monkeypatch):
    import warnings

    import pandas as pd

    path = write_sfew_like(tmp_path / "SFEW.xlsx")
    real = pd.read_excel

    def noisy(*args, **kwargs):
        warnings.warn("Unknown extension is not supported and will be removed", UserWarning)
        warnings.warn("some other trouble", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_excel", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_feature_table(path)
    assert [str(w.message) for w in caught] == ["some other trouble"]


def test_reads_two_line_headers_and_keeps_label_as_input(tmp_path):
    table = read_feature_table(write_sfew_like(tmp_path / "SFEW.xlsx"))
    assert table.features.shape == (30, 10)
    assert table.feature_names == [f"LPQ {i}" for i in range(1, 6)] + [f"PHOG {i}" for i in range(1, 6)]
    assert table.names[3] == "Movie_003_3.png"
    assert np.array_equal(table.labels, LABELS)
    assert np.allclose(table.features, VALUES)
    inputs = table.inputs()
    assert inputs.shape == (30, 11) and np.array_equal(inputs[:, 0], LABELS)
    assert table.inputs(include_label=False).shape == (30, 10)
    assert table.missing == [] and table.dropped_rows == []


def test_missing_values_are_reported_and_imputed_with_the_column_mean(tmp_path):
    path = write_sfew_like(tmp_path / "holes.xlsx", {(4, 3): None, (10, 9): "n/a", (12, 1): None})
    table = read_feature_table(path)
    # data starts on spreadsheet row 3: pattern 4 is row 7; pattern 12 (no label) is row 15
    assert (7, "LPQ features 2") in table.missing and (13, "PHOG features 3") in table.missing
    assert table.dropped_rows == [15]
    assert len(table.labels) == 29
    kept = [i for i in range(30) if i != 12]
    expected = np.mean([VALUES[i, 1] for i in kept if i != 4])
    assert table.features[4, 1] == pytest.approx(expected)
    assert not np.isnan(table.features).any()
    assert "row 7 'LPQ features 2'" in table.missing_summary()


def test_columns_by_position_or_name(tmp_path):
    path = write_sfew_like(tmp_path / "SFEW.xlsx")
    table = read_feature_table(path, feature_columns=["PHOG features 2", 2])
    assert table.feature_names == ["PHOG features 2", "LPQ features 1"]
    assert np.allclose(table.features, VALUES[:, [6, 0]])
    with pytest.raises(InputError, match="no single column named"):
        read_feature_table(path, feature_columns=["HOG 7"])


def _write_csv(path: Path, delimiter: str = ",", header: bool = True) -> Path:
    lines = [delimiter.join(["name", "label"] + [f"f{k}" for k in range(10)])] if header else []
    for i in range(30):
        lines.append(delimiter.join([f"img{i}", str(LABELS[i])] + [str(float(v)) for v in VALUES[i]]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiter_is_sniffed(tmp_path, delimiter):
    table = read_feature_table(_write_csv(tmp_path / "t.csv", delimiter))
    assert table.feature_names[0] == "f0"
    assert np.allclose(table.features, VALUES)


def test_csv_without_header_and_by_name(tmp_path):
    table = read_feature_table(_write_csv(tmp_path / "t.csv", header=False))
    assert table.features.shape == (30, 10)
    table = read_feature_table(_write_csv(tmp_path / "u.csv"), label_column="label", name_column="name")
    assert np.array_equal(table.labels, LABELS)


def test_wrong_delimiter_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="only one column with delimiter ';'.*','-separated"):
        read_feature_table(_write_csv(tmp_path / "t.csv"), delimiter=";")


def test_bad_tables_raise_input_error(tmp_path):
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(InputError, match="not a table"):
        read_feature_table(binary)
    words = tmp_path / "words.csv"
    words.write_text("a,b,c\nx,y,z\nu,v,w\n")
    with pytest.raises(InputError, match="no numeric"):
        read_feature_table(words)
    fake_xlsx = tmp_path / "broken.xlsx"
    fake_xlsx.write_text("not a zip")
    with pytest.raises(InputError, match="not a readable spreadsheet"):
        read_feature_table(fake_xlsx)
    with pytest.raises(InputError, match="file not found"):
        read_feature_table(tmp_path / "absent.csv")


def test_labels_outside_the_classes_are_refused(tmp_path):
    path = write_sfew_like(tmp_path / "bad.xlsx", {(5, 1): 9})
    with pytest.raises(InputError, match=r"1\.\.7; rows \[8\] have \[9"):
        read_feature_table(path)


def test_cli_exit_code_2_on_bad_table(tmp_path, capsys):
    from fexprune.cli import main

    words = tmp_path / "words.csv"
    words.write_text("a,b,c\nx,y,z\n")
    assert main(["pic", "--features", str(words), "--out", str(tmp_path / "run")]) == 2
    assert "no numeric" in capsys.readouterr().err
