"""Face detection before resizing (the paper's own future work): find the face, crop around it.

detectors: the detectors a chain can name; chain: running them on a frame and ranking the boxes;
clip_neighbour: the pass over a whole set that gives a faceless frame a clip neighbour's box; crop: the
crop the loader is handed (FaceCropper) and its box cache; align: the eyes' roll; mtcnn: the CNN
detector (imports torch, so it is not imported here); check: how a chain cut a set's faces.
"""

from fexprune.faces.chain import (CLIP_NEIGHBOUR, DEFAULT_CHAIN, DETECTORS, FALLBACK, FULL_CHAIN, STRICT_CHAIN, FaceBox, best_face,
                                  chain_name, detect_faces, face_or_fallback, fallback_box, iou)
from fexprune.faces.check import check_faces, crop_kind, face_summary, read_true_boxes
from fexprune.faces.clip_neighbour import borrow_clip_boxes
from fexprune.faces.crop import LAYOUT_ALIGNED, BoxCache, FaceCropper, crop_face, crop_options, levelled
from fexprune.faces.detectors import FRAME_DETECTORS, MTCNN, RELAXED, ROTATED, ROTATIONS

__all__ = [
    "BoxCache", "CLIP_NEIGHBOUR", "DEFAULT_CHAIN", "DETECTORS", "FALLBACK", "FRAME_DETECTORS", "FULL_CHAIN", "STRICT_CHAIN", "FaceBox",
    "FaceCropper", "LAYOUT_ALIGNED", "MTCNN", "RELAXED", "ROTATED", "ROTATIONS", "best_face", "borrow_clip_boxes",
    "chain_name", "check_faces", "crop_face", "crop_kind", "crop_options", "detect_faces", "face_or_fallback",
    "face_summary", "fallback_box", "iou", "levelled", "read_true_boxes",
]
