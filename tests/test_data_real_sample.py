"""The real SFEW frames ($FEXPRUNE_SFEW, else ~/sfew/Images; skipped where absent): found, decoded, named like SFEW."""

from __future__ import annotations

from fexprune.data.classes import EXPRESSIONS
from fexprune.data.loading import load_image_set
from fexprune.data.splits import has_fixed_split, split_indices


def test_real_sample_loads_with_expression_classes_and_movies(sfew_images):
    image_set = load_image_set(sfew_images, progress=False)
    assert image_set.layout in ("images", "train-val", "aligned")
    assert image_set.classes == list(EXPRESSIONS)
    assert len(image_set.samples) > 0 and image_set.images.shape[1:] == (72, 90)
    named = [s for s in image_set.samples if s.movie != s.path.stem]
    assert len(named) >= 0.9 * len(image_set.samples)  # SFEW names: <Movie>_<clip>_<frame>
    assert len({s.movie for s in image_set.samples}) < len(image_set.samples)
    if len({s.movie for s in image_set.samples}) >= 2 and not has_fixed_split(image_set):
        train, test = split_indices(image_set, "movie", 0.2, 0)
        assert not {image_set.samples[i].movie for i in train} & {image_set.samples[i].movie for i in test}
