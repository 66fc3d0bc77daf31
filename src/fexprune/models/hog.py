"""HOG as a fixed layer of the network: histograms of gradient orientation per cell, normalised over
neighbouring cells (Dalal & Triggs), written in plain torch ops.

Why: HOG describes a face's edges the same way across movies and lighting, a prior a CNN trained on a
few hundred frames may lack. As a branch of the network it trains, exports to ONNX and predicts with it,
with no second model to keep in step. No weights are learned here. `--hog` is opt-in: it has not shown a
gain beyond its noise (benchmarks/recipes.md).

Orientation binning avoids atan2 (not an ONNX op): with the doubled angle 2t of the unsigned gradient
direction, cos(2t - 2p) = cos2t cos2p + sin2t sin2p, from the gradient's components alone; each pixel's
magnitude goes to every bin in proportion to relu(cos(2t - 2p_b))^`sharpness`, mostly the two nearest bins.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class HOGFeatures(nn.Module):
    """(B, 1, H, W) images -> (B, bins, H // cell, W // cell) block-normalised orientation histograms."""

    def __init__(self, cell: int = 8, bins: int = 9, sharpness: float = 4.0, clip: float = 0.2):
        super().__init__()
        self.cell, self.bins, self.sharpness, self.clip = cell, bins, sharpness, clip
        self.register_buffer("dx", torch.tensor([[[[-1.0, 0.0, 1.0]]]]), persistent=False)  # (1, 1, 1, 3)
        self.register_buffer("dy", self.dx.transpose(2, 3).clone(), persistent=False)  # (1, 1, 3, 1)
        doubled = 2 * math.pi * torch.arange(bins) / bins  # 2 x bin centre; bins cover 0-180 degrees
        self.register_buffer("cos_bins", doubled.cos().view(1, bins, 1, 1), persistent=False)
        self.register_buffer("sin_bins", doubled.sin().view(1, bins, 1, 1), persistent=False)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return self.bins, height // self.cell, width // self.cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), self.dx)  # (B, 1, H, W)
        gy = F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), self.dy)
        energy = gx * gx + gy * gy + 1e-12
        cos2, sin2 = (gx * gx - gy * gy) / energy, 2 * gx * gy / energy  # doubled orientation angle
        share = F.relu(cos2 * self.cos_bins + sin2 * self.sin_bins) ** self.sharpness  # (B, bins, H, W)
        share = share / share.sum(1, keepdim=True).clamp_min(1e-12)  # each pixel's magnitude split once
        histograms = F.avg_pool2d(energy.sqrt() * share, self.cell)  # (B, bins, H // cell, W // cell)
        # block normalisation: each cell over the 3x3 cells around it (fewer at the border)
        local = F.avg_pool2d(histograms.pow(2).sum(1, keepdim=True), 3, stride=1, padding=1, count_include_pad=False)
        normalised = histograms / (9 * local + 1e-6).sqrt()
        return normalised.clamp(max=self.clip) / self.clip  # Lowe's clipping keeps strong edges from dominating
