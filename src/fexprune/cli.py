"""`fexprune` command line: parses arguments and calls the library; nothing else lives here.

Each command is a module in `fexprune.commands` with `register(subparsers)`; the module sets
`func(args) -> int` on its parser. `InputError` (and an OSError such as a full disk) becomes one
line on stderr and exit code 2; Ctrl-C one line and exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fexprune import __version__
from fexprune.errors import InputError

COMMANDS = ["data", "train", "prune", "pic", "features", "sweep", "reproduce", "predict", "export", "baseline", "compare"]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: a command may offer options that depend on others given (train's --recipe)."""
    parser = argparse.ArgumentParser(
        prog="fexprune",
        description="Facial expression CNNs on SFEW and hidden-unit pruning.",
    )
    parser.add_argument("--version", action="version", version=f"fexprune {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fexprune.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"fexprune.commands.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers, argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"fexprune {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, a folder that cannot be written: the machine, not the code
        where = f"{error.filename}: " if error.filename else ""
        print(f"fexprune {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        detail = f" ({error})" if str(error) else ""  # train says which checkpoint it wrote
        print(f"fexprune {args.command}: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
