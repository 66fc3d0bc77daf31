"""The PIC experiment end to end on small tables, and threshold pruning on a crafted network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fexprune.data.tables import FeatureTable
from fexprune.experiments.pic import PICConfig, normalise, run_pic, split, threshold_prune
from fexprune.models.autoencoder import Autoencoder, reconstruction_loss
from fexprune.pruning.distinctiveness import pairwise_angles
from fexprune.models.autoencoder import hidden_activations
from fexprune.run_folder import read_settings


def make_table(n: int = 200, seed: int = 0) -> FeatureTable:
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, 8, n)
    latent = rng.normal(size=(n, 3))
    features = latent @ rng.normal(size=(3, 10)) * 0.05 + rng.normal(size=(n, 10)) * 0.01
    return FeatureTable(names=[str(i) for i in range(n)], labels=labels, features=features,
                        feature_names=[f"f{i}" for i in range(10)], source="synthetic")


FAST = dict(epochs=300, retrain_epochs=60)


def test_progressive_reduction_records_10_down_to_2_and_writes_a_run(tmp_path):
    result = run_pic(PICConfig(**FAST), tmp_path / "run", table=make_table())
    assert [r["hidden_units"] for r in result.rows] == list(range(10, 1, -1))
    assert result.n_train == 160 and result.n_test == 40
    first, last = result.rows[0], result.rows[-1]
    assert last["train_loss"] > first["train_loss"]  # two units cannot reconstruct 11 columns as well
    assert all(0 <= r["min_angle"] <= 180 for r in result.rows)
    assert all(r["merged_angle"] == pytest.approx(prev["min_angle"], abs=1e-3)
               for prev, r in zip(result.rows, result.rows[1:]))  # we merged the pair at the minimum
    run = result.run_dir
    for name in ["config.json", "metrics.csv", "results.json", "report.md", "figures/progressive.png"]:
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert [r["paper_loss"] for r in results["paper_comparison"]][:2] == [0.0064, 0.0198]
    report = (run / "report.md").read_text()
    assert "mean squared reconstruction error" in report and "| 9 |" in report and "0.15" in report
    assert read_settings(run)["normalize"] == "minmax"


def test_same_seed_same_numbers_and_seed_changes_them():
    table = make_table()
    a = run_pic(PICConfig(**FAST, min_units=7), save=False, table=table)
    b = run_pic(PICConfig(**FAST, min_units=7), save=False, table=table)
    c = run_pic(PICConfig(**FAST, min_units=7, seed=1), save=False, table=table)
    assert json.dumps(a.rows) == json.dumps(b.rows)  # (NaN != NaN, so compare the text)
    assert a.rows[0]["train_loss"] != c.rows[0]["train_loss"]


def test_split_and_normalisers():
    train, test = split(10, 0.2, seed=3)
    assert len(test) == 2 and sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    x = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    scaled, other, _ = normalise(x, x[:1] * 2, "minmax")
    assert scaled[:, 0].tolist() == [0.0, 1.0, 0.5] and scaled[:, 1].tolist() == [0.0, 0.0, 0.0]
    assert other[0, 0] == 0.5  # (2 - 1) / 2: min and range from the training rows only
    z, _, _ = normalise(x, x, "zscore")
    assert np.allclose(z[:, 0].mean(), 0) and np.allclose(z[:, 0].std(), 1)
    same, _, params = normalise(x, x, "none")
    assert same is x and params == {"method": "none"}


def test_threshold_rules_remove_crafted_redundancy_without_changing_outputs():
    torch.manual_seed(0)
    model = Autoencoder(11, 10)
    with torch.no_grad():
        model.encoder.weight.mul_(3)  # spread the random units' directions
        model.encoder.weight[7] = model.encoder.weight[2]  # 7 duplicates 2: similar (0 deg)
        model.encoder.bias[7] = model.encoder.bias[2]
        model.encoder.weight[5] = -model.encoder.weight[3]  # 5 complements 3 (180 deg), equal weights out
        model.encoder.bias[5] = -model.encoder.bias[3]
        model.decoder.weight[:, 5] = model.decoder.weight[:, 3]
        model.encoder.weight[4] = 0.0  # 4 is dead
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(80, 11)), dtype=torch.float32)
    angles = pairwise_angles(hidden_activations(model, x))
    before = reconstruction_loss(model, x)
    rows, pruned = threshold_prune(model, x, x, PICConfig(retrain_epochs=0, min_units=1))
    assert [r["action"] for r in rows] == ["trained", "dead", "complementary", "similar"]
    assert [r["hidden_units"] for r in rows] == [10, 9, 7, 6]
    assert pruned.n_hidden == 6
    assert reconstruction_loss(pruned, x) == pytest.approx(before, rel=1e-4)
    final = pairwise_angles(hidden_activations(pruned, x))
    off_diagonal = final[np.triu_indices(6, 1)]
    assert off_diagonal.min() >= 15 and off_diagonal.max() <= 165
    assert angles[2, 7] < 1e-3


def test_threshold_mode_run_writes_its_table(tmp_path):
    result = run_pic(PICConfig(**FAST, mode="threshold"), tmp_path / "thr", table=make_table())
    assert result.rows[0]["action"] == "trained"
    assert (result.run_dir / "figures" / "threshold.png").is_file()
    assert "| step | action |" in (result.run_dir / "report.md").read_text()
