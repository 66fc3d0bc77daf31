"""`fexprune compare`: argument parsing for fexprune.report.compare."""

from __future__ import annotations

import argparse


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="tabulate finished runs: mean and spread over seeds of each configuration",
        description="Reopen finished train, baseline and sweep runs and compare them: runs whose settings differ "
        "only in the seed form one row, with the mean and standard deviation of their test accuracy and macro-F1. "
        "Each row names its first run and its test-set size (n); the settings that differ between rows follow "
        "as far as 120 columns allow, all of them in --out. Prune runs get a row per criterion, pic runs one each.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders to search for them (recursively)")
    parser.add_argument("--out", metavar="FILE", help="also write the table, every column, to FILE: CSV for a .csv name, else "
                                                       "Markdown (default: the console only, 120 characters a line)")
    parser.add_argument("--overwrite", action="store_true", help="write over an existing --out file (never a run's own files)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fexprune.outputs import Outputs
    from fexprune.report.compare import collect, group_runs, render_csv, render_markdown, render_text

    outputs = Outputs(args.overwrite)  # a run's files are refused by the plan itself
    if args.out:
        outputs.plan(args.out, "--out")
    found = collect(args.runs)
    groups = group_runs(found.records)
    print(render_text(groups, found), end="")
    others = f", {len(found.prune_rows)} prune criteria, {len(found.pic_rows)} pic runs" if found.prune_rows or found.pic_rows else ""
    print(f"{len(found.records)} runs in {len(groups)} configurations{others}")
    if args.out:
        text = render_csv(groups) if Path(args.out).suffix.lower() == ".csv" else render_markdown(groups, found)
        outputs.write_bytes(args.out, text.encode())
        print(f"wrote {args.out}")
    return 0
