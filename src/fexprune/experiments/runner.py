"""Every kind of run started one way: `run(spec, out, context)` looks the spec's kind up in fexprune.kinds and
hands the spec to that kind's experiment module, whose own `run(spec, out, context, source)` reads its
settings from it. So a finished run's spec is enough to run it again, on another seed or with one setting
changed, and the run folder it writes states the same spec."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fexprune import spec as spec_module
from fexprune.errors import InputError
from fexprune.kinds import KINDS
from fexprune.schema import check_config
from fexprune.tracking import Tracking


@dataclass(frozen=True)
class RunContext:
    """How a run is watched, not what it computes: none of it enters the spec or changes a number."""

    progress: bool = True  # progress bars and lines on stderr
    tracking: Tracking = field(default_factory=Tracking)  # TensorBoard and MLflow (fexprune.tracking)


def run(spec: dict[str, Any], out: str | Path | None = None, context: RunContext = RunContext(),
        source: str | Path = "the spec") -> Path:
    """Run what `spec` (the current shape: fexprune.spec) states into the run folder `out` (None: a new one
    under ./runs); returns the run folder. `source` names the spec in error messages."""
    source = Path(source)
    if not isinstance(spec, dict) or not spec_module.is_current(spec):
        raise InputError(f"is not a run spec of version {spec_module.VERSION} ({{\"kind\": ..., \"version\": "
                         f"{spec_module.VERSION}, ...}}); an older run's spec is read from its run folder", source)
    kind = KINDS.get(spec["kind"])
    if kind is None or kind.experiment is None:
        runnable = ", ".join(name for name, k in KINDS.items() if k.experiment)
        raise InputError(f"kind {spec['kind']!r}: no experiment runs it (runnable kinds: {runnable})", source)
    check_config(spec, source)
    module = importlib.import_module(kind.experiment)
    return module.run(spec, out, context, source)
