"""The clip-neighbour pass: over a whole image set, after the chain has looked at every frame, a frame
with no face takes the box of a frame of its clip that has one (the loader runs it where the chain names
CLIP_NEIGHBOUR)."""

from __future__ import annotations

from fexprune.data.layouts import frame_number
from fexprune.faces.chain import CLIP_NEIGHBOUR, FALLBACK, FaceBox
from fexprune.faces.detectors import RELAXED


def borrow_clip_boxes(samples: list, boxes: list[FaceBox]) -> dict[int, FaceBox]:
    """{index: box} for each fallback frame whose clip has a frame with a sure face (not haar-relaxed):
    the box of the frame nearest it in frame number, marked CLIP_NEIGHBOUR. Frames of one clip are one
    shot a few frames apart (SFEW, and the built-in set), so the face has barely moved; haar-relaxed boxes
    are off the face too often to lend. No label is used. Only SFEW-style names (`<Movie>_<clip>_<frame>`)
    say which frames share a clip; other files neither lend nor borrow."""
    frames = [frame_number(sample.path) for sample in samples]
    by_clip: dict[str, list[int]] = {}
    for index, (sample, box) in enumerate(zip(samples, boxes)):
        if frames[index] is not None and box.detector not in (FALLBACK, CLIP_NEIGHBOUR, RELAXED):
            by_clip.setdefault(sample.clip, []).append(index)
    borrowed = {}
    for index, (sample, box) in enumerate(zip(samples, boxes)):
        donors = by_clip.get(sample.clip) if frames[index] is not None else None
        if box.detector == FALLBACK and donors:
            donor = boxes[min(donors, key=lambda d: (abs(frames[d] - frames[index]), d))]
            borrowed[index] = FaceBox(donor.x, donor.y, donor.w, donor.h, CLIP_NEIGHBOUR)  # its own roll comes later
    return borrowed
