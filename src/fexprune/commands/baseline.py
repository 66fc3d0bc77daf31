"""`fexprune baseline`: argument parsing for fexprune.experiments.baseline (HOG + RBF-SVM)."""

from __future__ import annotations

import argparse

from fexprune.commands.common import (
    add_face_arguments,
    add_image_data_arguments,
    add_tracking_arguments,
    face_settings,
    positive_int,
    seed_number,
    tracking_options,
)

# HOG cells compare like with like only where faces are aligned: on the real movie split, +3.5 points
BASELINE_FACES = {"eye_align": True}


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="HOG + RBF-SVM on the same images and splits as train",
        description="The classical baseline: an RBF-SVM on HOG descriptors of (face-cropped) 90x72 images.",
    )
    add_image_data_arguments(parser)
    add_face_arguments(parser, BASELINE_FACES)
    parser.add_argument("--cv", type=positive_int, default=None, metavar="K", help="K-fold cross-validation (default: one split, no cross-validation)")
    parser.add_argument("--seed", type=seed_number, default=0, help="the split's seed")
    parser.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto",
                        help="which images of a data set that has both frames and aligned faces")
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    from fexprune.experiments.baseline import BaselineConfig, run_baseline

    config = BaselineConfig(data=args.data, split=args.split, test_fraction=args.test_fraction, cv=args.cv, seed=args.seed,
                         variant=args.variant, **face_settings(args, BASELINE_FACES))
    run_dir, results = run_baseline(config, out=args.out, progress=not args.quiet, tracking=tracking)
    print(f"HOG + SVM test accuracy {100 * results['test_accuracy']:.2f}% ({results['protocol']}"
          f"{', face crops' if args.face_crop else ''})")
    print(f"run folder: {run_dir}")
    return 0
