"""A run's data as the network sees it: its image set (fexprune.faces.loading.load_images, which cuts faces)
split and normalised; and the margins the test faces are cut again at for test-time averaging."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fexprune.data.loading import ImageSet
from fexprune.data.preprocess import normalize_images
from fexprune.data.splits import split_indices
from fexprune.errors import InputError


@dataclass
class PreparedData:
    """A data set split and normalised, as the network sees it."""

    image_set: ImageSet
    train_index: np.ndarray
    test_index: np.ndarray
    x_train: torch.Tensor  # (N, 1, H, W) float32
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    preprocessing: dict = field(default_factory=dict)

    def views_at(self, margins: list[float], split: str = "test") -> list[torch.Tensor]:
        """The `split` ("train" or "test") cut again at each of `margins` (see cut_margins), normalised
        as in training, on the data's device: the other views a recipe trains or scores on."""
        index, x = (self.test_index, self.x_test) if split == "test" else (self.train_index, self.x_train)
        views = []
        for margin in margins:
            cut, _ = normalize_images(self.image_set.at_margin(margin)[index], self.preprocessing["normalize"],
                                      self.preprocessing["stats"])
            views.append(torch.from_numpy(cut).to(x.device))
        return views

    def to(self, device: torch.device) -> "PreparedData":
        """The same data with its tensors on `device`, where they stay for the whole run."""
        return replace(self, **{name: getattr(self, name).to(device) for name in ("x_train", "y_train", "x_test", "y_test")})


def check_class_coverage(image_set: ImageSet, train_index: np.ndarray) -> None:
    """Refuse a split that leaves a class of the data set without a training image: no recipe can learn it,
    and its test images would be scored wrong without a word (a probe reports 0% on them)."""
    labels = np.asarray(image_set.labels)
    held = np.bincount(labels, minlength=len(image_set.classes))
    trained = np.bincount(labels[np.asarray(train_index, dtype=np.int64)], minlength=len(image_set.classes))
    missing = [image_set.classes[k] for k in range(len(image_set.classes)) if held[k] and not trained[k]]
    if missing:
        raise InputError(f"the split leaves {len(missing)} class(es) without a training image ({', '.join(missing)}: "
                         "all their images are in the test split); add images of them, or lower --test-fraction",
                         image_set.root)


def prepare_data(config, image_set: ImageSet, indices: tuple[np.ndarray, np.ndarray] | None = None) -> PreparedData:
    """Split and normalise `config`'s image set; the same config gives the same tensors.

    `indices` (train, test) replace the configured split (cross-validation folds).
    """
    if indices is None:
        train_index, test_index = split_indices(image_set, config.split, config.test_fraction, config.seed)
    else:
        train_index, test_index = (np.asarray(i, dtype=np.int64) for i in indices)
    if len(train_index) == 0 or len(test_index) == 0:
        raise InputError(f"split left {len(train_index)} training and {len(test_index)} test images", image_set.root)
    check_class_coverage(image_set, train_index)
    x_train, stats = normalize_images(image_set.images[train_index], config.normalize)
    x_test, _ = normalize_images(image_set.images[test_index], config.normalize, stats)
    preprocessing = {
        "image_size": list(config.image_size),
        "grayscale": True,
        "normalize": config.normalize,
        "stats": stats,
        "classes": list(image_set.classes),
    }
    if config.face_crop:
        # None where the layout's own aligned faces were used whole: predict then takes new images whole too
        preprocessing["face_crop"] = image_set.cut
    return PreparedData(
        image_set=image_set,
        train_index=train_index,
        test_index=test_index,
        x_train=torch.from_numpy(x_train),
        y_train=torch.from_numpy(image_set.labels[train_index]).long(),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(image_set.labels[test_index]).long(),
        preprocessing=preprocessing,
    )


SPLIT_FILE = "split.json"  # in a train run's folder: split_record


def _file_names(image_set: ImageSet) -> list[str]:
    """Each sample's path under the data set's root, as split.json names it."""
    return [s.path.relative_to(image_set.root).as_posix() for s in image_set.samples]


def split_record(data: PreparedData) -> dict:
    """The split by file, as paths under the data set's root: a run keeps it as split.json, so reopening it
    (prune, resume) takes the frames it was trained and tested on, whatever the split code has become."""
    names = _file_names(data.image_set)
    return {"train": [names[int(i)] for i in data.train_index], "test": [names[int(i)] for i in data.test_index]}


def recorded_split(image_set: ImageSet, record: dict, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into `image_set` of the files a split record names; an InputError naming
    `source` where the record is malformed or names a file the data set no longer holds."""
    sides = ("train", "test")
    if not (isinstance(record, dict) and all(isinstance(record.get(side), list) for side in sides)):
        raise InputError('is not a split record ({"train": [file, ...], "test": [file, ...]})', source)
    position = {name: k for k, name in enumerate(_file_names(image_set))}
    missing = [name for side in sides for name in record[side] if name not in position]
    if missing:
        raise InputError(f"names {len(missing)} file(s) the data set no longer holds ({missing[0]} ...); "
                         "the run cannot be reopened on this data", source)
    return tuple(np.asarray([position[name] for name in record[side]], dtype=np.int64) for side in sides)


def cut_margins(config, data: PreparedData, spread: float) -> list[float]:
    """The other margins each test face is cut at for test-time averaging: margin -/+ `spread`; none
    without face crops, or where the layout's own aligned faces were used whole."""
    if not config.face_crop or spread <= 0 or data.image_set.given_faces:
        return []
    return [round(max(0.0, config.face_margin - spread), 6), round(config.face_margin + spread, 6)]
