"""fexprune from Python: train, prune and compare as the command line does, and open a run to read it,
predict with it and export it.

Every call writes the run folder its command writes. Its options are that command's options written as
keywords (`--face-crop` is `face_crop=True`, `--channels 4,8` is `channels=(4, 8)`, `--no-tensorboard` is
`tensorboard=False`) and go through the command's own parser, so defaults, refusals and their messages are
the command line's; a bad option raises `fexprune.errors.InputError`. `out` is the folder a new
`<kind>-<date>-<time>` run folder is made in, as the command line does under ./runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Iterable

from fexprune import run_folder, runs
from fexprune.errors import InputError
from fexprune.run_folder import RunFolder

__all__ = ["Run", "open_run", "train", "prune", "prune_curve", "compare", "run"]

PathLike = str | os.PathLike


class Run(RunFolder):
    """A finished run folder (see `RunFolder`: path, kind, config/spec, results, metrics, split), and for a
    train or prune run its model: loaded when first used, then kept."""

    @functools.cached_property
    def _loaded(self):
        from fexprune.inference.run_model import load_run_model

        return load_run_model(self.path)

    @property
    def model(self):
        """The trained (or pruned) network, a torch.nn.Module on the CPU."""
        return self._loaded.model

    @property
    def preprocessing(self) -> dict:
        """How an image becomes the network's input: size, normalisation and its statistics, classes."""
        return self._loaded.preprocessing

    @property
    def classes(self) -> list[str]:
        return self._loaded.classes

    def predict(self, images: PathLike | Iterable[PathLike], face_detect: bool | None = None, batch_size: int = 64):
        """A pandas DataFrame with a row per face (one per image where whole frames are classified): the
        columns of `fexprune predict`'s CSV (path, face, x, y, w, h, label, p_<class>..., detector, in_split),
        the probabilities unrounded. `images`: image files or folders (searched recursively). Files that are not
        images are skipped with a warning, as the command line lists them."""
        import pandas as pd

        from fexprune.inference.predict import prediction_columns, prediction_rows, predict

        paths = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        predictions = predict(self._loaded, paths, face_detect=face_detect, batch_size=batch_size)
        for warning in [*predictions.warnings, predictions.split_line()]:
            if warning:
                warnings.warn(warning, stacklevel=2)
        if predictions.skipped:
            first = predictions.skipped[0]
            warnings.warn(f"skipped {len(predictions.skipped)} files (first: {first['path']}: {first['reason']})", stacklevel=2)
        return pd.DataFrame(prediction_rows(predictions, digits=None), columns=prediction_columns(predictions))

    def export_onnx(self, path: PathLike, opset: int = 17, overwrite: bool = False) -> dict:
        """Write the model as ONNX to `path` and its preprocessing to `<path>.json`, as `fexprune export`
        does (checked against PyTorch with onnxruntime); returns what the .json holds."""
        from fexprune.inference.export import export_onnx

        return export_onnx(self.path, path, opset=opset, overwrite=overwrite)


def open_run(path: PathLike | RunFolder) -> Run:
    """The finished run in the folder `path`."""
    return Run.open(_folder(path))


def train(data: PathLike | None = None, recipe: str = "paper", out: PathLike = "runs", seed: int = 0, **options) -> Run:
    """`fexprune train`: `data` an image folder (None: the built-in synthetic data); `options` those of
    `fexprune train --recipe RECIPE --help`. With `cv=K` the run is a K-fold cross-validation."""
    from fexprune.commands.common import tracking_options
    from fexprune.commands.train import train_config
    from fexprune.experiments.train import train as run_training

    _refuse(options, {"resume": "an interrupted run is continued with `fexprune train --resume RUN_DIR`"}, "train")
    args = _parse("train", {"data": data, "recipe": recipe, "seed": seed}, options)
    tracking = tracking_options(args)
    config = train_config(args)
    result = run_training(config, out=_new_run_path(out, "cv" if config.cv else "train"), progress=not args.quiet,
                          tracking=tracking)
    return open_run(result.run_dir)


def prune(run: PathLike | RunFolder, criterion: str = "l2", out: PathLike = "runs", **options) -> Run:
    """`fexprune prune --run RUN`: the paper's kernel pruning of a train run, one criterion (or "all")."""
    from fexprune.commands.common import tracking_options
    from fexprune.commands.prune import prune_config
    from fexprune.experiments.prune import run_pruning

    args = _parse("prune", {"run": _folder(run), "criterion": criterion}, options)
    tracking = tracking_options(args)
    config = prune_config(args)
    result = run_pruning(config, out=_new_run_path(out, "prune"), progress=not args.quiet, tracking=tracking)
    return open_run(result.run_dir)


def prune_curve(run_or_runs: PathLike | RunFolder | Iterable[PathLike | RunFolder], curve: Iterable[float],
                out: PathLike = "runs", **options) -> Run:
    """`fexprune prune-curve`: accuracy against cost at each fraction of MACs removed in `curve`; several
    train runs (the seeds of one configuration) give every point as mean and sd over them."""
    from fexprune.commands.common import tracking_options
    from fexprune.commands.prune_curve import curve_config
    from fexprune.experiments.prune_curve import run_prune_curve

    several = not isinstance(run_or_runs, (str, os.PathLike, RunFolder))
    train_runs = [_folder(r) for r in run_or_runs] if several else [_folder(run_or_runs)]
    args = _parse("prune-curve", {"run": train_runs, "curve": tuple(curve)}, options)
    tracking = tracking_options(args)
    config = curve_config(args)
    written, _ = run_prune_curve(config, out=_new_run_path(out, "prune-curve"), progress=not args.quiet, tracking=tracking)
    return open_run(written)


def run(spec: dict | PathLike | RunFolder, out: PathLike = "runs", seed: int | None = None, progress: bool = True,
        tensorboard: bool = True, mlflow: str | None = None) -> Run:
    """Run again what a spec states: a spec (a run's `.spec`, changed where you like), a run folder, or a JSON
    file holding a spec; `seed` replaces its seed. Writes a new run folder under `out`, as the command that
    made the spec's kind writes it, and returns it."""
    from fexprune.experiments.runner import RunContext
    from fexprune.experiments.runner import run as run_spec
    from fexprune.tracking import tracking

    if isinstance(spec, dict):
        values, source = spec, "the spec"
    else:
        values, source = run_folder.spec_from(_folder(spec)), _folder(spec)
    if seed is not None:
        values = {**values, "seed": seed}
    context = RunContext(progress=progress, tracking=tracking(tensorboard, mlflow))
    return open_run(run_spec(values, _new_run_path(out, str(values.get("kind") or "run")), context, source))


def compare(paths: PathLike | RunFolder | Iterable[PathLike | RunFolder]):
    """`fexprune compare` as a pandas DataFrame: a row per configuration (runs whose settings differ only in
    the seed), grouped as the command groups them, with the settings that differ between rows, then `kind`,
    `runs`, `seeds`, the mean and sd of `test_accuracy` and `macro_f1`, and the run `folders`; then a row per
    prune run's criterion (`kind` prune: `criterion`, `kernels_pruned`, the pruned `test_accuracy` and the
    `unpruned_test_accuracy`). PIC runs and summaries are left out, as the command's main table leaves them."""
    import pandas as pd

    from fexprune.report.compare import collect, group_runs, varying_settings
    from fexprune.schema import run_kind

    several = not isinstance(paths, (str, os.PathLike, RunFolder))
    found = collect([_folder(p) for p in paths] if several else [_folder(paths)])
    groups = group_runs(found.records)
    keys = varying_settings(groups)
    rows = []
    for group in groups:
        accuracies, f1s = group.accuracies, group.f1s
        rows.append({
            **{key: group.settings.get(key) for key in keys},
            "kind": run_kind(runs.read_json(group.records[0].folder / "results.json")),
            "runs": len(group.records),
            "seeds": sorted({r.seed for r in group.records}, key=str),
            "test_accuracy": statistics.mean(accuracies),
            "test_accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else float("nan"),
            "macro_f1": statistics.mean(f1s) if f1s else float("nan"),
            "macro_f1_sd": statistics.stdev(f1s) if len(f1s) > 1 else float("nan"),
            "folders": [str(r.folder) for r in group.records],
        })
    for row in found.prune_rows:
        results = runs.read_json(Path(row["run"]) / "results.json")
        summary = results["criteria"][row["criterion"]]
        rows.append({"kind": "prune", "criterion": row["criterion"], "runs": 1,
                     "kernels_pruned": summary["kernels_pruned"], "test_accuracy": summary["test_accuracy"],
                     "unpruned_test_accuracy": results["unpruned"]["test_accuracy"], "folders": [row["run"]]})
    return pd.DataFrame(rows)


def _folder(run: PathLike | RunFolder) -> str:
    return str(run.path if isinstance(run, RunFolder) else Path(run))


def _refuse(options: dict, refused: dict[str, str], command: str) -> None:
    for key in options:
        if key in refused:
            raise InputError(f"{command}: {key}= {refused[key]}")


def _new_run_path(out: PathLike, kind: str) -> Path:
    """A free `<out>/<kind>-<date>-<time>[-k]` for the experiment to take as its run folder (`out` made
    where missing), as the command line names its runs under ./runs."""
    out = Path(out)
    if run_folder.is_run_dir(out):
        raise InputError("is a run folder; out= names the folder new run folders are made in", out)
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a folder", out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return next(path for k in range(10_000) if not (path := out / (f"{kind}-{stamp}" + (f"-{k}" if k else ""))).exists())


# keywords that are the API's own business, not a command-line option
_NEVER_OPTIONS = {"help", "version", "out", "command", "func"}


def _parse(command: str, named: dict, options: dict) -> argparse.Namespace:
    """The Namespace `fexprune COMMAND ...` would parse from these keywords, through the command's own parser,
    built anew for what is given: what a command offers depends on it (train's --recipe decides its options)."""
    for key in options:
        if key in named or key in _NEVER_OPTIONS:
            raise InputError(f"{command}: {key}= is not an option here")
    first = _tokens(_command_parser(command, []), command, named)
    tokens = first + _tokens(_command_parser(command, first), command, options)
    parser = _command_parser(command, tokens)
    args = parser.parse_args(tokens)
    args.command = command
    return args


def _command_parser(command: str, tokens: list[str]) -> argparse.ArgumentParser:
    """The parser of `fexprune COMMAND` for these tokens, raising InputError where the command line would
    print its one-line error and exit."""
    from fexprune.cli import build_parser

    parser = build_parser([command, *tokens])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen = subparsers.choices[command]

    def refuse(message: str):
        raise InputError(f"{command}: {message}")

    chosen.error = refuse
    return chosen


def _tokens(parser: argparse.ArgumentParser, command: str, options: dict) -> list[str]:
    """Command-line words for keyword options: flags True/False, lists as the option reads them (comma
    lists, or one word each for options that take several); None leaves an option at its default."""
    by_option = {option: action for action in parser._actions for option in action.option_strings}
    tokens: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        option = "--" + key.replace("_", "-")
        action = by_option.get(option)
        if action is None:  # a flag kept under another name: --no-tensorboard sets `tensorboard`
            flags = [a for a in parser._actions if a.dest == key and a.option_strings]
            if not flags:
                raise InputError(f"{command}: no option {key}= (the options are those of `fexprune {command} --help`, "
                                 "with underscores for dashes)")
            chosen = next((a for a in flags if a.nargs == 0 and isinstance(value, bool) and a.const is value), None)
            if chosen is not None:
                tokens.append(chosen.option_strings[0])
            elif not all(a.default == value for a in flags):
                raise InputError(f"{command}: {key}= takes True or False, got {value!r}")
            continue
        if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
            if not isinstance(value, bool):
                raise InputError(f"{command}: {key}= takes True or False, got {value!r}")
            if isinstance(action, argparse.BooleanOptionalAction):  # eye_align=False and no_eye_align=True alike
                on = value if option == action.option_strings[0] else not value
                tokens.append(action.option_strings[0] if on else action.option_strings[-1])
            elif value:
                tokens.append(option)
        elif action.nargs == "?" and action.const is not None and isinstance(value, bool):
            if value:  # an option whose value may be left out: mlflow=True is --mlflow
                tokens.append(option)
        elif action.nargs in ("+", "*"):
            tokens += [option, *(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))]
        else:
            text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
            tokens.append(f"{option}={text}")
    return tokens
