"""`fexprune sweep`: argument parsing for fexprune.experiments.sweep."""

from __future__ import annotations

import argparse

from fexprune.commands.common import (
    add_backend_arguments,
    add_device_arguments,
    add_image_data_arguments,
    add_tracking_arguments,
    channels_pair,
    positive_float,
    positive_int,
    seed_number,
    tracking_options,
)


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train the CNN for several channel combinations and seeds, in parallel",
        description=(
            "The paper's channel sweep: every (conv1, conv2) combination trained --repeats times (repeat r "
            "uses seed --seed + r), in parallel on this machine or as Ray tasks, aggregated into the "
            "paper's table (mean and sd) beside the paper's numbers."
        ),
    )
    parser.add_argument("--channels", type=channels_pair, nargs="+", default=None, metavar="C1,C2",
                        help="channel combinations (default: the paper's 16,32 12,24 20,40 6,12)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="runs per combination")
    parser.add_argument("--epochs", type=positive_int, default=700, help="training epochs of every trial (the paper's 700)")
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate (default 3e-5, the paper's curve)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: full batch)")
    add_image_data_arguments(parser)
    parser.add_argument("--seed", type=seed_number, default=0, help="base seed; repeat r uses seed + r")
    add_backend_arguments(parser)
    parser.add_argument("--out", help="sweep folder (default: a new folder under ./runs)")
    parser.add_argument("--resume", metavar="SWEEP_DIR", help="finish an interrupted sweep; finished trials are kept (default: a new sweep)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(parser)
    add_device_arguments(parser, deterministic=False)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0,
                        help="with --backend ray: the fraction of a GPU each trial asks Ray for (0.25: four trials per GPU)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    from fexprune.experiments.sweep import PAPER_GRID, SweepConfig, run_sweep
    from fexprune.recipes.paper import DEFAULT_LR
    from fexprune.report.sweep import sweep_table

    config = SweepConfig(
        channels=list(args.channels or PAPER_GRID),
        repeats=args.repeats,
        epochs=args.epochs,
        lr=args.lr if args.lr is not None else DEFAULT_LR,
        batch_size=args.batch_size,
        data=args.data,
        test_fraction=args.test_fraction,
        split=args.split,
        seed=args.seed,
        workers=args.workers,
        backend=args.backend,
        device=args.device,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address,
    )
    result = run_sweep(config, out=args.out, resume=args.resume, progress=not args.quiet, tracking=tracking)
    table = sweep_table(result.rows)
    labels = [column.label for column in table.columns]
    cells = table.cells()
    widths = [max(len(label), *(len(row[i]) for row in cells)) for i, label in enumerate(labels)]
    print("  ".join(label.rjust(width) for label, width in zip(labels, widths)))
    for row in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
    print(f"{len(result.trials)} trials, {result.seconds:.0f} s; report: {result.run_dir / 'report.html'}")
    return 0
