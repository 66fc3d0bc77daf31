"""The data a run saw, for every report: folder, classes, how faces were cut (with the crop sheet), skipped
and duplicate files."""

from __future__ import annotations

from pathlib import Path

from fexprune.report.tables import Column, Figure, KeyValues, Section, Table, Text


def data_section(results: dict | None, folder: Path | None = None) -> Section | None:
    """The data a run saw: folder, classes, face crops (with `folder`'s crop sheet), skipped and duplicate files."""
    if results is None or "data" not in results:
        return None
    data = results["data"]
    counts = Table("Images per class", [Column("class", "class", kind="key"), Column("images", "images")],
                   [{"class": name, "images": count} for name, count in data["counts"].items()]
                   + [{"class": "total", "images": data["n_images"]}],
                   f"{data['n_movies']} movies, {data['n_clips']} clips; layout {data['layout']}; "
                   f"split {results.get('split')}: {results.get('n_train')} train / {results.get('n_test')} test.")
    blocks: list = [KeyValues("Data set", [("folder", data["root"]), ("image size (w x h)", "x".join(map(str, data["image_size"] or [])))]), counts]
    if data.get("face_crop"):
        blocks += _face_blocks(data["face_crop"])
        sheet = folder / "figures" / "face_crops.png" if folder is not None else None
        if sheet is not None and sheet.is_file():
            blocks.append(Figure("Face crops as the network saw them", sheet,
                                 "a spread of crops for each way a frame was cut, each named by its file, each row saying how many of "
                                 "its frames it shows; look for frames that are not faces"))
    skipped = data.get("skipped", [])
    if skipped:
        blocks.append(Table(f"Skipped files ({len(skipped)})", [Column("path", "file", kind="key"), Column("reason", "reason", kind="key")],
                            skipped[:50], "first 50 shown; all are in train/results.json" if len(skipped) > 50 else ""))
    else:
        blocks.append(Text("Skipped files: none; every file found was read."))
    duplicates = [{"paths": ", ".join(d["paths"]), "classes": ", ".join(d["classes"])} for d in data.get("duplicates", [])]
    if duplicates:
        blocks.append(Table(f"Identical frames under different classes ({len(duplicates)})",
                            [Column("paths", "files", kind="key"), Column("classes", "classes", kind="key")], duplicates,
                            "Kept in the training split only, so no test frame has a twin in training."))
    else:
        blocks.append(Text("Identical frames under different classes: none."))
    return Section("Data", blocks)


def _face_blocks(faces: dict) -> list:
    """How each frame was cut: its own detected face, a clip neighbour's box, or the typical face region."""
    if faces.get("n_layout_aligned"):
        return [Text(f"Face crops: the layout holds faces already cut and aligned by the data set's makers; all "
                     f"{faces['n_layout_aligned']} are used whole, not detected and cut again.")]
    by = ", ".join(f"{name} {count}" for name, count in faces["by_detector"].items())
    counts = [("face found in the frame", f"{faces['n_detected']} of {faces['n_images']} ({100 * faces['detection_rate']:.1f}%)")]
    if faces.get("n_clip_neighbour"):  # only where the chain has the clip-neighbour step and it fired
        counts.append(("cut at a clip neighbour's face", str(faces["n_clip_neighbour"])))
    counts += [("cut at the typical face region", str(faces["n_fallback"])), ("by detector", by)]
    if faces.get("n_turned") or faces.get("eye_align"):
        counts.append(("cut turned level (--eye-align's eye pair, or haar-rotated)", f"{faces['n_turned']} of {faces['n_images']}"))
    blocks: list = [KeyValues("Face crops", counts)]
    for key, title in (("clip_neighbour", "Frames cut at a clip neighbour's face"), ("fallback", "Frames cut at the typical face region")):
        paths = faces.get(key) or []
        if paths:
            blocks.append(Table(f"{title} ({len(paths)})", [Column("path", "file", kind="key")], [{"path": p} for p in paths[:50]],
                                "first 50 shown; all are in results.json" if len(paths) > 50 else ""))
    return blocks
