"""Process and memory-layout settings that make CPU training faster without changing its math.

Measured on the 2-core AVX2 machine (benchmarks/RESULTS.md), full batch of 540 90x72 images, 16/32:
- Allocator: PyTorch's CPU allocator has no cache; every activation buffer of a step (200 MB for
  conv1's output) is a fresh glibc allocation. Above glibc's mmap threshold that is a fresh mmap,
  and the kernel zeroes every page on first touch: 46% of a plain epoch went there. Raising the mmap
  threshold and the trim threshold keeps freed buffers in the heap, so the next step reuses them.
- channels_last: oneDNN's convolutions (forward and backward) run on NHWC without reordering the
  tensors on every call.
Both change where numbers live, never which numbers are computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch
from torch import nn

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_allocator_tuned: bool | None = None


def tune_allocator() -> bool:
    """Keep large freed buffers in glibc's heap for reuse (once per process); False where not glibc.

    Process-wide and permanent: the heap then does not shrink back after a step, which is what a
    training process wants (the same buffers are needed every epoch).
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mmap_ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
                trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
                _allocator_tuned = bool(mmap_ok and trim_ok)
            except (OSError, AttributeError):  # musl or another libc without mallopt
                _allocator_tuned = False
    return _allocator_tuned


def fast_layout(model: nn.Module) -> nn.Module:
    """The model's 4-d weights in channels_last, in place (the Parameter objects stay the same, so an
    optimizer made earlier still owns them). Returns the model."""
    return model.to(memory_format=torch.channels_last)


def fast_input(x: torch.Tensor) -> torch.Tensor:
    """An image batch (N, C, H, W) in channels_last, without gradient; other tensors unchanged."""
    x = x.detach()
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def prepare_training(model: nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Everything `fit` does before its first step: allocator, model layout, input layout."""
    tune_allocator()
    fast_layout(model)
    return tuple(None if t is None else fast_input(t) for t in tensors)
