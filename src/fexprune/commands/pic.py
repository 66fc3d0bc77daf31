"""`fexprune pic`: the PIC autoencoder and distinctiveness pruning (paper 2.1, 3.1)."""

from __future__ import annotations

import argparse

from fexprune.commands.common import add_tracking_arguments, positive_float, seed_number, tracking_options
from fexprune.experiments.pic_config import MODES, NORMALIZERS, PICConfig


def register(subparsers: argparse._SubParsersAction, argv: list[str] | None = None) -> None:
    defaults = PICConfig()
    parser = subparsers.add_parser("pic", help="PIC autoencoder with distinctiveness pruning (paper 2.1, 3.1)",
                                   description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--features", metavar="TABLE", help="feature table (SFEW.xlsx or CSV: name, label, values) (default: LPQ+PHOG computed from --data)")
    source.add_argument("--data", metavar="DIR", help="image data set: compute LPQ+PHOG first (default: built-in data)")
    parser.add_argument("--normalize", choices=NORMALIZERS, default=defaults.normalize,
                        help="per-column input scaling, fitted on the training rows (default: %(default)s)")
    parser.add_argument("--mode", choices=MODES, default=defaults.mode,
                        help="progressive: merge most similar pair down to --min-units (the paper's table); "
                             "threshold: apply the 15/165 deg and dead-unit rules until none applies")
    parser.add_argument("--hidden", type=int, default=defaults.hidden, help="hidden units to start with (the paper's 11-10-11 network)")
    parser.add_argument("--min-units", type=int, default=defaults.min_units, help="progressive mode stops at this many hidden units")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="full-batch Adam steps for the first training")
    parser.add_argument("--retrain-epochs", type=int, default=defaults.retrain_epochs, help="full-batch Adam steps after each pruning action")
    parser.add_argument("--lr", type=positive_float, default=defaults.learning_rate, help="Adam learning rate")
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction,
                        help="share of the table's rows held out for the test loss (random split)")
    parser.add_argument("--seed", type=seed_number, default=defaults.seed, help="seed of the split and the initial weights")
    parser.add_argument("--no-label-input", action="store_true",
                        help="leave the label out of the inputs (10 instead of the paper's 11 columns)")
    parser.add_argument("--similar-below", type=float, default=defaults.similar_below,
                        help="two hidden units closer than this angle (degrees) are similar: one is merged into the other")
    parser.add_argument("--complementary-above", type=float, default=defaults.complementary_above,
                        help="two hidden units further apart than this angle (degrees) are complementary: both are removed")
    parser.add_argument("--outlier-z", type=positive_float, default=defaults.outlier_z,
                        help="flag a row with a feature more than this many robust sds (median and MAD) from its column's "
                             "median; rows with half their features missing are flagged too")
    parser.add_argument("--drop-outliers", action="store_true",
                        help="leave the flagged rows out of training and testing (default: keep them, as the paper did)")
    parser.add_argument("--out", help="run folder (default: a new folder under runs/)")
    add_tracking_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--device", default=defaults.device, metavar="DEVICE", help="cpu, auto, cuda, cuda:N or mps")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.experiments.pic import run_pic

    tracking = tracking_options(args)
    config = PICConfig(
        features=args.features, data=args.data, normalize=args.normalize, mode=args.mode, hidden=args.hidden,
        min_units=args.min_units, epochs=args.epochs, retrain_epochs=args.retrain_epochs, learning_rate=args.lr,
        test_fraction=args.test_fraction, seed=args.seed, include_label=not args.no_label_input, device=args.device,
        similar_below=args.similar_below, complementary_above=args.complementary_above,
        outlier_z=args.outlier_z, drop_outliers=args.drop_outliers,
    )
    result = run_pic(config, args.out, progress=not args.quiet, tracking=tracking)
    if result.outliers:
        from fexprune.data.outliers import describe

        shown = 10
        print(f"{len(result.outliers)} row(s) of the table flagged as outliers, "
              + ("left out:" if config.drop_outliers else "kept (--drop-outliers leaves them out):"))
        for line in describe(result.outliers[:shown]):
            print(f"  {line}")
        if len(result.outliers) > shown:
            print(f"  and {len(result.outliers) - shown} more (results.json lists them all)")
    last = result.rows[-1]
    print(f"pic ({config.mode}, {config.normalize}): {result.rows[0]['hidden_units']} -> {last['hidden_units']} "
          f"hidden units, train loss {last['train_loss']:.4f}, test loss {last['test_loss']:.4f}, "
          f"min angle {last['min_angle']:.2f} deg, {result.seconds:.1f} s")
    print(f"run folder: {result.run_dir}")
    return 0
