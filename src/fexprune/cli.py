"""`fexprune` command line: parses arguments and calls the library; nothing else lives here.

Each command is a module in `fexprune.commands` with `register(subparsers)`; the module sets
`func(args) -> int` on its parser. `InputError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fexprune import __version__
from fexprune.errors import InputError

COMMANDS = ["data", "train", "prune", "pic", "features", "sweep", "reproduce", "predict", "export", "baseline"]


def build_parser() -> argparse.ArgumentParser:
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
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"fexprune {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fexprune {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
