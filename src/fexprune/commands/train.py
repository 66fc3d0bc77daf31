"""`fexprune train`: argument parsing for fexprune.experiments.train. Each recipe adds its own options
(fexprune.recipes), so `fexprune train --recipe best --help` lists what that recipe reads and an option
another recipe owns is refused."""

from __future__ import annotations

import argparse

from fexprune.commands.common import (
    add_device_arguments,
    add_face_arguments,
    add_image_data_arguments,
    add_tracking_arguments,
    face_settings,
    positive_float,
    positive_int,
    refusal,
    seed_number,
    tracking_options,
)


def requested_recipe(argv: list[str]) -> str:
    """The --recipe named on a command line, before it is parsed (the options offered depend on it)."""
    for index, word in enumerate(argv):
        if word == "--recipe" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--recipe="):
            return word.split("=", 1)[1]
    return "paper"


def register(subparsers, argv: list[str] | None = None) -> None:
    from fexprune.recipes import RECIPES

    name = requested_recipe(list(argv or []))
    recipe = RECIPES.get(name, RECIPES["paper"])
    parser = subparsers.add_parser(
        "train",
        help=f"train a network on an image data set (--recipe {', '.join(list(RECIPES)[:-1])} or {list(RECIPES)[-1]})",
        description="Train a recipe on one split (or K folds with --cv). "
                    + " ".join(f"{n}: {r.summary}." for n, r in RECIPES.items())
                    + " Each recipe has options of its own: fexprune train --recipe NAME --help lists them.",
    )
    parser.add_argument("--recipe", choices=list(RECIPES), default="paper", help="what to train and how")
    add_image_data_arguments(parser)
    defaults = recipe.defaults
    add_face_arguments(parser, defaults)
    batch = "full batch" if defaults["batch_size"] is None else defaults["batch_size"]
    training = {
        "epochs": dict(type=positive_int, help=f"epochs (default for --recipe {recipe.name}: {defaults['epochs']})"),
        "lr": dict(type=positive_float, help=f"learning rate (default for --recipe {recipe.name}: {defaults['lr']:g})"),
        "batch_size": dict(type=positive_int, help=f"mini-batch size (default for --recipe {recipe.name}: {batch})"),
    }
    for key, settings in training.items():
        option = "--" + key.replace("_", "-")
        if key in recipe.unused:
            parser.add_argument(option, action=refusal(f"{option} is not used by --recipe {recipe.name}"), nargs="?", help=argparse.SUPPRESS)
        else:
            parser.add_argument(option, default=None, **settings)
    parser.add_argument("--normalize", choices=["per-image", "dataset", "none", "clahe"], default=None,
                        help="per-image scaling, the training split's mean and sd, none (x / 255), or clahe (local "
                             f"histogram equalisation, then per-image) (default for --recipe {recipe.name}: {defaults['normalize']})")
    parser.add_argument("--cv", type=positive_int, default=None, metavar="K", help="K-fold cross-validation, grouped for clip/movie splits (default: one split, no cross-validation)")
    parser.add_argument("--seed", type=seed_number, default=0, help="the split's and the network's seed")
    parser.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto",
                        help="which images of a data set that has both frames and aligned faces")
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (recipes that checkpoint) (default: a new run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    recipe.add_arguments(parser.add_argument_group(f"--recipe {recipe.name}"))
    _refuse_other_recipes_options(parser, recipe.name)
    add_tracking_arguments(parser)
    add_device_arguments(parser)
    parser.set_defaults(func=run, recipe_options=recipe.options, given=_given_options(parser, list(argv or [])))


def _given_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The options typed on the command line (as argparse matches them, abbreviations included): --resume
    refuses the ones it would otherwise ignore without a word."""
    given = []
    for word in argv:
        name = word.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        matches = [o for a in parser._actions for o in a.option_strings if o == name or (o.startswith(name) and len(name) > 2)]
        exact = name if name in matches else (matches[0] if len(matches) == 1 else None)
        if exact is not None:
            given.append(exact)
    return given


def _refuse_other_recipes_options(parser: argparse.ArgumentParser, chosen: str) -> None:
    """Another recipe's option gets a line naming its recipe, not argparse's "unrecognized arguments"."""
    from fexprune.recipes import RECIPES

    owners: dict[str, str] = {}
    for name, recipe in RECIPES.items():
        probe = argparse.ArgumentParser(add_help=False)
        recipe.add_arguments(probe)
        for action in probe._actions:
            for option in action.option_strings:
                owners.setdefault(option, name)
    taken = {option for action in parser._actions for option in action.option_strings}

    for option in sorted(set(owners) - taken):
        message = f"{option} is an option of --recipe {owners[option]}; this run is --recipe {chosen}"
        parser.add_argument(option, action=refusal(message), nargs="?", help=argparse.SUPPRESS)


def face_counts(summary: dict) -> str:
    if summary.get("n_layout_aligned"):
        return f"the layout's {summary['n_layout_aligned']} aligned faces, used whole"
    borrowed = summary.get("n_clip_neighbour", 0)
    return (f"{summary['n_detected']} of {summary['n_images']} frames with a face found, "
            + (f"{borrowed} cut where a clip neighbour's was, " if borrowed else "")
            + f"{summary['n_fallback']} at the typical face region"
            + (f", {summary['n_turned']} cut turned level" if summary.get("n_turned") or summary.get("eye_align") else ""))


def train_config(args: argparse.Namespace):
    """The TrainConfig the arguments ask for: the recipe's defaults where the user gave none."""
    from fexprune.config import TrainConfig
    from fexprune.errors import InputError
    from fexprune.recipes import recipe_defaults

    if getattr(args, "margin_tta", None) is not None and not args.face_crop:
        raise InputError("--margin-tta averages cuts of the test faces: add --face-crop")
    defaults = recipe_defaults(args.recipe)
    own = {key: getattr(args, key) for key in args.recipe_options if getattr(args, key, None) is not None}
    return TrainConfig(
        data=args.data,
        normalize=args.normalize if args.normalize is not None else defaults["normalize"],
        variant=args.variant,
        epochs=args.epochs if args.epochs is not None else defaults["epochs"],
        lr=args.lr if args.lr is not None else defaults["lr"],
        batch_size=args.batch_size if args.batch_size is not None else defaults["batch_size"],
        seed=args.seed,
        test_fraction=args.test_fraction,
        split=args.split,
        **face_settings(args, defaults),
        recipe=args.recipe,
        cv=args.cv,
        device=args.device,
        deterministic=args.deterministic,
        **own,
    )


_RESUME_OPTIONS = {"--resume", "--quiet", "--no-tensorboard", "--mlflow"}  # what a resume may say: how, not what


def run(args: argparse.Namespace) -> int:
    tracking = tracking_options(args)
    from fexprune.errors import InputError
    from fexprune.experiments.train import train
    from fexprune.report.training import table_epochs, training_log_rows

    conflicting = [o for o in dict.fromkeys(getattr(args, "given", [])) if o not in _RESUME_OPTIONS]
    if args.resume is not None and conflicting:  # the run's spec decides them all
        raise InputError(f"{', '.join(conflicting)} cannot change a run being resumed: it continues with its own "
                         "spec; leave them out (or start a new run)", args.resume)
    config = train_config(args)
    result = train(config, out=args.out, resume=args.resume, progress=not args.quiet, tracking=tracking)
    if config.cv and args.resume is None:
        summary = result.results["summary"]
        for key, value in summary.items():
            print(f"{key:>18} {100 * value['mean']:6.2f}% +- {100 * value['sd']:.2f} (min {100 * value['min']:.1f}, max {100 * value['max']:.1f})"
                  if key != "test_loss" else f"{key:>18} {value['mean']:.4f} +- {value['sd']:.4f}")
        print(f"{result.results['protocol']}; run folder: {result.run_dir}")
        return 0
    print(f"{'epoch':>6} {'train loss':>11} {'train acc':>10} {'paper loss':>11} {'paper acc':>10}")
    for row in training_log_rows(result.metrics, table_epochs(result.results["epochs"])):
        paper_loss = "" if row["paper_train_loss"] is None else f"{row['paper_train_loss']:.4f}"
        paper_acc = "" if row["paper_train_accuracy"] is None else f"{100 * row['paper_train_accuracy']:.2f}%"
        print(
            f"{row['epoch']:>6} {row['train_loss']:>11.4f} {100 * row['train_accuracy']:>9.2f}% "
            f"{paper_loss:>11} {paper_acc:>10}"
        )
    r = result.results
    print(
        f"test loss {r['test_loss']:.4f}, test accuracy {100 * r['test_accuracy']:.2f}% "
        f"({r['n_train']} train / {r['n_test']} test, split {r['split']}, {r['seconds']:.0f} s, "
        f"{len(r['skipped'])} files skipped)"
    )
    print(f"macro-F1 {r['macro_f1']:.3f}, protocol: {r['protocol']}, recipe {config.recipe}"
          + (f", face crops ({face_counts(r['data']['face_crop'])})" if config.face_crop else ""))
    if "provenance" in r:
        print(f"zero-shot test accuracy {100 * r['zero_shot_test_accuracy']:.2f}% (FER2013 classifier, no training); {r['provenance']}")
    print(f"run folder: {result.run_dir}")
    return 0
