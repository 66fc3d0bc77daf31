"""`fexprune features`: LPQ + PHOG descriptors, PCA to 5 each, as a table shaped like SFEW.xlsx."""

from __future__ import annotations

import argparse
from pathlib import Path

from fexprune.data.descriptor_settings import DescriptorSettings


def register(subparsers: argparse._SubParsersAction, argv: list[str] | None = None) -> None:
    defaults = DescriptorSettings()
    parser = subparsers.add_parser("features", help="compute the LPQ+PHOG feature table from images",
                                   description=__doc__)
    parser.add_argument("--data", metavar="DIR", help="image data set (default: the built-in synthetic set)")
    parser.add_argument("--out", default="features.csv", help="CSV to write")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=list(defaults.image_size),
                        help="resize images to W x H before describing them")
    parser.add_argument("--lpq-window", type=int, default=defaults.lpq_window,
                        help="side of the LPQ window in pixels (odd, at least 3)")
    parser.add_argument("--phog-bins", type=int, default=defaults.phog_bins,
                        help="orientation bins of each PHOG histogram")
    parser.add_argument("--phog-levels", type=int, default=defaults.phog_levels,
                        help="PHOG pyramid depth L: histograms of the whole image (level 0) and of its 2^l x 2^l cells up to level L")
    parser.add_argument("--overwrite", action="store_true", help="write over an existing --out file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.data.descriptors import feature_table_from_data, table_rows
    from fexprune.errors import InputError
    from fexprune.outputs import Outputs
    from fexprune.runs import rows_csv_bytes

    if args.size[0] < 16 or args.size[1] < 16 or args.lpq_window < 3 or args.lpq_window % 2 == 0:
        raise InputError("--size must be at least 16x16 and --lpq-window an odd number >= 3")
    if args.phog_bins < 1 or args.phog_levels < 0:
        raise InputError("--phog-bins must be >= 1 and --phog-levels >= 0")
    settings = DescriptorSettings(lpq_window=args.lpq_window, phog_bins=args.phog_bins,
                                  phog_levels=args.phog_levels, image_size=(args.size[0], args.size[1]))
    out = Path(args.out)
    if out.is_dir():
        raise InputError("--out is a folder; give a .csv file name", out)
    outputs = Outputs(args.overwrite, inputs=[args.data])
    outputs.plan(out, "--out")
    table = feature_table_from_data(args.data, settings, progress=not args.quiet)
    outputs.write_bytes(out, rows_csv_bytes(table_rows(table)))
    print(f"features: {len(table.labels)} images -> {out} (name, label, 5 LPQ, 5 PHOG)")
    return 0
