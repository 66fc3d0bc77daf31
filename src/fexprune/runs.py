"""The files of a run folder, written atomically and read back checked: JSON, CSV and checkpoints.

Writes go to a temporary file that is then renamed, so a killed process never leaves a half-written file
behind. Which files a run folder holds, and taking a folder for a run, is fexprune.run_folder's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import pickle
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Iterable

import torch

from fexprune import schema
from fexprune.errors import InputError


def cache_root() -> Path:
    """Where generated data and preprocessed arrays live (FEXPRUNE_CACHE overrides)."""
    root = os.environ.get("FEXPRUNE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fexprune"


_UMASK = os.umask(0)  # read once, at import (single-threaded); os.umask can only be read by setting it
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, then rename: readers see the old file or the new, never half.

    An OSError (disk full, folder not writable) names `path`, so the CLI's one line says which file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files others may read
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.filename != str(path):  # not the temporary file's name, nor a folder's
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


def printable(text: str | os.PathLike) -> str:
    """A path as UTF-8 text: a file name that is not UTF-8 (Python keeps its bytes as surrogates) comes out
    with those bytes escaped (\\xff), so a CSV or report can still be written and read."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def json_bytes(value: Any) -> bytes:
    return (json.dumps(to_jsonable(value), indent=2, sort_keys=False, allow_nan=True) + "\n").encode()


def write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json_bytes(value))


MAX_JSON_BYTES = 256 * 1024**2  # a split.json of a million frames is ~60 MB


def read_json(path: Path) -> Any:
    """A JSON file; a run folder's own files (its spec, results.json, split.json) checked against their
    schema (fexprune.schema), so whatever reads them gets the types and bounds it expects."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"too large for a run file ({path.stat().st_size:,} bytes)", path)
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a JSON file", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not valid JSON ({error})", path) from None
    except RecursionError:
        raise InputError("not valid JSON (nested too deeply)", path) from None
    schema.check_run_file(value, path)
    return value


def rows_csv_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    """Rows of one shape as CSV, the first row's keys as the header (empty for no rows)."""
    rows = list(rows)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    return printable(buffer.getvalue()).encode()


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_bytes(path, rows_csv_bytes(rows))


def read_csv(path: Path) -> list[dict]:
    """A CSV file's rows as dicts of text."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Tensors, numbers, strings, lists and dicts only, so `load_checkpoint` can refuse pickled code."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


MAX_CHECKPOINT_BYTES = 2 * 1024**3  # every tensor of a checkpoint together; the largest this tool writes is a few MB


def _check_checkpoint_size(path: Path) -> None:
    """Refuse, before torch reads a byte of it, a checkpoint that would take more memory than any model
    (a file too large, or a zip whose records unpack to more than they take on disk: torch stores its
    records uncompressed, so a compressed one is not torch's own)."""
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise InputError(f"refused to load checkpoint: {size:,} bytes, more than any model ({MAX_CHECKPOINT_BYTES:,})", path)
    if not zipfile.is_zipfile(path):
        return  # torch's legacy format or not a checkpoint at all: read no further than the file's size
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InputError(f"refused to load checkpoint: not a readable checkpoint ({error})", path) from None
    with archive:
        records = archive.infolist()
        unpacked = sum(record.file_size for record in records)
        compressed = [r.filename for r in records if r.compress_type != zipfile.ZIP_STORED]
        if compressed or unpacked > MAX_CHECKPOINT_BYTES or len(records) > 1_000_000:
            raise InputError(f"refused to load checkpoint: its records unpack to {unpacked:,} bytes"
                             + (f" (compressed: {compressed[0]} ...), which torch never writes" if compressed else ""), path)
        sizes = {record.filename.split("/", 1)[-1]: record.file_size for record in records}
        pickles = [r for r in records if r.filename.endswith("/data.pkl") and r.file_size < 64 * 1024**2]
        if not pickles:
            return
        try:
            storages = _declared_storages(archive.read(pickles[0]))
        except Exception:  # noqa: BLE001 - not a pickle this check can read: torch.load says what is wrong
            return
    for key, numel in storages:
        stored = sizes.get(f"data/{key}")
        if stored is not None and isinstance(numel, int) and numel > stored:  # at least one byte an element
            raise InputError(f"refused to load checkpoint: a tensor declares {numel:,} elements for a record of "
                             f"{stored:,} bytes", path)


class _Anything(dict):
    """What every global of a checkpoint's pickle becomes while its storage records are counted: a value
    that takes any arguments, items and state, and runs nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


def _declared_storages(data: bytes) -> list[tuple[str, object]]:
    """(record key, element count) of every storage a torch checkpoint's data.pkl names, read without
    importing or calling anything it names."""
    found = []

    class Counter(pickle.Unpickler):
        def find_class(self, module, name):
            return _Anything

        def persistent_load(self, pid):
            if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage":
                found.append((str(pid[2]), pid[4]))
            return _Anything()

    Counter(io.BytesIO(data)).load()
    return found


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Loads with `weights_only=True`: a checkpoint that would run code when unpickled is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    _check_checkpoint_size(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = f" ({found.group(1)})" if found else ""
        raise InputError(
            f"refused to load checkpoint: it holds pickled objects other than tensors{what}, which could run code",
            path,
        ) from None
    except Exception as error:  # truncated or not a torch file: RuntimeError, EOFError ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"refused to load checkpoint: not a readable checkpoint ({reason})", path) from None
