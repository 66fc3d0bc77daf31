"""`fexprune data synth|info`: argument parsing for fexprune.data."""

from __future__ import annotations

import argparse
import json

from fexprune.commands.common import detector_chain, margin, positive_int


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser("data", help="generate the synthetic data set or inspect a data set",
                                   description="Generate synthetic SFEW-like data, or summarise a data set.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    synth = actions.add_parser("synth", help="write a synthetic SFEW-like data set (course layout Images/<Class>/)")
    synth.add_argument("--out", required=True, help="folder to write (Images/<Class>/*.png goes inside)")
    synth.add_argument("--per-class", type=positive_int, default=100, help="frames per expression")
    synth.add_argument("--seed", type=int, default=0, help="seed of the drawing: the same seed writes the same bytes")
    synth.add_argument("--overwrite", action="store_true", help="write over an existing faces.csv in --out")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=run_synth)

    info = actions.add_parser("info", help="layout, counts per class, skipped files and duplicates of a data set")
    info.add_argument("--data", help="data set folder (default: the built-in synthetic data)")
    info.add_argument("--variant", choices=["auto", "frames", "aligned"], default="auto",
                      help="frames or aligned faces where a data set holds both (auto: frames)")
    info.add_argument("--json", action="store_true", help="print the full summary as JSON")
    info.add_argument("--quiet", action="store_true", help="no progress bar")
    info.set_defaults(func=run_info)

    faces = actions.add_parser("faces", help="how a detector chain cuts a data set's faces (on the face, given true boxes)",
                               description="Detect and cut every frame's face as --face-crop would, and count how each was "
                                           "cut; with true boxes (--truth, or the built-in set's own), how many crops lie on the face.")
    faces.add_argument("--data", help="data set folder (default: the built-in synthetic data and its true boxes)")
    faces.add_argument("--detectors", type=detector_chain, default=None, metavar="A,B,...",
                       help="the face-detection chain, tried in order (default: --face-crop's)")
    faces.add_argument("--face-margin", type=margin, default=0.2, help="crop margin, a fraction of the face box's side")
    faces.add_argument("--eye-align", action=argparse.BooleanOptionalAction, default=True,
                       help="align each detected face as --face-crop does by default (--no-eye-align: box cuts)")
    faces.add_argument("--truth", help="CSV of true boxes: path (relative to the CSV), cx, cy, width, height[, tilt] (default: the built-in data's own boxes; none for other data)")
    faces.add_argument("--sheet", help="also write a PNG sheet of the crops, a row per way frames were cut (default: no sheet)")
    faces.add_argument("--overwrite", action="store_true", help="write over an existing --sheet file")
    faces.add_argument("--json", action="store_true", help="print the full report as JSON")
    faces.add_argument("--quiet", action="store_true", help="no progress bar")
    faces.add_argument("--device", default="cpu", metavar="DEVICE", help="where mtcnn's networks run, when the chain has mtcnn: "
                       "cpu, auto, cuda, cuda:N or mps (other detectors run on the CPU)")
    faces.set_defaults(func=run_faces)


def run_synth(args: argparse.Namespace) -> int:
    from fexprune.data.synth import write_synthetic

    images = write_synthetic(args.out, per_class=args.per_class, seed=args.seed, progress=not args.quiet,
                             overwrite=args.overwrite)
    print(f"wrote {7 * args.per_class} frames to {images}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from fexprune.data.builtin import resolve_data
    from fexprune.data.loading import load_image_set

    image_set = load_image_set(resolve_data(args.data, not args.quiet), variant=args.variant, progress=not args.quiet)
    summary = image_set.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"data:     {summary['root']} (layout: {summary['layout']})")
    print(f"images:   {summary['n_images']} from {summary['n_movies']} movies, {summary['n_clips']} clips")
    if "subsets" in summary:
        print("split:    " + ", ".join(f"{k} {v}" for k, v in summary["subsets"].items()) + " (fixed by the layout)")
    for name, count in summary["counts"].items():
        print(f"  {name:<12} {count:>5}")
    print(f"skipped:  {summary['n_skipped']}")
    for item in summary["skipped"]:
        print(f"  {item['path']}: {item['reason']}")
    print(f"same content under two or more classes: {summary['n_duplicates']}")
    for group in summary["duplicates"]:
        print(f"  {', '.join(group['classes'])}: {', '.join(group['paths'])}")
    return 0


def run_faces(args: argparse.Namespace) -> int:
    from fexprune.data.builtin import resolve_data
    from fexprune.device import resolve_device
    from fexprune.faces import chain_name, check_faces, crop_kind, mtcnn, read_true_boxes
    from fexprune.faces.chain import default_chain
    from fexprune.faces.loading import load_face_crops
    from fexprune.outputs import Outputs

    outputs = Outputs(args.overwrite, inputs=[args.data, args.truth])
    if args.sheet:  # before any work
        outputs.plan(args.sheet, "--sheet")
    mtcnn.use_device(resolve_device(args.device))  # builds no network: only a chain that runs mtcnn uses it
    data = resolve_data(args.data, not args.quiet)
    truth_file = args.truth or (data.parent / "faces.csv" if args.data is None else None)  # the built-in set's own
    truth = read_true_boxes(truth_file) if truth_file else None
    image_set = load_face_crops(data, face_margin=args.face_margin, detectors=args.detectors,
                                eye_align=args.eye_align, progress=not args.quiet)
    report = {"detectors": chain_name(args.detectors or default_chain()), **check_faces(image_set, truth)}
    if args.sheet:
        from fexprune.report.faces import save_face_sheet

        names = [sample.path.name for sample in image_set.samples]
        report["sheet"] = str(save_face_sheet(args.sheet, image_set.images, image_set.faces, names, outputs))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    chain = report["chain"]
    n = chain["n_images"]
    print(f"data:      {data} ({n} frames)")
    print(f"chain:     {report['detectors']}")
    print(f"detected:  {chain['n_detected']} ({chain['detection_rate']:.1%})")
    steps = {k: v for k, v in chain["by_detector"].items() if crop_kind(k) == "detected"}
    for detector, count in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"  {detector:<40} {count:>5}")
    print(f"clip neighbour's box: {chain['n_clip_neighbour']}; typical face region: {chain['n_fallback']}; "
          f"used whole (aligned layout): {chain['n_layout_aligned']}; cut turned level: {chain['n_turned']}")
    if "truth" in report:
        found = report["truth"]
        print(f"true boxes ({truth_file}): {found['n_matched']} frames"
              + (f", {found['n_without_truth']} without one" if found["n_without_truth"] else ""))
        for kind, stats in found["by_kind"].items():
            print(f"  {kind:<16} {stats['n']:>5}  on the face {stats['on_face']:6.1%}  median IoU {stats['median_iou']:.2f}")
        if found["roll"]["n"]:
            print(f"  turn against the true tilt: median error {found['roll']['median_error_deg']:.1f} degrees "
                  f"({found['roll']['n']} frames)")
    if args.sheet:
        print(f"sheet:     {report['sheet']}")
    return 0
