"""`fexprune train`: argument parsing for fexprune.experiments.train."""

from __future__ import annotations

import argparse

from fexprune.commands.common import channels_pair, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the paper's CNN on an image data set",
        description="Train the paper's LeNet-like CNN (full-batch Adam, 700 epochs by default).",
    )
    parser.add_argument("--data", help="image data set folder (default: the built-in synthetic data)")
    parser.add_argument("--channels", type=channels_pair, default=(16, 32), help="conv1,conv2 channels (16,32)")
    parser.add_argument("--kernel-size", type=positive_int, default=5)
    parser.add_argument("--epochs", type=positive_int, default=700)
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-5, the paper's curve)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: full batch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["random", "movie", "clip"], default="random")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="0.2 as the paper states; 0.25 matches its counts")
    parser.add_argument("--normalize", choices=["per-image", "dataset", "none"], default="per-image")
    parser.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto")
    parser.add_argument("--checkpoint-every", type=positive_int, default=50)
    parser.add_argument("--out", help="run folder (default: a new folder under ./runs)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.experiments.train import DEFAULT_LR, TrainConfig, table_epochs, train
    from fexprune.report.training import training_log_rows

    config = TrainConfig(
        data=args.data,
        channels=args.channels,
        kernel_size=args.kernel_size,
        image_size=(90, 72),
        normalize=args.normalize,
        variant=args.variant,
        epochs=args.epochs,
        lr=args.lr if args.lr is not None else DEFAULT_LR,
        batch_size=args.batch_size,
        seed=args.seed,
        test_fraction=args.test_fraction,
        split=args.split,
        checkpoint_every=args.checkpoint_every,
    )
    result = train(config, out=args.out, resume=args.resume, progress=not args.quiet)
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
    print(f"run folder: {result.run_dir}")
    return 0
