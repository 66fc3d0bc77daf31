"""The Python API against the command line. The README's example, run as it stands (a script that uses only
the documented API), trains on the built-in data, opens the run, predicts four images, prunes it, exports it
and compares the runs; the same commands typed at the command line, in another process, give the same
numbers (1e-6), the same predictions and one configuration of the two train runs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fexprune
from fexprune.errors import InputError

REPOSITORY = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-6
# the machine's or the file system's, not the code's
IGNORED = ("seconds", "latency", "timings", "root", "path", "run", "report", "from_cache")


def readme_example() -> str:
    """The Python block of the README's "Python API" section."""
    section = (REPOSITORY / "README.md").read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def fexprune_cli(*command_lines: list[str], cwd: Path) -> str:
    """The command lines run by the command line's `main`, in one other process (one start of Python and torch)."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY / "src"), "OMP_NUM_THREADS": "1"}
    script = ("import sys\nfrom fexprune.cli import main\n"
              f"for words in {list(map(list, command_lines))!r}:\n"
              "    code = main(words)\n"
              "    if code:\n"
              "        sys.exit(f'fexprune {words[0]} exited with {code}')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The README example's namespace (run in <root>/api) and the command line's runs (under <root>/cli)."""
    root = tmp_path_factory.mktemp("api")
    (root / "api").mkdir()
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(tmp_path_factory.getbasetemp() / "fexprune-cache"))
        patch.chdir(root / "api")
        torch.set_num_threads(1)  # as the command line below: the numbers are compared to 1e-6
        try:
            namespace: dict = {}
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)
        finally:
            torch.set_num_threads(threads)
        faces = [str(path) for path in namespace["faces"]]
        printed = fexprune_cli(
            ["train", "--epochs", "3", "--channels", "4,8", "--seed", "0", "--out", "cli/train", "--quiet"],
            ["predict", *faces, "--run", "cli/train", "--out", "cli/predictions.csv", "--quiet"],
            ["prune", "--run", "cli/train", "--criterion", "l2", "--out", "cli/prune", "--quiet"],
            ["compare", "api/runs", "cli"], cwd=root)
        compared = printed.rsplit("run folder: cli/prune\n", 1)[1]
    return namespace, root / "cli", compared


def numbers(value, prefix: str = "") -> dict:
    """{dotted key: number} of a JSON value, the machine's keys left out."""
    if isinstance(value, dict):
        found = {}
        for key, item in value.items():
            if not any(word in key for word in IGNORED):
                found.update(numbers(item, f"{prefix}{key}."))
        return found
    if isinstance(value, list):
        return {k: v for index, item in enumerate(value) for k, v in numbers(item, f"{prefix}{index}.").items()}
    return {prefix[:-1]: value} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def assert_same_numbers(ours: dict, theirs: dict) -> None:
    ours, theirs = numbers(ours), numbers(theirs)
    assert ours.keys() == theirs.keys()
    assert ours, "no numbers compared"
    different = {key: (ours[key], theirs[key]) for key in ours
                 if not math.isclose(ours[key], theirs[key], rel_tol=0, abs_tol=TOLERANCE)
                 and not (math.isnan(ours[key]) and math.isnan(theirs[key]))}
    assert not different


def test_the_readme_example_writes_the_runs_the_command_line_writes(runs):
    namespace, cli, _ = runs
    run, pruned = namespace["run"], namespace["pruned"]
    assert (run.kind, pruned.kind) == ("train", "prune")
    assert run.path.parent.name == "runs" and pruned.path.parent.name == "runs"
    files = {p.name for p in run.path.iterdir() if p.is_file()} - {"model.onnx", "model.onnx.json"}  # the README's export
    assert files == {p.name for p in (cli / "train").iterdir() if p.is_file()}
    assert_same_numbers(run.results, json.loads((cli / "train" / "results.json").read_text()))
    assert_same_numbers(pruned.results, json.loads((cli / "prune" / "results.json").read_text()))
    assert run.spec == json.loads((cli / "train" / "config.json").read_text())
    assert run.split == json.loads((cli / "train" / "split.json").read_text())
    with open(cli / "train" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(run.metrics) == len(rows) > 0
    for (_, ours), theirs in zip(run.metrics.iterrows(), rows):
        assert all(math.isclose(ours[key], float(theirs[key]), abs_tol=TOLERANCE) for key in theirs if theirs[key])


def test_predictions_equal_the_command_lines(runs):
    namespace, cli, _ = runs
    predictions = namespace["predictions"]
    with open(cli / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(predictions.columns) == list(rows[0])
    assert len(predictions) == len(rows) == 4
    for (_, ours), theirs in zip(predictions.iterrows(), rows):
        assert (ours["path"], ours["label"], ours["detector"]) == (theirs["path"], theirs["label"], theirs["detector"])
        for column in (c for c in theirs if c.startswith("p_")):
            assert abs(ours[column] - float(theirs[column])) <= TOLERANCE
    probabilities = predictions[[c for c in predictions.columns if c.startswith("p_")]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx(1.0)


def test_compare_groups_the_api_and_the_command_line_runs_as_one_configuration(runs):
    namespace, cli, printed = runs
    table = fexprune.compare([namespace["run"], cli / "train", namespace["pruned"], cli / "prune"])
    trained = table[table["kind"] == "train"]
    assert len(trained) == 1 and trained.iloc[0]["runs"] == 2
    assert trained.iloc[0]["test_accuracy"] == pytest.approx(namespace["run"].results["test_accuracy"], abs=TOLERANCE)
    assert list(table[table["kind"] == "prune"]["criterion"]) == ["l2", "l2"]
    assert "2 runs in 1 configurations, 2 prune criteria" in printed  # the command's own grouping agrees
    assert len(namespace["table"]) == 2  # the README's table of its own folder: the train row, the prune row


def test_an_opened_run_is_the_one_written_and_exports(runs):
    namespace, cli, _ = runs
    reopened = fexprune.open_run(cli / "train")
    assert reopened.spec["kind"] == reopened.config["kind"] == reopened.kind == "train"
    assert reopened.model is reopened.model  # loaded once
    assert reopened.classes == namespace["run"].results["data"]["classes"]
    exported = namespace["run"].path / "model.onnx"
    assert exported.is_file() and json.loads(Path(str(exported) + ".json").read_text())["classes"] == reopened.classes


def test_bad_options_are_refused_in_the_command_lines_words(tmp_path):
    with pytest.raises(InputError, match="--epochs: must be at least 1"):
        fexprune.train(epochs=0, out=tmp_path)
    with pytest.raises(InputError, match="--members is an option of --recipe best"):
        fexprune.train(members=3, out=tmp_path)
    with pytest.raises(InputError, match="no option colour="):
        fexprune.train(colour="red", out=tmp_path)
    with pytest.raises(InputError, match="face_crop= takes True or False"):
        fexprune.train(face_crop="yes", out=tmp_path)
    with pytest.raises(InputError, match="--eye-align shape the face crops; add --face-crop"):
        fexprune.train(eye_align=False, out=tmp_path)  # given as --no-eye-align, which needs --face-crop
    with pytest.raises(InputError, match="--steps is an option of the pruning curve, fexprune prune-curve"):
        fexprune.prune(tmp_path, steps=2, out=tmp_path)
    with pytest.raises(InputError, match="--remove belongs to the paper's procedure, fexprune prune"):
        fexprune.prune_curve(tmp_path, curve=(0.5,), remove=True, out=tmp_path)
    with pytest.raises(InputError, match="no such run folder"):
        fexprune.open_run(tmp_path / "absent")
    assert list(tmp_path.iterdir()) == []  # nothing written: no empty run folder left behind


def test_importing_fexprune_loads_no_torch():
    probe = "import sys, fexprune; print('torch' in sys.modules, 'train' in dir(fexprune))"
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(REPOSITORY / "src")},
                          capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_run_folders_open_by_what_they_hold(tmp_path):
    older = tmp_path / "older"  # results.json from before the schema entry: its kind told by its keys
    older.mkdir()
    (older / "config.json").write_text('{"seed": 3}')
    (older / "results.json").write_text('{"unpruned": {}, "criteria": {}}')
    (older / "metrics.csv").write_text("step,train_loss\n0,1.5\n1,1.25\n")
    run = fexprune.open_run(older)
    assert (run.kind, run.spec, run.split) == ("prune", {"kind": "prune", "version": 2, "seed": 3, "mapped_from": 1}, None)
    assert list(run.metrics["train_loss"]) == [1.5, 1.25]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    with pytest.raises(InputError, match="no results.json .unfinished"):
        fexprune.open_run(unfinished)
    (unfinished / "results.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="results.json: the file must be a JSON object"):
        fexprune.open_run(unfinished)
