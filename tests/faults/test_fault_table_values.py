"""Feature-table cells that would mislead: a feature column with no values is named in the results, not
dropped under "no missing values"; an infinite cell is one line naming its row and column, exit 2."""

from __future__ import annotations

import json

from .test_fault_tables import NAMES, PIC, TITLES, _rows, _xlsx


def test_an_all_empty_feature_column_is_named_not_dropped_silently(cli, tmp_path):
    rows = _rows()
    for row in rows:
        row[11] = None  # 'PHOG features 5': its header, no values
    table = _xlsx(tmp_path / "SFEW.xlsx", [TITLES, NAMES], rows)
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    assert outcome.code == 0, outcome.err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "PHOG features 5" not in results["inputs"]
    assert results["missing"] == "column(s) left out: 'PHOG features 5' (no values)"


def test_an_infinite_cell_is_one_line_naming_it_and_exit_2(cli, tmp_path):
    rows = _rows()
    rows[5][4] = float("inf")  # file row 7 (one header row), column '3'
    table = tmp_path / "features.csv"
    table.write_text("\n".join(",".join(map(str, row)) for row in [["name", "label", *range(1, 11)], *rows]) + "\n")
    outcome = cli("pic", "--features", table, "--out", tmp_path / "run", *PIC)
    outcome.one_error_line(str(table), "infinite value(s) in the table: row 7 '3'")
    assert not (tmp_path / "run").exists()
