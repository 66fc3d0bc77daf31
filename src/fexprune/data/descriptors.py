"""LPQ and PHOG descriptors reduced by PCA to SFEW.xlsx's ten values, from any image set.

LPQ (Ojansivu & Heikkila 2008): a short-term Fourier transform over a w x w window at the four
lowest non-zero frequencies (a,0), (0,a), (a,a), (a,-a) with a = 1/w; the signs of the real and
imaginary parts give an 8-bit code per pixel, summarised as a 256-bin histogram. The uniform
window is separable, so the STFT is two 1-D complex convolutions per frequency.

PHOG (Bosch, Zisserman & Munoz 2007): gradient orientations binned and weighted by gradient
magnitude, histogrammed in every cell of a spatial pyramid (level l: 2^l x 2^l cells), all
concatenated and normalised to sum 1. Unlike Bosch et al. we weight every pixel by its gradient
magnitude instead of only Canny edge pixels (no edge-detector thresholds to pick).

Both are reduced with PCA to 5 components each, giving name, label, 5 LPQ, 5 PHOG per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.ndimage import sobel
from scipy.signal import convolve2d
from sklearn.decomposition import PCA

from fexprune.data.builtin import resolve_data
from fexprune.data.descriptor_settings import DescriptorSettings
from fexprune.data.classes import EXPRESSIONS
from fexprune.data.loading import load_image_set
from fexprune.data.tables import FeatureTable
from fexprune.errors import InputError


def lpq_codes(image: np.ndarray, window: int = 7) -> np.ndarray:
    """(H, W) image -> (H-w+1, W-w+1) uint8 LPQ codes (valid region only)."""
    x = np.asarray(image, dtype=np.float64)
    x = (x - x.mean()) / 255.0  # a constant image becomes exactly 0: every bit 0, one bin
    r = (window - 1) / 2
    offsets = np.arange(-r, r + 1)
    w0 = np.ones(window, dtype=np.complex128)  # DC along one axis
    w1 = np.exp(-2j * np.pi * offsets / window)  # frequency a = 1/window
    w2 = np.conj(w1)  # frequency -a

    def stft(along_rows: np.ndarray, along_cols: np.ndarray) -> np.ndarray:
        tmp = convolve2d(x, along_rows[:, None], mode="valid")  # (H-w+1, W)
        return convolve2d(tmp, along_cols[None, :], mode="valid")  # (H-w+1, W-w+1)

    responses = [stft(w0, w1), stft(w1, w0), stft(w1, w1), stft(w1, w2)]  # (a,0) (0,a) (a,a) (a,-a)
    parts = [f.real for f in responses] + [f.imag for f in responses]
    eps = 1e-10  # rounding noise around an exact zero response must not flip a bit
    codes = np.zeros(parts[0].shape, dtype=np.uint8)
    for bit, part in enumerate(parts):
        codes |= ((part > eps).astype(np.uint8) << bit)
    return codes


def lpq_histogram(image: np.ndarray, window: int = 7) -> np.ndarray:
    """256-bin histogram of LPQ codes, normalised to sum 1."""
    counts = np.bincount(lpq_codes(image, window).ravel(), minlength=256).astype(np.float64)
    return counts / counts.sum()


def phog_histogram(image: np.ndarray, bins: int = 8, angle: float = 360.0, levels: int = 3) -> np.ndarray:
    """Concatenated orientation histograms over pyramid levels 0..levels, normalised to sum 1.

    Length bins * sum_l 4^l (8 bins, 3 levels: 680). A blank image gives all zeros.
    """
    x = np.asarray(image, dtype=np.float64)
    gy, gx = sobel(x, axis=0), sobel(x, axis=1)
    magnitude = np.hypot(gx, gy)
    orientation = np.degrees(np.arctan2(gy, gx)) % angle  # [0, angle)
    bin_index = np.minimum((orientation / angle * bins).astype(np.int64), bins - 1)
    h, w = x.shape
    rows, cols = np.arange(h), np.arange(w)
    parts = []
    for level in range(levels + 1):
        cells = 2**level
        cell_row = np.minimum(rows * cells // h, cells - 1)[:, None]  # (H, 1)
        cell_col = np.minimum(cols * cells // w, cells - 1)[None, :]  # (1, W)
        index = (cell_row * cells + cell_col) * bins + bin_index  # (H, W)
        parts.append(np.bincount(index.ravel(), weights=magnitude.ravel(), minlength=cells * cells * bins))
    histogram = np.concatenate(parts)
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def descriptor_matrices(images: np.ndarray, settings: DescriptorSettings = DescriptorSettings()) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) images -> (N, 256) LPQ and (N, 680) PHOG histograms."""
    lpq = np.stack([lpq_histogram(img, settings.lpq_window) for img in images])
    phog = np.stack([phog_histogram(img, settings.phog_bins, settings.phog_angle, settings.phog_levels) for img in images])
    return lpq, phog


def reduce(matrix: np.ndarray, components: int) -> np.ndarray:
    """PCA to `components` columns (full SVD: deterministic, signs fixed by scikit-learn)."""
    if matrix.shape[0] < components:
        raise InputError(f"need at least {components} images for PCA to {components} components, got {matrix.shape[0]}")
    return PCA(n_components=components, svd_solver="full").fit_transform(matrix)


def feature_table_from_images(
    images: np.ndarray,
    labels: Sequence[int],
    names: Sequence[str],
    settings: DescriptorSettings = DescriptorSettings(),
    source: str = "",
) -> FeatureTable:
    """A table shaped like SFEW.xlsx: `labels` are 1-based; 5 LPQ then 5 PHOG PCA components."""
    lpq, phog = descriptor_matrices(images, settings)
    k = settings.components
    features = np.column_stack([reduce(lpq, k), reduce(phog, k)])
    return FeatureTable(
        names=[str(n) for n in names],
        labels=np.asarray(labels, dtype=np.int64),
        features=features,
        feature_names=[f"LPQ {i + 1}" for i in range(k)] + [f"PHOG {i + 1}" for i in range(k)],
        source=source,
    )


def feature_table_from_data(path: str | Path | None, settings: DescriptorSettings = DescriptorSettings(), progress: bool = True) -> FeatureTable:
    """Load an image data set (the built-in one when `path` is None) and describe every image.

    Labels follow the paper's 1..7 order (Angry .. Surprise) when the classes are the seven
    expressions, otherwise the data set's own class order, 1-based.
    """
    root = resolve_data(path, progress)
    image_set = load_image_set(root, size=settings.image_size, progress=progress)
    if len(image_set.images) == 0:
        raise InputError("no images to describe", root)
    order = {name: i for i, name in enumerate(EXPRESSIONS)}
    if all(c in order for c in image_set.classes):
        labels = [order[image_set.classes[k]] + 1 for k in image_set.labels]
    else:
        labels = [int(k) + 1 for k in image_set.labels]
    names = [_sample_name(s.path, root) for s in image_set.samples]
    return feature_table_from_images(image_set.images, labels, names, settings, source=str(root))


def _sample_name(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def table_rows(table: FeatureTable) -> list[dict]:
    """Rows for a CSV shaped like SFEW.xlsx: name, label, then the ten values."""
    return [
        {"name": name, "label": int(label), **{n: float(v) for n, v in zip(table.feature_names, row)}}
        for name, label, row in zip(table.names, table.labels, table.features)
    ]
