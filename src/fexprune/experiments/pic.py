"""The PIC experiment (paper 2.1, 3.1): an 11-10-11 autoencoder pruned by distinctiveness.

Progressive mode (the paper's table and Fig. 4): merge the most similar pair of hidden units,
retrain briefly, record hidden units, train/test loss and the minimum pairwise angle, down to
`min_units`. Threshold mode (Gedeon & Harris): apply the dead / complementary (> 165 deg) /
similar (< 15 deg) rules, one action at a time, until none applies.

Loss everywhere: mean squared reconstruction error over all patterns and all inputs, on the
normalised inputs. Training: full-batch Adam (seeded), normaliser fitted on the training rows.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from tqdm import tqdm

from fexprune import paper, run_folder, spec
from fexprune.data.descriptors import DescriptorSettings, feature_table_from_data
from fexprune.data.outliers import find_outliers, rule_text
from fexprune.data.tables import FeatureTable, read_feature_table
from fexprune.device import cpu_threads, resolve_device
from fexprune.errors import InputError
from fexprune.experiments.pic_config import PICConfig
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.models.autoencoder import Autoencoder, TrainSettings, fit, hidden_activations, reconstruction_loss
from fexprune.pruning.autoencoder_ops import merge_similar, remove_complementary, remove_dead
from fexprune.pruning.distinctiveness import (
    complementary_pairs,
    dead_units,
    min_angle,
    most_similar_pair,
    pairwise_angles,
    similar_pairs,
)
from fexprune.report.pic import (
    LOSS_DEFINITION,
    angle_agreement,
    angles_figure,
    comparison_rows,
    progressive_figure,
    threshold_figure,
)
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

@dataclass
class PICResult:
    config: PICConfig
    rows: list[dict]  # one per network state (progressive: 10 .. 2 units; threshold: per action)
    input_names: list[str]
    n_train: int
    n_test: int
    table_source: str
    missing: str  # what was imputed or dropped, in words
    initial_angles: np.ndarray
    final_angles: np.ndarray
    seconds: float = 0.0
    run_dir: Path | None = None
    normalizer: dict = field(default_factory=dict)
    outliers: list[dict] = field(default_factory=list)  # flagged rows: name, file row, reasons


def load_table(config: PICConfig, progress: bool = True) -> FeatureTable:
    if config.features:
        return read_feature_table(config.features)
    return feature_table_from_data(config.data, DescriptorSettings(image_size=tuple(config.image_size)), progress)


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split; the test part is round(n * fraction) rows, at least one."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(n * test_fraction))), n - 1)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def normalise(train: np.ndarray, test: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit on the training rows only; a constant column is left centred (scale 1)."""
    if method == "none":
        return train, test, {"method": "none"}
    if method == "minmax":
        shift, scale = train.min(axis=0), train.max(axis=0) - train.min(axis=0)
    else:
        shift, scale = train.mean(axis=0), train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    params = {"method": method, "shift": shift.tolist(), "scale": scale.tolist()}
    return (train - shift) / scale, (test - shift) / scale, params


def run_pic(config: PICConfig, out: str | Path | None = None, *, save: bool = True,
            table: FeatureTable | None = None, progress: bool = True, tracking: Tracking = Tracking()) -> PICResult:
    """Run the experiment; with `save`, write a run folder under `out` (see `fexprune.runs`)."""
    config.check()
    started = time.perf_counter()
    table = table if table is not None else load_table(config, progress)
    outliers = find_outliers(table, config.outlier_z)
    if config.drop_outliers and outliers:
        table = table.without([o.index for o in outliers])
    inputs = table.inputs(config.include_label)
    if len(inputs) < 5:
        raise InputError(f"need at least 5 rows, the table has {len(inputs)}", table.source)
    train_rows, test_rows = split(len(inputs), config.test_fraction, config.seed)
    x_train, x_test, normalizer = normalise(inputs[train_rows], inputs[test_rows], config.normalize)
    device = resolve_device(config.device)
    x_train = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    x_test = torch.as_tensor(x_test, dtype=torch.float32, device=device)

    with cpu_threads(1):  # a tiny network: threads only add overhead on shared cores
        # steps: the first training, then each pruning action and its retraining (at most one per unit pruned)
        with tqdm(total=1 + max(0, config.hidden - config.min_units), desc=f"pic ({config.mode})", unit="step",
                  file=sys.stderr, disable=not progress, leave=False) as bar:
            torch.manual_seed(config.seed)
            model = Autoencoder(inputs.shape[1], config.hidden).to(device)
            fit(model, x_train, TrainSettings(config.epochs, config.learning_rate))
            bar.update(1)
            initial_angles = pairwise_angles(hidden_activations(model, x_train))
            step = progressive_reduce if config.mode == "progressive" else threshold_prune

            def on_step(row: dict) -> None:
                bar.set_postfix({"units": row["hidden_units"], "loss": f"{row['train_loss']:.4f}"}, refresh=False)
                bar.update(1)

            rows, model = step(model, x_train, x_test, config, on_step)
        final_angles = pairwise_angles(hidden_activations(model, x_train))

    result = PICResult(
        config=config, rows=rows, input_names=table.input_names(config.include_label),
        n_train=len(train_rows), n_test=len(test_rows), table_source=table.source,
        missing=table.missing_summary(), initial_angles=initial_angles, final_angles=final_angles,
        seconds=time.perf_counter() - started, normalizer=normalizer, outliers=[o.as_dict() for o in outliers],
    )
    if save:
        result.run_dir = write_pic_run(result, out, tracking)
    return result


def _state(model: Autoencoder, x_train: torch.Tensor, x_test: torch.Tensor) -> dict:
    angles = pairwise_angles(hidden_activations(model, x_train))
    return {
        "hidden_units": model.n_hidden,
        "train_loss": reconstruction_loss(model, x_train),
        "test_loss": reconstruction_loss(model, x_test),
        "min_angle": min_angle(angles),
        "max_angle": float(angles[np.triu_indices(len(angles), 1)].max()) if len(angles) > 1 else float("nan"),
    }


def progressive_reduce(model, x_train, x_test, config: PICConfig,
                       on_step: Callable[[dict], None] | None = None) -> tuple[list[dict], Autoencoder]:
    """Merge the most similar pair, retrain, record: the paper's table."""
    rows = [{**_state(model, x_train, x_test), "merged": "", "merged_angle": float("nan"),
             "loss_before_retrain": float("nan")}]
    settings = TrainSettings(config.retrain_epochs, config.learning_rate)
    while model.n_hidden > config.min_units:
        i, j, angle = most_similar_pair(pairwise_angles(hidden_activations(model, x_train)))
        model = merge_similar(model, keep=i, drop=j)
        before = reconstruction_loss(model, x_train)
        fit(model, x_train, settings)
        rows.append({**_state(model, x_train, x_test), "merged": f"{i}+{j}", "merged_angle": angle,
                     "loss_before_retrain": before})
        if on_step is not None:
            on_step(rows[-1])
    return rows, model


def threshold_prune(model, x_train, x_test, config: PICConfig,
                    on_step: Callable[[dict], None] | None = None) -> tuple[list[dict], Autoencoder]:
    """Gedeon & Harris's rules, one action at a time: dead, then complementary, then similar."""
    rows = [{"step": 0, "action": "trained", "units": "", "angle": float("nan"),
             "loss_before_retrain": float("nan"), **_state(model, x_train, x_test)}]
    settings = TrainSettings(config.retrain_epochs, config.learning_rate)
    while model.n_hidden > config.min_units:
        acts = hidden_activations(model, x_train)
        angles = pairwise_angles(acts)
        dead = dead_units(acts, config.dead_tolerance)
        complementary = complementary_pairs(angles, config.complementary_above)
        similar = similar_pairs(angles, config.similar_below)
        if dead:
            action, units, angle = "dead", str(dead[0]), float("nan")
            model = remove_dead(model, dead[0], acts)
        elif complementary and model.n_hidden - 2 >= max(1, config.min_units):
            i, j, angle = complementary[0]
            action, units = "complementary", f"{i}+{j}"
            model = remove_complementary(model, i, j, acts)
        elif similar:
            i, j, angle = similar[0]
            action, units = "similar", f"{i}+{j}"
            model = merge_similar(model, keep=i, drop=j)
        else:
            break
        before = reconstruction_loss(model, x_train)
        if settings.epochs:
            fit(model, x_train, settings)
        rows.append({"step": len(rows), "action": action, "units": units, "angle": angle,
                     "loss_before_retrain": before, **_state(model, x_train, x_test)})
        if on_step is not None:
            on_step(rows[-1])
    return rows, model


def write_pic_run(result: PICResult, out: str | Path | None, tracking: Tracking = Tracking()) -> Path:
    """A fresh run folder: its spec, metrics.csv, results.json, figures and the report."""
    run_dir = run_folder.create(out, "pic", spec.build("pic", asdict(result.config)))
    summary = {
        "mode": result.config.mode, "loss_definition": LOSS_DEFINITION, "n_train": result.n_train, "n_test": result.n_test,
        "inputs": result.input_names, "missing": result.missing, "normalizer": result.normalizer, "seconds": result.seconds,
        "rows": result.rows, "initial_angles": result.initial_angles, "final_angles": result.final_angles,
        "outliers": result.outliers, "outlier_rule": rule_text(result.config.outlier_z),
        "outliers_dropped": result.config.drop_outliers,
    }
    if result.config.mode == "progressive":
        summary.update({"paper_comparison": comparison_rows(result.rows), "paper_test_loss": paper.PIC_TEST_LOSS,
                        "angle_agreement": angle_agreement(result.rows)})
    main = progressive_figure(result.rows) if result.config.mode == "progressive" else threshold_figure(result.rows)
    write_run(run_dir, RunOutput(kind="pic", results=summary, metrics=result.rows, figures={
        result.config.mode: main, "angles_initial": angles_figure(result.initial_angles, "angles after training (deg)")}), tracking)
    return run_dir


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A PIC run as `run_spec` states it (fexprune.experiments.runner)."""
    config = spec.settings(PICConfig, spec.flat(run_spec))
    return run_pic(config, out, progress=context.progress, tracking=context.tracking).run_dir
