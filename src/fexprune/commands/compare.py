"""`fexprune compare`: argument parsing for fexprune.report.compare."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="tabulate finished runs: mean and spread over seeds of each configuration",
        description="Reopen finished train, baseline and sweep runs and compare them: runs whose settings differ "
        "only in the seed form one row, with the mean and standard deviation of their test accuracy and macro-F1. "
        "Only the settings that differ between rows are shown.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders to search for them (recursively)")
    parser.add_argument("--out", metavar="FILE", help="also write the table as Markdown to FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.report.compare import collect_runs, group_runs, render_markdown, render_text
    from fexprune.runs import atomic_write_bytes

    records = collect_runs(args.runs)
    groups = group_runs(records)
    print(render_text(groups), end="")
    print(f"{len(records)} runs in {len(groups)} configurations")
    if args.out:
        atomic_write_bytes(Path(args.out), render_markdown(groups).encode())
        print(f"wrote {args.out}")
    return 0
