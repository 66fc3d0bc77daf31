"""Data augmentation for the `best` recipe: random flips, shifts, rotations, scale, brightness and contrast,
and optionally random erasing (a rectangle blanked out, as hands, glasses and hair hide parts of faces in films).

One batched affine warp (affine_grid + grid_sample) for the whole mini-batch, so augmenting costs a small
fraction of a training step; every random number comes from the caller's torch.Generator (a CPU one), so a
seed gives the same augmented batches on every device; the warp itself runs where the images are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass



@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True  # mirror left-right with probability 1/2 (expressions are near symmetric)
    max_shift: float = 0.04  # fraction of width/height (0.08 with 10 deg and +-10% scale: train acc 43-61%)
    max_rotate: float = 4.0  # degrees
    scale: tuple[float, float] = (0.95, 1.05)
    brightness: float = 0.1  # added offset, in units of the normalised image's std
    contrast: float = 0.1  # multiplicative, 1 +- contrast
    erase: float = 0.0  # probability of blanking one rectangle (2-20% of the image, aspect 0.3-3.3) to 0, the mean

    def to_dict(self) -> dict:
        return asdict(self)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    import torch

    return low + (high - low) * torch.rand(n, generator=generator)


def augment(x: torch.Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """A randomly transformed copy of `x` (B, C, H, W) float; `x` itself is left alone."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    angle = _uniform(n, -config.max_rotate, config.max_rotate, generator) * (math.pi / 180)
    scale = _uniform(n, config.scale[0], config.scale[1], generator)
    shift = _uniform(2 * n, -config.max_shift, config.max_shift, generator).view(n, 2) * 2  # grid units: [-1, 1]
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if config.flip else torch.ones(n)
    height, width = x.shape[-2:]
    aspect = width / height
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)  # output grid -> input grid, in normalised coordinates
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin / aspect
    theta[:, 1, 0] = sin * aspect * flip
    theta[:, 1, 1] = cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator).view(n, 1, 1, 1)
    brightness = _uniform(n, -config.brightness, config.brightness, generator).view(n, 1, 1, 1)
    out = out * contrast.to(x.device, x.dtype) + brightness.to(x.device, x.dtype)
    if config.erase > 0:  # drawn only when asked, so the other settings' random streams stay as they were
        out = out.masked_fill(_erase_masks(n, height, width, config.erase, generator)[:, None].to(x.device), 0.0)
    return out


def _erase_masks(n: int, height: int, width: int, probability: float, generator: torch.Generator) -> torch.Tensor:
    """(n, H, W) bool: one random rectangle per image, for a `probability` share of the images."""
    import torch

    area = _uniform(n, 0.02, 0.2, generator) * (height * width)
    ratio = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), generator))
    half_h = (area * ratio).sqrt().clamp(max=height) / 2
    half_w = (area / ratio).sqrt().clamp(max=width) / 2
    cy, cx = _uniform(n, 0, height, generator), _uniform(n, 0, width, generator)
    chosen = torch.rand(n, generator=generator) < probability
    rows = (torch.arange(height)[None, :] + 0.5 - cy[:, None]).abs() < half_h[:, None]
    cols = (torch.arange(width)[None, :] + 0.5 - cx[:, None]).abs() < half_w[:, None]
    return rows[:, :, None] & cols[:, None, :] & chosen[:, None, None]
