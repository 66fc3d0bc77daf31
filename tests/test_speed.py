"""The speed-ups keep the math: ReLU after pooling, channels_last and chunked full-batch gradients."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.training.loop import GradientSum, fit
from fexprune.training.speed import tune_allocator

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
from reference import StudentCNN, train_reference  # noqa: E402

CONFIG = CNNConfig(channels=(4, 6), input_size=(30, 24), n_classes=3)


def data(n: int = 25, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 24, 30, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def test_relu_after_pool_equals_relu_before_pool_values_and_gradients():
    torch.manual_seed(0)
    ours = ExpressionCNN(CONFIG)
    torch.manual_seed(0)
    student = StudentCNN(channels=(4, 6), input_size=(30, 24), n_classes=3)
    x, y = data()
    x[:, :, :6] = 0.0  # a constant band: exact ties inside pooling windows
    losses = []
    for model in (ours, student):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss)
    assert torch.equal(losses[0], losses[1])
    for name, parameter in ours.named_parameters():
        assert torch.equal(parameter.grad, dict(student.named_parameters())[name].grad), name


@pytest.mark.parametrize("chunk_size", [1, 7, 25, 100])
def test_chunked_full_batch_equals_plain_loop(chunk_size):
    x, y = data()
    reference_losses, _ = train_reference(x, y, epochs=6, lr=1e-2, seed=4, channels=(4, 6), n_classes=3)
    torch.manual_seed(4)
    model = ExpressionCNN(CONFIG)
    rows = fit(model, x, y, epochs=6, lr=1e-2, chunk_size=chunk_size)
    assert [row["train_loss"] for row in rows[:6]] == pytest.approx(reference_losses, abs=1e-5)
    assert rows[5]["train_loss"] < rows[0]["train_loss"]
    assert not x.requires_grad


def test_chunk_gradients_are_summed_in_float64():
    """1 + 1000 x 1e-8 is 1 in a float32 running sum; summed in float64 the small chunks count."""
    parameter = torch.nn.Parameter(torch.zeros(3))
    gradient = GradientSum([parameter])
    for value in [1.0] + [1e-8] * 1000:
        parameter.grad = torch.full((3,), value)  # what one chunk's backward leaves
        gradient.add()
        assert parameter.grad is None  # the next backward starts from nothing
    gradient.write()
    assert parameter.grad.dtype == torch.float32
    assert parameter.grad.tolist() == pytest.approx([1.00001] * 3, rel=1e-7)
    unused = torch.nn.Parameter(torch.zeros(2))
    untouched = GradientSum([unused])
    untouched.add()
    untouched.write()
    assert unused.grad is None  # no chunk reached it: no zero gradient for Adam to step on


def test_fit_is_deterministic_and_leaves_weights_loadable():
    x, y = data()
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        model = ExpressionCNN(CONFIG)
        fit(model, x, y, epochs=3, lr=1e-2)
        results.append(model.state_dict())
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key
    fresh = ExpressionCNN(CONFIG)
    fresh.load_state_dict(results[0])  # channels_last weights load into a plain model
    assert torch.equal(fresh.conv2.weight, results[0]["conv2.weight"])


def test_allocator_setting_is_applied_once_and_reports():
    first = tune_allocator()
    assert isinstance(first, bool) and tune_allocator() == first
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert first
