"""Splits: stratified and seeded; movie/clip splits keep groups on one side; fixed Train/Val honoured;
duplicate-content frames never in the test split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fexprune.data.layouts import Sample
from fexprune.data.loading import ImageSet, load_image_set
from fexprune.data.splits import describe_split, split_indices
from fexprune.errors import InputError

from data_trees import make_tree


def fake_set(n_movies=12, clips_per_movie=3, frames_per_clip=3, n_classes=7, duplicates=()) -> ImageSet:
    """Samples only (no pixels needed): clip k of movie m has label (m + k) % n_classes."""
    samples = []
    for m in range(n_movies):
        for k in range(clips_per_movie):
            for f in range(frames_per_clip):
                clip = f"Movie{m}_{1000 + k:09d}"
                samples.append(Sample(Path(f"/x/{clip}_{f:08d}.png"), (m + k) % n_classes, f"Movie{m}", clip, None))
    dup = [{"paths": [str(samples[i].path) for i in group], "classes": ["a", "b"]} for group in duplicates]
    return ImageSet(
        images=np.zeros((len(samples), 2, 2), np.uint8),
        labels=np.array([s.label for s in samples], np.int64),
        samples=samples, classes=[f"c{i}" for i in range(n_classes)], root=Path("/x"), layout="images",
        duplicates=dup,
    )


def test_random_split_is_stratified_complete_and_seeded():
    image_set = fake_set()
    train, test = split_indices(image_set, "random", 0.2, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(image_set.samples)))
    assert not set(train) & set(test)
    assert len(test) == int(np.ceil(0.2 * len(image_set.samples)))
    total, in_test = Counter(image_set.labels.tolist()), Counter(image_set.labels[test].tolist())
    for label, count in total.items():
        assert abs(in_test[label] - 0.2 * count) <= 1
    again_train, again_test = split_indices(image_set, "random", 0.2, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert not np.array_equal(test, split_indices(image_set, "random", 0.2, seed=4)[1])


@pytest.mark.parametrize("method", ["movie", "clip"])
def test_grouped_splits_keep_each_group_on_one_side(method):
    image_set = fake_set()
    key = (lambda s: s.movie) if method == "movie" else (lambda s: s.clip)
    for seed in range(5):
        train, test = split_indices(image_set, method, 0.2, seed)
        train_groups = {key(image_set.samples[i]) for i in train}
        test_groups = {key(image_set.samples[i]) for i in test}
        assert train_groups and test_groups and not train_groups & test_groups
        assert 0.1 <= len(test) / len(image_set.samples) <= 0.3
        assert len(set(image_set.labels[test].tolist())) >= 3  # stratified as far as groups allow
    assert np.array_equal(split_indices(image_set, method, 0.2, 1)[1], split_indices(image_set, method, 0.2, 1)[1])


def test_duplicates_stay_in_training():
    image_set = fake_set(duplicates=[(0, 40), (5, 90)])
    for method in ("random", "movie", "clip"):
        for seed in range(8):
            _, test = split_indices(image_set, method, 0.3, seed)
            assert not {0, 40, 5, 90} & set(test.tolist())


def test_movie_split_needs_two_movies_and_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="two movies"):
        split_indices(fake_set(n_movies=1), "movie")
    with pytest.raises(InputError, match="between 0 and 1"):
        split_indices(fake_set(), "random", 1.5)
    with pytest.raises(InputError, match="unknown split"):
        split_indices(fake_set(), "by-actor")


def test_fixed_train_val_split_is_used_whatever_the_method(tmp_path):
    make_tree(tmp_path / "Train", per_class=2)
    make_tree(tmp_path / "Val", per_class=1, start=500)
    image_set = load_image_set(tmp_path, progress=False)
    for method in ("random", "movie"):
        train, test = split_indices(image_set, method, 0.2, seed=1)
        assert {image_set.samples[i].subset for i in test} == {"test"} and len(test) == 7
        assert {image_set.samples[i].subset for i in train} == {"train"} and len(train) == 14
    assert describe_split(image_set, "movie").startswith("fixed")
    assert describe_split(fake_set(), "movie") == "movie"
