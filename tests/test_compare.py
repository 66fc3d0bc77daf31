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
    assert table[0].startswith("| run | n | runs | test accuracy % |") and "| method | split |" in table[0]
    assert len(table) == 3 and table[2].startswith("| paper-0 +1 | ")


def test_console_table_fits_120_columns_with_run_names_and_test_sizes(run_tree, tmp_path, capsys):
    long_data = tmp_path / ("a-data-set-folder-with-a-long-name-" * 3)
    _copy_run(run_tree / "narrow", tmp_path / "runs" / "narrow-long-data", {"data": str(long_data), "lr": 0.002,
                                                                            "normalize": "dataset", "batch_size": 16})
    assert main(["compare", str(run_tree), str(tmp_path / "runs"), "--out", str(tmp_path / "all.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 120
    header = lines[0].split()
    assert header[:3] == ["run", "n", "runs"]
    n_test = json.loads((run_tree / "paper-0" / "results.json").read_text())["n_test"]
    paper = next(line for line in lines if line.startswith("paper-0 +2 "))
    assert paper.split()[2] == str(n_test)  # "paper-0 +2": the first run and its 2 other seeds
    cv = next(line for line in lines if line.startswith("cv "))
    folds = json.loads((run_tree / "cv" / "results.json").read_text())["folds"]
    assert cv.split()[1] == str(sum(fold["n_test"] for fold in folds))  # each fold's test part, together
    assert any(line.startswith("not shown here (--out FILE.md or FILE.csv writes them): ") for line in lines)

    import csv

    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert {"run", "n", "seeds", "method", "data", "lr", "normalize", "batch_size"} <= set(rows[0])
    assert str(long_data) in {row["data"] for row in rows}  # whole in the file, cut short on the console


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


def _copy_run(source, target, config_changes: dict, training: dict | None = None):
    import shutil

    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config.update(config_changes)
    (target / "config.json").write_text(json.dumps(config))
    if training is not None:
        results = json.loads((target / "results.json").read_text())
        results["training"] = {**(results.get("training") or {}), **training}
        (target / "results.json").write_text(json.dumps(results))
    return target


def test_options_show_as_typed_and_the_builtin_data_is_named(run_tree, tmp_path):
    face = {"recipe": "best", "face_crop": True, "channels": [16, 32]}
    _copy_run(run_tree / "paper-0", tmp_path / "default", {**face, "margin_tta": None}, {"tta_margins": [0.15, 0.25]})
    _copy_run(run_tree / "paper-1", tmp_path / "typed", {**face, "margin_tta": 0.1}, {"tta_margins": [0.1, 0.3]})
    _copy_run(run_tree / "paper-2", tmp_path / "builtin", {"data": None})
    header, rows = comparison_rows(group_runs(collect_runs([tmp_path])))
    assert "margin_tta" in header and "scored margins" not in header and "tta_margins" not in header
    by_margin = {row[header.index("margin_tta")]: row for row in rows}
    assert set(by_margin) == {"0.05", "0.1", "-"}  # "-": the paper recipe has no such option
    assert by_margin["-"][header.index("data")] == "built-in synthetic data"


def test_prune_and_pic_runs_are_listed_and_other_kinds_said_skipped(run_tree, tmp_path, capsys):
    from fexprune import runs
    from fexprune.schema import stamp

    images = json.loads((run_tree / "paper-0" / "config.json").read_text())["data"]
    assert main(["prune", "--run", str(run_tree / "paper-0"), "--criterion", "l2", "--remove", "--quiet",
                 "--out", str(tmp_path / "all" / "prune")]) == 0
    assert main(["pic", "--data", images, "--epochs", "30", "--retrain-epochs", "3", "--quiet",
                 "--out", str(tmp_path / "all" / "pic")]) == 0
    (tmp_path / "all" / "sweep").mkdir()
    runs.write_json(tmp_path / "all" / "sweep" / "results.json", stamp({"combinations": []}, "sweep"))
    capsys.readouterr()
    assert main(["compare", str(run_tree / "paper-0"), str(tmp_path / "all"), "--out", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    prune = json.loads((tmp_path / "all" / "prune" / "results.json").read_text())
    l2 = prune["criteria"]["l2"]
    ratio = l2["cost"]["macs_per_image"] / prune["unpruned"]["cost"]["macs_per_image"]
    assert "Prune runs (a row per criterion)" in out and f"{ratio:.3f}" in out
    assert f"{100 * prune['unpruned']['test_accuracy']:.1f} -> {100 * l2['test_accuracy']:.1f}" in out
    pic = json.loads((tmp_path / "all" / "pic" / "results.json").read_text())
    assert "PIC runs" in out and f"{pic['rows'][-1]['test_loss']:.4f}" in out
    assert "skipped 1 sweep run: a sweep's summary" in out
    assert "1 runs in 1 configurations, 1 prune criteria, 1 pic runs" in out
    markdown = (tmp_path / "t.md").read_text()
    assert "**Prune runs (a row per criterion)**" in markdown and "skipped 1 sweep run" in markdown


def test_margin_tta_default_matches_the_recipes():
    from fexprune.recipes import RECIPES
    from fexprune.report.compare import MARGIN_TTA_DEFAULT

    offering = [recipe for recipe in RECIPES.values() if "margin_tta" in recipe.options]
    assert {recipe.name for recipe in offering} == {"best", "transfer", "probe"}
    assert all(recipe.margin_tta == MARGIN_TTA_DEFAULT for recipe in offering)
