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

import numpy as np
from tqdm import tqdm

from fexprune.data import cache
from fexprune.data.layouts import Sample, discover
from fexprune.data.preprocess import read_image, to_gray_resized
from fexprune.errors import InputError


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
    faces: list[dict] | None = None  # with face_crop: the box each image was cut from (detector "fallback": none found)
    eye_align: bool = False  # with face_crop: each face was turned to level its eyes where a pair was found

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def given_faces(self) -> bool:
        """Face-cropped by the layout itself (its aligned faces, used whole by load_image_set): nothing was cut."""
        from fexprune.faces.crop import LAYOUT_ALIGNED

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
        if self.faces is not None:
            from fexprune.faces.check import face_summary

            summary["face_crop"] = face_summary(self.faces, self.samples, self.eye_align)
        return summary


def load_image_set(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] = (90, 72),
    variant: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    use_cache: bool = True,
    face_crop: bool = False,
    face_margin: float = 0.2,
    detectors: tuple[str, ...] | None = None,
    eye_align: bool = False,
) -> ImageSet:
    """Discover, decode, grayscale and resize every image under `path` (width, height = `size`).

    A second call on unchanged files reads the cache and decodes nothing. InputError when the path
    does not exist or holds no readable image. `face_crop`: cut each frame to its detected face (plus
    `face_margin`) before resizing, with `detectors` (default fexprune.faces.DEFAULT_CHAIN);
    `eye_align`: turn each detected face so its eyes are level (fexprune.faces.align). The aligned-faces
    layout holds faces its makers cut and aligned already: they are used whole, not detected and cut again
    (on such images the typical-frame fallback region would be the eyes alone), and marked LAYOUT_ALIGNED.
    """
    size = (int(size[0]), int(size[1]))
    if size[0] < 1 or size[1] < 1:
        raise InputError(f"image size must be positive, got {size[0]}x{size[1]}")
    found = discover(path, variant)
    files = [s.path for s in found.samples] + [Path(item["path"]) for item in found.skipped]
    options = {"size": list(size), "variant": variant, "layout": found.layout, "classes": found.classes}
    given_faces = face_crop and found.layout == "aligned"
    face_crop = face_crop and not given_faces
    cropper = None
    if face_crop:
        from fexprune.faces.crop import FaceCropper

        cropper = FaceCropper(size, face_margin, detectors, eye_align=eye_align)
        options["face_crop"] = cropper.options()
    entry_path = Path(cache_dir or cache.default_cache_dir()) / f"{cache.cache_key(files, options)}.npz"
    if use_cache:
        entry = cache.read_entry(entry_path)
        if entry is not None:
            if cropper is None or "faces" in entry[2]:
                image_set = _from_entry(*entry, found.root, found.layout, found.classes)
                image_set.eye_align = eye_align and cropper is not None
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
    if cropper is not None and cropper.borrows_clip_boxes:  # faceless frames take a clip neighbour's box
        from fexprune.faces.chain import FaceBox
        from fexprune.faces.clip_neighbour import borrow_clip_boxes

        for index, box in borrow_clip_boxes(kept, [FaceBox.from_dict(f) for f in faces]).items():
            images[index], box = cropper.recrop(kept[index].path, box)
            faces[index] = box.to_dict()
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
        eye_align=eye_align and cropper is not None,
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
    from fexprune.faces.crop import LAYOUT_ALIGNED

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
