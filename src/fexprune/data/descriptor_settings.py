"""The LPQ + PHOG descriptors' settings (fexprune.data.descriptors), apart from the code that computes them
so the command line can show their defaults without loading SciPy and scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DescriptorSettings:
    lpq_window: int = 7
    phog_bins: int = 8
    phog_angle: float = 360.0  # 360: signed orientations; 180: unsigned
    phog_levels: int = 3  # pyramid levels 0..L
    components: int = 5  # PCA components per descriptor
    image_size: tuple[int, int] = (180, 144)  # (width, height) to load images at
