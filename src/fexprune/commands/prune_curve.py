"""`fexprune prune --curve`: the options of the accuracy-against-cost curve (fexprune.experiments.prune_curve)."""

from __future__ import annotations

import argparse

from fexprune.argtypes import non_negative_int, positive_float, positive_int, weight
from fexprune.errors import InputError


def fractions(value: str) -> tuple[float, ...]:
    if value.strip().lower() == "none":
        return ()
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {value!r}") from None


def add_curve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pruning curve (any recipe: paper, best, transfer)")
    group.add_argument("--curve", type=fractions, default=None, metavar="R1,R2,...",
                       help="prune structurally to each fraction of MACs REMOVED (e.g. 0.1,0.2,...,0.8), fine-tune, and plot "
                            "test accuracy against MACs, parameters and latency, with random and from-scratch baselines (default: off)")
    group.add_argument("--global-pruning", action="store_true", help="one channel ranking over all layers (default: the same ratio per layer)")
    group.add_argument("--steps", type=positive_int, default=1, help="iterative pruning steps to each point, fine-tuning after each")
    group.add_argument("--round-to", type=positive_int, default=None, help="keep channel counts a multiple of this (default: any)")
    group.add_argument("--merge", action="store_true",
                       help="fold each removed channel into its most correlated kept channel (Gedeon's merge, least squares over "
                            "--sample-size training images) before cutting it, for every criterion and the random baseline")
    group.add_argument("--curve-finetune", type=non_negative_int, default=10, metavar="EPOCHS",
                       help="fine-tuning epochs at each point (AdamW, the rate decayed to 0 on a cosine, the run's recipe's augmentation)")
    group.add_argument("--curve-lr", type=positive_float, default=1e-3, help="fine-tuning learning rate at the start of the cosine")
    group.add_argument("--curve-distill", type=weight, default=0.7, metavar="W",
                       help="weight of the unpruned network's soft targets (distillation, temperature 4) in the loss of the fine-tuning "
                            "and of the from-scratch baseline alike; 0: labels only")
    group.add_argument("--curve-no-augment", action="store_true", help="fine-tune and train from scratch without the recipe's augmentation")
    group.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch of fine-tuning and scratch training")
    group.add_argument("--scratch-epochs", type=non_negative_int, default=None,
                       help="epochs of the from-scratch baseline (default: the run's epochs + --curve-finetune); 0: no scratch baseline")
    group.add_argument("--sensitivity", type=fractions, default=(0.25, 0.5, 0.75), metavar="F1,F2,...",
                       help="per-layer sensitivity: fractions of one layer's channels removed (none: skip)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def refuse_frozen_trunk(run: str) -> None:
    """A run whose recipe kept a pretrained trunk frozen (the probe's): a curve prunes convolutional
    channels, none of which the run trained, so it would prune nothing and report no change."""
    from fexprune import run_folder
    from fexprune.recipes import RECIPES

    name = (run_folder.read_spec(run).get("recipe") or {}).get("name") if run_folder.has_spec(run) else None
    recipe = RECIPES.get(name) if isinstance(name, str) else None
    if recipe is not None and recipe.frozen_trunk:
        trained = [other for other, kind in RECIPES.items() if not kind.frozen_trunk]
        choices = f"{', '.join(trained[:-1])} or {trained[-1]}" if len(trained) > 1 else "".join(trained)
        raise InputError(f"--curve prunes convolutional channels, and a {recipe.name} run's convolutional trunk is "
                         f"{recipe.frozen_trunk}; prune a {choices} run", run)


def run_curve(args: argparse.Namespace) -> int:
    from fexprune.experiments.prune_curve import run_prune_curve
    from fexprune.report.markdown import render_table
    from fexprune.report.prune_curve import curve_table

    config = curve_config(args)
    run_dir, results = run_prune_curve(config, out=args.out)
    print(render_table(curve_table(results)), end="")
    for warning in results["warnings"]:
        print(f"warning: {warning}")
    print(f"run folder: {run_dir}")
    return 0


def curve_config(args: argparse.Namespace):
    """The CurveConfig the arguments of `prune --curve` ask for; the paper procedure's options refused."""
    from fexprune.experiments.prune_curve import CurveConfig
    from fexprune.pruning.importance import IMPORTANCES

    for run in [args.run, *(args.runs or ())]:
        if run:
            refuse_frozen_trunk(run)
    criteria = IMPORTANCES if args.criterion == ("all",) else args.criterion
    config = CurveConfig(
        run=args.run or "", runs=tuple(args.runs or ()), curve=args.curve, criteria=tuple(criteria), layers=args.layers or "all",
        global_pruning=args.global_pruning, steps=args.steps, round_to=args.round_to, merge=args.merge, finetune_epochs=args.curve_finetune,
        finetune_lr=args.curve_lr, distill=args.curve_distill, augment=not args.curve_no_augment, batch_size=args.batch_size, scratch=args.scratch_epochs != 0,
        scratch_epochs=args.scratch_epochs or None, sensitivity=args.sensitivity, sample_size=args.sample_size,
        seed=args.seed, device=args.device, progress=not args.no_progress,
    )
    if config.layers == ("all",):
        config.layers = "all"
    if args.max_loss_increase != 0.1 or args.remove or args.finetune:
        raise InputError("--max-loss-increase, --remove and --finetune belong to the paper's procedure, not to --curve")
    return config
