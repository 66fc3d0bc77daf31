"""Arguments shared by commands."""

from __future__ import annotations

import argparse

from fexprune.argtypes import channels_pair, fraction, margin, positive_float, positive_int, seed_number  # noqa: F401  (the commands' argument types)


def add_image_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --split and --test-fraction, the same for every command that trains on images."""
    parser.add_argument("--data", help="image data set folder (default: the built-in synthetic data)")
    parser.add_argument("--split", choices=["random", "movie", "clip"], default="random",
                        help="random (stratified), or grouped so no movie / clip is on both sides")
    parser.add_argument("--test-fraction", type=fraction, default=0.2,
                        help="share of the frames held out for testing: 0.2 as the paper states; 0.25 matches its counts")


def detector_chain(text: str) -> tuple[str, ...]:
    """'haar-default,haar-alt2' -> ("haar-default", "haar-alt2"), each a known step."""
    from fexprune.faces import DETECTORS

    chain = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chain if name not in DETECTORS]
    if not chain or unknown:
        raise argparse.ArgumentTypeError(f"unknown face detector {unknown[0] if unknown else text!r} "
                                         f"(choose from {', '.join(DETECTORS)})")
    return chain


def add_face_arguments(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """--face-crop and how: the detector chain, the margin around the box, alignment. `defaults` holds the
    command's (or recipe's) own "detectors" and "eye_align" where they differ from the library's."""
    from fexprune.faces import DEFAULT_CHAIN

    defaults = defaults or {}
    chain = defaults.get("detectors") or DEFAULT_CHAIN
    parser.add_argument("--face-crop", action="store_true", help="detect the face and crop to it before resizing")
    parser.add_argument("--detectors", type=detector_chain, default=None, metavar="A,B,...",
                        help=f"the face-detection chain, tried in order (default: {','.join(chain)})")
    parser.add_argument("--face-margin", type=margin, default=None, help="crop margin, a fraction of the face box's side (default 0.2)")
    parser.add_argument("--eye-align", action=argparse.BooleanOptionalAction, default=None,
                        help="align each detected face: mtcnn's five landmarks mapped onto a template, else turned so its "
                             "eyes are level by OpenCV's eye cascades (no sure pair: not turned) "
                             f"(default: {'on' if defaults.get('eye_align') else 'off'})")


def face_settings(args: argparse.Namespace, defaults: dict | None = None) -> dict:
    """The config's face-crop fields from the arguments, `defaults` (detectors, eye_align) where none are
    given; --detectors, --face-margin or --eye-align without --face-crop is a mistake."""
    from fexprune.errors import InputError

    if not args.face_crop and (args.detectors is not None or args.face_margin is not None or args.eye_align is not None):
        raise InputError("--detectors, --face-margin and --eye-align shape the face crops; add --face-crop")
    defaults = defaults or {}
    settings = {"face_crop": args.face_crop, "detectors": args.detectors, "eye_align": bool(args.eye_align)}
    if args.face_crop:
        if args.detectors is None and defaults.get("detectors"):
            settings["detectors"] = tuple(defaults["detectors"])
        if args.eye_align is None:
            settings["eye_align"] = bool(defaults.get("eye_align", False))
    if args.face_margin is not None:  # else the config's default
        settings["face_margin"] = args.face_margin
    return settings


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a sweep's trials run: --workers, --backend, --address."""
    parser.add_argument("--workers", type=positive_int, default=None, help="parallel trials (default: one per core)")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where trials run")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")


def add_device_arguments(parser: argparse.ArgumentParser, deterministic: bool = True) -> None:
    """--device (and --deterministic) for a command that runs a network."""
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="auto (CUDA, then MPS, else the CPU; says which), cpu, cuda, cuda:N or mps")
    if deterministic:
        parser.add_argument("--deterministic", action="store_true",
                            help="deterministic GPU algorithms: the same seed gives the same numbers on the same GPU "
                                 "(slower); without it GPU runs may differ in the last digits")


def refusal(message: str) -> type[argparse.Action]:
    """An option that, when given, stops parsing with `message` (argparse's one line and exit code 2): an
    option that belongs elsewhere is named, not met with "unrecognized arguments" or ignored."""

    class Refused(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(message)

    return Refused


def refuse(parser: argparse.ArgumentParser, options, message: str) -> None:
    """Each of `options` is refused, when given, with `message` ("{option}" filled in); not in --help."""
    for option in options:
        parser.add_argument(option, action=refusal(message.format(option=option)), nargs="?", help=argparse.SUPPRESS)


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a run's numbers go besides its folder: TensorBoard (on) and MLflow (on request)."""
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="write no TensorBoard event files (by default they go to <run>/tensorboard/)")
    parser.add_argument("--mlflow", nargs="?", const="./mlruns", default=None, metavar="URI",
                        help="also log parameters, metrics and files to MLflow: a tracking server URI or a local "
                             "store (./mlruns when no URI is given); needs pip install 'fexprune[mlflow]' (default: off)")


def tracking_options(args: argparse.Namespace):
    """The fexprune.tracking.Tracking the options ask for, checked before any work."""
    from fexprune.tracking import tracking

    return tracking(tensorboard=args.tensorboard, mlflow=args.mlflow)
