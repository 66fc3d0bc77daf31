"""The files a command writes for its user, named (--out, --annotate, --onnx, --sheet) or derived from a
name (a skipped-files list, a track figure, an ONNX sidecar): planned together before any work starts, then
written only through here, each to a temporary file renamed into place.

A plan refuses, in one line naming the path:
- an existing file, unless the user asked with --overwrite (the command cannot know it is its own);
- one of the command's inputs (a file given, or any file under a folder given), even with --overwrite:
  `predict clip.mp4 --annotate clip.mp4 --overwrite` would replace the video it reads;
- an existing file of a run folder, even with --overwrite: a run's results are not a command's output;
- a path planned already for another output of the same command (--out equal to --annotate).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from fexprune.errors import InputError
from fexprune.run_folder import RUN_MARK, is_finished
from fexprune.runs import atomic_write_bytes


def _real(path: str | os.PathLike) -> Path:
    """The file a path reaches, links followed: a link to an input is that input."""
    return Path(os.path.realpath(path))


def _run_holding(path: Path) -> Path | None:
    """The run folder `path` lies in: one a run has taken (RUN_MARK), or a finished run of any version
    (its spec beside results.json); None outside every run."""
    for folder in path.parents:
        if (folder / RUN_MARK).exists() or is_finished(folder):
            return folder
    return None


class Outputs:
    """One command's output files. `plan` every file before the work, then `write_bytes` (or `place`) each."""

    def __init__(self, overwrite: bool = False, inputs: Iterable[str | os.PathLike] = ()):
        self.overwrite = overwrite
        self._inputs: list[Path] = []
        self._planned: dict[Path, str] = {}  # the file reached -> what it is, for the two-outputs line
        self.add_inputs(inputs)

    def add_inputs(self, paths: Iterable[str | os.PathLike]) -> None:
        """Files and folders the command reads: nothing under them is written over."""
        self._inputs += [_real(path) for path in paths if path is not None and str(path) != ""]

    def plan(self, path: str | os.PathLike, what: str) -> Path:
        """`path` checked against every rule and kept for `write_bytes`; `what` names it in a refusal
        ("--out", "the track figure"). InputError, before anything is written, where a rule refuses it."""
        given = Path(path)
        reached = _real(given)
        if reached in self._planned:
            raise InputError(f"is both {self._planned[reached]} and {what} of this command; "
                             "give each output its own name", given)
        exists = os.path.lexists(given)
        run = _run_holding(reached) if exists else None
        if run is not None:
            raise InputError(f"is a file of the run folder {run}; a run's files are never written over, "
                             "even with --overwrite (choose another name)", given)
        if any(reached == source or (exists and source in reached.parents) for source in self._inputs):
            raise InputError("is an input of this command; not writing over it, even with --overwrite "
                             "(choose another name)", given)
        if given.is_dir():
            raise InputError(f"is a folder; {what} names a file", given)
        if exists and not self.overwrite:
            raise InputError("exists; not writing over it (choose another name, or add --overwrite)", given)
        self._planned[reached] = what
        return given

    def planned(self, path: str | os.PathLike) -> bool:
        return _real(path) in self._planned

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        """Write a planned file: to a temporary sibling, renamed into place."""
        self._check_planned(path)
        atomic_write_bytes(Path(path), data)
        return Path(path)

    def place(self, written: str | os.PathLike, path: str | os.PathLike) -> Path:
        """Rename a file written elsewhere in the same folder (a video OpenCV wrote) onto a planned path."""
        self._check_planned(path)
        os.replace(written, path)
        return Path(path)

    def _check_planned(self, path: str | os.PathLike) -> None:
        if not self.planned(path):  # a programming error: every output goes through plan first
            raise RuntimeError(f"{path} was written without being planned")
