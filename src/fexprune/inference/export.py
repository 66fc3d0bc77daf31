"""A trained or pruned run's model as ONNX, checked against PyTorch before it is written.

The file takes a (batch, 1, H, W) float batch, prepared as in training, and gives (batch, classes)
logits; `<file>.json` beside it says how to prepare that batch (size, normalisation and its statistics,
face crops, class names). The TorchScript exporter (`dynamo=False`) is used: on torch 2.13 it needs
nothing beyond torch (0.4 s), where the torch.export-based one needs onnxscript and takes 6 s.
"""

from __future__ import annotations

import importlib.util
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from fexprune import runs
from fexprune.errors import InputError
from fexprune.inference.run_model import RunModel, load_run_model
from fexprune.models.views import scored_views
from fexprune.outputs import Outputs

DEFAULT_OPSET = 17
TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| logit difference accepted
INPUT_NAME, OUTPUT_NAME = "image", "logits"


def onnx_bytes(model: torch.nn.Module, height: int, width: int, opset: int = DEFAULT_OPSET) -> bytes:
    """The model as ONNX with a dynamic batch axis."""
    example = torch.zeros(2, 1, height, width, device=next(model.parameters()).device)  # batch 2, so no exporter pass can treat the batch as 1
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based ONNX export"
        torch.onnx.export(
            model.eval(), (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return buffer.getvalue()


def parity(model: torch.nn.Module, onnx_model: bytes, height: int, width: int, batch: int = 5, seed: int = 0) -> float:
    """Largest |onnxruntime - PyTorch| over a random batch (of a size the export never saw) and one image."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError("onnxruntime is needed to check the export: pip install 'fexprune[onnx]'") from None
    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    x = torch.randn(batch, 1, height, width, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model.eval()(x.to(next(model.parameters()).device)).cpu().numpy()
    worst = 0.0
    for part, reference in ((x, expected), (x[:1], expected[:1])):
        got = session.run([OUTPUT_NAME], {INPUT_NAME: part.numpy()})[0]
        if got.shape != reference.shape:
            raise InputError(f"ONNX output shape {got.shape} differs from PyTorch's {reference.shape}")
        worst = max(worst, float(np.abs(got - reference).max()))
    return worst


def export_onnx(
    run: str | os.PathLike, out: str | os.PathLike, opset: int = DEFAULT_OPSET, tolerance: float = TOLERANCE,
    overwrite: bool = False, device: str = "cpu", outputs: Outputs | None = None,
) -> dict:
    """Export, check with onnxruntime (against the PyTorch model on `device`), then write `out` and `out.json`; returns what the json holds.

    Nothing is written when the outputs differ by more than `tolerance`, nor where `outputs` (by default a
    plan over `overwrite`, the run its input) refuses either file: an existing one without `overwrite`, the
    run's own model.pt ever.
    """
    outputs = outputs or Outputs(overwrite, inputs=[run])
    out = outputs.plan(out, "--onnx")
    sidecar_path = outputs.plan(out.with_name(out.name + ".json"), "the ONNX file's .json")
    for package in ("onnx", "onnxruntime"):  # torch's exporter needs onnx; the check needs onnxruntime
        if importlib.util.find_spec(package) is None:
            raise InputError(f"{package} is not installed: pip install 'fexprune[onnx]'")
    loaded = load_run_model(run, device)
    width, height = loaded.image_size
    try:
        model_bytes = onnx_bytes(loaded.model, height, width, opset)
    except Exception as error:  # torch raises several types; name the cause in one line
        raise InputError(f"ONNX export failed at opset {opset}: {str(error).strip().splitlines()[0]}", loaded.source) from None
    difference = parity(loaded.model, model_bytes, height, width)
    if not difference <= tolerance:
        raise InputError(f"ONNX outputs differ from PyTorch's by {difference:.3g} (> {tolerance:g}); nothing written", out)
    info = sidecar(loaded, opset, difference, tolerance)
    try:
        outputs.write_bytes(out, model_bytes)
        outputs.write_bytes(sidecar_path, runs.json_bytes(info))
    except OSError as error:
        raise InputError(f"cannot write ({error.strerror or error})", out) from None
    return info


def scoring_note(preprocessing: dict) -> str:
    """How the run scored its test images, for whoever feeds the ONNX file: the views whose softmax it averaged."""
    views = scored_views(preprocessing)
    if len(views) == 1:
        return "the softmax of the batch"
    return ("mean of the softmax of each image " + ", ".join(views) + " (mirrored: x.flip(-1)): the run's test"
            " accuracy was measured so")


def sidecar(loaded: RunModel, opset: int, difference: float, tolerance: float) -> dict:
    """Everything another program needs to feed the ONNX file as training fed the network."""
    width, height = loaded.image_size
    p = loaded.preprocessing
    return {
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, height, width], "dtype": "float32", "layout": "NCHW"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(loaded.classes)], "meaning": "logits; softmax gives probabilities"},
        "image_size": [width, height],
        "grayscale": bool(p.get("grayscale", True)),
        "resize": "cv2.INTER_AREA to image_size (width, height) after BGR->gray",
        "normalize": p["normalize"],
        "stats": p.get("stats", {}),
        "normalize_formula": {
            "per-image": "(x - mean(x)) / std(x) per image (std < 1e-6 -> 1)",
            "dataset": "(x - stats.mean) / stats.std",
            "none": "x / 255",
            "clahe": "cv2.createCLAHE(stats.clip_limit, stats.tiles).apply(x), then per-image",
        }[p["normalize"]],
        "face_crop": loaded.face_crop,
        "test_time": scoring_note(p),
        "classes": loaded.classes,
        "model_config": loaded.model.config.to_dict(),
        "source": str(loaded.source.resolve()),
        "opset": opset,
        "check": {"max_abs_difference": difference, "tolerance": tolerance, "runtime": "onnxruntime CPU"},
    }
