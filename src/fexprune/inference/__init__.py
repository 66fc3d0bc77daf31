"""Using a trained or pruned model: classify new images (`predict`) and export it to ONNX (`export_onnx`)."""

from fexprune.inference.export import export_onnx
from fexprune.inference.predict import Predictions, predict, write_predictions
from fexprune.inference.run_model import RunModel, load_run_model

__all__ = ["Predictions", "RunModel", "export_onnx", "load_run_model", "predict", "write_predictions"]
