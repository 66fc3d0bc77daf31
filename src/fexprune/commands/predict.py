"""`fexprune predict`: argument parsing for fexprune.inference.predict."""

from __future__ import annotations

import argparse
import sys

from fexprune.commands.common import positive_float, positive_int

_LISTED = 20  # skipped files listed on stderr; all of them are in the companion CSV


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify the expressions of faces in new images or a video with a trained or pruned run",
        description="Classify every face in images (or folders, recursively) with a train or prune run's model, "
        "prepared exactly as in training. Writes one CSV row per face. A video (.mp4, .avi, .mov, .mkv, ... "
        "anything OpenCV reads) is predicted on its own, one video per call: frames taken at --fps, each face "
        "followed across frames as a track (box overlap), one CSV row per face and frame, and a figure "
        "<out stem>.tracks.png of each track's probabilities over time.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders, or one video file")
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="train or prune run folder (or a model .pt file)")
    detect = parser.add_mutually_exclusive_group()
    detect.add_argument("--face-detect", dest="face_detect", action="store_true", default=None,
                        help="classify every detected face (default when the run was trained on face crops)")
    detect.add_argument("--no-face-detect", dest="face_detect", action="store_false",
                        help="classify whole frames (default when the run was trained on whole frames)")
    parser.add_argument("--out", default="predictions.csv", help="CSV to write; "
                        "skipped files go to <name>.skipped.csv beside it (written only when files were skipped), a video's track figure to <name>.tracks.png")
    parser.add_argument("--annotate", metavar="DIR|FILE", help="write copies of the images with boxes and labels drawn "
                        "into DIR; for a video, the frames taken with boxes, track ids and labels drawn into FILE (.mp4) "
                        "(default: none, the CSV only)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write over an existing --out CSV, annotated copy or annotated video (refused otherwise)")
    parser.add_argument("--fps", type=positive_float, default=5.0,
                        help="a video's frames taken a second (default: %(default)s; "
                        "every frame where the video's own rate is lower)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="faces classified per forward pass")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--device", default="auto", metavar="DEVICE", help="where the network runs: auto (CUDA, then MPS, else the CPU), cpu, cuda, cuda:N or mps")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.errors import InputError
    from fexprune.inference.predict import plan_predictions, predict, write_predictions
    from fexprune.inference.video import is_video
    from fexprune.outputs import Outputs

    videos = [path for path in args.paths if is_video(path)]
    if videos and len(args.paths) > 1:
        raise InputError("a video is predicted on its own: give one video per call (images and folders in another)", videos[0])
    outputs = Outputs(args.overwrite, inputs=[*args.paths, args.run])  # every output planned before any work
    if videos:
        return run_video(args, outputs)
    plan_predictions(args.out, outputs)
    predictions = predict(
        args.run, args.paths, face_detect=args.face_detect, batch_size=args.batch_size,
        annotate=args.annotate, progress=not args.quiet, device=args.device, outputs=outputs,
    )
    companion = write_predictions(args.out, predictions, outputs)
    for warning in predictions.warnings:
        print(f"fexprune predict: warning: {warning}", file=sys.stderr)
    if predictions.skipped:
        print(f"fexprune predict: skipped {len(predictions.skipped)} files (all listed in {companion}):", file=sys.stderr)
        for item in predictions.skipped[:_LISTED]:
            print(f"  {item['path']}: {item['reason']}", file=sys.stderr)
        if len(predictions.skipped) > _LISTED:
            print(f"  ... and {len(predictions.skipped) - _LISTED} more", file=sys.stderr)
    if predictions.n_faces <= _LISTED:
        for record in predictions:
            for index, face in enumerate(record["faces"]):
                print(f"{record['path']} face {index} {face['box']}: {face['label']} "
                      f"{face['emotions'][face['label']]:.2f} ({face['detector']})")
    no_face = f", {len(predictions.no_face)} with no face found (typical face region used)" if predictions.no_face else ""
    print(f"{predictions.n_faces} faces in {len(predictions)} images{no_face}, {len(predictions.skipped)} files skipped; "
          f"model {predictions.source}")
    if predictions.split_line():
        print(predictions.split_line())
    print(f"wrote {args.out}" + (f" and annotated copies under {args.annotate}" if args.annotate else ""))
    return 0


def run_video(args: argparse.Namespace, outputs) -> int:
    from fexprune.inference.video import plan_video_predictions, predict_video, write_video_predictions

    plan_video_predictions(args.out, outputs)
    result = predict_video(
        args.run, args.paths[0], fps=args.fps, face_detect=args.face_detect, batch_size=args.batch_size,
        annotate=args.annotate, progress=not args.quiet, device=args.device, outputs=outputs,
    )
    figure = write_video_predictions(args.out, result, outputs)
    for warning in result.warnings:
        print(f"fexprune predict: warning: {warning}", file=sys.stderr)
    no_face = f", {result.no_face} with no face found (typical face region used)" if result.no_face else ""
    print(f"{len(result.faces)} faces in {result.frames_sampled} frames taken at {result.fps:g} a second "
          f"(of {result.frames_read} read){no_face}, {len(result.tracks)} tracks, {len(result.cuts)} scene cuts "
          f"(no track crosses one); model {result.source}")
    print(f"wrote {args.out} and {figure}" + (f" and {args.annotate}" if args.annotate else ""))
    return 0
