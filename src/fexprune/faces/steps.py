"""The names of the steps a face-detection chain may take, and the chains the commands offer: plain
tuples of names, so the command line can show them without loading OpenCV or dlib."""

from __future__ import annotations

RELAXED = "haar-relaxed"  # the frontal cascades again, no neighbour vote
ROTATED = "haar-rotated"  # the strict frontal cascades on the frame turned by a few angles: tilted heads
MTCNN = "mtcnn"  # three small CNNs, weights from the facenet-pytorch wheel; gives eye landmarks
FRAME_DETECTOR_NAMES = ("haar-default", "haar-alt2", "haar-profile", "dlib-hog", MTCNN, ROTATED, RELAXED)
FALLBACK = "fallback"
CLIP_NEIGHBOUR = "clip-neighbour"  # a frame without a face takes a clip neighbour's box: a pass over the set
DETECTORS = (*FRAME_DETECTOR_NAMES, CLIP_NEIGHBOUR)  # every step a chain may name
# OpenCV's cascades and dlib: boxes framed as OpenCV frames faces, as FER2013's faces were cut, so the
# pretrained recipes keep it. dlib-hog runs only where dlib is installed.
STRICT_CHAIN = ("haar-default", "haar-alt2", "dlib-hog", "haar-profile")
# mtcnn first (it also marks the landmarks --eye-align maps to a template), then the strict chain, tilted
# heads, and a clip neighbour's box: on the real SFEW frames 10 of 675 fall back to the typical region
# (the strict chain: 95). mtcnn drops out where facenet-pytorch is not installed (default_chain).
DEFAULT_CHAIN = (MTCNN, *STRICT_CHAIN, ROTATED, CLIP_NEIGHBOUR)
# haar-relaxed boxes put more crops on drawn faces, but on real frames many are not faces: opt-in.
FULL_CHAIN = STRICT_CHAIN + (RELAXED, CLIP_NEIGHBOUR)
