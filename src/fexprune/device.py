"""Which device a run computes on: `auto` takes CUDA, then Apple's MPS, else the CPU, and says which. The
data a run trains on lives on that device for the whole run; only the random draws (batch order,
augmentation) come from CPU generators, so a seed gives the same batches on every device.

`deterministic` asks PyTorch for deterministic algorithms (and cuBLAS for a fixed workspace), so the same
seed gives the same numbers on the same GPU; without it a GPU run may differ in the last digits.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

from fexprune.errors import InputError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | None = "auto") -> torch.device:
    """The torch device `name` asks for; one that is not on this machine is an InputError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (choose from {CHOICES})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA device on this machine (torch {torch.__version__}); use --device cpu or auto")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise InputError(f"--device {name}: no MPS device on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device {name!r} (choose from {CHOICES})")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def describe(device: torch.device) -> str:
    """The device in words, for results.json and the report: "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@contextmanager
def cpu_threads(count: int | None):
    """torch's CPU thread count set to `count` for a block (None: left as it is), then set back."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_deterministic(enabled: bool) -> None:
    """PyTorch's deterministic algorithms and cuBLAS's fixed workspace, as `torch.use_deterministic_algorithms` asks."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.benchmark = not enabled and torch.backends.cudnn.benchmark
