"""`fexprune reproduce`: argument parsing for fexprune.experiments.reproduce."""

from __future__ import annotations

import argparse

from fexprune.commands.common import (
    add_backend_arguments,
    add_device_arguments,
    add_image_data_arguments,
    add_tracking_arguments,
    tracking_options,
)


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run every experiment of the paper and write report.html",
        description=(
            "The PIC experiment, the channel sweep, the single training run and importance pruning, into one "
            "run folder with report.html (self-contained) and report.md: every table of the paper beside ours, "
            "every figure. Paper settings by default (hours); --quick finishes in minutes."
        ),
    )
    add_image_data_arguments(parser)
    parser.add_argument("--features", metavar="TABLE", help="feature table for PIC (SFEW.xlsx or CSV; default: "
                        "LPQ+PHOG computed from the images)")
    parser.add_argument("--quick", action="store_true",
                        help="sweep 2 repeats x 10 epochs, single run 15 epochs, mini-batches of 32 at lr 1e-3 (minutes, not hours)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage (the sweep's repeat r uses seed + r)")
    parser.add_argument("--criteria", nargs="+", default=["l2"], metavar="NAME",
                        help="pruning criteria (l2 is the paper's; also l1, distinctiveness, random)")
    add_backend_arguments(parser)
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted reproduce run (default: a new run)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_tracking_arguments(parser)
    add_device_arguments(parser, deterministic=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    from fexprune.experiments.reproduce import ReproduceConfig, run_reproduce

    config = ReproduceConfig(
        data=args.data, features=args.features, quick=args.quick, seed=args.seed,
        test_fraction=args.test_fraction, split=args.split, criteria=tuple(args.criteria),
        workers=args.workers, backend=args.backend, address=args.address, device=args.device,
    )
    result = run_reproduce(config, out=args.out, resume=args.resume, progress=not args.quiet, tracking=tracking)
    timings = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in result.timings.items())
    print(f"report: {result.report_html}")
    print(f"        {result.report_md}")
    print(f"time per stage: {timings}")
    return 0
