"""Every option of every command says in `--help` what it does and its default; argument mistakes are one line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fexprune
from fexprune.cli import COMMANDS, build_parser, main


def commands(parser: argparse.ArgumentParser, name: str = "fexprune"):
    """(name, parser) for every command below `parser`, nested ones (`fexprune data faces`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub_parser in action.choices.items():
                yield f"{name} {sub_name}", sub_parser
                yield from commands(sub_parser, f"{name} {sub_name}")


def shown_default(default) -> str:
    return " ".join(str(v) for v in default) if isinstance(default, (list, tuple)) else str(default)


def help_problems(name: str, parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    required_choice = {id(a) for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        option = "/".join(action.option_strings) or action.dest
        if not (action.help or "").strip():
            problems.append(f"{name} {option}: no help")
            continue
        rendered = parser._get_formatter()._expand_help(action)
        if action.option_strings and not action.required and id(action) not in required_choice and action.help != argparse.SUPPRESS \
                and "default" not in rendered:  # an on/off flag, or a default of None told in words
            problems.append(f"{name} {option}: help does not say what happens without it: {rendered!r}")
        flag = action.nargs == 0  # store_true / store_false: on or off, nothing to show
        if action.default is None or action.default is argparse.SUPPRESS or flag:
            continue
        if shown_default(action.default) not in rendered:
            problems.append(f"{name} {option}: help does not show the default {shown_default(action.default)!r}: {rendered!r}")
    return problems


def test_every_command_is_walked():
    names = {name for name, _ in commands(build_parser())}
    assert {"fexprune train", "fexprune prune", "fexprune pic", "fexprune data faces", "fexprune compare"} <= names


@pytest.mark.parametrize("recipe", ["paper", "best", "transfer", "probe"])
def test_every_option_has_help_that_shows_its_default(recipe):
    problems = [p for name, parser in commands(build_parser(["train", "--recipe", recipe])) for p in help_problems(name, parser)]
    assert not problems, "\n".join(problems)


def test_flags_and_options_without_a_value_say_their_default():
    train = " ".join(dict(commands(build_parser()))["fexprune train"].format_help().split())
    assert "detect the face and crop to it before resizing (default: off)" in train
    assert "(default: one split, no cross-validation)" in train
    prune = " ".join(dict(commands(build_parser()))["fexprune prune"].format_help().split())
    assert "without the pruned channels (default: off)" in prune
    curve = " ".join(dict(commands(build_parser()))["fexprune prune-curve"].format_help().split())
    assert "(default: the same ratio per layer)" in curve


HEAVY = ("torch", "pandas", "matplotlib", "cv2", "scipy", "sklearn")


def test_help_loads_no_heavy_library():
    """`--help` of every command, in a fresh interpreter: none of the libraries that take seconds to import."""
    script = (
        "import sys\n"
        "from fexprune.cli import main\n"
        "for argv in sys.argv[1:]:\n"
        "    try:\n"
        "        main(argv.split() + ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    argvs = ["", "train", "train --recipe best", "train --recipe transfer", "train --recipe probe",
             *(name for name in COMMANDS if name not in ("train", "data")), "data", "data faces", "data info", "data synth"]
    done = subprocess.run([sys.executable, "-c", script, *argvs], capture_output=True, text=True, env=_with_source(), check=True)
    assert done.stdout.splitlines()[-1] == "LOADED []", done.stdout[-300:]
    for argv in ([], ["train"]):  # as a user types it
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "fexprune", *argv, "--help"],
                              capture_output=True, text=True, env=_with_source(), check=True)
        loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert "usage: fexprune" in done.stdout and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def _with_source() -> dict:
    """The environment with this checkout's source first on the path, as the tests import it."""
    source = str(Path(fexprune.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH", "")]))}


def test_frame_detector_names_match_the_detectors():
    from fexprune.faces.detectors import FRAME_DETECTORS
    from fexprune.faces.steps import FRAME_DETECTOR_NAMES

    assert tuple(FRAME_DETECTORS) == FRAME_DETECTOR_NAMES


def test_an_error_of_a_nested_command_names_it_whole(tmp_path, capsys):
    assert main(["data", "faces", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fexprune data faces: error: ") and len(error.splitlines()) == 1


def test_rendered_help_names_the_default():
    parser = dict(commands(build_parser()))["fexprune prune"]
    text = " ".join(parser.format_help().split())  # lines wrapped where the terminal ends
    assert "(default: 0.1)" in text and "(default: l2)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_an_argument_error_is_one_line_naming_the_command_and_its_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--run", "runs/x", "--onnx", "m.onnx", "--opset", "0"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.splitlines() == [
        "fexprune export: error: argument --opset: must be at least 1: 0 (see fexprune export --help)"]


def test_unknown_arguments_are_reported_by_the_command_they_were_given_to(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "faces", "--no-such-option"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "usage:" not in error
    assert error.splitlines() == [
        "fexprune data faces: error: unrecognized arguments: --no-such-option (see fexprune data faces --help)"]


def test_a_missing_required_argument_and_an_unknown_command(capsys):
    with pytest.raises(SystemExit):
        main(["prune"])
    assert capsys.readouterr().err.splitlines() == [
        "fexprune prune: error: the following arguments are required: --run (see fexprune prune --help)"]
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(error.splitlines()) == 1
    assert error.startswith("fexprune: error: ") and error.rstrip().endswith("(see fexprune --help)")


def test_a_training_option_the_recipe_has_no_use_for_is_refused(capsys):
    """The probe is one L-BFGS fit: --epochs would be ignored without a word, so it is refused."""
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--recipe", "probe", "--face-crop", "--epochs", "5"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "fexprune train: error: --epochs is not used by --recipe probe (see fexprune train --help)"]
    shown = dict(commands(build_parser(["train", "--recipe", "probe"])))["fexprune train"].format_help()
    assert "--lr" not in shown and "--margin-tta" in shown


def test_a_command_whose_module_cannot_be_imported_is_an_error_naming_it(monkeypatch):
    import fexprune.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "no-such-command"])
    with pytest.raises(ImportError, match=r"the command no-such-command \(fexprune.commands.no_such_command\) cannot be loaded"):
        build_parser()
