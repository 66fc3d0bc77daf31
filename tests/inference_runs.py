"""Tiny trained and pruned runs on synthetic frames, shared by the predict, export and safe-loading tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fexprune.data.synth import write_synthetic
from fexprune.experiments.prune import PruneConfig, run_pruning
from fexprune.experiments.train import TrainConfig, train


@dataclass
class Runs:
    images: Path  # <data>/Images/<Class>/*.png, 180x144 frames
    train: Path
    config: TrainConfig


def make_train_run(root: Path) -> Runs:
    """28 frames (4 per class), a 4/8-channel CNN trained 3 epochs; a few seconds on one thread."""
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: the autouse cache fixture is not active yet
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        images = write_synthetic(root / "data", per_class=4, size=(180, 144), progress=False)
        config = TrainConfig(data=str(images), channels=(4, 8), epochs=3, lr=1e-3, checkpoint_every=1000)
        run_dir = train(config, out=root / "train", progress=False).run_dir
    return Runs(images=images, train=run_dir, config=config)


def make_prune_run(runs: Runs, root: Path) -> Path:
    """A prune run folder whose model.pt has conv1 channels really removed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEXPRUNE_CACHE", str(root / "cache"))
        config = PruneConfig(run=str(runs.train), remove=True, max_loss_increase=0.5, sample_size=8, latency_repeats=2)
        return run_pruning(config, out=root / "prune").run_dir
