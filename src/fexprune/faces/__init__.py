"""Face detection before resizing (the paper's own future work): find the face, crop around it.

steps: the names of the chain's steps and the chains offered (no OpenCV: the command line reads them);
detectors: the detectors a chain can name; chain: running them on a frame and ranking the boxes;
clip_neighbour: the pass over a whole set that gives a faceless frame a clip neighbour's box; crop: the
crop the loader is handed (FaceCropper) and its box cache; align: the eyes' roll; mtcnn: the CNN
detector (imports torch, so it is not imported here); check: how a chain cut a set's faces; loading: the
data loader handed a FaceCropper (data never imports faces), a run's images as its config names them.

Names are loaded on first use, so `from fexprune.faces import DEFAULT_CHAIN` does not load OpenCV.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "fexprune.faces.steps": ["CLIP_NEIGHBOUR", "DEFAULT_CHAIN", "DETECTORS", "FALLBACK", "FULL_CHAIN", "MTCNN", "RELAXED",
                             "ROTATED", "STRICT_CHAIN"],
    "fexprune.faces.chain": ["FaceBox", "best_face", "chain_name", "detect_faces", "face_or_fallback", "fallback_box", "iou"],
    "fexprune.faces.check": ["check_faces", "crop_kind", "face_summary", "read_true_boxes"],
    "fexprune.faces.clip_neighbour": ["borrow_clip_boxes"],
    "fexprune.faces.crop": ["BoxCache", "FaceCropper", "crop_face", "crop_options", "levelled"],
    "fexprune.data.loading": ["LAYOUT_ALIGNED"],  # a kind of crop that data marks: the layout's own faces, used whole
    "fexprune.faces.detectors": ["FRAME_DETECTORS", "ROTATIONS"],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str):
    if name not in _HOME_OF:
        raise AttributeError(f"module 'fexprune.faces' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME_OF[name]), name)
    globals()[name] = value
    return value
