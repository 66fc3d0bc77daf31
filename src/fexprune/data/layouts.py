"""Finding the samples of an image data set from a path, whatever layout it comes in.

Layouts (detected in this order):
- "train-val": `<root>/Train/<Class>/` + `<root>/Val/<Class>/` (SFEW 2.0); Val is the test split.
- "aligned":   the aligned-face variant, `<root>/Train_Aligned_Faces/<Class>/` (+ `Val_Aligned_Faces`),
               also nested as `Train/Train_Aligned_Faces/<Class>/`, or a single `*Aligned*/<Class>/` tree.
               `variant` picks frames or aligned faces where both exist ("auto" prefers frames).
- "images":    the course layout `Images/<Class>/*.png`; the path may be Images/ or the folder holding it,
               or any folder whose class folders all name one of the 7 expressions.
- "generic":   any other `<root>/<class>/` tree with two or more class folders; classes keep their names.

Discovery lists files and reads no pixels, so it is cheap enough to run before every cache look-up.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from fexprune.data.classes import EXPRESSIONS, match_expression
from fexprune.errors import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm"}
VARIANTS = ("auto", "frames", "aligned")
# SFEW's names are <Movie>_<clip>_<frame>; a few of its files have "-" before the clip or "__" before the frame
_FRAME_NAME = re.compile(r"^(?P<movie>.+?)[_-](?P<clip>\d+)_+(?P<frame>\d+)$")
_TRAIN_NAMES = ("train",)
_TEST_NAMES = ("val", "valid", "validation", "test")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # index into the data set's classes
    movie: str  # file-name part before `_<digits>_<digits>`
    clip: str  # file name without its last `_<frame>` part
    subset: str | None  # "train" / "test" where the layout fixes the split, else None


@dataclass
class Discovery:
    root: Path
    layout: str
    classes: list[str]
    samples: list[Sample]
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}: files that are not images


def frame_number(path: Path) -> int | None:
    """The `<frame digits>` of an SFEW-style name, or None for any other name (no clip is known then)."""
    match = _FRAME_NAME.match(Path(path).stem)
    return int(match["frame"]) if match else None


def movie_and_clip(path: Path) -> tuple[str, str]:
    """SFEW names frames `<Movie>_<clip digits>_<frame digits>`: Airheads_000519240_00000005."""
    stem = Path(path).stem
    match = _FRAME_NAME.match(stem)
    if match:
        return match["movie"], f"{match['movie']}_{match['clip']}"
    head, _, tail = stem.rpartition("_")
    if head and tail.isdigit():
        return head, head
    return stem, stem


def discover(path: str | os.PathLike, variant: str = "auto") -> Discovery:
    """The samples under `path` in whichever layout it has; InputError when there are none."""
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r} (choose from {', '.join(VARIANTS)})")
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError("no such file or folder", path)
    if not path.is_dir():
        raise InputError("not a folder (expected a data set folder such as Images/ or the one holding Train/ and Val/)", path)
    found = _find_layout(path, variant, depth=0)
    if found is None:
        raise InputError("found no class folders with images (expected <root>/<Class>/*.png, Images/<Class>/ or Train/ + Val/)", path)
    layout, root, class_dirs = found  # class_dirs: list of (subset, {class name: folder})
    if variant == "aligned" and layout != "aligned":
        raise InputError("holds no aligned-face variant (no *Aligned* folder with class folders)", path)
    return _collect(root, layout, class_dirs)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _expression_dirs(folder: Path) -> dict[str, Path]:
    """Subfolders that name an expression, by canonical name (first spelling wins)."""
    found = {}
    for sub in _subdirs(folder):
        name = match_expression(sub.name)
        if name is not None:
            found.setdefault(name, sub)
    return found


def _split_kind(name: str) -> tuple[str, int] | None:
    """("train" | "test", preference): Val is the test split where both Val/ and Test/ exist (SFEW 2.0's
    Test/ holds unlabelled frames)."""
    lowered = name.lower()
    for kind, prefixes in (("train", _TRAIN_NAMES), ("test", _TEST_NAMES)):
        for preference, prefix in enumerate(prefixes):
            if lowered == prefix or lowered.startswith(prefix + "_"):
                return kind, preference
    return None


def _split_trees(folder: Path) -> dict[str, dict[str, Path]]:
    """{"frames"/"aligned": {"train"/"test": class-folder holder}} for the splits under `folder`."""
    trees: dict[str, dict[str, Path]] = {"frames": {}, "aligned": {}}
    splits = [(_split_kind(sub.name), sub) for sub in _subdirs(folder)]
    for (kind, _), sub in sorted((item for item in splits if item[0]), key=lambda item: item[0][1]):
        variant = "aligned" if "align" in sub.name.lower() else "frames"
        if _expression_dirs(sub):
            trees[variant].setdefault(kind, sub)
        for nested in _subdirs(sub):  # Train/Train_Aligned_Faces/<Class>/
            if "align" in nested.name.lower() and _expression_dirs(nested):
                trees["aligned"].setdefault(kind, nested)
    return trees


def _find_layout(folder: Path, variant: str, depth: int):
    trees = _split_trees(folder)
    wanted = ["frames", "aligned"] if variant == "auto" else [variant]
    for name in wanted:
        tree = trees[name]
        if "train" in tree:
            layout = "train-val" if name == "frames" else "aligned"
            return layout, folder, [(kind, _expression_dirs(holder)) for kind, holder in sorted(tree.items())]
    if variant != "auto" and any(trees[v] for v in VARIANTS[1:]):
        other = "aligned" if variant == "frames" else "frames"
        if trees[other]:
            raise InputError(f"holds no {variant} variant (found {other} only; use --variant {other})", folder)

    subs = _subdirs(folder)
    by_name = {sub.name.lower(): sub for sub in subs}
    if "images" in by_name and _expression_dirs(by_name["images"]) and variant != "aligned":
        return "images", by_name["images"], [(None, _expression_dirs(by_name["images"]))]
    aligned = [sub for sub in subs if "align" in sub.name.lower() and _expression_dirs(sub)]
    if aligned and variant != "frames" and not (variant == "auto" and _expression_layout(folder)):
        return "aligned", aligned[0], [(None, _expression_dirs(aligned[0]))]
    if _expression_layout(folder):
        layout = "aligned" if "align" in folder.name.lower() else "images"
        return layout, folder, [(None, _expression_dirs(folder))]
    generic = {sub.name: sub for sub in subs if _holds_images(sub)}
    if len(generic) >= 2:
        return "generic", folder, [(None, generic)]
    if len(subs) == 1 and depth < 2:  # a wrapper folder, e.g. data/sfew-sample/
        return _find_layout(subs[0], variant, depth + 1)
    return None


def _expression_layout(folder: Path) -> bool:
    """Most subfolders holding images name an expression: an expression data set (the others are
    listed as skipped), not a generic one whose class order and labels would change."""
    holding = [sub for sub in _subdirs(folder) if _holds_images(sub)]
    named = sum(1 for sub in holding if match_expression(sub.name))
    return named >= 1 and (named == len(holding) or (named >= 2 and 2 * named > len(holding)))


def _holds_images(folder: Path) -> bool:
    return any(True for _ in _walk_files(folder, images_only=True))


def _walk_files(folder: Path, images_only: bool = False, errors: list[OSError] | None = None):
    """Files under `folder` in sorted order; follows symlinks but never a folder twice (no loops).
    A folder that cannot be read goes to `errors` (os.walk would drop it without a word).

    A link to a folder that encloses `folder` (`Happy/up -> ..`) is not followed either: it would
    bring the other classes' images in under this class's label.
    """
    seen: set[str] = set()
    top = os.path.realpath(folder)
    for current, dirnames, filenames in os.walk(folder, followlinks=True, onerror=None if errors is None else errors.append):
        real = os.path.realpath(current)
        encloses_top = real != top and (top + os.sep).startswith(real + os.sep)
        if real in seen or encloses_top:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue  # .DS_Store and the like: never part of a data set
            if images_only and Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            yield Path(current) / name


def _collect(root: Path, layout: str, class_dirs: list[tuple[str | None, dict[str, Path]]]) -> Discovery:
    names = sorted({name for _, dirs in class_dirs for name in dirs})
    if all(match_expression(name) for name in names) and layout != "generic":
        classes = list(EXPRESSIONS)  # the same label indices for every expression data set
    else:
        classes = names
    samples: list[Sample] = []
    skipped: list[dict] = []
    for subset, dirs in class_dirs:
        for name, folder in sorted(dirs.items(), key=lambda item: classes.index(item[0])):
            errors: list[OSError] = []
            for file in _walk_files(folder, errors=errors):
                if file.suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append({"path": str(file), "reason": f"not an image file (extension {file.suffix or 'none'!r})"})
                    continue
                if not file.is_file():
                    skipped.append({"path": str(file), "reason": "not a regular file (broken link?)"})
                    continue
                movie, clip = movie_and_clip(file)
                samples.append(Sample(file, classes.index(name), movie, clip, subset))
            skipped.extend(_unreadable(errors))
    for holder in dict.fromkeys(folder.parent for _, dirs in class_dirs for folder in dirs.values()):
        skipped.extend(_strays(holder, {folder for _, dirs in class_dirs for folder in dirs.values()}))
    if not samples:
        raise InputError("holds no image files in its class folders", root)
    return Discovery(root=root, layout=layout, classes=classes, samples=samples, skipped=skipped)


def _strays(holder: Path, class_folders: set[Path]) -> list[dict]:
    """Files beside the class folders (loose, or in a folder that names no class): listed, never dropped.

    A folder that holds class folders of its own (Train/Train_Aligned_Faces/<Class>/) is another
    variant of the data set, not a stray.
    """
    strays = []
    try:
        entries = sorted(p for p in holder.iterdir() if not p.name.startswith("."))
    except OSError:
        return []
    for entry in entries:
        if entry in class_folders:
            continue
        if entry.is_dir():
            if _expression_dirs(entry):
                continue
            same = match_expression(entry.name)
            named = f"repeats class {same!r}" if same else "names no class"
            reason = f"not in a class folder (folder {entry.name!r} {named})"
            errors: list[OSError] = []
            strays.extend({"path": str(file), "reason": reason} for file in _walk_files(entry, errors=errors))
            strays.extend(_unreadable(errors))
        else:
            strays.append({"path": str(entry), "reason": "not in a class folder"})
    return strays


def _unreadable(errors: list[OSError]) -> list[dict]:
    """Folders os.walk could not list, as skipped entries: their files are neither kept nor counted."""
    return [{"path": str(error.filename), "reason": f"cannot read folder ({error.strerror or error})"} for error in errors]
