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


def crops_by_kind(images: np.ndarray, faces: list[dict], per_row: int = PER_ROW) -> list[tuple[str, int, list[np.ndarray]]]:
    """(label, count, up to `per_row` crops spread evenly over the set) for each kind present."""
    special = {kind for _, kind in _KINDS if kind}
    rows = []
    for label, kind in _KINDS:
        index = [i for i, f in enumerate(faces) if (f["detector"] == kind if kind else f["detector"] not in special)]
        if index:
            picked = [index[int(k)] for k in np.linspace(0, len(index) - 1, min(per_row, len(index)))]
            rows.append((label, len(index), [images[i] for i in picked]))
    return rows


def save_face_sheet(path: str | Path, images: np.ndarray, faces: list[dict], outputs: Outputs | None = None) -> Path | None:
    """figures/face_crops.png of a face-cropped image set, through `outputs` where it planned `path` (a
    sheet the user named); None when there is nothing to show."""
    rows = crops_by_kind(images, faces)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = images.shape[1:3]
    figure, axes = plt.subplots(len(rows), PER_ROW, figsize=(PER_ROW * 1.2, len(rows) * 1.2 * height / width + 0.4), squeeze=False)
    for r, (label, count, crops) in enumerate(rows):
        for c in range(PER_ROW):
            axis = axes[r, c]
            axis.axis("off")
            if c < len(crops):
                axis.imshow(crops[c], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_title(f"{label}: {count} frames", loc="left", fontsize=8)
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
    return save_face_sheet(Path(run_dir) / "figures" / "face_crops.png", image_set.images, image_set.faces)
