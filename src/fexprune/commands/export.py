"""`fexprune export`: argument parsing for fexprune.inference.export."""

from __future__ import annotations

import argparse

from fexprune.commands.common import positive_int


def register(subparsers, argv: list[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained or pruned run's model to ONNX",
        description="Export a train or prune run's model to ONNX (dynamic batch axis), check it against "
        "PyTorch with onnxruntime (to 1e-4), and write the preprocessing beside it as <file>.json.",
    )
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="train or prune run folder (or a model .pt file)")
    parser.add_argument("--onnx", required=True, metavar="FILE", help="ONNX file to write, e.g. model.onnx")
    parser.add_argument("--opset", type=positive_int, default=17, help="ONNX opset")
    parser.add_argument("--overwrite", action="store_true", help="write over an existing --onnx file and its .json")
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where PyTorch runs the network the ONNX file is checked against: cpu, auto, cuda, cuda:N or mps")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fexprune.inference.export import export_onnx

    info = export_onnx(args.run, args.onnx, opset=args.opset, overwrite=args.overwrite, device=args.device)
    width, height = info["image_size"]
    print(
        f"wrote {args.onnx} (input batch x 1 x {height} x {width}, {len(info['classes'])} classes, "
        f"{network_summary(info['model_config'])}, opset {info['opset']}) "
        f"and {args.onnx}.json; onnxruntime matches PyTorch to {info['check']['max_abs_difference']:.1e}"
    )
    return 0


def network_summary(model_config: dict) -> str:
    """The exported network in a few words: its architecture, and its channels where it has a list of them."""
    channels = model_config.get("channels")
    widths = f" {'/'.join(map(str, channels))} channels" if channels else ""
    return f"{model_config.get('architecture', 'paper')} network{widths}"
