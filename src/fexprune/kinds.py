"""Every kind of run, named once: what its spec holds and how compare, reports and tracking take it. The
layers read these properties instead of testing a kind's name; a new kind of run is a line here, its
experiment module (with its run(spec, out, context, source): fexprune.experiments.runner), its command and its
report builder (report/build.py, which a test holds to this list)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    command: str  # what makes it
    trained: bool = False  # one recipe trains one network: its spec has training and recipe sections
    trains: bool = False  # it trains networks of its own settings (a sweep): its spec has a training section
    own: tuple[str, ...] = ()  # settings kept in its own section though other kinds keep them elsewhere
    compared: str = "grouped"  # compare: grouped (by spec minus seed) | criteria (a row each) | row | skipped
    skipped_because: str = "no test accuracy to compare"
    trials: bool = False  # its folder holds train runs of its own, each logged to MLflow under it
    logged: bool = True  # TensorBoard gets its summary even when it has no metrics rows
    experiment: str | None = None  # the module whose run(spec, out, context, source) runs it (fexprune.experiments.runner)


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("train", "fexprune train", trained=True, experiment="fexprune.experiments.train"),
    Kind("cv", "fexprune train --cv K", trained=True, experiment="fexprune.experiments.train"),
    Kind("baseline", "fexprune baseline", logged=False, experiment="fexprune.experiments.baseline"),
    Kind("sweep", "fexprune sweep", trains=True, own=("channels",), compared="skipped", trials=True,
         skipped_because="a sweep's summary; its trials are read as runs of their own",
         experiment="fexprune.experiments.sweep"),
    Kind("prune", "fexprune prune", compared="criteria", experiment="fexprune.experiments.prune"),
    Kind("prune-curve", "fexprune prune-curve", compared="skipped", logged=False,
         skipped_because="a curve's points are in its own report", experiment="fexprune.experiments.prune_curve"),
    Kind("pic", "fexprune pic", compared="row", experiment="fexprune.experiments.pic"),
    Kind("reproduce", "fexprune reproduce", compared="skipped", logged=False,
         skipped_because="a reproduce summary; its stages (train, prune, pic, sweep) are read as runs of their own",
         experiment="fexprune.experiments.reproduce"),
)}


def kind(name: str) -> Kind:
    """The kind named `name`; a ValueError for a name no run of this tool has."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind of run {name!r}") from None
