"""Using a trained or pruned model: classify new images (`predict`) or a video (`predict_video`) and export it
to ONNX (`export_onnx`)."""

from fexprune.inference.export import export_onnx
from fexprune.inference.predict import Predictions, predict, write_predictions
from fexprune.inference.run_model import RunModel, load_run_model
from fexprune.inference.video import VideoPredictions, predict_video, write_video_predictions

__all__ = ["Predictions", "RunModel", "VideoPredictions", "export_onnx", "load_run_model", "predict", "predict_video",
           "write_predictions", "write_video_predictions"]
