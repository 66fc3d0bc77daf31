"""`fexprune prune`: argument parsing for fexprune.experiments.prune."""

from __future__ import annotations

import argparse

from fexprune.argtypes import non_negative_float, non_negative_int, positive_float, positive_int, seed_number
from fexprune.commands.common import add_tracking_arguments, refuse, tracking_options
from fexprune.commands.prune_curve import OLD_NAMES, comma_list, register_old_spelling
from fexprune.errors import InputError

CRITERION_CHOICES = ["l2", "l1", "distinctiveness", "random", "all"]
LAYER_CHOICES = ["conv1", "conv2", "all"]
# fexprune prune-curve's options that the paper's procedure has no use for, under both their names
CURVE_OPTIONS = ("--runs", "--global-pruning", "--steps", "--round-to", "--merge", "--lr", "--distill", "--no-augment",
                 "--batch-size", "--scratch-epochs", "--sensitivity",
                 *(OLD_NAMES[option] for option in ("--finetune", "--lr", "--distill", "--no-augment")))


def register(subparsers, argv: list[str] | None = None) -> None:
    if asks_for_curve(list(argv or [])):
        register_old_spelling(subparsers)
        return
    parser = subparsers.add_parser(
        "prune",
        help="prune conv kernels of a trained paper CNN (the paper's importance pruning, and other criteria)",
        description="Repeatedly prune the least important kernel until the train loss would rise by more "
        "than --max-loss-increase; optionally fine-tune after each step and remove the pruned channels. "
        "Accuracy against MACs for any recipe: fexprune prune-curve.",
    )
    parser.add_argument("--run", required=True, metavar="TRAIN_RUN_DIR", help="a finished `fexprune train` run")
    parser.add_argument("--criterion", type=comma_list, default="l2", help="kernel importance: l2 is the paper's; all runs each on the same trained model "
                        f"(one of {', '.join(CRITERION_CHOICES)})")
    parser.add_argument("--layers", type=comma_list, default=None, help="layers to prune: conv1 as the paper, or conv2, or both in turn "
                        "(default conv1)")
    parser.add_argument("--max-loss-increase", type=non_negative_float, default=0.1,
                        help="stop before the step that raises the train loss by more than this over the unpruned network's")
    parser.add_argument("--finetune", type=non_negative_int, default=0, metavar="EPOCHS", help="fine-tuning epochs after each step (pruned kernels stay zero)")
    parser.add_argument("--finetune-lr", type=positive_float, default=1e-3, help="Adam learning rate of the fine-tuning")
    parser.add_argument("--remove", action="store_true", help="also build the smaller model without the pruned channels")
    parser.add_argument("--sample-size", type=positive_int, default=128, help="images for the distinctiveness criterion")
    parser.add_argument("--seed", type=seed_number, default=0,
                        help="seed of the random criterion, the distinctiveness sample and the fine-tuning")
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    add_tracking_arguments(parser)
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where the network is evaluated and fine-tuned: cpu, auto, cuda, cuda:N or mps (latency is measured there)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    refuse(parser, CURVE_OPTIONS,
           "{option} is an option of the pruning curve, fexprune prune-curve; fexprune prune is the paper's procedure")
    refuse(parser, ["--no-progress"], "{option}: fexprune prune's progress bar is turned off with --quiet")
    parser.set_defaults(func=run)


def asks_for_curve(argv: list[str]) -> bool:
    """`fexprune prune ... --curve ...`: the curve under its older spelling (before parsing, which depends on it)."""
    words = [word for word in argv if not word.startswith("-")]
    return bool(words) and words[0] == "prune" and any(word == "--curve" or word.startswith("--curve=") for word in argv)


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    config = prune_config(args)
    from fexprune.experiments.prune import run_pruning
    from fexprune.report.markdown import render_table
    from fexprune.report.pruning import criteria_table, model_file_note, prune_warnings

    result = run_pruning(config, out=args.out, progress=not args.quiet, tracking=tracking)
    print(render_table(criteria_table(result.results)), end="")
    for warning in prune_warnings(result.results):
        print(f"warning: {warning}")
    print(f"model.pt: {model_file_note(result.results)}")
    print(f"run folder: {result.run_dir}")
    return 0


def prune_config(args: argparse.Namespace):
    """The PruneConfig the arguments of the paper's procedure ask for."""
    for option, values, choices in (("--criterion", args.criterion, CRITERION_CHOICES),
                                    ("--layers", args.layers or ("conv1",), LAYER_CHOICES)):
        if len(values) != 1 or values[0] not in choices:
            raise InputError(f"{option}: choose one of {', '.join(choices)} "
                             "(several criteria or layers along a curve: fexprune prune-curve)")
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
