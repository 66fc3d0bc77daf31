"""`fexprune pic` and `fexprune features` from the command line."""

from __future__ import annotations

import csv

import pytest

from data_trees import write_feature_table
from fexprune.cli import main
from fexprune.run_folder import read_settings


def test_pic_command_on_an_sfew_like_table(tmp_path, capsys):
    table = write_feature_table(tmp_path / "SFEW.xlsx")
    out = tmp_path / "run"
    code = main(["pic", "--features", str(table), "--epochs", "200", "--retrain-epochs", "30",
                 "--normalize", "none", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "10 -> 2 hidden units" in captured.out
    assert "pic (progressive)" in captured.err  # the progress bar
    config = read_settings(out)
    assert config["normalize"] == "none" and config["epochs"] == 200 and config["include_label"] is True
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["hidden_units"]) for r in rows] == list(range(10, 1, -1))
    report = (out / "report.md").read_text()
    assert "(raw values)" in report
    assert "label, LPQ 1, LPQ 2, LPQ 3, LPQ 4, LPQ 5, PHOG 1" in report  # not the sheet's raw header
    assert main(["pic", "--features", str(table), "--epochs", "20", "--retrain-epochs", "2", "--quiet",
                 "--out", str(tmp_path / "quiet")]) == 0
    assert "pic (" not in capsys.readouterr().err


def test_pic_features_naming_a_folder_says_so(tmp_path, capsys):
    assert main(["pic", "--features", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder, not a feature table" in err[0] and "file not found" not in err[0]


def test_pic_command_rejects_bad_input(tmp_path, capsys):
    table = write_feature_table(tmp_path / "SFEW.xlsx", n=20)
    assert main(["pic", "--features", str(table), "--hidden", "1", "--out", str(tmp_path / "r")]) == 2
    assert "hidden" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["pic", "--features", str(table), "--normalize", "robust"])
    assert exit_info.value.code == 2


def test_features_command_on_synthetic_images(tmp_path):
    synth = pytest.importorskip("fexprune.data.synth")
    pytest.importorskip("fexprune.data.loading")
    images = synth.write_synthetic(tmp_path / "data", per_class=10, seed=0, size=(180, 144), progress=False)
    out = tmp_path / "features.csv"
    assert main(["features", "--data", str(images), "--out", str(out), "--quiet"]) == 0

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fexprune.data.tables import read_feature_table

    table = read_feature_table(out)  # the CSV reads back like SFEW.xlsx: name, label, 10 values
    assert table.features.shape == (70, 10) and sorted(set(table.labels)) == list(range(1, 8))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    accuracy = cross_val_score(model, table.features, table.labels, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert accuracy.mean() > 0.3  # chance is 1/7 (measured: 0.44-0.61 over three data seeds)
