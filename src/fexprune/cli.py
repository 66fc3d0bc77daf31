"""`fexprune` command line: parses arguments and calls the library; nothing else lives here.

Each command is a module in `fexprune.commands` with `register(subparsers, argv)` (`prune-curve`: module
`prune_curve`); the module sets `func(args) -> int` on its parser. A command in COMMANDS whose module cannot be
imported is an ImportError naming it. Command modules import the library inside `func`, so building the
parser (and `fexprune --help`) does not load torch. `InputError` (and an OSError such as a full disk) becomes one
line on stderr and exit code 2; Ctrl-C one line and exit code 130. A mistake in the arguments is one line
too, with a pointer to `--help` instead of the usage block. Every command's `--help` shows each option's
default.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import re
import signal
import sys

from fexprune import __version__
from fexprune.errors import InputError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default, "(default: X)": an on/off flag's is "off" (not given); a
    default of None is not shown (the help says in words what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return text if "default" in text or text == argparse.SUPPRESS else f"{text} (default: off)"
        if action.default is None or action.nargs == 0:
            return text
        return super()._get_help_string(action)

    def _expand_help(self, action: argparse.Action) -> str:
        if isinstance(action.default, (list, tuple)):  # shown as typed: "16 32", not "[16, 32]"
            action = copy.copy(action)
            action.default = " ".join(str(value) for value in action.default)
        return super()._expand_help(action)


class CommandParser(argparse.ArgumentParser):
    """A parser whose argument errors are one line naming the command, with a pointer to its --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


COMMANDS = ["data", "train", "prune", "prune-curve", "pic", "features", "sweep", "reproduce", "predict", "export", "baseline", "compare",
            "run", "weights"]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: a command may offer options that depend on others given (train's --recipe)."""
    parser = CommandParser(
        prog="fexprune",
        description="Facial expression CNNs on SFEW and hidden-unit pruning.",
    )
    parser.add_argument("--version", action="version", version=f"fexprune {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name in COMMANDS:
        module_name = f"fexprune.commands.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # a broken installation: named, not a command quietly missing from the list
            raise ImportError(f"fexprune: the command {name} ({module_name}) cannot be loaded: {error}") from error
        module.register(subparsers, argv)
    return parser


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)parser that parsed the chosen command, following nested commands (`data faces`)."""
    while parser._subparsers is not None:
        action = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
        chosen = getattr(args, action.dest, None)
        if chosen not in action.choices:
            break
        parser = action.choices[chosen]
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM (kill, a job scheduler's stop) ends a command as Ctrl-C does: one line, exit code 130, and a
    train run's epoch finished and checkpointed first (its own handler takes both signals while it trains)."""
    try:
        signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread (a library caller's worker): leave the signal alone
        pass


def one_line(message: str) -> str:
    """An error message as the one line the CLI promises, whatever a library put in it (a file name with a
    newline, a list of keys)."""
    return re.sub(r"\s*[\r\n]+\s*", " ", message).strip()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, so the line names the command and its --help
        command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    command = command_parser(parser, args).prog  # "fexprune data faces", not "fexprune data"
    stop_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"{command}: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, a folder that cannot be written: the machine, not the code
        where = f"{error.filename}: " if error.filename else ""
        print(f"{command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        detail = f" ({error})" if str(error) else ""  # train says which checkpoint it wrote
        print(f"{command}: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
