"""`fexprune prune-curve`: argument parsing for fexprune.experiments.prune_curve (accuracy against cost).

`fexprune prune --curve ...` is kept as another spelling of this command: the same options under their
older names (`OLD_NAMES`), which says so on stderr and runs this command."""

from __future__ import annotations

import argparse
import sys

from fexprune.argtypes import non_negative_int, positive_float, positive_int, seed_number, weight
from fexprune.commands.common import add_tracking_arguments, refuse, tracking_options
from fexprune.errors import InputError

CRITERIA = ("l2", "l1", "random", "taylor", "bn_scale", "distinctiveness", "fpgm")  # pruning.importance.IMPORTANCES

# this command's option -> its name under `fexprune prune --curve`
OLD_NAMES = {"--finetune": "--curve-finetune", "--lr": "--curve-lr", "--distill": "--curve-distill",
             "--no-augment": "--curve-no-augment", "--quiet": "--no-progress"}

PAPER_OPTIONS = ("--max-loss-increase", "--finetune-lr", "--remove")  # fexprune prune's own, the curve's none


def fractions(value: str) -> tuple[float, ...]:
    if value.strip().lower() == "none":
        return ()
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {value!r}") from None


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "prune-curve",
        help="accuracy against MACs, parameters and latency of any recipe's network pruned structurally, mean and sd over seeds",
        description="Prune the trained network of each run structurally to each fraction of MACs removed, fine-tune it "
                    "and plot test accuracy against MACs, parameters and latency, with random and from-scratch baselines "
                    "(any recipe: paper, best, transfer). Several runs, the seeds of one configuration, give every point "
                    "as mean and sd over them.",
    )
    parser.add_argument("--run", nargs="+", required=True, metavar="RUN",
                        help="finished `fexprune train` runs, the seeds of one configuration (or folders holding them): "
                             "the same curve on each, every point reported as mean and sd over the runs")
    add_curve_arguments(parser)
    refuse(parser, PAPER_OPTIONS, "{option} belongs to the paper's procedure, fexprune prune; not to fexprune prune-curve")
    parser.set_defaults(func=run)


def register_old_spelling(subparsers) -> None:
    """`fexprune prune --curve ...`: this command under prune's name and the options' older names."""
    parser = subparsers.add_parser("prune", help="prune --curve: see prune-curve",
                                   description="`fexprune prune --curve` is `fexprune prune-curve` under older option names; "
                                               "`fexprune prune-curve --help` describes it.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", nargs=1, dest="run", metavar="TRAIN_RUN_DIR", help="a finished `fexprune train` run")
    which.add_argument("--runs", nargs="+", dest="run", metavar="RUN",
                       help="several train runs, the seeds of one configuration (or folders holding them)")
    add_curve_arguments(parser, names={**OLD_NAMES, "--quiet": ["--no-progress", "--quiet"]})
    refuse(parser, [*PAPER_OPTIONS, "--finetune"],
           "{option} belongs to the paper's procedure, not to --curve (its fine-tuning is --curve-finetune)")
    parser.set_defaults(func=run_old_spelling)


def add_curve_arguments(parser: argparse.ArgumentParser, names: dict | None = None) -> None:
    """Every option of the curve but the runs; `names` respells some (the option -> its name or names there)."""
    names = names or {}

    def named(option: str) -> list[str]:
        given = names.get(option, option)
        return [given] if isinstance(given, str) else list(given)

    parser.add_argument("--curve", type=fractions, required=True, metavar="R1,R2,...",
                        help="fractions of MACs REMOVED, one point each (e.g. 0.1,0.2,...,0.8)")
    parser.add_argument("--criterion", type=comma_list, default="l2", metavar="C1,C2,...",
                        help=f"channel importances, a comma list of {', '.join(CRITERIA)} (or all); the random baseline runs always")
    parser.add_argument("--layers", type=comma_list, default=None, metavar="L1,L2,...",
                        help="conv module paths to prune, comma-separated (default: all; the classifier never)")
    parser.add_argument("--global-pruning", action="store_true", help="one channel ranking over all layers (default: the same ratio per layer)")
    parser.add_argument("--steps", type=positive_int, default=1, help="iterative pruning steps to each point, fine-tuning after each")
    parser.add_argument("--round-to", type=positive_int, default=None, help="keep channel counts a multiple of this (default: any)")
    parser.add_argument("--merge", action="store_true",
                        help="fold each removed channel into its most correlated kept channel (Gedeon's merge, least squares over "
                             "--sample-size training images) before cutting it, for every criterion and the random baseline")
    parser.add_argument(*named("--finetune"), dest="finetune", type=non_negative_int, default=10, metavar="EPOCHS",
                        help="fine-tuning epochs at each point (AdamW, the rate decayed to 0 on a cosine, the run's recipe's augmentation)")
    parser.add_argument(*named("--lr"), dest="lr", type=positive_float, default=1e-3,
                        help="fine-tuning learning rate at the start of the cosine")
    parser.add_argument(*named("--distill"), dest="distill", type=weight, default=0.7, metavar="W",
                        help="weight of the unpruned network's soft targets (distillation, temperature 4) in the loss of the "
                             "fine-tuning and of the from-scratch baseline alike; 0: labels only")
    parser.add_argument(*named("--no-augment"), dest="no_augment", action="store_true",
                        help="fine-tune and train from scratch without the recipe's augmentation")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch of fine-tuning and scratch training")
    parser.add_argument("--scratch-epochs", type=non_negative_int, default=None,
                        help="epochs of the from-scratch baseline (default: the run's epochs + the fine-tuning's); 0: no scratch baseline")
    parser.add_argument("--sensitivity", type=fractions, default=(0.25, 0.5, 0.75), metavar="F1,F2,...",
                        help="per-layer sensitivity: fractions of one layer's channels removed (none: skip)")
    parser.add_argument("--sample-size", type=positive_int, default=128,
                        help="training images for distinctiveness, the merge's fit and Taylor's gradient batch")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="seed of the random criterion, the samples and the fine-tuning (run i: this + i)")
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    add_tracking_arguments(parser)
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where the networks are fine-tuned and evaluated: cpu, auto, cuda, cuda:N or mps (latency is measured on the CPU)")
    parser.add_argument(*named("--quiet"), dest="quiet", action="store_true", help="no progress bar on stderr")


def refuse_frozen_trunk(run: str) -> None:
    """A run whose network kept a pretrained trunk frozen (the probe's, as the network itself says): a curve
    prunes convolutional channels, none of which the run trained, so it would prune nothing and report no change."""
    from pathlib import Path

    from fexprune.models.checkpoint import load_model

    model_file = Path(run) / "model.pt"
    if not model_file.is_file():
        return  # the curve names what the folder lacks
    reason = getattr(load_model(model_file)[0], "frozen_trunk", None)
    if reason:
        raise InputError(f"a pruning curve prunes convolutional channels, and this run's convolutional trunk is {reason}; "
                         "prune a run whose network learnt its convolutions (--recipe paper, best or transfer)", run)


def run_old_spelling(args: argparse.Namespace) -> int:
    renamed = ", ".join(f"{old} -> {new}" for new, old in OLD_NAMES.items())
    print(f"fexprune: `prune --curve` is `fexprune prune-curve` (same options, renamed: --runs -> --run, {renamed}); "
          "running that", file=sys.stderr)
    return run(args)


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    from fexprune.experiments.prune_curve import run_prune_curve
    from fexprune.report.markdown import render_table
    from fexprune.report.prune_curve import curve_table

    config = curve_config(args)
    run_dir, results = run_prune_curve(config, out=args.out, progress=not args.quiet, tracking=tracking)
    print(render_table(curve_table(results)), end="")
    for warning in results["warnings"]:
        print(f"warning: {warning}")
    print(f"run folder: {run_dir}")
    return 0


def curve_config(args: argparse.Namespace):
    """The CurveConfig the arguments of `fexprune prune-curve` ask for."""
    from fexprune.experiments.prune_curve import CurveConfig
    from fexprune.pruning.importance import IMPORTANCES

    train_runs = tuple(args.run)
    for train_run in train_runs:
        refuse_frozen_trunk(train_run)
    criteria = IMPORTANCES if args.criterion == ("all",) else args.criterion
    layers = "all" if args.layers in (None, ("all",)) else args.layers
    return CurveConfig(
        run=train_runs[0] if len(train_runs) == 1 else "", runs=train_runs if len(train_runs) > 1 else (),
        curve=args.curve, criteria=tuple(criteria), layers=layers, global_pruning=args.global_pruning, steps=args.steps,
        round_to=args.round_to, merge=args.merge, finetune_epochs=args.finetune, finetune_lr=args.lr, distill=args.distill,
        augment=not args.no_augment, batch_size=args.batch_size, scratch=args.scratch_epochs != 0,
        scratch_epochs=args.scratch_epochs or None, sensitivity=args.sensitivity, sample_size=args.sample_size,
        seed=args.seed, device=args.device,
    )
