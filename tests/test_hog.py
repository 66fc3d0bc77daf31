"""The HOG layer of the best network: orientations land in the right bins, flat images give nothing, the
branch joins the classifier, older checkpoints still load, and it exports to ONNX unchanged."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from fexprune.models.hog import HOGFeatures
from fexprune.models.best_cnn import BestCNN, BestCNNConfig
from fexprune.models.checkpoint import build_model


def stripes(degrees: float, height: int = 72, width: int = 90) -> torch.Tensor:
    """A grating whose intensity gradient points at `degrees` (0 = along x)."""
    yy, xx = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    t = math.radians(degrees)
    return torch.sin(0.7 * (xx * math.cos(t) + yy * math.sin(t)))[None, None]


@pytest.mark.parametrize("degrees, bin_index", [(0, 0), (40, 2), (80, 4), (120, 6), (160, 8), (180 + 40, 2)])
def test_gradient_orientation_lands_in_its_bin_unsigned(degrees, bin_index):
    histograms = HOGFeatures(cell=8, bins=9)(stripes(degrees))
    assert histograms.shape == (1, 9, 9, 11)
    per_bin = histograms.mean((0, 2, 3))
    assert per_bin.argmax().item() == bin_index
    far = [(bin_index + k) % 9 for k in (3, 4, 5, 6)]  # 60 degrees or more away
    assert per_bin[far].max() < 0.05 * per_bin[bin_index]


def test_flat_image_has_no_histogram_and_contrast_is_normalised_away():
    hog = HOGFeatures()
    assert hog(torch.full((2, 1, 72, 90), 3.0)).abs().max() == 0
    image = stripes(30) + 0.3 * stripes(100)
    torch.testing.assert_close(hog(5 * image), hog(image), atol=1e-5, rtol=1e-4)


def test_hog_branch_joins_the_classifier_and_old_configs_load():
    torch.manual_seed(0)
    config = BestCNNConfig(channels=(4, 8, 8), pooled=(9, 11), hog=True)
    model = BestCNN(config).eval()
    assert model.fc.in_features == 8 * 9 * 11 + 9 * 9 * 11
    assert model(torch.randn(3, 1, 72, 90)).shape == (3, 7)
    stored = config.to_dict()
    rebuilt = build_model(stored)
    rebuilt.load_state_dict(model.state_dict())  # the layer has no weights: the state dict is the CNN's
    x = torch.randn(2, 1, 72, 90)
    torch.testing.assert_close(rebuilt.eval()(x), model(x))
    del stored["hog"]  # a checkpoint written before the branch existed
    assert build_model(stored).hog is None


@pytest.mark.skipif(not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")),
                    reason="onnx not installed: pip install 'fexprune[onnx]'")
def test_hog_network_exports_to_onnx_with_the_same_outputs():
    from fexprune.inference.export import onnx_bytes, parity

    torch.manual_seed(0)
    model = BestCNN(BestCNNConfig(channels=(4, 8, 8), pooled=(9, 11), hog=True)).eval()
    assert parity(model, onnx_bytes(model, 72, 90), 72, 90) <= 1e-4
