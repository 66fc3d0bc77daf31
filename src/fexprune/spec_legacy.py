"""Older run specs mapped to the current one (fexprune.spec): every run folder this tool ever
wrote still opens, and its readers see one shape.

Version 1 (no "version" key) was one flat record per run: a train run's every TrainConfig field side by side
(a recipe option it left to the recipe as null), a prune-curve's with "kind", a pic run's with "command".
Its kind is the one results.json names (or, for an unfinished run, its "command"/"kind", else train).
"""

from __future__ import annotations

from typing import Any

from fexprune import spec


def unfinished_kind(values: dict[str, Any]) -> str:
    """The kind of a version-1 run that wrote no results yet: only a train run resumes."""
    named = values.get("kind") or values.get("command")
    return named if isinstance(named, str) else "train"


def current(values: dict[str, Any], kind: str) -> dict[str, Any]:
    """`values` (a spec of any version) as a current spec of `kind`."""
    if spec.is_current(values):
        return values
    return {**spec.build(kind, values), "mapped_from": 1}
