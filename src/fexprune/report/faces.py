"""A contact sheet of face crops, one row per way a frame was cut (its own face, the relaxed pass, a clip
neighbour's box, the typical face region): a glance tells whether the crops a network saw are faces,
which counts alone cannot, on data where no true boxes exist."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from fexprune.faces import CLIP_NEIGHBOUR, FALLBACK, LAYOUT_ALIGNED, RELAXED
from fexprune.outputs import Outputs
from fexprune.runs import atomic_write_bytes

PER_ROW = 8
_KINDS = (("face found", None), (RELAXED, RELAXED), ("clip neighbour's face", CLIP_NEIGHBOUR),
          ("typical face region", FALLBACK), ("the layout's aligned face, whole", LAYOUT_ALIGNED))


def crops_by_kind(images: np.ndarray, faces: list[dict], per_row: int = PER_ROW,
                  names: list[str] | None = None) -> list[tuple[str, int, list[np.ndarray], list[str]]]:
    """(label, count, up to `per_row` crops spread evenly over the set, their names) for each kind present;
    a crop's name is its entry in `names` (the file's name), else its position in the set."""
    special = {kind for _, kind in _KINDS if kind}
    rows = []
    for label, kind in _KINDS:
        index = [i for i, f in enumerate(faces) if (f["detector"] == kind if kind else f["detector"] not in special)]
        if index:
            picked = [index[int(k)] for k in np.linspace(0, len(index) - 1, min(per_row, len(index)))]
            rows.append((label, len(index), [images[i] for i in picked],
                         [names[i] if names is not None else f"#{i}" for i in picked]))
    return rows


def _label(name: str, line: int = 24) -> str:
    """A file name that fits under its crop: on two lines, split at the "_" nearest its middle (SFEW's names
    are movie_clip_frame), the first line cut short at its end and the second at its start if still too long."""
    if len(name) <= line:
        return name
    cuts = [k for k, char in enumerate(name) if char == "_"] or [len(name) // 2]
    cut = min(cuts, key=lambda k: abs(k - len(name) / 2))
    parts = [name[:cut], name[cut:]]
    first, last = parts
    first = first if len(first) <= line else first[:line - 3] + "..."  # the movie's name begins it
    last = last if len(last) <= line else "..." + last[-(line - 3):]  # the frame number ends it
    return f"{first}\n{last}"


def save_face_sheet(path: str | Path, images: np.ndarray, faces: list[dict], names: list[str] | None = None,
                    outputs: Outputs | None = None) -> Path | None:
    """figures/face_crops.png of a face-cropped image set, each crop with its file's name under it and each
    row saying how many of its frames it shows, through `outputs` where it planned `path` (a sheet the user
    named); None when there is nothing to show."""
    rows = crops_by_kind(images, faces, names=names)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = images.shape[1:3]
    figure, axes = plt.subplots(len(rows), PER_ROW, figsize=(PER_ROW * 1.4, len(rows) * (1.4 * height / width + 0.6) + 0.5),
                                squeeze=False)
    for r, (label, count, crops, crop_names) in enumerate(rows):
        for c in range(PER_ROW):
            axis = axes[r, c]
            axis.axis("off")
            if c < len(crops):
                axis.imshow(crops[c], cmap="gray", vmin=0, vmax=255)
                axis.text(0.5, -0.04, _label(crop_names[c]), transform=axis.transAxes, ha="center", va="top", fontsize=5.5)
        axes[r, 0].set_title(f"{label}: {len(crops)} of {count} frames shown", loc="left", fontsize=8)
    shown, total = sum(len(row[2]) for row in rows), sum(row[1] for row in rows)
    figure.suptitle(f"{shown} of {total} face crops shown, spread evenly over each kind; file names under the crops", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    if outputs is not None:
        return outputs.write_bytes(path, buffer.getvalue())
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def write_face_sheet(run_dir: str | Path, image_set) -> Path | None:
    """A run folder's figures/face_crops.png, when its image set was face-cropped."""
    if image_set.faces is None:
        return None
    return save_face_sheet(Path(run_dir) / "figures" / "face_crops.png", image_set.images, image_set.faces,
                           [sample.path.name for sample in image_set.samples])
