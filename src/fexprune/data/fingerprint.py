"""A short hash that says whether a data set is still the one a run started on: resuming on changed data
would continue training on another split without a word."""

from __future__ import annotations

import hashlib
import os

from fexprune.data.loading import ImageSet


def data_fingerprint(image_set: ImageSet) -> str:
    """sha256 of the sorted (path relative to the root, size in bytes, class) of every kept image, and of
    every skipped file's path: renaming, resizing, relabelling, adding or removing a file changes it.
    Sizes and names, not contents: reading every file again would cost what decoding them costs."""
    rows = []
    for sample in image_set.samples:
        try:
            size = os.stat(sample.path).st_size
        except OSError:
            size = -1
        rows.append(f"{os.path.relpath(sample.path, image_set.root)}\0{size}\0{image_set.classes[sample.label]}")
    rows += [f"{os.path.relpath(item['path'], image_set.root)}\0skipped" for item in image_set.skipped]
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(row.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()[:16]
