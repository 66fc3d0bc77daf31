"""`fexprune prune --run RUN --curve 0.1,...,0.8`: accuracy against cost, as pruning papers measure it.

For each criterion and each MACs reduction r of the curve, the trained network of any recipe (paper, best,
transfer) is pruned structurally to (1 - r) of its MACs (fexprune.pruning.structured: Torch-Pruning's
dependency graph, channels really removed), fine-tuned (mini-batch AdamW, the rate decayed to zero on a
cosine, the run's recipe's augmentation, the unpruned network as a distillation teacher, the run's own
training split) and evaluated on the run's own test split (plain forward
pass, no test-time augmentation, the unpruned network scored the same way). Two baselines at every point:
- random: channels chosen by a seeded random importance at the same MACs (always run);
- scratch: the first criterion's pruned architecture re-initialised and trained from scratch with the
  budget of the original training (the run's epochs plus the fine-tuning epochs, AdamW at the run's rate,
  cosine decay), Liu et al. 2019, "Rethinking the value of network pruning" (Scratch-E).
Then a sensitivity scan: test accuracy, without fine-tuning, when one prunable layer alone loses each
fraction of its channels (first criterion). Parameters, MACs and CPU latency (batch 1, all models
measured interleaved) of every point go into metrics.csv, results.json, figures and the report.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from fexprune import runs
from fexprune.device import cpu_threads
from fexprune.errors import InputError
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.data.augment import AugmentConfig
from fexprune.experiments.train import load_run
from fexprune.models.checkpoint import load_model
from fexprune.pruning.importance import IMPORTANCES
from fexprune.pruning.measure import count_macs, count_parameters, paired_latency
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
from fexprune.recipes import RECIPES
from fexprune.training.loop import evaluate
from fexprune.training.minibatch import train_epoch

KIND = "prune-curve"


@dataclass
class CurveConfig:
    run: str
    curve: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # fractions of MACs removed
    criteria: tuple[str, ...] = ("l2",)
    layers: str | tuple[str, ...] = "all"
    global_pruning: bool = False
    steps: int = 1
    round_to: int | None = None
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
    sample_size: int = 64  # training images for distinctiveness (and Taylor's gradient batch)
    latency_repeats: int = 10
    seed: int = 0
    threads: int | None = 1
    device: str = "cpu"
    progress: bool = True

    def check(self) -> None:
        if not self.curve or not all(0 < r < 1 for r in self.curve):
            raise InputError(f"--curve takes MACs reductions strictly between 0 and 1, got {list(self.curve)}")
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
    """The augmentation the run's recipe trained with (None: the paper's recipe has none)."""
    try:
        recipe = RECIPES[trained.config.recipe].from_config(trained.config)
    except (KeyError, AttributeError, TypeError):
        return None
    return getattr(recipe, "augment", None)


def _point(label: str, base_macs: int, base_params: int, target: float, model: nn.Module, trained, extra: dict) -> dict:
    example = trained.x_test[:1]
    test_loss, test_accuracy = evaluate(model, trained.x_test, trained.y_test)
    macs, params = count_macs(model, example), count_parameters(model)
    return {"method": label, "macs_reduction": target, "macs": macs, "macs_ratio": macs / base_macs,
            "reached_target": macs / base_macs <= 1 - target + 1e-9,  # False: the criterion could not prune that far
            "parameters": params, "parameters_ratio": params / base_params, **extra,
            "test_loss": test_loss, "test_accuracy": test_accuracy}


def run_prune_curve(config: CurveConfig, out: str | Path | None = None) -> tuple[Path, dict]:
    """Prune the run's network along the curve with each criterion and the baselines; writes the run."""
    config.check()
    started = time.perf_counter()
    with cpu_threads(config.threads):
        trained = load_run(config.run, device=config.device)
        base_model = trained.model.eval()
        try:
            layers = select_layers(base_model, config.layers)
        except ValueError as error:
            raise InputError(str(error), config.run) from None
        _, preprocessing = load_model(Path(config.run) / "model.pt")
        run_dir = runs.new_run_dir(out, "prune-curve")
        runs.write_json(run_dir / "config.json", {**dataclasses.asdict(config), "kind": KIND,
                                                  "run": str(Path(config.run).resolve())})
        generator = torch.Generator().manual_seed(config.seed)
        pick = torch.randperm(len(trained.x_train), generator=generator)[: config.sample_size]
        sample_x, sample_y = trained.x_train[pick], trained.y_train[pick]
        example = trained.x_test[:1]
        base_macs, base_params = count_macs(base_model, example), count_parameters(base_model)
        base_loss, base_accuracy = evaluate(base_model, trained.x_test, trained.y_test)
        criteria = list(dict.fromkeys([*config.criteria, "random"]))  # random is the baseline at equal MACs
        scratch_epochs = config.scratch_epochs if config.scratch_epochs is not None else trained.config.epochs + config.finetune_epochs
        x, y = trained.x_train, trained.y_train
        # the run's own rate, except the paper's full-batch 3e-5, far too low for mini-batches
        scratch_lr = trained.config.lr if trained.config.recipe != "paper" else 1e-3

        augment_config = _recipe_augment(trained) if config.augment else None

        def finetune(model: nn.Module, step: int) -> None:
            _train(model, x, y, config.finetune_epochs, config.finetune_lr, config.batch_size, config.seed + step,
                   augment_config=augment_config, teacher=base_model, distill=config.distill, temperature=config.temperature)

        rows: list[dict] = []
        models: dict[str, nn.Module] = {}
        jobs = [(c, r) for c in criteria for r in config.curve]
        bar = tqdm(total=len(jobs) + (len(config.curve) if config.scratch else 0), desc="prune curve", unit="point",
                   file=sys.stderr, disable=not config.progress)
        for criterion, reduction in jobs:
            bar.set_postfix_str(f"{criterion} -{100 * reduction:.0f}% MACs")
            structured = StructuredConfig(target_macs=1 - reduction, criterion=criterion, global_pruning=config.global_pruning,
                                          steps=config.steps, round_to=config.round_to, layers=tuple(layers), seed=config.seed,
                                          normalizer="mean" if config.global_pruning else None)
            try:
                # --steps N: fine-tuned after each step but the last, whose fine-tuning follows the "before" score
                between = (lambda model, step: finetune(model, step) if step < config.steps else None) if config.steps > 1 else None
                result = prune_to_macs(base_model, example, structured, sample_x=sample_x, batch=(sample_x, sample_y),
                                       finetune=between)
            except ValueError as error:
                raise InputError(f"{criterion} at -{reduction:.0%} MACs: {error}", config.run) from None
            pruned = result.model.to(trained.x_train.device)
            _, before = evaluate(pruned, trained.x_test, trained.y_test)
            finetune(pruned, 0)
            label = f"{criterion} (baseline)" if criterion == "random" and criterion not in config.criteria else criterion
            rows.append(_point(label, base_macs, base_params, reduction, pruned, trained,
                               {"test_accuracy_before_finetune": before, "widths": "/".join(map(str, result.widths_after.values()))}))
            models[f"models/{criterion}-{round(100 * reduction)}.pt"] = pruned
            bar.update()
        if config.scratch:  # Liu et al.: the first criterion's architecture, trained from scratch
            for reduction in config.curve:
                bar.set_postfix_str(f"scratch -{100 * reduction:.0f}% MACs")
                architecture = models[f"models/{criteria[0]}-{round(100 * reduction)}.pt"]
                scratch = reinitialise(copy.deepcopy(architecture), config.seed)
                _train(scratch, x, y, scratch_epochs, scratch_lr, config.batch_size, config.seed, augment_config=augment_config)
                rows.append(_point(f"scratch ({criteria[0]} architecture)", base_macs, base_params, reduction, scratch, trained,
                                   {"widths": "/".join(map(str, layer_widths(scratch).values())), "epochs": scratch_epochs}))
                models[f"models/scratch-{round(100 * reduction)}.pt"] = scratch
                bar.update()
        bar.close()
        sensitivity = []
        for name in tqdm(layers if config.sensitivity else [], desc="sensitivity", unit="layer", file=sys.stderr,
                         disable=not config.progress):
            for fraction in config.sensitivity:
                one = StructuredConfig(criterion=criteria[0], seed=config.seed, round_to=config.round_to, max_layer_ratio=0.99)
                pruned = prune_by_ratio(copy.deepcopy(base_model).cpu(), example.cpu(), {name: fraction}, one,
                                        sample_x=sample_x.cpu(), batch=(sample_x.cpu(), sample_y.cpu())).to(trained.x_test.device)
                _, accuracy = evaluate(pruned, trained.x_test, trained.y_test)
                sensitivity.append({"layer": name, "fraction": fraction, "channels_before": prunable_layers(base_model)[name].out_channels,
                                    "channels_after": prunable_layers(pruned)[name].out_channels,
                                    "macs_ratio": count_macs(pruned, example) / base_macs, "test_accuracy": accuracy})
        # latency: every model at batch 1 on the CPU, interleaved so machine drift hits all alike
        cpu_models = [copy.deepcopy(base_model).cpu().eval(), *(copy.deepcopy(m).cpu().eval() for m in models.values())]
        latencies = paired_latency(cpu_models, trained.x_test[:1].cpu(), repeats=config.latency_repeats, warmup=3)
        for row, latency in zip(rows, latencies[1:]):
            row["latency_ms"] = 1000 * latency
        unpruned = {"macs": base_macs, "parameters": base_params, "test_loss": base_loss, "test_accuracy": base_accuracy,
                    "latency_ms": 1000 * latencies[0], "widths": layer_widths(base_model)}
        results = {
            "train_run": str(Path(config.run).resolve()), "recipe": trained.config.recipe,
            "architecture": type(base_model).__name__, "unpruned": unpruned, "points": rows, "sensitivity": sensitivity,
            "criteria": list(config.criteria), "layers": layers, "global_pruning": config.global_pruning,
            "steps": config.steps, "round_to": config.round_to, "finetune_epochs": config.finetune_epochs,
            "finetune_lr": config.finetune_lr, "finetune_schedule": "cosine to 0", "distill": config.distill,
            "temperature": config.temperature, "augment": augment_config is not None, "scratch_epochs": scratch_epochs if config.scratch else None,
            "scratch_lr": scratch_lr if config.scratch else None,
            "n_train": len(trained.x_train), "n_test": len(trained.x_test), "threads": torch.get_num_threads(),
            "seconds": time.perf_counter() - started,
        }
        figures = {"accuracy_vs_cost": report.curve_figure(results)}
        if sensitivity:
            figures["sensitivity"] = report.sensitivity_figure(results)
        write_run(run_dir, RunOutput(kind=KIND, results=results, metrics=rows, figures=figures,
                                     models={name: (m.cpu(), preprocessing) for name, m in models.items()},
                                     tables={"sensitivity.csv": sensitivity} if sensitivity else {}))
        return run_dir, results
