"""Argument types shared by commands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def channels_pair(text: str) -> tuple[int, int]:
    """'16,32' -> (16, 32)."""
    parts = text.replace("x", ",").split(",")
    try:
        c1, c2 = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two channel counts like 16,32, got {text!r}") from None
    if c1 < 1 or c2 < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive: {text}")
    return c1, c2


def fraction(text: str) -> float:
    """A number strictly between 0 and 1, e.g. a test fraction."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1: {text}")
    return value


def add_image_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --split and --test-fraction, the same for every command that trains on images."""
    parser.add_argument("--data", help="image data set folder (default: the built-in synthetic data)")
    parser.add_argument("--split", choices=["random", "movie", "clip"], default="random",
                        help="random (stratified), or grouped so no movie / clip is on both sides")
    parser.add_argument("--test-fraction", type=fraction, default=0.2,
                        help="0.2 as the paper states; 0.25 matches its counts")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a sweep's trials run: --workers, --backend, --address."""
    parser.add_argument("--workers", type=positive_int, default=None, help="parallel trials (default: one per core)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where trials run")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
