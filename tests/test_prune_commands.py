"""`fexprune prune` (the paper's procedure) and `fexprune prune-curve` (accuracy against cost): each refuses
the other's options in one line, and `prune --curve ...`, the curve's older spelling, builds the same
CurveConfig as prune-curve and says so. Parsing only: the runs are in test_prune_curve*.py."""

from __future__ import annotations

import argparse

import pytest

from fexprune.cli import build_parser, main
from fexprune.commands import prune_curve
from fexprune.commands.prune_curve import curve_config

# the same curves, spelled both ways (the first is the equivalence test's)
SPELLINGS = [
    (["prune", "--run", "R", "--curve", "0.3,0.6", "--criterion", "l2,random", "--curve-finetune", "2", "--scratch-epochs", "2",
      "--sensitivity", "none", "--seed", "8", "--out", "o", "--quiet"],
     ["prune-curve", "--run", "R", "--curve", "0.3,0.6", "--criterion", "l2,random", "--finetune", "2", "--scratch-epochs", "2",
      "--sensitivity", "none", "--seed", "8", "--out", "o", "--quiet"]),
    (["prune", "--runs", "A", "B", "--curve=0.3,0.31", "--criterion", "all", "--curve-lr", "0.01", "--curve-distill", "0",
      "--curve-no-augment", "--layers", "a,b", "--global-pruning", "--steps", "2", "--round-to", "4", "--merge",
      "--batch-size", "8", "--sample-size", "20", "--device", "cpu", "--no-progress"],
     ["prune-curve", "--run", "A", "B", "--curve=0.3,0.31", "--criterion", "all", "--lr", "0.01", "--distill", "0",
      "--no-augment", "--layers", "a,b", "--global-pruning", "--steps", "2", "--round-to", "4", "--merge",
      "--batch-size", "8", "--sample-size", "20", "--device", "cpu", "--quiet"]),
]


def parsed(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv).parse_args(argv)


def option_strings(command: str, argv: list[str] | None = None) -> tuple[set[str], set[str]]:
    """A command's (offered, refused) options; refused ones are hidden from --help."""
    parser = build_parser(argv or [command])._subparsers._group_actions[0].choices[command]
    actions = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    refused = {o for a in actions if a.help == argparse.SUPPRESS for o in a.option_strings}
    return {o for a in actions for o in a.option_strings} - refused, refused


@pytest.mark.parametrize("old, new", SPELLINGS)
def test_prune_curve_and_its_older_spelling_build_the_same_config(old, new):
    assert curve_config(parsed(old)) == curve_config(parsed(new))


def test_the_older_spelling_says_which_command_it_is_and_runs_it(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(prune_curve, "run", lambda args: ran.append(curve_config(args)) or 0)
    old, new = SPELLINGS[0]
    assert main(old) == 0 and ran == [curve_config(parsed(new))]
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("fexprune: `prune --curve` is `fexprune prune-curve`")
    assert "--curve-finetune -> --finetune" in said[0] and "--no-progress -> --quiet" in said[0]
    assert main(new) == 0 and capsys.readouterr().err == ""  # the command itself says nothing of the kind


@pytest.mark.parametrize("argv, line", [
    (["prune-curve", "--run", "R", "--curve", "0.5", "--remove"],
     "fexprune prune-curve: error: --remove belongs to the paper's procedure, fexprune prune; not to fexprune prune-curve"),
    (["prune-curve", "--run", "R", "--curve", "0.5", "--max-loss-increase", "0.1"],  # its default, given: refused all the same
     "fexprune prune-curve: error: --max-loss-increase belongs to the paper's procedure, fexprune prune; not to fexprune prune-curve"),
    (["prune", "--run", "R", "--curve", "0.5", "--finetune", "2"],
     "fexprune prune: error: --finetune belongs to the paper's procedure, not to --curve (its fine-tuning is --curve-finetune)"),
    (["prune", "--run", "R", "--steps", "1"],
     "fexprune prune: error: --steps is an option of the pruning curve, fexprune prune-curve; fexprune prune is the paper's procedure"),
    (["prune", "--run", "R", "--curve-finetune", "10"],
     "fexprune prune: error: --curve-finetune is an option of the pruning curve, fexprune prune-curve; fexprune prune is the paper's procedure"),
    (["prune", "--run", "R", "--no-progress"], "fexprune prune: error: --no-progress: fexprune prune's progress bar is turned off with --quiet"),
])
def test_an_option_of_the_other_procedure_is_one_line_and_exit_2(argv, line, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"{line} (see {line.split(':')[0]} --help)"]


def test_every_option_of_one_command_is_offered_or_refused_by_the_other():
    """No option of either is met by the other with argparse's bare "unrecognized arguments"."""
    paper, paper_refused = option_strings("prune")
    curve, curve_refused = option_strings("prune-curve")
    old, old_refused = option_strings("prune", ["prune", "--curve", "0.5"])
    assert curve - {"--curve"} <= paper | paper_refused  # --curve itself turns prune into the curve
    assert paper <= curve | curve_refused and paper <= old | old_refused
    assert {old_name for old_name in prune_curve.OLD_NAMES.values()} <= old
    assert {"--run", "--runs"} <= old


def test_the_curve_offers_every_importance():
    from fexprune.pruning.importance import IMPORTANCES

    assert set(prune_curve.CRITERIA) == set(IMPORTANCES)


def test_the_apis_keywords_are_prune_curves_options():
    from fexprune.api import _parse
    from fexprune.errors import InputError

    keywords = {"criterion": ("l2", "random"), "finetune": 2, "scratch_epochs": 2, "sensitivity": "none", "seed": 8, "quiet": True}
    args = _parse("prune-curve", {"run": ["R"], "curve": (0.3, 0.6)}, keywords)
    assert curve_config(args) == curve_config(parsed(SPELLINGS[0][1]))
    with pytest.raises(InputError, match="no option curve_finetune="):
        _parse("prune-curve", {"run": ["R"], "curve": (0.3,)}, {"curve_finetune": 2})
