"""LPQ and PHOG on images with known structure, and the SFEW-shaped table they produce."""

from __future__ import annotations

import numpy as np
import pytest

from fexprune.data.descriptors import (
    DescriptorSettings,
    feature_table_from_images,
    lpq_codes,
    lpq_histogram,
    phog_histogram,
)


def test_blank_image_gives_one_lpq_bin_and_an_empty_phog():
    blank = np.full((40, 50), 123, dtype=np.uint8)
    histogram = lpq_histogram(blank)
    assert histogram.shape == (256,)
    assert np.count_nonzero(histogram) == 1 and histogram.sum() == pytest.approx(1.0)
    assert lpq_codes(blank).shape == (34, 44)
    assert not phog_histogram(blank).any()


def test_lpq_is_invariant_to_brightness_and_contrast_and_varies_with_texture():
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 200, size=(40, 40))
    a = lpq_histogram(noise)
    b = lpq_histogram(noise * 0.5 + 30)  # sign of the phase does not care about gain or offset
    assert np.allclose(a, b)
    assert np.count_nonzero(a) > 100  # random texture uses most codes
    stripes = np.tile((np.arange(40) % 8 < 4) * 200.0, (40, 1))
    assert np.abs(lpq_histogram(stripes) - a).sum() > 0.5


def test_rotated_gradient_moves_phog_mass_between_orientation_bins():
    ramp = np.tile(np.arange(64, dtype=np.float64), (64, 1))  # brightness grows left to right
    level0 = phog_histogram(ramp, bins=8, angle=360, levels=2)[:8]
    rotated0 = phog_histogram(np.rot90(ramp), bins=8, angle=360, levels=2)[:8]
    assert np.argmax(level0) == 0  # gradient points along +x: 0 degrees
    assert level0[0] == pytest.approx(level0.sum()) and level0.sum() == pytest.approx(1 / 3)  # 3 levels share
    assert np.argmax(rotated0) != 0 and rotated0[0] == pytest.approx(0.0)
    assert rotated0.max() == pytest.approx(rotated0.sum())  # all mass moved to one other bin
    histogram = phog_histogram(ramp, bins=8, angle=360, levels=2)
    assert histogram.shape == (8 * (1 + 4 + 16),) and histogram.sum() == pytest.approx(1.0)


def test_phog_pyramid_localises_an_edge():
    image = np.zeros((64, 64))
    image[:, 40:] = 255.0  # one vertical edge in the right half
    histogram = phog_histogram(image, bins=8, angle=180, levels=1)
    level1 = histogram[8:].reshape(4, 8)  # cells: top-left, top-right, bottom-left, bottom-right
    assert level1[[0, 2]].sum() == pytest.approx(0.0)
    assert level1[1].sum() == pytest.approx(level1[3].sum())


def test_feature_table_has_the_shape_of_sfew_xlsx():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(12, 36, 45)).astype(np.uint8)
    table = feature_table_from_images(images, [1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5], [f"i{k}" for k in range(12)])
    assert table.features.shape == (12, 10)
    assert table.feature_names[:2] == ["LPQ 1", "LPQ 2"] and table.feature_names[5] == "PHOG 1"
    assert table.inputs().shape == (12, 11)
    assert np.allclose(table.features.mean(axis=0), 0.0, atol=1e-9)  # PCA scores are centred
    again = feature_table_from_images(images, table.labels, table.names)
    assert np.array_equal(table.features, again.features)  # deterministic


def test_descriptors_separate_classes_better_than_chance():
    """Two synthetic "expressions": horizontal versus vertical texture, with noise and varying phase."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(2)
    images, labels = [], []
    yy, xx = np.mgrid[0:48, 0:40]
    for k in range(60):
        label = k % 3
        freq = rng.uniform(0.15, 0.3)
        phase = rng.uniform(0, 2 * np.pi)
        coord = (yy, xx, yy + xx)[label]
        img = 120 + 60 * np.sin(freq * coord + phase) + rng.normal(0, 25, size=yy.shape)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        labels.append(label + 1)
    table = feature_table_from_images(np.stack(images), labels, [str(k) for k in range(60)],
                                      DescriptorSettings(phog_levels=1))
    scores = cross_val_score(LogisticRegression(max_iter=1000), table.features, table.labels, cv=5)
    assert scores.mean() > 0.6  # chance is 1/3
