"""What the public API reads from the recorded run folders of tests/fixtures/runs_v1/: each run's kind,
compare's numbers, its predictions of four frames and its ONNX export's outputs on them.

tests/record_old_runs.py wrote the folders and expected.json with the code of the first run-folder format;
tests/test_old_run_folders.py reads them again with this checkout and compares. Everything is read through
`fexprune.api` as a user reads it, never through the folders' own layout, so the record says nothing of how
config.json is shaped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runs_v1"
FRAMES = "frames"  # the frames predicted, under the fixture: <class>/<file>.png
N_FRAMES = 4  # the first frame of each of the first classes of the built-in data
FRAME_SIZE = (240, 192)  # (width, height) they are shrunk to: a fifth of the fixture's size at full size
TOLERANCE = 1e-6
# compare's columns that are numbers of the runs (its settings columns follow the config's keys, which may change)
COMPARE_NUMBERS = ("runs", "seeds", "test_accuracy", "test_accuracy_sd", "macro_f1", "macro_f1_sd",
                   "kernels_pruned", "unpruned_test_accuracy")
COMPARE_NAMES = ("kind", "criterion")


def copy_frames(target: Path) -> None:
    """The first frame of each of the first N_FRAMES classes of the built-in data, shrunk to FRAME_SIZE, in `target`."""
    import cv2

    from fexprune.data.builtin import default_data_dir

    root = default_data_dir(progress=False)
    for folder in sorted(p for p in root.iterdir() if p.is_dir())[:N_FRAMES]:
        frame = sorted(folder.glob("*.png"))[0]
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        small = cv2.resize(cv2.imread(str(frame), cv2.IMREAD_COLOR), FRAME_SIZE, interpolation=cv2.INTER_AREA)
        assert cv2.imwrite(str(target / folder.name / frame.name), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def frames(root: Path) -> list[Path]:
    """The recorded frames, by file name (the order of predict's rows)."""
    return sorted((root / FRAMES).glob("*/*.png"), key=lambda path: path.name)


def _plain(value):
    """A JSON value for a cell: NaN (an sd of one run) as None, numpy numbers as Python's."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def compare_rows(table, root: Path) -> list[dict]:
    """compare's table as records of its numbers, each named by its kind, criterion and folders (relative to
    `root`), sorted so the order of rows does not matter."""
    rows = []
    for record in table.to_dict("records"):
        row = {key: _plain(record[key]) for key in COMPARE_NUMBERS if key in record}
        row.update({key: record[key] for key in COMPARE_NAMES if isinstance(record.get(key), str)})
        row["folders"] = sorted(Path(f).resolve().relative_to(root.resolve()).as_posix() for f in record["folders"])
        rows.append(row)
    return sorted(rows, key=lambda r: (r["folders"], str(r.get("criterion"))))


def onnx_probabilities(onnx_file: Path, images: list[Path]) -> list[list[float]]:
    """Softmax of the ONNX file's logits, each frame prepared as the file's .json says (gray, INTER_AREA to its
    size, its normalisation; mirrored views averaged where it says the run was scored so)."""
    import cv2
    import onnxruntime

    info = json.loads(Path(f"{onnx_file}.json").read_text())
    width, height = info["image_size"]
    batch = []
    for image in images:
        gray = cv2.cvtColor(cv2.imread(str(image), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
        x = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
        if info["normalize"] == "per-image":
            std = x.std()
            x = (x - x.mean()) / (std if std >= 1e-6 else 1.0)
        elif info["normalize"] == "dataset":
            x = (x - np.float32(info["stats"]["mean"])) / np.float32(info["stats"]["std"])
        elif info["normalize"] == "none":
            x = x / np.float32(255.0)
        else:
            raise AssertionError(f"no recorded run uses {info['normalize']} normalisation")
        batch.append(x[None])
    x = np.stack(batch).astype(np.float32)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    views = [x, x[..., ::-1].copy()] if "mirrored" in info["test_time"] else [x]
    probabilities = []
    for view in views:
        logits = session.run([info["output"]["name"]], {info["input"]["name"]: view})[0].astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities.append(e / e.sum(axis=1, keepdims=True))
    return np.mean(probabilities, axis=0).tolist()


def prediction_record(rows: list[dict], classes: list[str]) -> dict:
    """Predict's rows (a row per face, or per frame where whole frames are classified) by frame and face:
    "classes", "faces" ([frame file, face, x, y, w, h] each), "labels", "probabilities"."""
    rows = sorted(rows, key=lambda row: (Path(row["path"]).name, row["face"]))
    return {"classes": classes,
            "faces": [[Path(row["path"]).name, *(_plain(row[key]) for key in ("face", "x", "y", "w", "h"))]
                      for row in rows],
            "labels": [row["label"] for row in rows],
            "probabilities": [[float(row[f"p_{name}"]) for name in classes] for row in rows]}


def read_run(folder: Path, images: list[Path], exports: Path) -> dict:
    """What the API reads from one run folder: kind, the shape of its metrics, its split's sizes, compare's
    rows (None where compare refuses the folder on its own), and for a run with a model its predictions of
    `images` (`prediction_record`) and its ONNX export's ("onnx": probabilities of the whole frames in the
    order of `images`, "onnx_files": the files the export wrote, "face_crop": whether its .json says faces
    are cropped first); "refused" says what refused, for whoever reads the record, and is not compared."""
    from fexprune import api

    from fexprune.errors import InputError

    run = api.open_run(folder)
    split_sizes = None if run.split is None else {side: len(files) for side, files in sorted(run.split.items())}
    record = {"kind": run.kind, "metrics_shape": list(run.metrics.shape), "split_sizes": split_sizes}
    try:
        record["compare"] = compare_rows(api.compare([folder]), folder.parent)
    except InputError as error:  # a kind compare does not take on its own (a pruning curve)
        record["compare"] = None
        record["refused"] = str(error)
    try:
        table = run.predict(images)
    except InputError as error:  # a run without a model: recorded so, and not predicted again
        record["predicts"] = False
        record["refused"] = "; ".join(filter(None, [record.get("refused"), f"predict: {error}"]))
        return record
    record["predicts"] = True
    record.update(prediction_record(table.to_dict("records"), list(run.classes)))
    exports.mkdir(parents=True, exist_ok=True)
    onnx_file = exports / f"{folder.name}.onnx"
    run.export_onnx(onnx_file)
    record["onnx_files"] = sorted(p.name for p in exports.glob(f"{folder.name}.onnx*"))
    record["onnx"] = onnx_probabilities(onnx_file, images)  # whole frames, in the order of `images`
    record["face_crop"] = json.loads(Path(f"{onnx_file}.json").read_text())["face_crop"] is not None
    return record


def read_all(root: Path, names: list[str], exports: Path) -> dict:
    """{"runs": {name: read_run}, "compare": compare's rows over all the runs together}."""
    from fexprune import api

    images = frames(root)
    assert len(images) == N_FRAMES, f"expected {N_FRAMES} frames under {root / FRAMES}, found {len(images)}"
    return {"frames": [image.relative_to(root).as_posix() for image in images],
            "runs": {name: read_run(root / name, images, exports) for name in names},
            "compare": compare_rows(api.compare([root / name for name in names]), root)}


def differences(expected, actual, where: str = "") -> list[str]:
    """Where `actual` differs from `expected`: numbers to TOLERANCE (relative above 1), the rest exactly."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        problems = [f"{where}{key}: missing" for key in expected if key not in actual]
        problems += [f"{where}{key}: not expected" for key in actual if key not in expected]
        for key in expected:
            if key in actual:
                problems += differences(expected[key], actual[key], f"{where}{key}.")
        return problems
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where.rstrip('.')}: {len(actual)} items, expected {len(expected)}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual)) for p in differences(e, a, f"{where}{i}.")]
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool):
        if abs(expected - actual) <= TOLERANCE * max(1.0, abs(expected)):
            return []
    elif expected == actual:
        return []
    return [f"{where.rstrip('.')}: expected {expected!r}, got {actual!r}"]
