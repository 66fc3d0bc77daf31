"""`fexprune data synth|info`: argument parsing for fexprune.data."""

from __future__ import annotations

import argparse
import json

from fexprune.commands.common import positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="generate the synthetic data set or inspect a data set",
                                   description="Generate synthetic SFEW-like data, or summarise a data set.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    synth = actions.add_parser("synth", help="write a synthetic SFEW-like data set (course layout Images/<Class>/)")
    synth.add_argument("--out", required=True, help="folder to write (Images/<Class>/*.png goes inside)")
    synth.add_argument("--per-class", type=positive_int, default=100, help="frames per expression (100)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=run_synth)

    info = actions.add_parser("info", help="layout, counts per class, skipped files and duplicates of a data set")
    info.add_argument("--data", help="data set folder (default: the built-in synthetic data)")
    info.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto")
    info.add_argument("--json", action="store_true", help="print the full summary as JSON")
    info.add_argument("--quiet", action="store_true", help="no progress bar")
    info.set_defaults(func=run_info)


def run_synth(args: argparse.Namespace) -> int:
    from fexprune.data.synth import write_synthetic

    images = write_synthetic(args.out, per_class=args.per_class, seed=args.seed, progress=not args.quiet)
    print(f"wrote {7 * args.per_class} frames to {images}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from fexprune.data.builtin import resolve_data
    from fexprune.data.loading import load_image_set

    image_set = load_image_set(resolve_data(args.data, not args.quiet), variant=args.variant, progress=not args.quiet)
    summary = image_set.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"data:     {summary['root']} (layout: {summary['layout']})")
    print(f"images:   {summary['n_images']} from {summary['n_movies']} movies, {summary['n_clips']} clips")
    if "subsets" in summary:
        print("split:    " + ", ".join(f"{k} {v}" for k, v in summary["subsets"].items()) + " (fixed by the layout)")
    for name, count in summary["counts"].items():
        print(f"  {name:<12} {count:>5}")
    print(f"skipped:  {summary['n_skipped']}")
    for item in summary["skipped"]:
        print(f"  {item['path']}: {item['reason']}")
    print(f"same content under two or more classes: {summary['n_duplicates']}")
    for group in summary["duplicates"]:
        print(f"  {', '.join(group['classes'])}: {', '.join(group['paths'])}")
    return 0
