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


def detector_chain(text: str) -> tuple[str, ...]:
    """'haar-default,haar-alt2' -> ("haar-default", "haar-alt2"), each a known step."""
    from fexprune.faces import DETECTORS

    chain = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chain if name not in DETECTORS]
    if not chain or unknown:
        raise argparse.ArgumentTypeError(f"unknown face detector {unknown[0] if unknown else text!r} "
                                         f"(choose from {', '.join(DETECTORS)})")
    return chain


def add_face_arguments(parser: argparse.ArgumentParser) -> None:
    """--face-crop and how: the detector chain and the margin around the box."""
    from fexprune.faces import DEFAULT_CHAIN

    parser.add_argument("--face-crop", action="store_true", help="detect the face and crop to it before resizing")
    parser.add_argument("--detectors", type=detector_chain, default=None, metavar="A,B,...",
                        help=f"the face-detection chain, tried in order (default {','.join(DEFAULT_CHAIN)})")
    parser.add_argument("--face-margin", type=margin, default=None, help="crop margin, a fraction of the face box's side (0.2)")
    parser.add_argument("--eye-align", action="store_true",
                        help="turn each detected face so its eyes are level (mtcnn's eye landmarks, else OpenCV's eye cascades; no sure pair: not turned)")


def face_settings(args: argparse.Namespace) -> dict:
    """TrainConfig's face-crop fields from the arguments; --detectors, --face-margin or --eye-align alone is a mistake."""
    from fexprune.errors import InputError

    if not args.face_crop and (args.detectors is not None or args.face_margin is not None or args.eye_align):
        raise InputError("--detectors, --face-margin and --eye-align shape the face crops; add --face-crop")
    settings = {"face_crop": args.face_crop, "detectors": args.detectors, "eye_align": args.eye_align}
    if args.face_margin is not None:  # else TrainConfig's default
        settings["face_margin"] = args.face_margin
    return settings


def margin(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 0.2, got {text!r}") from None
    if not 0 <= value <= 2:
        raise argparse.ArgumentTypeError(f"a margin is a fraction of the box's side between 0 and 2, got {text}")
    return value


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a sweep's trials run: --workers, --backend, --address."""
    parser.add_argument("--workers", type=positive_int, default=None, help="parallel trials (default: one per core)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where trials run")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
