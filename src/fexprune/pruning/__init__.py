"""Pruning criteria, procedures and real channel removal.

The Torch-Pruning side, for your own Torch-Pruning code (docs/pruning-api.md):

    from fexprune.pruning import DistinctivenessImportance, MergingPruner, merge_before_pruning

Names are loaded on first use, so importing one submodule (the PIC experiment's) does not import
Torch-Pruning.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "DistinctivenessImportance": "fexprune.pruning.channel_distinctiveness",
    "elimination_scores": "fexprune.pruning.channel_distinctiveness",
    "ConsumerActivations": "fexprune.pruning.consumer_moments",
    "KernelL1Importance": "fexprune.pruning.importance",
    "KernelL2Importance": "fexprune.pruning.importance",
    "SeededRandomImportance": "fexprune.pruning.importance",
    "WarnIfUnscored": "fexprune.pruning.importance",
    "IMPORTANCES": "fexprune.pruning.importance",
    "make_importance": "fexprune.pruning.importance",
    "needs_backward": "fexprune.pruning.importance",
    "MergingPruner": "fexprune.pruning.merging",
    "merge_before_pruning": "fexprune.pruning.merging",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fexprune.pruning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
