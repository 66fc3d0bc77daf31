"""The PIC experiment's settings (fexprune.experiments.pic), apart from the code that runs it so the
command line can show their defaults without loading torch."""

from __future__ import annotations

from dataclasses import dataclass

from fexprune.data.outliers import ROBUST_Z
from fexprune.errors import InputError

NORMALIZERS = ("none", "minmax", "zscore")
MODES = ("progressive", "threshold")


@dataclass
class PICConfig:
    features: str | None = None  # a feature table (xlsx/CSV); else images from `data`
    data: str | None = None  # an image data set; None with no table: the built-in data
    normalize: str = "minmax"
    mode: str = "progressive"
    hidden: int = 10
    min_units: int = 2
    epochs: int = 2000
    retrain_epochs: int = 300
    learning_rate: float = 0.01
    test_fraction: float = 0.2
    seed: int = 0
    include_label: bool = True  # the paper kept the label as one of its 11 inputs
    similar_below: float = 15.0
    complementary_above: float = 165.0
    dead_tolerance: float = 1e-3
    image_size: tuple[int, int] = (180, 144)  # (width, height) for descriptors from images
    outlier_z: float = ROBUST_Z  # rows with a value this many robust sds out are flagged (fexprune.data.outliers)
    drop_outliers: bool = False  # leave flagged rows out; kept by default, as the paper kept every row
    device: str = "cpu"  # the autoencoder is tiny: a GPU only pays with many runs at once (fexprune.device)

    def check(self) -> None:
        if self.normalize not in NORMALIZERS:
            raise InputError(f"--normalize must be one of {', '.join(NORMALIZERS)}, got {self.normalize!r}")
        if self.mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.hidden < 2 or not 1 <= self.min_units <= self.hidden:
            raise InputError(f"need hidden >= 2 and 1 <= min units <= hidden (got {self.hidden}, {self.min_units})")
        if self.epochs < 1 or self.retrain_epochs < 0:
            raise InputError("epochs must be >= 1 and retrain epochs >= 0")
        if not self.outlier_z > 0:
            raise InputError(f"--outlier-z must be above 0, got {self.outlier_z}")
        if not 0 < self.test_fraction < 1:
            raise InputError(f"test fraction must be between 0 and 1, got {self.test_fraction}")
