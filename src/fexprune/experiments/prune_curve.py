"""`fexprune prune --runs RUN1 RUN2 ... --curve 0.1,...,0.8`: accuracy against cost, as pruning papers measure
it, over the training runs of one configuration (its seeds) so each point has a mean and a spread.

For each train run, criterion and MACs reduction r of the curve, the run's trained network of any recipe
(paper, best, transfer) is pruned structurally to (1 - r) of its MACs (fexprune.pruning.structured:
Torch-Pruning's dependency graph, channels really removed), fine-tuned (mini-batch AdamW, the rate decayed to
zero on a cosine, the run's recipe's augmentation, the unpruned network as a distillation teacher, the run's own
training split) and evaluated on the run's own test split (plain forward pass, no test-time augmentation, the
unpruned network scored the same way; the change in accuracy is taken against that run's own unpruned network).
Two baselines at every point:
- random: channels chosen by a seeded random importance at the same MACs (always run);
- scratch: the first criterion's pruned architecture re-initialised and trained from scratch with the
  budget of the original training (the run's epochs plus the fine-tuning epochs, AdamW at the run's rate,
  cosine decay), Liu et al. 2019, "Rethinking the value of network pruning" (Scratch-E), taught by the same
  unpruned network as the fine-tuning.
Then a sensitivity scan: test accuracy, without fine-tuning, when one prunable layer alone loses each
fraction of its channels (first criterion). MACs are counted twice: fexprune's count (conv and linear layers,
on which the targets are set) and Torch-Pruning's `tp.utils.count_ops_and_params`. CPU latency at batch 1 is
measured with repeats, every model of a run interleaved round by round with its unpruned network.
fexprune.report.curve_summary gives each point its mean and sd over the runs and its warnings.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm import tqdm

from fexprune import run_folder, spec
from fexprune.device import cpu_threads
from fexprune.errors import InputError
from fexprune.data.augment import AugmentConfig
from fexprune.data.builtin import describe_data
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.inference.trained_run import load_run
from fexprune.models.checkpoint import save_model
from fexprune.pruning.importance import IMPORTANCES
from fexprune.pruning.measure import (
    count_macs,
    count_parameters,
    latency_change,
    paired_latency_samples,
    quartiles,
    tp_macs_and_params,
)
from fexprune.pruning.structured import (
    StructuredConfig,
    layer_widths,
    prunable_layers,
    prune_by_ratio,
    prune_to_macs,
    reinitialise,
    select_layers,
)
from fexprune.report import prune_curve as report
from fexprune.report.curve_summary import curve_summary, mean_sd, summarise
from fexprune.training.loop import evaluate
from fexprune.training.minibatch import train_epoch
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext

KIND = "prune-curve"


@dataclass
class CurveConfig:
    run: str = ""  # one train run (or a folder of them)
    runs: tuple[str, ...] = ()  # several: the seeds of one configuration, or folders holding them
    curve: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # fractions of MACs removed
    criteria: tuple[str, ...] = ("l2",)
    layers: str | tuple[str, ...] = "all"
    global_pruning: bool = False
    steps: int = 1
    round_to: int | None = None
    merge: bool = False  # fold each removed channel into its most correlated kept one (fexprune.pruning.merging)
    # Fine-tuning as the pruning literature recovers a pruned network, not a gentle touch-up: removing half the
    # MACs of a small network leaves it near chance (measured on SFEW: benchmarks/pruning-real.md), so it
    # is retrained at a training rate decayed to zero (learning-rate rewinding, Renda et al. 2020), with the
    # recipe's own augmentation, and taught by the unpruned network (distillation, Hinton et al. 2015): on a
    # few hundred images the teacher's soft targets keep the pruned network from overfitting them.
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3
    distill: float = 0.7  # weight of the teacher's soft targets in the fine-tuning loss (0: labels only)
    temperature: float = 4.0
    augment: bool = True  # the run's recipe's augmentation while fine-tuning and training from scratch
    batch_size: int = 32
    scratch: bool = True
    scratch_epochs: int | None = None  # None: the run's epochs + finetune_epochs
    sensitivity: tuple[float, ...] = (0.25, 0.5, 0.75)
    sample_size: int = 64  # training images for distinctiveness, the merge's fit (and Taylor's gradient batch)
    latency_repeats: int = 30  # interleaved rounds; the spread over them is reported
    seed: int = 0
    threads: int | None = 1
    device: str = "cpu"

    def check(self) -> None:
        if not self.curve or not all(0 < r < 1 for r in self.curve):
            raise InputError(f"--curve takes MACs reductions strictly between 0 and 1, got {list(self.curve)}")
        if len({model_file("x", r, None) for r in self.curve}) != len(self.curve):
            raise InputError(f"--curve repeats a point: {list(self.curve)}")
        if not self.run and not self.runs:
            raise InputError("no train run given (--run or --runs)")
        if self.latency_repeats < 1:
            raise InputError("latency needs at least one round")
        unknown = [c for c in self.criteria if c not in IMPORTANCES]
        if unknown or not self.criteria:
            raise InputError(f"unknown criterion {', '.join(unknown) or '(none)'} (choose from {', '.join(IMPORTANCES)})")
        if not all(0 < f < 1 for f in self.sensitivity):
            raise InputError("sensitivity fractions must be strictly between 0 and 1")
        if self.steps < 1 or self.finetune_epochs < 0 or self.sample_size < 2 or self.batch_size < 2:
            raise InputError("--steps >= 1, fine-tuning epochs >= 0, sample and batch of at least 2 images")
        if not 0 <= self.distill <= 1 or self.temperature <= 0:
            raise InputError("--curve-distill is a weight in [0, 1] and the temperature must be positive")
        if self.round_to is not None and self.round_to < 1:
            raise InputError("--round-to must be a positive channel count")


def _train(model: nn.Module, x, y, epochs: int, lr: float, batch_size: int, seed: int, *, cosine: bool = True,
           augment_config: AugmentConfig | None = None, teacher: nn.Module | None = None, distill: float = 0.0,
           temperature: float = 4.0) -> None:
    """`epochs` passes of mini-batch AdamW (the rate on a cosine to zero unless `cosine` is off), distilled
    from `teacher` with weight `distill` (see train_epoch)."""
    if epochs <= 0:
        return
    torch.manual_seed(seed)  # dropout draws from the global generator, which torch seeds at random in each process
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1)) if cosine else None
    generator = torch.Generator().manual_seed(seed)
    if teacher is not None:
        teacher.eval()
    model.train()
    for _ in range(epochs):
        train_epoch(model, x, y, optimizer, generator, batch_size, schedule=schedule, augment_config=augment_config,
                    min_batch=2, teacher=teacher, distill=distill, temperature=temperature)
    model.eval()


def _recipe_augment(trained) -> AugmentConfig | None:
    """The augmentation the run's recipe trained with, as its spec (or, for older runs, its results) records
    it; None where it trained without (the paper's recipe)."""
    recorded = (trained.spec.get("recipe") or {}).get("augment") or (trained.results.get("training") or {}).get("augment")
    if not isinstance(recorded, dict):
        return None
    return AugmentConfig(**{key: tuple(value) if isinstance(value, list) else value for key, value in recorded.items()})


def find_train_runs(paths: tuple[str, ...] | list[str]) -> list[Path]:
    """Train run folders: each path is one (a run folder) or a folder of them (its subfolders that are
    finished train runs, in name order; other kinds of run beside them are passed over)."""
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if run_folder.has_spec(path):
            found.append(path)
            continue
        if not path.is_dir():
            raise InputError("no such train run or folder of runs", path)
        inside = sorted(p for p in path.iterdir() if p.is_dir() and (p / "model.pt").is_file() and _is_train_run(p))
        if not inside:
            raise InputError("neither a train run nor a folder holding train runs", path)
        found.extend(inside)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError("no train run given (--run or --runs)")
    return unique


def _is_train_run(folder: Path) -> bool:
    """A finished `fexprune train` run (a folder of runs may also hold prune and other runs, passed over)."""
    if not run_folder.is_finished(folder):
        return False
    try:
        return run_folder.read_spec(folder)["kind"] == "train"
    except InputError:
        return False


IGNORED_DIFFERENCES = ("seed", "device", "deterministic", "eval_every", "checkpoint_every")


def configuration_differences(configs: list[dict]) -> list[str]:
    """The train settings, beyond the seed and where it ran, in which the runs differ."""
    keys = sorted({k for c in configs for k in c} - set(IGNORED_DIFFERENCES))
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def model_file(criterion: str, reduction: float, run_index: int | None) -> str:
    """models/<criterion>-<percent removed>.pt, the percent exact (two points 1% or 0.1% apart never share a
    file); under models/run<i>/ when the curve covers several runs."""
    name = f"{criterion}-{format(100 * reduction, '.10g')}.pt"
    return f"models/{name}" if run_index is None else f"models/run{run_index}/{name}"


def _point(label: str, base: dict, target: float, model: nn.Module, trained, extra: dict) -> dict:
    example = trained.x_test[:1]
    test_loss, test_accuracy = evaluate(model, trained.x_test, trained.y_test)
    macs, params = count_macs(model, example), count_parameters(model)
    tp_macs, tp_params = tp_macs_and_params(model.cpu(), example.cpu())
    model.to(trained.x_test.device)
    return {"method": label, "macs_reduction": target, "macs": macs, "macs_ratio": macs / base["macs"],
            "tp_macs": tp_macs, "tp_macs_ratio": tp_macs / base["tp_macs"],
            "reached_target": macs / base["macs"] <= 1 - target + 1e-9,  # False: the criterion could not prune that far
            "parameters": params, "parameters_ratio": params / base["parameters"], **extra,
            "test_loss": test_loss, "test_accuracy": test_accuracy, "accuracy_change": test_accuracy - base["test_accuracy"]}


def _curve_of_run(config: CurveConfig, path: Path, index: int, several: bool, run_dir: Path, bar) -> dict:
    """Every point of the curve, the baselines and the sensitivity scan on one train run; its models are saved
    as they are made and measured for latency together with its unpruned network."""
    seed = config.seed + index  # run 0 keeps the seed given: a one-run curve is as it always was
    trained = load_run(path, device=config.device)
    base_model = trained.model.eval()
    try:
        layers = select_layers(base_model, config.layers)
    except ValueError as error:
        raise InputError(str(error), path) from None
    preprocessing = trained.preprocessing
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(trained.x_train), generator=generator)[: config.sample_size]
    sample_x, sample_y = trained.x_train[pick], trained.y_train[pick]
    example = trained.x_test[:1]
    base_loss, base_accuracy = evaluate(base_model, trained.x_test, trained.y_test)
    tp_macs, tp_params = tp_macs_and_params(copy.deepcopy(base_model).cpu(), example.cpu())
    unpruned = {"run": index, "train_run": str(path), "seed": trained.config.seed, "macs": count_macs(base_model, example),
                "parameters": count_parameters(base_model), "tp_macs": tp_macs, "tp_parameters": tp_params,
                "test_loss": base_loss, "test_accuracy": base_accuracy, "widths": layer_widths(base_model),
                "n_train": len(trained.x_train), "n_test": len(trained.x_test)}
    criteria = list(dict.fromkeys([*config.criteria, "random"]))  # random is the baseline at equal MACs
    scratch_epochs = config.scratch_epochs if config.scratch_epochs is not None else trained.config.epochs + config.finetune_epochs
    x, y = trained.x_train, trained.y_train
    # the run's own rate where it trained on mini-batches; a full-batch rate (the paper's 3e-5, one step an
    # epoch) is far too low for them, so such a run's scratch baseline takes the fine-tuning's usual 1e-3
    scratch_lr = trained.config.lr if trained.config.batch_size is not None else 1e-3
    augment_config = _recipe_augment(trained) if config.augment else None
    run_index = index if several else None

    def train_from_teacher(model: nn.Module, epochs: int, lr: float, step_seed: int) -> None:
        # both the fine-tuned networks and the from-scratch baseline learn from the same teacher, so the
        # comparison between them is not a comparison of distillation against none
        _train(model, x, y, epochs, lr, config.batch_size, step_seed, augment_config=augment_config,
               teacher=base_model, distill=config.distill, temperature=config.temperature)

    rows: list[dict] = []
    models: dict[str, nn.Module] = {}
    for criterion in criteria:
        for reduction in config.curve:
            bar.set_postfix_str(f"run {index}: {criterion} -{100 * reduction:g}% MACs")
            structured = StructuredConfig(target_macs=1 - reduction, criterion=criterion, global_pruning=config.global_pruning,
                                          steps=config.steps, round_to=config.round_to, layers=tuple(layers), seed=seed,
                                          normalizer="mean" if config.global_pruning else None, merge=config.merge)
            # --steps N: fine-tuned after each step but the last, whose fine-tuning follows the "before" score
            between = ((lambda model, step: train_from_teacher(model, config.finetune_epochs, config.finetune_lr, seed + step)
                        if step < config.steps else None) if config.steps > 1 else None)
            try:
                result = prune_to_macs(base_model, example, structured, sample_x=sample_x, batch=(sample_x, sample_y),
                                       finetune=between)
            except ValueError as error:
                raise InputError(f"{criterion} at -{reduction:.0%} MACs: {error}", path) from None
            pruned = result.model.to(trained.x_train.device)
            before_loss, before = evaluate(pruned, trained.x_test, trained.y_test)
            train_from_teacher(pruned, config.finetune_epochs, config.finetune_lr, seed)
            label = f"{criterion} (baseline)" if criterion == "random" and criterion not in config.criteria else criterion
            name = model_file(criterion, reduction, run_index)
            rows.append({"run": index, **_point(label, unpruned, reduction, pruned, trained, {
                "test_accuracy_before_finetune": before, "accuracy_change_before_finetune": before - base_accuracy,
                "widths": "/".join(map(str, result.widths_after.values())), "model_file": name})})
            models[name] = pruned
            bar.update()
    if config.scratch:  # Liu et al.: the first criterion's architecture, trained from scratch
        for reduction in config.curve:
            bar.set_postfix_str(f"run {index}: scratch -{100 * reduction:g}% MACs")
            architecture = models[model_file(criteria[0], reduction, run_index)]
            scratch = reinitialise(copy.deepcopy(architecture), seed)
            train_from_teacher(scratch, scratch_epochs, scratch_lr, seed)
            name = model_file("scratch", reduction, run_index)
            rows.append({"run": index, **_point(f"scratch ({criteria[0]} architecture)", unpruned, reduction, scratch, trained, {
                "widths": "/".join(map(str, layer_widths(scratch).values())), "epochs": scratch_epochs, "model_file": name})})
            models[name] = scratch
            bar.update()
    sensitivity = []
    for name in layers if config.sensitivity else []:
        bar.set_postfix_str(f"run {index}: sensitivity of {name}")
        for fraction in config.sensitivity:
            one = StructuredConfig(criterion=criteria[0], seed=seed, round_to=config.round_to, max_layer_ratio=0.99,
                                   merge=config.merge)
            pruned = prune_by_ratio(copy.deepcopy(base_model).cpu(), example.cpu(), {name: fraction}, one,
                                    sample_x=sample_x.cpu(), batch=(sample_x.cpu(), sample_y.cpu())).to(trained.x_test.device)
            _, accuracy = evaluate(pruned, trained.x_test, trained.y_test)
            sensitivity.append({"run": index, "layer": name, "fraction": fraction,
                                "channels_before": prunable_layers(base_model)[name].out_channels,
                                "channels_after": prunable_layers(pruned)[name].out_channels,
                                "macs_ratio": count_macs(pruned, example) / unpruned["macs"], "test_accuracy": accuracy,
                                "accuracy_change": accuracy - base_accuracy})
    # latency: every model at batch 1 on the CPU, interleaved round by round with the unpruned network, so
    # machine drift hits all alike and each point's change is taken against the same round's unpruned time
    cpu_models = [copy.deepcopy(base_model).cpu().eval(), *(copy.deepcopy(m).cpu().eval() for m in models.values())]
    samples = paired_latency_samples(cpu_models, example.cpu(), repeats=config.latency_repeats, warmup=3)
    for row, spent in zip(rows, samples[1:]):
        q1, median, q3 = quartiles(spent)
        row.update({"latency_ms": 1000 * median, "latency_iqr_ms": 1000 * (q3 - q1), **latency_change(samples[0], spent)})
    q1, median, q3 = quartiles(samples[0])
    unpruned.update({"latency_ms": 1000 * median, "latency_iqr_ms": 1000 * (q3 - q1)})
    for name, model in models.items():
        save_model(run_dir / name, model.cpu(), preprocessing)
    settings = {"recipe": trained.config.recipe, "architecture": type(base_model).__name__, "layers": layers,
                "augment": augment_config is not None, "scratch_epochs": scratch_epochs, "scratch_lr": scratch_lr,
                "data": trained.config.data, "config": dataclasses.asdict(trained.config)}
    return {"unpruned": unpruned, "points": rows, "sensitivity": sensitivity, "settings": settings}


def _unpruned_summary(unpruned: list[dict]) -> dict:
    """The unpruned networks of all runs: their shared costs (run 0's), mean and sd of their accuracy and latency."""
    first = unpruned[0]
    summary = {key: first[key] for key in ("macs", "parameters", "tp_macs", "tp_parameters", "widths")}
    for key in ("test_loss", "test_accuracy", "latency_ms", "latency_iqr_ms"):
        summary[key], summary[f"{key}_sd"] = mean_sd([u[key] for u in unpruned])
    return summary


def run_prune_curve(config: CurveConfig, out: str | Path | None = None, progress: bool = True,
                    tracking: Tracking = Tracking()) -> tuple[Path, dict]:
    """Prune each train run's network along the curve with each criterion and the baselines, the same on every
    run; writes one run folder with every run's points and their mean and spread per point."""
    config.check()
    paths = find_train_runs(config.runs or (config.run,))
    recipes = {str(path): (run_folder.read_spec(path).get("recipe") or {}).get("name", "paper") for path in paths}
    if len(set(recipes.values())) > 1:
        raise InputError("the runs of one curve must share a recipe; got "
                         + ", ".join(f"{path}: {recipe}" for path, recipe in recipes.items()))
    started = time.perf_counter()
    with cpu_threads(config.threads):
        run_dir = run_folder.create(out, KIND, spec.build(KIND, {**dataclasses.asdict(config), "run": str(paths[0]),
                                                                 "runs": [str(p) for p in paths]}))
        jobs = len(list(dict.fromkeys([*config.criteria, "random"]))) * len(config.curve) + (len(config.curve) if config.scratch else 0)
        bar = tqdm(total=jobs * len(paths), desc="prune curve", unit="point", file=sys.stderr, disable=not progress)
        per_run = [_curve_of_run(config, path, index, len(paths) > 1, run_dir, bar) for index, path in enumerate(paths)]
        bar.close()
        settings = per_run[0]["settings"]
        differences = configuration_differences([r["settings"]["config"] for r in per_run])
        points = [row for r in per_run for row in r["points"]]
        sensitivity = [row for r in per_run for row in r["sensitivity"]]
        summary = curve_summary(points)
        warnings = [w for point in summary for w in point["warnings"]]
        if differences:
            warnings.insert(0, f"the runs differ in more than their seed: {', '.join(differences)}")
        data_name, synthetic = describe_data(settings["data"])
        unpruned_runs = [r["unpruned"] for r in per_run]
        results = {
            "train_run": str(paths[0]), "train_runs": [str(p) for p in paths], "runs": unpruned_runs,
            "recipe": settings["recipe"], "architecture": settings["architecture"], "data": data_name, "synthetic_data": synthetic,
            "unpruned": _unpruned_summary(unpruned_runs), "points": points, "summary": summary,
            "sensitivity": sensitivity, "sensitivity_summary": summarise(sensitivity, by=("layer", "fraction"),
                                                                         measures=("test_accuracy", "accuracy_change", "macs_ratio", "channels_after")),
            "warnings": warnings, "runs_differ_in": differences,
            "macs_count": "macs/macs_ratio: fexprune.pruning.measure.count_macs (conv and linear layers; the MACs targets "
                          "are set on it); tp_macs/tp_macs_ratio: tp.utils.count_ops_and_params",
            "criteria": list(config.criteria), "layers": settings["layers"], "global_pruning": config.global_pruning,
            "steps": config.steps, "round_to": config.round_to, "merge": config.merge, "finetune_epochs": config.finetune_epochs,
            "finetune_lr": config.finetune_lr, "finetune_schedule": "cosine to 0", "distill": config.distill,
            "temperature": config.temperature, "augment": settings["augment"],
            "scratch_epochs": settings["scratch_epochs"] if config.scratch else None,
            "scratch_lr": settings["scratch_lr"] if config.scratch else None, "scratch_distill": config.distill if config.scratch else None,
            "latency_repeats": config.latency_repeats, "seeds": [config.seed + i for i in range(len(paths))],
            "n_train": per_run[0]["unpruned"]["n_train"], "n_test": per_run[0]["unpruned"]["n_test"],
            "threads": torch.get_num_threads(), "seconds": time.perf_counter() - started,
        }
        figures = {"accuracy_vs_cost": report.curve_figure(results)}
        if sensitivity:
            figures["sensitivity"] = report.sensitivity_figure(results)
        write_run(run_dir, RunOutput(kind=KIND, results=results, metrics=points, figures=figures,
                                     tables={"sensitivity.csv": sensitivity, "summary.csv": summary_table(summary)}
                                     if sensitivity else {"summary.csv": summary_table(summary)}), tracking)
        return run_dir, results


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A pruning curve as `run_spec` states it (fexprune.experiments.runner)."""
    config = spec.settings(CurveConfig, spec.flat(run_spec))
    return run_prune_curve(config, out, progress=context.progress, tracking=context.tracking)[0]

def summary_table(summary: list[dict]) -> list[dict]:
    """The per-point summary as CSV rows (its warnings joined into one cell)."""
    return [{**row, "warnings": " / ".join(row["warnings"])} for row in summary]
