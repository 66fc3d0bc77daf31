"""Image sets cut to faces: the data loader (fexprune.data.loading) handed a FaceCropper. The loading that
needs faces lives here, not in data/, because faces builds on data: a run's images as its config names
them (load_images, which hands each set the way to cut itself again at another margin), and the config
with its detector chain spelled out (with_chain)."""

from __future__ import annotations

import dataclasses
import functools
import os


from fexprune.data.builtin import resolve_data
from fexprune.data.loading import ImageSet, load_image_set
from fexprune.errors import InputError
from fexprune.faces.chain import default_chain
from fexprune.faces.check import face_summary
from fexprune.faces.crop import FaceCropper


def load_face_crops(path: str | os.PathLike, *, face_margin: float = 0.2, detectors: tuple[str, ...] | None = None,
                    eye_align: bool = False, **loading) -> ImageSet:
    """The image set under `path` (load_image_set's `loading` keywords: size, variant, cache, progress) with
    each frame cut to its detected face plus `face_margin` before resizing, found by `detectors` (default
    fexprune.faces.DEFAULT_CHAIN); `eye_align`: each detected face turned so its eyes are level
    (fexprune.faces.align). The aligned-faces layout's images are faces already: used whole."""
    cropper = functools.partial(FaceCropper, margin=face_margin, detectors=detectors, eye_align=eye_align)
    image_set = load_image_set(path, face_cropper=cropper, **loading)
    image_set.face_account = face_summary(image_set.faces, image_set.samples, eye_align and not image_set.given_faces)
    return image_set


def load_images(config, progress: bool = True, face_margin: float | None = None) -> ImageSet:
    """The image set `config` names, cut to faces as it asks (at `face_margin` instead of its own when given)."""
    path = resolve_data(config.data, progress)
    loading = {"size": tuple(config.image_size), "variant": config.variant, "progress": progress}
    faces = config.face_options()
    if faces and face_margin is not None:
        faces["face_margin"] = face_margin
    image_set = load_face_crops(path, **faces, **loading) if faces else load_image_set(path, **loading)
    if faces:
        image_set.recut = functools.partial(load_images, config, False)
    present = sorted({image_set.classes[int(label)] for label in image_set.labels})
    if len(present) < 2:  # one class trains to 100% test accuracy and says nothing
        raise InputError(f"holds images of {len(present)} class only ({', '.join(present)}); "
                         "a classifier needs at least 2 classes", image_set.root)
    return image_set


def with_chain(config):
    """`config` with the default detector chain spelled out where a face-crop run names none: the run then
    records the chain it cut with, and prune, resume and predict cut the same faces on a machine whose
    default differs (mtcnn missing) or after the default changes."""
    if not config.face_crop or config.detectors is not None:
        return config
    return dataclasses.replace(config, detectors=default_chain())
