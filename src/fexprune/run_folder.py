"""Run folders: the one place a run folder is taken, its spec written and read, and a finished one opened.

A run folder holds `config.json` (its spec, fexprune.spec: enough to rerun), `results.json`, `metrics.csv`,
`split.json` (trained runs), models, `figures/` and a report; one folder per run, never overwritten. Folders
written before the spec was versioned open through fexprune.spec_legacy, so every reader sees one shape.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from fexprune import runs, spec, spec_legacy
from fexprune.errors import InputError
from fexprune.schema import run_kind

SPEC_FILE = "config.json"
RESULTS_FILE = "results.json"
SPLIT_FILE = "split.json"  # as fexprune.data.prepared writes it (this layer does not import data/)


RUN_MARK = ".fexprune-run"  # made with O_EXCL in every run folder as the run takes it: the one atomic claim


def new_run_dir(base: str | os.PathLike | None, command: str) -> Path:
    """A fresh folder `<base>/<command>-<timestamp>[-k]`; an existing folder is never reused.

    When `base` names a folder that does not exist yet (or is empty), that folder becomes the run
    folder. When it names an existing run (it holds a spec, or another run has just taken it), the
    new run goes beside it as `<base>-2`, `<base>-3`, ...: never into it (`--resume` continues a run).
    Any other folder gets the new run inside it. Every folder is taken by one atomic step (os.mkdir of a
    new name, or an exclusive RUN_MARK in an empty one), so two runs started at once on one `--out` get a
    folder each, never one inside the other.
    """
    if base is not None:
        base = Path(base)
        if _claim(base, command, fresh_only=False):
            return base
        if not base.is_dir():
            raise InputError("output path exists and is not a folder", base)
        if is_run_dir(base):
            sibling = _free_sibling(base, command)
            print(f"fexprune: {base} is an existing run, left as it is; this run goes to {sibling}",
                  file=sys.stderr)
            return sibling
        parent = base
    else:
        parent = Path("runs")
    return fresh_run_dir(parent, command)


def fresh_run_dir(parent: str | os.PathLike, command: str) -> Path:
    """A new, empty folder `<parent>/<command>-<timestamp>[-k]` (parent made where missing)."""
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise InputError("output path exists and is not a folder", parent)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        candidate = parent / (f"{command}-{stamp}" + (f"-{k}" if k else ""))
        if _claim(candidate, command, fresh_only=True):
            return candidate
    raise InputError("could not find a free run folder name", parent)


def is_run_dir(folder: Path) -> bool:
    """A run's folder: it holds a spec, or a run has taken it and not written one yet."""
    return (folder / SPEC_FILE).exists() or (folder / RUN_MARK).exists()


def _free_sibling(run_dir: Path, command: str) -> Path:
    for k in range(2, 1000):
        candidate = run_dir.with_name(f"{run_dir.name}-{k}")
        if _claim(candidate, command, fresh_only=True):
            return candidate
    raise InputError("could not find a free run folder name beside this run", run_dir)


def _claim(folder: Path, command: str, fresh_only: bool) -> bool:
    """Take `folder` for one run, or say False where it is taken: os.mkdir of a new folder, then (as the
    step that decides, for an empty folder that was there already) RUN_MARK created exclusively.
    `fresh_only`: a folder that exists is not taken even when empty."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # os.mkdir below fails too, and its line names the folder asked for
    try:
        os.mkdir(folder)
    except FileExistsError:
        if fresh_only or not folder.is_dir() or any(folder.iterdir()):
            return False
    except OSError as error:
        raise InputError(f"cannot create output folder ({error.strerror})", folder) from None
    if not os.access(folder, os.W_OK):
        raise InputError("output folder is not writable", folder)
    try:
        fd = os.open(folder / RUN_MARK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # another run took this folder between the two steps
        return False
    except OSError as error:
        raise InputError(f"cannot create output folder ({error.strerror})", folder) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{command}\n")
    return True


def create(out: str | os.PathLike | None, kind: str, spec: dict[str, Any]) -> Path:
    """A new run folder for a run of `kind` (see `new_run_dir` for where), its spec written first."""
    run_dir = new_run_dir(out, kind)
    write_spec(run_dir, spec)
    return run_dir


def write_spec(run_dir: Path, spec: dict[str, Any]) -> None:
    runs.write_json(Path(run_dir) / SPEC_FILE, spec)


def spec_path(folder: str | os.PathLike) -> Path:
    """Where a run folder keeps its spec: for messages that name the file."""
    return Path(folder) / SPEC_FILE


def has_spec(folder: str | os.PathLike) -> bool:
    return (Path(folder) / SPEC_FILE).is_file()


def is_finished(folder: str | os.PathLike) -> bool:
    """A run that wrote its results: spec and results.json both there."""
    return has_spec(folder) and (Path(folder) / RESULTS_FILE).is_file()


def read_results(folder: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(folder) / RESULTS_FILE
    return runs.read_json(path) if path.is_file() else None


def read_spec(folder: str | os.PathLike, what: str = "a run folder") -> dict[str, Any]:
    """The run's spec in the current shape (an older config.json mapped by fexprune.spec_legacy); a folder
    without one is not `what` (e.g. "a sweep folder")."""
    folder = Path(folder)
    if not has_spec(folder):
        raise InputError(f"not {what} (no {SPEC_FILE})", folder)
    values = runs.read_json(folder / SPEC_FILE)  # a JSON object, or an InputError naming the file (fexprune.schema)
    if spec.is_current(values):
        return values
    results = read_results(folder)
    kind = run_kind(results, values) if isinstance(results, dict) else spec_legacy.unfinished_kind(values)
    return spec_legacy.current(values, kind)


def spec_from(source: str | os.PathLike) -> dict[str, Any]:
    """The spec a run folder states (in the current shape), or the one a JSON file holds: what
    fexprune.experiments.runner runs again. An older flat spec outside its run folder cannot say its kind."""
    source = Path(source)
    if source.is_dir():
        return read_spec(source)
    if not source.is_file():
        raise InputError("no such run folder or spec file", source)
    values = runs.read_json(source)
    if not spec.is_current(values):
        raise InputError(f"holds no spec of version {spec.VERSION} (an older run's spec is read from its run folder)", source)
    return values


def read_settings(folder: str | os.PathLike, what: str = "a run folder") -> dict[str, Any]:
    """The run's spec as one flat record (fexprune.spec.flat): the keys the experiments' config dataclasses and
    the reports read."""
    return spec.flat(read_spec(folder, what))


def record(config: Any, paths: Iterable[str] = ("data",)) -> dict[str, Any]:
    """A dataclass config as a flat record for a spec: the named path fields made absolute (an empty one
    becomes None), so a resume from another working folder finds the same files."""
    saved = dataclasses.asdict(config)
    for key in paths:
        saved[key] = str(Path(saved[key]).resolve()) if saved[key] else None
    return saved


class RunFolder:
    """A finished run: `path`, `kind` (train, cv, prune, prune-curve, ...), `spec` (config.json in the current
    shape, fexprune.spec), `results` (results.json), `metrics` (metrics.csv as a pandas DataFrame, read when
    first asked for) and `split` ({"train": [file, ...], "test": [...]}, files under the data set's root; None
    where the run kept no split)."""

    def __init__(self, path: Path, kind: str, spec: dict[str, Any], results: dict[str, Any], split: dict | None):
        self.path = path
        self.kind = kind
        self.spec = spec
        self.results = results
        self.split = split

    @property
    def config(self) -> dict[str, Any]:
        """The spec as one flat record, as the experiments' config dataclasses read it."""
        return spec.flat(self.spec)

    @functools.cached_property
    def metrics(self):
        import pandas as pd

        path = self.path / "metrics.csv"
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_csv(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunFolder":
        """The finished run in `path` (kept as an absolute path: the object may outlive a change of the working
        folder); an InputError naming the folder where it is not one."""
        path = Path(path).absolute()
        if not path.is_dir():
            raise InputError("no such run folder" if not path.exists() else "not a run folder (a file)", path)
        if not (path / RESULTS_FILE).is_file():
            hint = " (unfinished? a train run continues with --resume)" if has_spec(path) else ""
            raise InputError(f"not a finished run folder: no {RESULTS_FILE}{hint}", path)
        results = read_results(path)
        spec = read_spec(path) if has_spec(path) else spec_legacy.current({}, run_kind(results))
        split = runs.read_json(path / SPLIT_FILE) if (path / SPLIT_FILE).is_file() else None
        return cls(path, spec["kind"], spec, results, split)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, kind={self.kind!r})"
