"""What `train` returns, whether it ran one split or K folds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn


@dataclass
class TrainResult:
    run_dir: Path
    results: dict[str, Any]  # as results.json holds them
    metrics: list[dict]  # as metrics.csv holds them
    model: nn.Module  # the trained network (of the last fold, for --cv)
