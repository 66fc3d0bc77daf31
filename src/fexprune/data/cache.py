"""On-disk cache of preprocessed image sets, so a second run on the same data decodes no image.

The key hashes the file list (absolute path, size, mtime and a hash of the first and last 64 KiB of every
file, skipped ones included) and the options; a changed, added or removed file gives a new key. The
content hash catches a file rewritten with the same size and mtime (a copy tool that keeps times); a change
confined to the middle of a file larger than 128 KiB, with size and mtime kept, is the one it can miss. One .npz per key under
`cache_root()/preprocessed/`: the uint8 images and labels as arrays, everything else as JSON bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from stat import S_ISREG
from pathlib import Path
from typing import Any

import numpy as np

from fexprune.runs import atomic_write_bytes, cache_root

FORMAT_VERSION = 5  # bump when the preprocessing changes, so old entries are not reused


def default_cache_dir() -> Path:
    return cache_root() / "preprocessed"


def cache_key(files: list[Path], options: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": FORMAT_VERSION, **options}, sort_keys=True).encode())
    for file in files:
        try:
            stat = os.stat(file)
            content = _ends_digest(file, stat.st_size) if S_ISREG(stat.st_mode) else "-"
            entry = f"{os.path.abspath(file)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{content}\n"
        except OSError:
            entry = f"{os.path.abspath(file)}\0missing\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


_END = 64 * 1024


def _ends_digest(file: Path, size: int) -> str:
    """sha1 of the first and last 64 KiB (the whole file when smaller): a content check at a fraction of
    the cost of decoding, which reads every byte. Regular files only: opening a FIFO would wait forever."""
    with open(file, "rb") as handle:
        data = handle.read(_END)
        if size > 2 * _END:
            handle.seek(size - _END)
            data += handle.read(_END)
        elif size > _END:
            data += handle.read()
    return hashlib.sha1(data).hexdigest()


def write_entry(path: Path, images: np.ndarray, labels: np.ndarray, meta: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, images=images, labels=labels, meta=meta_bytes)
    atomic_write_bytes(path, buffer.getvalue())


def read_entry(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """The cached arrays and metadata, or None when absent or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            images, labels = entry["images"], entry["labels"]
            meta = json.loads(entry["meta"].tobytes().decode())
        return images, labels, meta
    except Exception:  # a corrupt or foreign file: treat as a miss
        return None
