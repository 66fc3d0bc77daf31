"""Where researchers already look: a run that trains writes TensorBoard event files into its own folder
(`<run>/tensorboard/`, so `tensorboard --logdir runs/` shows every run side by side), and, when asked, logs
its parameters, metric history and files to an MLflow tracking store.

What a run asks for is a `Tracking` value that travels with the call, from the command line (`--no-tensorboard`,
`--mlflow [URI]`) or the Python API down to the experiment, and to a sweep's trials in their job arguments
(a process pool's workers and Ray tasks get it pickled), never through the environment.
"""

from __future__ import annotations

import io
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fexprune.errors import InputError
from fexprune.kinds import KINDS

DEFAULT_MLFLOW_URI = "./mlruns"
EVENTS = "tensorboard"  # the sub-folder of a run folder that holds its event files
MLFLOW_HINT = "pip install 'fexprune[mlflow]'"
# the tracking stores MLflow itself opens; anything else fails only when the run ends, after the training
MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


@dataclass(frozen=True)
class Tracking:
    """Where a run's numbers go besides its folder: TensorBoard (on unless asked not to) and MLflow (a
    tracking URI; None: no MLflow). Build one with `tracking(...)`, which checks the URI before any work."""

    tensorboard: bool = True
    mlflow: str | None = None


def tracking(tensorboard: bool = True, mlflow: str | None = None) -> Tracking:
    """What the command line or the API asked for, checked now rather than after hours of training. A local
    MLflow path becomes an absolute file store, so workers elsewhere agree on it."""
    if mlflow:
        _mlflow()
        if "://" not in mlflow and not mlflow.startswith(("sqlite:", "databricks")):
            mlflow = Path(mlflow).resolve().as_uri()
        check_mlflow_uri(mlflow)
    return Tracking(tensorboard=tensorboard, mlflow=mlflow or None)


def check_mlflow_uri(uri: str) -> None:
    """Refuse, before any work, a tracking URI MLflow cannot log to: an unknown scheme, or a tracking server
    that does not answer (the run would train for hours, then fail while logging)."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in MLFLOW_SCHEMES:
        raise InputError(f"--mlflow: unsupported tracking URI scheme {scheme + ':'!r} "
                         f"(use a folder, or one of {', '.join(MLFLOW_SCHEMES)})", uri)
    if scheme in ("http", "https"):
        check_reachable(uri, "the MLflow tracking server")


def check_reachable(address: str, what: str, default_port: int = 80, timeout: float = 5.0) -> None:
    """An InputError naming `address` where nothing accepts a TCP connection at its host and port."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else default_port)
    except ValueError:
        raise InputError(f"{what}: not a valid address (bad port)", address) from None
    if not parts.hostname:
        raise InputError(f"{what}: not a valid address (no host)", address)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise InputError(f"cannot reach {what} ({reason}); is it running?", address) from None


def _mlflow():
    try:
        import mlflow  # optional: only runs that ask for MLflow need it
    except ImportError:
        raise InputError(f"--mlflow needs MLflow: {MLFLOW_HINT}") from None
    return mlflow


def scalars(row: dict) -> dict[str, float]:
    """The finite numbers of a metrics row, its step column left out; a prune row's under its criterion."""
    out = {}
    prefix = f"{row['criterion']}/" if row.get("criterion") else ""
    for key, value in row.items():
        if key in ("epoch", "fold", "step", "criterion"):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[prefix + key] = number
    return out


def row_step(row: dict, index: int) -> int:
    for key in ("epoch", "fold", "step"):
        if key in row and str(row[key]) not in ("", "None"):
            return int(float(row[key]))
    return index


class EpochLog:
    """Per-epoch scalars written as training goes, so TensorBoard shows a run while it trains."""

    def __init__(self, run_dir: Path, tracking: Tracking = Tracking()):
        self.writer = None
        if tracking.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only where it is on

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / EVENTS))

    def epoch(self, row: dict) -> None:
        if self.writer is None:
            return
        step = row_step(row, 0)
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def finish(run_dir: Path, kind: str, config: dict, results: dict, metrics: list[dict] | None, logged_live: bool,
           tracking: Tracking = Tracking()) -> None:
    """At the end of a run: TensorBoard's hyperparameters, final metrics and figures (and the per-step
    scalars where they were not logged live); then MLflow, where asked."""
    run_dir = Path(run_dir)
    if tracking.tensorboard and (metrics or KINDS[kind].logged):
        _tensorboard_summary(run_dir, config, results, metrics or [], logged_live)
    if tracking.mlflow:
        log_to_mlflow(run_dir, kind, config, metrics or [], tracking.mlflow)


def final_metrics(results: dict) -> dict[str, float]:
    keys = ("test_accuracy", "test_loss", "macro_f1", "train_accuracy", "train_loss")
    return {f"final/{key}": float(results[key]) for key in keys if isinstance(results.get(key), (int, float))}


def flat_params(config: dict, prefix: str = "") -> dict[str, Any]:
    """A run's spec as one level of str/int/float/bool values under dotted names (lists as text), as both
    trackers take them."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, f"{name}."))
        elif isinstance(value, (int, float, bool, str)):
            out[name] = value
        else:
            out[name] = "none" if value is None else str(value)
    return out


def _tensorboard_summary(run_dir: Path, config: dict, results: dict, metrics: list[dict], logged_live: bool) -> None:
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir / EVENTS))
    try:
        if not logged_live:
            for index, row in enumerate(metrics):
                for key, value in scalars(row).items():
                    writer.add_scalar(key, value, row_step(row, index))
        for name in ("confusion", "face_crops"):
            path = run_dir / "figures" / f"{name}.png"
            if path.is_file():
                image = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
                writer.add_image(name, image, dataformats="HWC")
        final = final_metrics(results)
        if final:
            writer.add_hparams(flat_params(config), final, run_name="hparams")
    finally:
        writer.close()


def log_to_mlflow(run_dir: Path, kind: str, config: dict, metrics: list[dict], uri: str) -> None:
    """One MLflow run for this run folder in the store at `uri`: its parameters, metric history and every
    file in it. A sweep's trials, each a run folder of its own, become its child runs."""
    mlflow = _mlflow()
    if uri.startswith("file:"):  # MLflow 3 keeps the file store only on request; ./mlruns is what users expect
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_name=run_dir.name, tags={"fexprune.kind": kind, "fexprune.run_dir": str(run_dir.resolve())}):
        _log_run(mlflow, config, metrics)
        mlflow.log_artifacts(str(run_dir))
        if KINDS[kind].trials:
            from fexprune import run_folder, runs

            for trial in sorted(p.parent for p in run_dir.glob("*/results.json")):
                with mlflow.start_run(run_name=trial.name, nested=True, tags={"fexprune.kind": "train"}):
                    trial_metrics = runs.read_csv(trial / "metrics.csv") if (trial / "metrics.csv").is_file() else []
                    _log_run(mlflow, run_folder.read_spec(trial), trial_metrics)


def _log_run(mlflow, config: dict, metrics: list[dict]) -> None:
    params = {key: str(value)[:500] for key, value in flat_params(config).items()}
    mlflow.log_params(params)
    for index, row in enumerate(metrics):
        values = scalars(row)
        if values:
            mlflow.log_metrics(values, step=row_step(row, index))
