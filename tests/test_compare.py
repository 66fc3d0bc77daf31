"""`fexprune compare`: real run folders, reopened and grouped over seeds; bad folders exit 2 with one line."""

from __future__ import annotations

import json
import statistics

import pytest

from fexprune.cli import main
from fexprune.data.synth import write_synthetic
from fexprune.errors import InputError
from fexprune.report.compare import collect_runs, comparison_rows, group_runs


@pytest.fixture(scope="module")
def run_tree(tmp_path_factory):
    """Three seeds of one paper CNN, one run with other channels, a 2-fold run and a HOG + SVM baseline."""
    root = tmp_path_factory.mktemp("compare")
    images = write_synthetic(root / "synth", per_class=6, seed=2, size=(180, 144), progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        common = ["--data", str(images), "--epochs", "3", "--quiet"]
        for seed in (0, 1, 2):
            assert main(["train", *common, "--seed", str(seed), "--out", str(root / "runs" / f"paper-{seed}")]) == 0
        assert main(["train", *common, "--channels", "6,12", "--out", str(root / "runs" / "narrow")]) == 0
        assert main(["train", *common, "--cv", "2", "--out", str(root / "runs" / "cv")]) == 0
        assert main(["baseline", "--data", str(images), "--quiet", "--out", str(root / "runs" / "svm")]) == 0
    return root / "runs"


def test_seeds_group_and_only_differing_settings_show(run_tree):
    records = collect_runs([run_tree])
    assert len(records) == 6
    groups = group_runs(records)
    sizes = sorted(len(g.records) for g in groups)
    assert sizes == [1, 1, 1, 3]
    header, rows = comparison_rows(groups)
    assert "channels" in header and "seed" not in header and "face_crop" not in header  # alike in every run
    seeds_row = next(row for row in rows if row[header.index("runs")] == "3")
    accuracies = [json.loads((run_tree / f"paper-{s}" / "results.json").read_text())["test_accuracy"] for s in (0, 1, 2)]
    mean, sd = 100 * statistics.mean(accuracies), 100 * statistics.stdev(accuracies)
    assert seeds_row[header.index("test accuracy %")] == f"{mean:.1f} ± {sd:.1f}"
    assert seeds_row[header.index("seeds")] == "0,1,2" and seeds_row[header.index("channels")] == "16/32"
    svm_row = next(row for row in rows if row[header.index("method")] == "hog-svm")
    assert svm_row[header.index("channels")] == "-"  # the SVM's config carries CNN settings it never read
    cv = json.loads((run_tree / "cv" / "results.json").read_text())["summary"]
    cv_row = next(row for row in rows if row[header.index("cv")] == "2")
    assert cv_row[header.index("test accuracy %")] == f"{100 * cv['test_accuracy']['mean']:.1f}"
    assert cv_row[header.index("macro-F1 %")] == f"{100 * cv['macro_f1']['mean']:.1f}"  # the folds' mean


def test_cli_prints_and_writes_markdown(run_tree, tmp_path, capsys):
    assert main(["compare", str(run_tree / "paper-0"), str(run_tree / "paper-1"), "--out", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    assert "2 runs in 1 configurations" in out
    table = (tmp_path / "t.md").read_text().splitlines()
    assert table[0].startswith("| method | split |") and len(table) == 3


def test_bad_folders_exit_2_with_one_line(run_tree, tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing")]) == 2
    assert "missing: no such run folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2
    assert "no finished runs" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="results.json: not valid JSON"):
        collect_runs([broken])
    assert main(["compare", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken/results.json" in err[0]


def test_a_run_from_before_a_setting_existed_groups_with_its_default(run_tree, tmp_path):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(run_tree / "paper-0", old)
    config = json.loads((old / "config.json").read_text())
    del config["eye_align"]  # config.json of a version without --eye-align
    config["seed"] = 7
    (old / "config.json").write_text(json.dumps(config))
    groups = group_runs(collect_runs([run_tree / "paper-0", run_tree / "paper-1", old]))
    assert len(groups) == 1 and sorted(r.seed for r in groups[0].records) == [0, 1, 7]
