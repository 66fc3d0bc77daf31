"""Flagging malformed rows of a feature table, and `fexprune pic --drop-outliers`."""

from __future__ import annotations

import json

import numpy as np
import openpyxl

from fexprune.cli import main
from fexprune.data.outliers import find_outliers, robust_z
from fexprune.data.tables import read_feature_table


def _table_with_a_broken_row(path, n=150):
    """An SFEW-like sheet: row "broken" has a first feature 25 sds out and its last five values empty, as
    SFEW.xlsx's Hangover_001949614_00000089 has."""
    rng = np.random.default_rng(1)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([None, None, "LPQ features", None, None, None, None, "PHOG features", None, None, None, None])
    sheet.append(["Name", "label", 1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    for i in range(n):
        values = (rng.normal(size=10) * 0.04).tolist()
        if i == 40:
            sheet.append(["broken.mat", 3, 0.994, *values[1:5], None, None, None, None, None])
        else:
            sheet.append([f"clip_{i}.mat", int(rng.integers(1, 8)), *values])
    book.save(path)
    return path


def test_the_broken_row_is_flagged_for_its_value_and_its_missing_cells_and_nothing_else(tmp_path):
    table = read_feature_table(_table_with_a_broken_row(tmp_path / "SFEW.xlsx"))
    flagged = find_outliers(table)
    assert [o.name for o in flagged] == ["broken.mat"]
    assert flagged[0].file_row == 43  # two header rows, then row 41 of the body
    reasons = " ".join(flagged[0].reasons)
    assert "LPQ 1 = 0.994" in reasons and "5 of 10 features missing" in reasons


def test_either_rule_alone_flags_a_row(tmp_path):
    table = read_feature_table(_table_with_a_broken_row(tmp_path / "SFEW.xlsx"))
    assert [o.name for o in find_outliers(table, z_limit=1e6)] == ["broken.mat"]  # its missing cells
    assert [o.name for o in find_outliers(table, missing_share=1.0)] == ["broken.mat"]  # its value
    assert find_outliers(table, z_limit=1e6, missing_share=1.0) == []


def test_robust_z_is_not_widened_by_the_outlier_and_is_zero_for_a_constant_column():
    values = np.column_stack([np.r_[np.linspace(-1, 1, 99), 1000.0], np.ones(100)])
    z = robust_z(values)
    assert z[-1, 0] > 500  # a plain z-score would say about 10: the outlier widens the sd it is measured by
    assert np.abs(z[:-1, 0]).max() < 2
    assert np.all(z[:, 1] == 0)


def test_pic_names_flagged_rows_and_drops_them_when_asked(tmp_path, capsys):
    table = _table_with_a_broken_row(tmp_path / "SFEW.xlsx")
    fast = ["--features", str(table), "--epochs", "100", "--retrain-epochs", "10", "--quiet", "--no-tensorboard"]
    assert main(["pic", *fast, "--out", str(tmp_path / "kept")]) == 0
    said = capsys.readouterr().out
    assert "1 row(s) of the table flagged as outliers, kept" in said and "broken.mat (row 43)" in said
    kept = json.loads((tmp_path / "kept" / "results.json").read_text())
    assert kept["n_train"] + kept["n_test"] == 150 and not kept["outliers_dropped"]
    assert [o["name"] for o in kept["outliers"]] == ["broken.mat"]
    assert "broken.mat" in (tmp_path / "kept" / "report.md").read_text()

    assert main(["pic", *fast, "--drop-outliers", "--out", str(tmp_path / "dropped")]) == 0
    assert "left out" in capsys.readouterr().out
    dropped = json.loads((tmp_path / "dropped" / "results.json").read_text())
    assert dropped["n_train"] + dropped["n_test"] == 149 and dropped["outliers_dropped"]
    assert dropped["missing"] == "no missing values"  # the imputed cells went with their row
    report = (tmp_path / "dropped" / "report.md").read_text()
    assert "broken.mat" in report and "left out" in report
