"""A finished run folder read back as one object: which kind of run wrote it, its config.json, results.json,
metrics.csv and (train runs) split.json. The Python API opens runs here, so a reader of a whole folder
does not guess at its files again."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from fexprune import runs
from fexprune.errors import InputError
from fexprune.schema import run_kind

SPLIT_FILE = "split.json"  # as fexprune.data.prepared writes it (this layer does not import data/)


class RunFolder:
    """A finished run: `path`, `kind` (train, cv, prune, prune-curve, ...), `config` (config.json as written,
    also called `spec`), `results` (results.json), `metrics` (metrics.csv as a pandas DataFrame, read when first
    asked for) and `split` ({"train": [file, ...], "test": [...]}, files under the data set's root; None where
    the run kept no split)."""

    def __init__(self, path: Path, kind: str, config: dict[str, Any], results: dict[str, Any], split: dict | None):
        self.path = path
        self.kind = kind
        self.config = config
        self.results = results
        self.split = split

    @property
    def spec(self) -> dict[str, Any]:
        return self.config

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
        if not (path / "results.json").is_file():
            hint = " (unfinished? a train run continues with --resume)" if (path / "config.json").is_file() else ""
            raise InputError(f"not a finished run folder: no results.json{hint}", path)
        results = runs.read_json(path / "results.json")
        config = runs.read_json(path / "config.json") if (path / "config.json").is_file() else {}
        for name, value in (("results.json", results), ("config.json", config)):
            if not isinstance(value, dict):
                raise InputError("expected a JSON object", path / name)
        split = runs.read_json(path / SPLIT_FILE) if (path / SPLIT_FILE).is_file() else None
        return cls(path, run_kind(results, config), config, results, split)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, kind={self.kind!r})"
