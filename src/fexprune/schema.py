"""What the files of a run folder may hold, and the schema stamp of results.json.

results.json says which kind of run wrote it and in which version of the format, so readers (reports,
compare, prune) know what they read without guessing from which keys exist.

Everything read back from a run folder (config.json, results.json, split.json, a checkpoint's model
config and layer shapes) is checked here against its fields' types and bounds before anything is built
from it: a hand-edited file is one line naming the file and the field (InputError), never a traceback nor
an allocation of terabytes (an image side of 20000, 100000 channels). Fields a file does not know are left
alone, so a run written by a newer version still reads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from fexprune import kinds, spec
from fexprune.errors import InputError

VERSION = 1
KINDS = tuple(kinds.KINDS)

# Bounds far beyond any run this tool makes, and far below what would exhaust a machine's memory.
MAX_SIDE = 2048  # pixels of an image side a network takes
MAX_CHANNELS = 4096  # channels or units of one layer
MAX_KERNEL = 64
MAX_WEIGHTS = 200_000_000  # weights of one layer (800 MB of float32)
MAX_COUNT = 10_000_000  # epochs, batch sizes, samples, repeats ...
MAX_SEED = 2**32 - 1
MAX_SPLIT_FILES = 10_000_000


def stamp(results: dict[str, Any], kind: str) -> dict[str, Any]:
    """`results` with its schema entry: {"kind": ..., "version": ...}."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of run {kind!r}")
    return {**results, "schema": {"kind": kind, "version": VERSION}}


def run_kind(results: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """The kind of run a results.json records; runs written before the schema existed are told apart by
    the keys only they have."""
    schema = results.get("schema")
    if isinstance(schema, dict) and schema.get("kind") in KINDS:
        return schema["kind"]
    if "timings" in results:
        return "reproduce"
    if "combinations" in results:
        return "sweep"
    if "unpruned" in results:
        return "prune"
    if "loss_definition" in results:
        return "pic"
    if results.get("method") == "hog-svm":
        return "baseline"
    if "folds" in results:
        return "cv"
    return "train"


class _Bad(Exception):
    """A field that breaks its rule: the reason, said without the field's name (the caller adds it)."""


def _integer(low: int, high: int, none: bool = False) -> Callable[[Any], None]:
    def check(value):
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"must be a whole number{' or null' if none else ''}, not {_shown(value)}")
        if not low <= value <= high:
            raise _Bad(f"must be between {low} and {high}, not {value}")
    return check


def _number(low: float, high: float, none: bool = False, open_low: bool = False, open_high: bool = False):
    def check(value):
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"must be a number{' or null' if none else ''}, not {_shown(value)}")
        if not math.isfinite(value) or value < low or value > high or (open_low and value == low) or (open_high and value == high):
            raise _Bad(f"must be a finite number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}, not {value}")
    return check


def _text(none: bool = False):
    def check(value):
        if not (isinstance(value, str) or (value is None and none)):
            raise _Bad(f"must be text{' or null' if none else ''}, not {_shown(value)}")
    return check


def _flag(value):
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, not {_shown(value)}")


def _list_of(item: Callable[[Any], None], length: int | None = None, none: bool = False, most: int = 10_000):
    def check(value):
        if value is None and none:
            return
        if not isinstance(value, (list, tuple)):  # a checkpoint's configs keep tuples
            raise _Bad(f"must be a list{' or null' if none else ''}, not {_shown(value)}")
        if length is not None and len(value) != length:
            raise _Bad(f"must hold {length} values, not {len(value)}")
        if len(value) > most:
            raise _Bad(f"must hold at most {most} values, not {len(value)}")
        for value_item in value:
            item(value_item)
    return check


def _channels(value):
    """A network's channels ([c1, c2, ...]) or a sweep's combinations ([[c1, c2], ...])."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        for pair in value:
            _list_of(_integer(1, MAX_CHANNELS), most=16)(pair)
        return
    _list_of(_integer(1, MAX_CHANNELS), most=16)(value)


def _face_crop(value):
    """true/false, or as older runs recorded it: a detector list, its text, or {"margin": ..., ...}."""
    if not (value is None or isinstance(value, (bool, str, list, dict))):
        raise _Bad(f"must be true or false, not {_shown(value)}")


# config.json of every kind of run: a key's rule wherever it appears (a train, sweep, prune ... config)
CONFIG_FIELDS: dict[str, Callable[[Any], None]] = {
    "data": _text(none=True), "image_size": _list_of(_integer(8, MAX_SIDE), length=2), "variant": _text(),
    "seed": _integer(0, MAX_SEED), "test_fraction": _number(0, 1, open_low=True, open_high=True), "split": _text(),
    "face_crop": _face_crop, "face_margin": _number(0, 10), "detectors": _list_of(_text(), none=True, most=64),
    "eye_align": _flag, "cv": _integer(2, 1000, none=True), "normalize": _text(), "recipe": _text(),
    "epochs": _integer(0, MAX_COUNT), "lr": _number(0, 100), "batch_size": _integer(1, MAX_COUNT, none=True),
    "eval_every": _integer(1, MAX_COUNT), "device": _text(), "deterministic": _flag, "channels": _channels,
    "kernel_size": _integer(1, MAX_KERNEL), "pools": _list_of(_integer(1, MAX_KERNEL), length=2),
    "checkpoint_every": _integer(1, MAX_COUNT), "members": _integer(1, 64, none=True), "hog": _flag,
    "margin_tta": _number(0, 10, none=True), "repeats": _integer(1, 10_000), "workers": _integer(1, 4096, none=True),
    "backend": _text(), "address": _text(none=True), "gpus_per_trial": _number(0, 64), "run": _text(none=True),
    "sample_size": _integer(1, MAX_COUNT, none=True), "finetune_epochs": _integer(0, MAX_COUNT),
    "latency_repeats": _integer(0, MAX_COUNT), "threads": _integer(1, 4096, none=True),
}

# results.json: the scores every reader takes as numbers
RESULTS_FIELDS: dict[str, Callable[[Any], None]] = {
    "test_accuracy": _number(0, 1, none=True), "train_accuracy": _number(0, 1, none=True),
    "test_loss": _number(0, math.inf, none=True), "train_loss": _number(0, math.inf, none=True),
    "macro_f1": _number(0, 1, none=True), "n_train": _integer(0, MAX_SPLIT_FILES), "n_test": _integer(0, MAX_SPLIT_FILES),
    "epochs": _integer(0, MAX_COUNT, none=True), "classes": _list_of(_text(), most=1000),
}

# a checkpoint's model_config: the sizes its network is built with
MODEL_FIELDS: dict[str, Callable[[Any], None]] = {
    "channels": _list_of(_integer(1, MAX_CHANNELS), most=16), "kernel_size": _integer(1, MAX_KERNEL),
    "pools": _list_of(_integer(1, MAX_KERNEL), most=16), "input_size": _list_of(_integer(8, MAX_SIDE), length=2),
    "n_classes": _integer(2, 1000), "members": _integer(1, 64), "pooled": _list_of(_integer(1, MAX_SIDE), length=2, none=True),
    "dropout": _number(0, 1), "hog": _flag,
}


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_fields(values: Any, fields: dict[str, Callable[[Any], None]], source: Path, where: str = "") -> None:
    if not isinstance(values, dict):
        raise InputError(f"{where or 'the file'} must be a JSON object, not {type(values).__name__}", source)
    for key, rule in fields.items():
        if key in values:
            try:
                rule(values[key])
            except _Bad as bad:
                raise InputError(f"{where}{key} {bad}", source) from None


def check_config(values: Any, source: Path) -> None:
    """A run's spec (config.json, of any version): every setting it names of the right type and within bounds."""
    if isinstance(values, dict) and values.get("version") == spec.VERSION:
        for section in ("data", "faces", "training", "recipe"):
            if section in values and not isinstance(values[section], dict):
                raise InputError(f"{section} must be an object, not {_shown(values[section])}", source)
        values = spec.flat(values)
    _check_fields(values, CONFIG_FIELDS, source)
    size = values.get("image_size")
    if size is not None and "channels" in values and "kernel_size" in values:
        _check_paper_network(values["channels"], values["kernel_size"], source)


def _check_paper_network(channels, kernel_size: int, source: Path) -> None:
    if isinstance(channels, (list, tuple)) and channels and not isinstance(channels[0], (list, tuple)):
        for inputs, outputs in zip([1, *channels], channels):
            if inputs * outputs * kernel_size * kernel_size > MAX_WEIGHTS:
                raise InputError(f"channels {channels} with kernel_size {kernel_size} make a layer of over "
                                 f"{MAX_WEIGHTS:,} weights", source)


def check_results(values: Any, source: Path) -> None:
    """A run's results.json: the scores readers compute with are finite numbers in range."""
    _check_fields(values, RESULTS_FIELDS, source)
    schema = values.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InputError(f"schema must be an object, not {_shown(schema)}", source)


def check_split(values: Any, source: Path) -> None:
    """A train run's split.json: {"train": [file, ...], "test": [file, ...]}, every file named once."""
    if not isinstance(values, dict):
        raise InputError('is not a split record ({"train": [file, ...], "test": [file, ...]})', source)
    for side in ("train", "test"):
        names = values.get(side)
        if not isinstance(names, list):
            raise InputError(f'{side} must be a list of file names ({{"train": [file, ...], "test": [file, ...]}})', source)
        if len(names) > MAX_SPLIT_FILES:
            raise InputError(f"{side} names more than {MAX_SPLIT_FILES:,} files", source)
        for position, name in enumerate(names):
            if not isinstance(name, str):
                raise InputError(f"{side}[{position}] must be a file name, not {_shown(name)}", source)
        if len(set(names)) != len(names):
            twice = next(name for k, name in enumerate(names) if name in names[:k])
            raise InputError(f"{side} names {twice} twice", source)
    both = set(values["train"]) & set(values["test"])
    if both:
        raise InputError(f"{len(both)} file(s) are in both the train and the test part ({sorted(both)[0]} ...): "
                         "test images would be scored after training on them", source)


def check_model_config(config: Any, source: Path) -> None:
    """A checkpoint's model_config, its layer shapes included: sizes within bounds before a layer is built."""
    _check_fields(config, MODEL_FIELDS, source, "model_config.")
    for key in ("channels", "input_size"):
        if isinstance(config.get(key), (list, tuple)) and not config[key]:
            raise InputError(f"model_config.{key} is empty", source)
    nested = config.get("fer")
    if nested is not None:
        check_model_config(nested, source)
    shapes = config.get("layer_shapes")
    if shapes is None:
        return
    if not isinstance(shapes, dict) or len(shapes) > 10_000:
        raise InputError("model_config.layer_shapes must be an object of layer sizes", source)
    for name, shape in shapes.items():
        where = f"model_config.layer_shapes[{name!r}]"
        if not isinstance(shape, dict) or not shape:
            raise InputError(f"{where} must be an object of sizes, not {_shown(shape)}", source)
        for key, value in shape.items():
            try:
                _integer(1, MAX_CHANNELS * 64)(value)
            except _Bad as bad:
                raise InputError(f"{where}.{key} {bad}", source) from None
        groups = shape.get("groups", 1)
        for side in ("in", "out"):
            if side in shape and shape[side] % groups:
                raise InputError(f"{where}: {side} ({shape[side]}) is not a multiple of groups ({groups})", source)
        if shape.get("in", 1) * shape.get("out", 1) // groups > MAX_WEIGHTS:
            raise InputError(f"{where} makes a layer of over {MAX_WEIGHTS:,} weights", source)


# the files of a run folder read back as JSON, by name
RUN_FILES: dict[str, Callable[[Any, Path], None]] = {
    "config.json": check_config, "results.json": check_results, "split.json": check_split,
}


def check_run_file(value: Any, source: Path) -> None:
    """`value`, read from `source`, checked against the schema of the run file of that name (if any)."""
    check = RUN_FILES.get(Path(source).name)
    if check is not None:
        check(value, Path(source))
