"""`fexprune prune`: argument parsing for fexprune.experiments.prune."""

from __future__ import annotations

import argparse

from fexprune.argtypes import non_negative_float, non_negative_int, positive_float, positive_int, seed_number
from fexprune.commands.common import add_tracking_arguments, apply_tracking
from fexprune.commands.prune_curve import add_curve_arguments, run_curve
from fexprune.errors import InputError

CRITERION_CHOICES = ["l2", "l1", "distinctiveness", "random", "all"]
LAYER_CHOICES = ["conv1", "conv2", "all"]


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune conv kernels of a trained run (the paper's importance pruning, and other criteria)",
        description="Repeatedly prune the least important kernel until the train loss would rise by more "
        "than --max-loss-increase; optionally fine-tune after each step and remove the pruned channels.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="TRAIN_RUN_DIR", help="a finished `fexprune train` run")
    which.add_argument("--runs", nargs="+", metavar="RUN", default=None,
                       help="with --curve: several train runs, the seeds of one configuration (or folders holding them): "
                            "the same curve on each, every point reported as mean and sd over the runs")
    parser.add_argument("--criterion", type=comma_list, default="l2", help="kernel importance: l2 is the paper's; all runs each on the same trained model "
                        "(with --curve: a comma list of l2, l1, random, taylor, bn_scale, distinctiveness, fpgm)")
    parser.add_argument("--layers", type=comma_list, default=None, help="layers to prune: conv1 as the paper, or conv2, or both in turn "
                        "(default conv1; with --curve: comma-separated conv module paths, default all)")
    parser.add_argument("--max-loss-increase", type=non_negative_float, default=0.1,
                        help="stop before the step that raises the train loss by more than this over the unpruned network's")
    parser.add_argument("--finetune", type=non_negative_int, default=0, metavar="EPOCHS", help="fine-tuning epochs after each step (pruned kernels stay zero)")
    parser.add_argument("--finetune-lr", type=positive_float, default=1e-3, help="Adam learning rate of the fine-tuning")
    parser.add_argument("--remove", action="store_true", help="also build the smaller model without the pruned channels")
    parser.add_argument("--sample-size", type=positive_int, default=128, help="images for the distinctiveness criterion")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="seed of the random criterion, the distinctiveness sample and the fine-tuning")
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    add_curve_arguments(parser)
    add_tracking_arguments(parser)
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where the network is evaluated and fine-tuned: cpu, auto, cuda, cuda:N or mps (latency is measured there)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    apply_tracking(args)
    if args.curve is not None:
        return run_curve(args)
    config = prune_config(args)
    from fexprune.experiments.prune import run_pruning
    from fexprune.report.markdown import render_table
    from fexprune.report.pruning import criteria_table, model_file_note, prune_warnings

    result = run_pruning(config, out=args.out, progress=not args.quiet)
    print(render_table(criteria_table(result.results)), end="")
    for warning in prune_warnings(result.results):
        print(f"warning: {warning}")
    print(f"model.pt: {model_file_note(result.results)}")
    print(f"run folder: {result.run_dir}")
    return 0


def prune_config(args: argparse.Namespace):
    """The PruneConfig the arguments of the paper's procedure (no --curve) ask for."""
    if args.runs:
        raise InputError("--runs belongs to --curve; the paper's procedure prunes one --run")
    if args.merge:
        raise InputError("--merge belongs to --curve (the paper's procedure removes units without merging them)")
    for option, values, choices in (("--criterion", args.criterion, CRITERION_CHOICES),
                                    ("--layers", args.layers or ("conv1",), LAYER_CHOICES)):
        if len(values) != 1 or values[0] not in choices:
            raise InputError(f"{option}: choose one of {', '.join(choices)} (lists need --curve)")
    criterion, layers = args.criterion[0], (args.layers or ("conv1",))[0]
    from fexprune.experiments.prune import PruneConfig
    from fexprune.pruning.criteria import CRITERIA
    from fexprune.pruning.removal import LAYERS

    return PruneConfig(
        run=args.run,
        criteria=tuple(CRITERIA) if criterion == "all" else (criterion,),
        layers=LAYERS if layers == "all" else (layers,),
        max_loss_increase=args.max_loss_increase,
        finetune_epochs=args.finetune,
        finetune_lr=args.finetune_lr,
        remove=args.remove,
        seed=args.seed,
        device=args.device,
        sample_size=args.sample_size,
    )
