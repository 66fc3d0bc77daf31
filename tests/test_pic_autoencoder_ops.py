"""The pruning operations keep the network's outputs where the maths says they must."""

from __future__ import annotations

import numpy as np
import torch

from fexprune.models.autoencoder import Autoencoder, hidden_activations
from fexprune.pruning.autoencoder_ops import merge_similar, remove_complementary, remove_dead


def _net(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(11, 10)


def _outputs(model, x):
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).numpy()


X = np.random.default_rng(0).normal(size=(64, 11)).astype(np.float32)


def test_merging_two_identical_units_leaves_outputs_unchanged():
    model = _net()
    with torch.no_grad():
        model.encoder.weight[7] = model.encoder.weight[2]
        model.encoder.bias[7] = model.encoder.bias[2]
    merged = merge_similar(model, keep=2, drop=7)
    assert merged.n_hidden == 9
    assert np.abs(_outputs(merged, X) - _outputs(model, X)).max() < 1e-6
    # Dropping without adding the weights would change the outputs: the merge is doing the work.
    with torch.no_grad():
        model.decoder.weight[:, 2] = 0
    assert np.abs(_outputs(merged, X) - _outputs(model, X)).max() > 1e-3


def test_removing_an_exactly_complementary_pair_with_equal_weights_is_exact():
    model = _net(1)
    with torch.no_grad():  # sigmoid(-z) = 1 - sigmoid(z): unit 5 is the complement of unit 3
        model.encoder.weight[5] = -model.encoder.weight[3]
        model.encoder.bias[5] = -model.encoder.bias[3]
        model.decoder.weight[:, 5] = model.decoder.weight[:, 3]
    acts = hidden_activations(model, X)
    assert np.allclose(acts[:, 5], 1 - acts[:, 3])
    smaller = remove_complementary(model, 3, 5, acts)
    assert smaller.n_hidden == 8
    assert np.abs(_outputs(smaller, X) - _outputs(model, X)).max() < 1e-5
    fresh = np.random.default_rng(9).normal(size=(20, 11)).astype(np.float32)  # also off the patterns
    assert np.abs(_outputs(smaller, fresh) - _outputs(model, fresh)).max() < 1e-5


def test_complementary_removal_with_unequal_weights_keeps_the_mean_contribution():
    model = _net(2)
    with torch.no_grad():
        model.encoder.weight[5] = -model.encoder.weight[3]
        model.encoder.bias[5] = -model.encoder.bias[3]
    acts = hidden_activations(model, X)
    smaller = remove_complementary(model, 3, 5, acts)
    error = _outputs(smaller, X) - _outputs(model, X)
    assert np.abs(error.mean(axis=0)).max() < 1e-5  # unbiased on the patterns it was fitted on
    assert np.abs(error).max() > 1e-4  # but not exact: w_i != w_j


def test_dead_unit_removal_is_exact():
    model = _net(3)
    with torch.no_grad():
        model.encoder.weight[4] = 0.0
        model.encoder.bias[4] = 3.0  # constant output sigmoid(3) ~ 0.95 on every input
    acts = hidden_activations(model, X)
    smaller = remove_dead(model, 4, acts)
    assert smaller.n_hidden == 9
    assert np.abs(_outputs(smaller, X) - _outputs(model, X)).max() < 1e-6
