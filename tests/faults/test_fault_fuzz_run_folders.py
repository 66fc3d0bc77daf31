"""Random edits of real run folders: every edited folder either still opens or is refused in one line with
exit code 2, never a traceback. The folders are written by the code itself (a tiny train run and a prune
of it on synthetic frames); each case edits one file, seeded, then reads the folder the ways users do:
`compare`, `predict`, and reopening the run as prune does (its config, split.json and model)."""

from __future__ import annotations

import copy
import io
import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch

from fexprune.cli import main
from fexprune.errors import InputError
from fexprune.inference.trained_run import load_run
from fexprune.models.layer_shapes import layer_shapes
from fexprune.models.checkpoint import build_model

CASES = 90
ODD_VALUES = ["text", "", [1, 2], [["x"]], {"a": [1]}, None, 10**12, -5, 0, 1, 2.5, math.nan, math.inf, True, [], {}]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, synthetic_images):
    """(train run, prune run, a frame to predict), written by the CLI on the synthetic frames."""
    root = tmp_path_factory.mktemp("fuzz")
    images = Path(synthetic_images).resolve()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        torch.set_num_threads(1)
        assert main(["train", "--data", str(images), "--epochs", "1", "--channels", "2,4", "--quiet",
                     "--no-tensorboard", "--out", str(root / "train")]) == 0
        assert main(["prune", "--run", str(root / "train"), "--out", str(root / "prune"), "--sample-size", "4",
                     "--quiet", "--no-tensorboard"]) == 0
    return root / "train", root / "prune", sorted(images.rglob("*.png"))[0], root / "cache"


def _paths(value, prefix=()):
    """Every key path into a JSON value (dict keys and list positions), the value itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:5]):
            yield from _paths(item, prefix + (index,))


def _edit_value(value, rng: random.Random):
    """`value` with one randomly chosen part deleted or replaced by an odd value."""
    value = copy.deepcopy(value)
    paths = [p for p in _paths(value) if p]
    if not paths:
        return rng.choice(ODD_VALUES)
    path = rng.choice(paths)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return value


def _edit_json(path: Path, rng: random.Random) -> str:
    data = path.read_bytes()
    roll = rng.random()
    if roll < 0.15:
        cut = rng.randrange(len(data))
        path.write_bytes(data[:cut])
        return f"{path.name} truncated at {cut}"
    if roll < 0.2:
        path.write_text(json.dumps(rng.choice(ODD_VALUES)))
        return f"{path.name} replaced by an odd value"
    path.write_text(json.dumps(_edit_value(json.loads(data), rng)))
    return f"{path.name} edited"


def _edit_checkpoint(path: Path, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        data = path.read_bytes()
        cut = rng.randrange(len(data))
        path.write_bytes(data[:cut])
        return f"{path.name} truncated at {cut}"
    state = torch.load(path, weights_only=True)
    if rng.random() < 0.5 and "layer_shapes" not in state["model_config"]:  # the format of a structurally pruned model
        state["model_config"]["layer_shapes"] = layer_shapes(build_model(state["model_config"]))
    if roll < 0.75:
        state["model_config"] = _edit_value(state["model_config"], rng)
        what = "model_config edited"
    elif roll < 0.9:
        key = rng.choice(sorted(state["state_dict"]))
        if rng.random() < 0.5:
            del state["state_dict"][key]
        else:
            state["state_dict"][key] = torch.zeros(rng.choice([(3,), (1, 2, 3), (0,)]))
        what = f"state_dict[{key}] edited"
    else:
        state["preprocessing"] = _edit_value(state["preprocessing"], rng)
        what = "preprocessing edited"
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getvalue())
    return f"{path.name} {what}"


def _run_cli(capsys, *argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and not line.startswith("fexprune: warning")]
    return code, lines


def _opens_or_one_line(capsys, what: str, *argv) -> None:
    code, lines = _run_cli(capsys, *argv)
    assert code in (0, 2), (what, argv[0], code, lines)
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith(f"fexprune {argv[0]}: error: "), (what, argv[0], lines)


@pytest.mark.parametrize("seed", range(CASES))
def test_an_edited_run_folder_opens_or_is_one_line(seed, folders, tmp_path, capsys, monkeypatch):
    train_dir, prune_dir, frame, cache = folders
    monkeypatch.setenv("FEXPRUNE_CACHE", str(cache))
    rng = random.Random(seed)
    source = rng.choice([train_dir, train_dir, prune_dir])
    run = Path(shutil.copytree(source, tmp_path / source.name))
    name = rng.choice(["config.json", "results.json", "model.pt"] + (["split.json"] * 2 if source == train_dir else []))
    what = (_edit_checkpoint if name == "model.pt" else _edit_json)(run / name, rng)

    _opens_or_one_line(capsys, what, "compare", run)
    _opens_or_one_line(capsys, what, "predict", "--run", run, frame, "--no-face-detect", "--quiet", "--out", tmp_path / "p.csv")
    if source == train_dir:
        try:
            load_run(run)  # what prune and prune-curve read first
        except InputError as error:
            assert "\n" not in str(error)
        if seed % 15 == 0:  # the whole command, now and then (seconds each)
            _opens_or_one_line(capsys, what, "prune", "--run", run, "--out", tmp_path / "pruned", "--sample-size", "4",
                               "--quiet", "--no-tensorboard")
