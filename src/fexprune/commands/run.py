"""`fexprune run`: run again what a run folder's spec (or a spec file) states, on other seeds if asked."""

from __future__ import annotations

import argparse

from fexprune.commands.common import add_tracking_arguments, seed_number


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run again what a run folder's spec (or a spec file) states, e.g. on more seeds",
        description="Run what a spec states: a run folder's spec, or a JSON file holding one (fexprune.spec), "
                    "edited or not. Each --seed gives a run folder of its own, whatever kind of run the spec is; "
                    "fexprune compare then groups them by their spec minus the seed.",
    )
    parser.add_argument("spec", metavar="RUN_OR_SPEC", help="a run folder, or a JSON file holding a spec")
    parser.add_argument("--seed", type=seed_number, nargs="+", default=None, metavar="N",
                        help="run once per seed given, each in its own run folder (default: the spec's seed, once)")
    parser.add_argument("--out-dir", default="runs", metavar="DIR",
                        help="the folder the new run folders are made in (default: ./runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tracking_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.api import run as run_spec

    for seed in args.seed or [None]:  # each call checks the MLflow URI before its run starts
        done = run_spec(args.spec, out=args.out_dir, seed=seed, progress=not args.quiet,
                        tensorboard=args.tensorboard, mlflow=args.mlflow)
        accuracy = done.results.get("test_accuracy")
        shown = f", test accuracy {100 * accuracy:.2f}%" if isinstance(accuracy, (int, float)) else ""
        print(f"{done.kind} run, seed {done.spec.get('seed')}{shown}: {done.path}")
    return 0
