"""Load an image data set from a path into one uint8 array, with a cache and an honest account.

Every file found is either an image in the set or listed in `skipped` with its reason; frames whose
bytes are identical under two or more classes are listed in `duplicates` (the real SFEW set has one).
"""

from __future__ import annotations

import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from fexprune.data import cache
from fexprune.data.layouts import Sample, discover
from fexprune.data.preprocess import read_image, to_gray_resized
from fexprune.errors import InputError

LAYOUT_ALIGNED = "layout-aligned"  # the data set's own aligned faces (SFEW's *_Aligned_Faces): used as they are


@dataclass
class ImageSet:
    images: np.ndarray  # (N, H, W) uint8 grayscale
    labels: np.ndarray  # (N,) int64
    samples: list[Sample]  # aligned with images
    classes: list[str]
    root: Path
    layout: str  # "images" | "train-val" | "aligned" | "generic"
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    duplicates: list[dict] = field(default_factory=list)  # {"paths", "classes"}
    from_cache: bool = False
    faces: list[dict] | None = None  # with face crops: the box each image was cut from (detector "fallback": none found)
    cut: dict | None = None  # how the faces were cut (the cropper's options); None where nothing was cut
    face_account: dict | None = None  # with face crops: how they were found (fexprune.faces.face_summary)
    # the same set cut at another face margin (handed in by the loader that cut it: faces builds on data)
    recut: Callable[[float], "ImageSet"] | None = field(default=None, repr=False, compare=False)
    _margin_cuts: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.samples)

    def at_margin(self, margin: float) -> np.ndarray:
        """(N, H, W) uint8: every image cut again at face `margin`; cut once per margin, then kept, so
        cross-validation folds and test-time views share it."""
        if margin not in self._margin_cuts:
            if self.recut is None:
                raise ValueError("this image set was not cut from frames; it has no other margins")
            other = self.recut(margin)
            if [s.path for s in other.samples] != [s.path for s in self.samples]:
                raise InputError("the images changed while the run was being scored", other.root)
            self._margin_cuts[margin] = other.images
        return self._margin_cuts[margin]

    @property
    def given_faces(self) -> bool:
        """Face-cropped by the layout itself (its aligned faces, used whole by load_image_set): nothing was cut."""
        return bool(self.faces) and self.faces[0]["detector"] == LAYOUT_ALIGNED

    def summary(self) -> dict:
        """What a results.json or report needs to say about the data."""
        counts = Counter(int(label) for label in self.labels)
        summary = {
            "root": str(self.root),
            "layout": self.layout,
            "n_images": len(self.samples),
            "image_size": [int(self.images.shape[2]), int(self.images.shape[1])] if self.images.ndim == 3 else None,
            "classes": list(self.classes),
            "counts": {name: counts.get(index, 0) for index, name in enumerate(self.classes)},
            "n_movies": len({s.movie for s in self.samples}),
            "n_clips": len({s.clip for s in self.samples}),
            "n_skipped": len(self.skipped),
            "skipped": list(self.skipped),
            "n_duplicates": len(self.duplicates),
            "duplicates": list(self.duplicates),
            "from_cache": self.from_cache,
        }
        subsets = Counter(s.subset for s in self.samples if s.subset)
        if subsets:
            summary["subsets"] = dict(sorted(subsets.items()))
        if self.face_account is not None:
            summary["face_crop"] = self.face_account
        return summary


def load_image_set(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] = (90, 72),
    variant: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    use_cache: bool = True,
    face_cropper: Callable | None = None,
) -> ImageSet:
    """Discover, decode, grayscale and resize every image under `path` (width, height = `size`).

    A second call on unchanged files reads the cache and decodes nothing. InputError when the path
    does not exist or holds no readable image. `face_cropper(size)` builds what cuts each frame to its face
    before resizing (fexprune.faces.FaceCropper; fexprune.faces.loading.load_face_crops hands it over: data
    never imports faces, which builds on data). It is built only once the layout is known: the aligned-faces
    layout holds faces its makers cut and aligned already, used whole, not detected and cut again (on such
    images the typical-frame fallback region would be the eyes alone), and marked LAYOUT_ALIGNED.
    """
    size = (int(size[0]), int(size[1]))
    if size[0] < 1 or size[1] < 1:
        raise InputError(f"image size must be positive, got {size[0]}x{size[1]}")
    found = discover(path, variant)
    files = [s.path for s in found.samples] + [Path(item["path"]) for item in found.skipped]
    options = {"size": list(size), "variant": variant, "layout": found.layout, "classes": found.classes}
    given_faces = face_cropper is not None and found.layout == "aligned"
    cropper = None
    if face_cropper is not None and not given_faces:
        cropper = face_cropper(size)
        options["face_crop"] = cropper.options()
    entry_path = Path(cache_dir or cache.default_cache_dir()) / f"{cache.cache_key(files, options)}.npz"
    if use_cache:
        entry = cache.read_entry(entry_path)
        if entry is not None:
            if cropper is None or "faces" in entry[2]:
                image_set = _from_entry(*entry, found.root, found.layout, found.classes)
                image_set.cut = options.get("face_crop")
                return _mark_given_faces(image_set) if given_faces else image_set

    images, kept, skipped, digests, faces = [], [], list(found.skipped), [], []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # Pillow and zlib release the GIL
        if cropper is None:
            decoded = pool.map(lambda sample: _decode(sample.path, size), found.samples)
        else:  # the same, cut to the face first; boxes come from (and go to) the box cache
            decoded = pool.map(lambda sample: cropper.decode(sample.path), found.samples)
        bar = tqdm(decoded, total=len(found.samples), desc="decoding images" if cropper is None else "detecting faces", unit="img", file=sys.stderr,
                   disable=not progress, leave=False)
        for sample, (pixels, digest, reason) in zip(found.samples, bar):
            if pixels is None:
                skipped.append({"path": str(sample.path), "reason": reason})
                continue
            if cropper is not None:
                pixels, box = pixels
                faces.append(box.to_dict())
            images.append(pixels)
            kept.append(sample)
            digests.append(digest)
    if cropper is not None:  # the pass over the whole set (a clip neighbour's box for a faceless frame)
        cropper.borrow_clip_boxes(kept, images, faces)
    if not kept:
        raise InputError(f"holds no readable image ({len(skipped)} files skipped: {skipped[0]['reason'] if skipped else 'none found'})", found.root)

    image_set = ImageSet(
        images=np.stack(images),
        labels=np.array([s.label for s in kept], dtype=np.int64),
        samples=kept,
        classes=found.classes,
        root=found.root,
        layout=found.layout,
        skipped=skipped,
        duplicates=find_duplicates(kept, digests, found.classes),
        faces=faces if cropper is not None else None,
        cut=options.get("face_crop"),
    )
    if cropper is not None:
        cropper.save()
    if use_cache:
        try:
            cache.write_entry(entry_path, image_set.images, image_set.labels, _meta(image_set))
        except OSError as error:  # a read-only cache must not stop the run
            print(f"fexprune: warning: could not write cache {entry_path}: {error}", file=sys.stderr)
    return _mark_given_faces(image_set) if given_faces else image_set


def _mark_given_faces(image_set: ImageSet) -> ImageSet:
    image_set.faces = [{"detector": LAYOUT_ALIGNED} for _ in image_set.samples]
    return image_set


def _decode(path: Path, size: tuple[int, int]) -> tuple[np.ndarray | None, str, str]:
    """(pixels, content hash, "") or (None, "", reason the file is skipped)."""
    image, digest, reason = read_image(path)
    return (None if image is None else to_gray_resized(image, size)), digest, reason


def find_duplicates(samples: list[Sample], digests: list[str], classes: list[str]) -> list[dict]:
    """Groups of identical files that carry two or more different labels."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for sample, digest in zip(samples, digests):
        groups[digest].append(sample)
    duplicates = []
    for members in groups.values():
        labels = sorted({s.label for s in members})
        if len(labels) > 1:
            duplicates.append({"paths": [str(s.path) for s in members], "classes": [classes[i] for i in labels]})
    return sorted(duplicates, key=lambda d: d["paths"])


def duplicate_indices(image_set: ImageSet) -> set[int]:
    """Indices of the samples in `image_set.duplicates`."""
    paths = {p for group in image_set.duplicates for p in group["paths"]}
    return {i for i, s in enumerate(image_set.samples) if str(s.path) in paths}


def _meta(image_set: ImageSet) -> dict:
    """The cache entry's account of an image set, every path relative to its root: the entry is keyed by
    the files themselves, so it serves the same folder however it is named (relatively, absolutely, through
    a link) and its paths take that root's form."""
    def name(path) -> str:
        return os.path.relpath(path, image_set.root)

    meta = {
        "samples": [[name(s.path), s.label, s.movie, s.clip, s.subset] for s in image_set.samples],
        "skipped": [{**item, "path": name(item["path"])} for item in image_set.skipped],
        "duplicates": [{**group, "paths": [name(p) for p in group["paths"]]} for group in image_set.duplicates],
    }
    if image_set.faces is not None:
        meta["faces"] = image_set.faces
    return meta


def _from_entry(images, labels, meta, root, layout, classes) -> ImageSet:
    def path(name: str) -> Path:
        return Path(root) / name

    samples = [Sample(path(p), int(label), movie, clip, subset) for p, label, movie, clip, subset in meta["samples"]]
    return ImageSet(
        images=images,
        labels=labels.astype(np.int64),
        samples=samples,
        classes=list(classes),
        root=root,
        layout=layout,
        skipped=[{**item, "path": str(path(item["path"]))} for item in meta["skipped"]],
        duplicates=[{**group, "paths": [str(path(p)) for p in group["paths"]]} for group in meta["duplicates"]],
        from_cache=True,
        faces=meta.get("faces"),
    )
