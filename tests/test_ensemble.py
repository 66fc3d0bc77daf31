"""Training repeats together as one grouped network equals training them one by one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fexprune.models.cnn import CNNConfig, ExpressionCNN
from fexprune.training.loop import fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from ensemble import EnsembleCNN, fit_ensemble  # noqa: E402  (benchmark-only code, tested where it lives)

CONFIG = CNNConfig(channels=(4, 6), input_size=(30, 24), n_classes=3)


def make_data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 24, 30, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def seeded_model(seed: int) -> ExpressionCNN:
    torch.manual_seed(seed)
    return ExpressionCNN(CONFIG)


def test_ensemble_forward_is_each_model_forward():
    models = [seeded_model(s) for s in (0, 1, 2)]
    x = torch.randn(5, 3, 24, 30)
    logits = EnsembleCNN(models)(x)  # (5, 3 repeats, 3 classes)
    for r, model in enumerate(models):
        torch.testing.assert_close(logits[:, r], model(x[:, r : r + 1]), atol=1e-5, rtol=1e-5)
    for original, back in zip(models, EnsembleCNN(models).to_models()):
        for key, value in original.state_dict().items():
            assert torch.equal(value, back.state_dict()[key]), key


@pytest.mark.parametrize("sizes", [(24, 24, 24), (24, 19, 30)])  # stratified splits; unequal splits (padding)
def test_three_repeats_five_epochs_equal_sequential(sizes):
    seeds = (10, 11, 12)
    data = [make_data(100 + s, n) for s, n in zip(seeds, sizes)]
    tests = [make_data(200 + s, 9) for s in seeds]
    sequential = []
    for seed, (x, y), (xt, yt) in zip(seeds, data, tests):
        model = seeded_model(seed)
        rows = fit(model, x, y, epochs=5, lr=1e-2, x_test=xt, y_test=yt, eval_every=2)
        sequential.append((model, rows))

    together = [seeded_model(s) for s in seeds]
    history = fit_ensemble(
        together, [x for x, _ in data], [y for _, y in data], epochs=5, lr=1e-2,
        x_tests=[x for x, _ in tests], y_tests=[y for _, y in tests], eval_every=2,
    )
    for (model, rows), trained, ensemble_rows in zip(sequential, together, history):
        assert [row["epoch"] for row in ensemble_rows] == [row["epoch"] for row in rows] == list(range(6))
        for row, other in zip(rows, ensemble_rows):
            assert set(row) == set(other)
            for key in row:
                assert other[key] == pytest.approx(row[key], abs=1e-5), (row["epoch"], key)
        assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learned: the comparison means something
        for key, value in model.state_dict().items():
            torch.testing.assert_close(trained.state_dict()[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_repeats_stay_independent():
    """Changing one repeat's data leaves the other repeat's result untouched."""
    base = [make_data(1, 20), make_data(2, 20)]
    changed = [base[0], make_data(3, 20)]
    first = [seeded_model(0), seeded_model(1)]
    second = [seeded_model(0), seeded_model(1)]
    fit_ensemble(first, [x for x, _ in base], [y for _, y in base], epochs=3, lr=1e-2)
    fit_ensemble(second, [x for x, _ in changed], [y for _, y in changed], epochs=3, lr=1e-2)
    torch.testing.assert_close(first[0].conv1.weight, second[0].conv1.weight, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(first[1].conv1.weight, second[1].conv1.weight)
