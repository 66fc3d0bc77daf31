"""Feature-table faults through `fexprune pic`: a table that cannot be what the user meant is one
line naming the file and exit 2; missing cells are imputed and rows without a label dropped, and
both are listed in results.json (rows on disk == rows used + rows dropped)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import openpyxl
import pytest

PIC = ["--epochs", "20", "--retrain-epochs", "2", "--min-units", "8"]
TITLES = [None, None, "LPQ features", None, None, None, None, "PHOG features", None, None, None, None]
NAMES = ["Name", "label", 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]


def _rows(n: int = 30) -> list[list]:
    values = np.random.default_rng(0).normal(size=(n, 10)).round(5) * 0.05
    return [[f"Movie_{i:03d}_{i % 4}.png", i % 7 + 1, *values[i].tolist()] for i in range(n)]


def _xlsx(path: Path, header: list[list], rows: list[list]) -> Path:
    """Like SFEW.xlsx: a group-title row with blanks, a row of column names, then the values."""
    book = openpyxl.Workbook()
    for row in [*header, *rows]:
        book.active.append(row)
    book.save(path)
    return path


def _drop_column(k: int):
    return lambda row: row[:k] + row[k + 1:]


def test_xlsx_without_its_label_column_is_one_line_and_exit_2(cli, tmp_path):
    cut = _drop_column(1)
    table = _xlsx(tmp_path / "SFEW.xlsx", [cut(TITLES), cut(NAMES)], [cut(r) for r in _rows()])
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), "should hold the labels 1..7", "is the label column missing?")
    assert not (tmp_path / "run").exists()


def test_xlsx_without_one_feature_column_runs_on_the_columns_it_has(cli, tmp_path):
    """Fewer features is a smaller table, not an error; results.json names the inputs used."""
    cut = _drop_column(11)
    table = _xlsx(tmp_path / "SFEW.xlsx", [cut(TITLES), cut(NAMES)], [cut(r) for r in _rows()])
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    assert outcome.code == 0, outcome.err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["inputs"] == ["label"] + [f"LPQ features {k}" for k in range(1, 6)] + [f"PHOG features {k}" for k in range(1, 5)]
    assert results["n_train"] + results["n_test"] == 30 and results["missing"] == "no missing values"


@pytest.mark.parametrize("label", [8, 0, 2.5, -1])
def test_label_out_of_range_is_one_line_naming_the_row_and_exit_2(cli, tmp_path, label):
    rows = _rows()
    rows[4][1] = label
    table = _xlsx(tmp_path / "SFEW.xlsx", [TITLES, NAMES], rows)
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), f"labels must be whole numbers 1..7; rows [7] have [{label}")


def test_nan_rows_are_imputed_or_dropped_and_listed(cli, tmp_path):
    rows = _rows()
    rows[3][1:] = [None] * 11  # no label, no values: dropped (file row 6)
    rows[7][2:] = [None] * 10  # a label, no values: imputed (file row 10)
    rows[9][2] = float("nan")  # one hole (file row 12)
    rows[11][5] = "n/a"  # a missing-value marker (file row 14)
    table = _xlsx(tmp_path / "SFEW.xlsx", [TITLES, NAMES], rows)
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    assert outcome.code == 0, outcome.err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    missing = results["missing"]
    assert missing.startswith("12 missing value(s) imputed with the column mean: row 10 'LPQ features 1'")
    assert "row 12 'LPQ features 1'" in missing and "row 14 'LPQ features 4'" in missing
    dropped = json.loads(re.search(r"row\(s\) without a label dropped: (\[.*?\])", missing).group(1))
    assert dropped == [6]
    assert results["n_train"] + results["n_test"] + len(dropped) == len(rows)  # nothing silently lost


def test_csv_with_an_unknown_delimiter_is_one_line_and_exit_2(cli, tmp_path):
    table = tmp_path / "features.csv"
    table.write_text("\n".join(":".join(map(str, row)) for row in [["name", "label", *range(10)], *_rows()]) + "\n")
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), "only one column with delimiter ','; separate the columns with one of")


def test_csv_with_the_wrong_one_of_two_delimiters_is_one_line_and_exit_2(cli, tmp_path):
    """Semicolons and decimal commas, as a European spreadsheet exports them: no numbers to read."""
    lines = [";".join(["name", "label", *map(str, range(10))])]
    lines += [";".join([r[0], str(r[1]), *(f"{v:.5f}".replace(".", ",") for v in r[2:])]) for r in _rows()]
    table = tmp_path / "features.csv"
    table.write_text("\n".join(lines) + "\n")
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), "no numeric feature columns found")


def test_spreadsheet_that_is_not_one_is_one_line_and_exit_2(cli, tmp_path):
    table = tmp_path / "SFEW.xlsx"
    table.write_text("Name,label\n")
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), "not a readable spreadsheet")


def test_nonexistent_table_is_one_line_and_exit_2(cli, tmp_path):
    outcome = cli("pic", "--features", tmp_path / "SFEW.xlsx", "--out", tmp_path / "run", *PIC)
    assert outcome.one_error_line() == f"fexprune pic: error: {tmp_path / 'SFEW.xlsx'}: file not found"
