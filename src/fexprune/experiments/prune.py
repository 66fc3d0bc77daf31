"""`fexprune prune`: the paper's kernel pruning (2.3, 3.3) on a trained run, every criterion on the same footing.

Each criterion starts from the same trained model, prunes the chosen layers in order (conv1 then conv2)
with one budget: no step may leave the train loss more than `max_loss_increase` above the unpruned
network's. The run folder holds its spec, metrics.csv (one row per step), results.json, figures/,
model.pt (the first criterion's pruned model, removed when `remove`), models/<criterion>-*.pt and
report.md with our table beside the paper's.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from fexprune import paper, run_folder, spec
from fexprune.device import cpu_threads
from fexprune.errors import InputError
from fexprune.experiments.run_writer import RunOutput, write_run
from fexprune.inference.trained_run import TrainedRun, load_run
from fexprune.models.cnn import ExpressionCNN
from fexprune.pruning.criteria import CRITERIA, get_criterion
from fexprune.pruning.masking import ChannelMasks
from fexprune.pruning.measure import cost_change, flop_drop_not_speed, model_costs
from fexprune.pruning.procedure import LayerPruning, prune_until
from fexprune.pruning.removal import LAYERS, remove_pruned_channels
from fexprune.report import pruning as report
from fexprune.training.loop import evaluate, fit
from fexprune.tracking import Tracking

if TYPE_CHECKING:
    from fexprune.experiments.runner import RunContext


@dataclass
class PruneConfig:
    run: str  # the train run folder
    criteria: tuple[str, ...] = ("l2",)
    layers: tuple[str, ...] = ("conv1",)
    max_loss_increase: float = paper.PRUNING_MAX_LOSS_INCREASE
    finetune_epochs: int = 0  # after each pruning step, masks kept
    finetune_lr: float = 1e-3
    remove: bool = False
    seed: int = 0
    sample_size: int = 128  # training images whose feature maps the distinctiveness criterion compares
    latency_repeats: int = 20
    threads: int | None = 1  # torch CPU threads while pruning (None: leave as is)
    device: str = "cpu"  # where the network is evaluated and fine-tuned (fexprune.device)

    def check(self) -> None:
        for name in self.criteria:
            if name not in CRITERIA:
                raise InputError(f"unknown criterion {name!r} (choose from {', '.join(CRITERIA)}, all)")
        for layer in self.layers:
            if layer not in LAYERS:
                raise InputError(f"unknown layer {layer!r} (choose from {', '.join(LAYERS)}, all)")
        if not self.criteria or not self.layers:
            raise InputError("need at least one criterion and one layer")
        if not self.max_loss_increase >= 0:
            raise InputError(f"--max-loss-increase must be >= 0, got {self.max_loss_increase}")
        if self.finetune_epochs < 0 or self.sample_size < 2:
            raise InputError("--finetune must be >= 0 and the sample at least 2 images")


@dataclass
class CriterionOutcome:
    criterion: str
    layers: list[LayerPruning]
    model: ExpressionCNN  # masked: pruned kernels zero
    removed: ExpressionCNN | None
    summary: dict[str, Any]


@dataclass
class PruneResult:
    run_dir: Path
    results: dict[str, Any]
    outcomes: dict[str, CriterionOutcome] = field(default_factory=dict)


def step_rows(outcomes: dict[str, CriterionOutcome]) -> list[dict]:
    """metrics.csv: one row per step, with `total_pruned` counting kernels of every layer pruned so far."""
    rows = []
    for name, outcome in outcomes.items():
        earlier = 0
        for layer in outcome.layers:
            for step in layer.steps:
                row = {"criterion": name, "total_pruned": earlier + step.pruned, **dataclasses.asdict(step)}
                rows.append(row)
            earlier += len(layer.pruned_channels)
    return rows


def near_chance(train_loss: float, train_accuracy: float, n_classes: int) -> str | None:
    """Why the unpruned network is near chance (train loss within 10% of ln(n_classes), or train accuracy
    under 1.5x chance), or None: pruning such a network says little about which kernels matter."""
    chance_loss, chance_accuracy = math.log(n_classes), 1 / n_classes
    if train_loss < 0.9 * chance_loss and train_accuracy >= 1.5 * chance_accuracy:
        return None
    return (f"the unpruned network is near chance: train loss {train_loss:.4f} (chance ln {n_classes} = "
            f"{chance_loss:.4f}), train accuracy {100 * train_accuracy:.1f}% (chance {100 * chance_accuracy:.1f}%); "
            "train it longer before reading anything into its pruning")


def criterion_warnings(base: dict, summary: dict, max_loss_increase: float) -> list[str]:
    """What a reader of one criterion's numbers must know: the stop rule never fired on a layer (it ran out
    of kernels instead), or the test accuracy fell more than the train accuracy."""
    warnings = []
    for layer, because in summary["stopped_because"].items():
        if because.endswith("channel(s) left"):
            pruned = len(summary["pruned_channels"][layer])
            warnings.append(f"the +{max_loss_increase:g} train-loss stop rule never fired on {layer}: every candidate "
                            f"kernel was pruned ({pruned} of {pruned + int(because.split()[0])}; stopped because {because})")
    test_drop = base["test_accuracy"] - summary["test_accuracy"]
    train_drop = base["train_accuracy"] - summary["train_accuracy"]
    if test_drop > 0 and test_drop > train_drop:
        warnings.append(f"test accuracy fell more than train accuracy: test {100 * base['test_accuracy']:.1f}% -> "
                        f"{100 * summary['test_accuracy']:.1f}%, train {100 * base['train_accuracy']:.1f}% -> "
                        f"{100 * summary['train_accuracy']:.1f}%; the pruned kernels mattered more on unseen images than the train-loss rule could see")
    if "cost_change" in summary and "channels_after" in summary:  # removed: say when its FLOP drop buys no speed
        note = flop_drop_not_speed(dict(zip(LAYERS, base["channels"])), dict(zip(LAYERS, summary["channels_after"])),
                                   summary["cost_change"]["flops_per_image_drop"])
        if note:
            change = summary["cost_change"]
            warnings.append(f"{note} Measured here (PyTorch eager, NCHW): latency {100 * change['latency_batch1_ms_drop']:.1f}% "
                            f"lower at batch 1, {100 * change['latency_full_batch_ms_drop']:.1f}% at full batch")
    return warnings


def _prune_one(name: str, trained: TrainedRun, config: PruneConfig, sample_x: torch.Tensor, base: dict,
               progress: bool = False) -> CriterionOutcome:
    torch.manual_seed(config.seed)
    model = copy.deepcopy(trained.model)
    masks = ChannelMasks.for_model(model, config.layers)
    criterion = get_criterion(name, config.seed)

    def evaluate_train(net):
        return evaluate(net, trained.x_train, trained.y_train)

    finetune = None
    if config.finetune_epochs:
        def finetune(net, net_masks):
            fit(net, trained.x_train, trained.y_train, epochs=config.finetune_epochs, lr=config.finetune_lr,
                batch_size=trained.config.batch_size, seed=config.seed, after_step=net_masks.apply)
            net.eval()

    most = sum(getattr(model, layer).out_channels - 1 for layer in config.layers)  # steps if the rule never fires
    with tqdm(total=most, desc=f"prune ({name})", unit="step", file=sys.stderr, disable=not progress, leave=False) as bar:

        def on_step(step) -> None:
            bar.set_postfix({"layer": step.layer, "loss": f"{step.train_loss:.4f}"}, refresh=False)
            bar.update(1)

        layers = [
            prune_until(model, layer, criterion, evaluate_train, sample_x, masks=masks,
                        max_loss_increase=config.max_loss_increase, base_loss=base["train_loss"], finetune=finetune,
                        on_step=on_step)
            for layer in config.layers
        ]
    model.eval()
    train_loss, train_accuracy = evaluate(model, trained.x_train, trained.y_train)
    test_loss, test_accuracy = evaluate(model, trained.x_test, trained.y_test)
    summary: dict[str, Any] = {
        "pruned_channels": masks.to_dict(),
        "stopped_because": {layer.layer: layer.stopped_because for layer in layers},
        "kernels_pruned": sum(len(layer.pruned_channels) for layer in layers),
        "train_loss": train_loss, "train_accuracy": train_accuracy,
        "test_loss": test_loss, "test_accuracy": test_accuracy,
    }
    removed = None
    if config.remove:
        removed = remove_pruned_channels(model, masks).to(trained.x_test.device)
        with torch.no_grad():
            difference = (removed(trained.x_test) - model(trained.x_test)).abs().max().item()
        summary["channels_after"] = list(removed.config.channels)
        summary["removed_max_abs_difference"] = difference
    return CriterionOutcome(name, layers, model, removed, summary)


def _refuse_other_recipes(run_dir: Path) -> None:
    """Said before the run's images are loaded: the kernel procedure knows only the paper's CNN."""
    from fexprune.recipes import RECIPES

    try:
        values = run_folder.read_spec(run_dir) if run_folder.has_spec(run_dir) else {}
    except (OSError, InputError):
        return  # load_run says what is wrong with the folder
    recipe = (values.get("recipe") or {}).get("name", "paper")
    known = RECIPES.get(recipe) if isinstance(recipe, str) else None
    if known is None or not known.paper_network:
        raise InputError(f"pruning works on the paper's CNN; this run trained --recipe {recipe}", run_dir)


def run_pruning(config: PruneConfig, out: str | Path | None = None, progress: bool = False,
                tracking: Tracking = Tracking()) -> PruneResult:
    """Prune the trained model of `config.run` with each criterion; writes and returns the run."""
    config.check()
    started = time.perf_counter()
    with cpu_threads(config.threads):
        _refuse_other_recipes(Path(config.run))
        trained = load_run(config.run, progress=progress, device=config.device)
        if type(trained.model) is not ExpressionCNN:  # best and transfer runs have other layers
            raise InputError(f"pruning works on the paper's CNN; this run trained --recipe {trained.config.recipe} "
                             f"({type(trained.model).__name__})", config.run)
        preprocessing = trained.preprocessing
        run_dir = run_folder.create(out, "prune", spec.build("prune", {**dataclasses.asdict(config),
                                                                       "run": str(Path(config.run).resolve())}))
        generator = torch.Generator().manual_seed(config.seed)
        sample = torch.randperm(len(trained.x_train), generator=generator)[: config.sample_size]
        sample_x = trained.x_train[sample]
        base_loss, base_accuracy = evaluate(trained.model, trained.x_train, trained.y_train)
        test_loss, test_accuracy = evaluate(trained.model, trained.x_test, trained.y_test)
        base = {"train_loss": base_loss, "train_accuracy": base_accuracy, "test_loss": test_loss,
                "test_accuracy": test_accuracy, "channels": list(trained.model.config.channels)}
        outcomes = {name: _prune_one(name, trained, config, sample_x, base, progress) for name in config.criteria}
        if config.remove:  # all latencies in one interleaved measurement, so machine drift cancels
            if progress:
                print("prune: measuring size and latency of the unpruned and pruned models", file=sys.stderr)
            costs = model_costs([trained.model, *(o.removed for o in outcomes.values())], trained.x_train,
                                config.latency_repeats)
            base["cost"] = costs[0]
            for outcome, cost in zip(outcomes.values(), costs[1:]):
                outcome.summary["cost"] = cost
                outcome.summary["cost_change"] = cost_change(costs[0], cost)
        for outcome in outcomes.values():
            outcome.summary["warnings"] = criterion_warnings(base, outcome.summary, config.max_loss_increase)
        chance = near_chance(base_loss, base_accuracy, len(trained.classes))
        first = outcomes[config.criteria[0]]
        models = {"model.pt": (first.removed or first.model, preprocessing)}
        for name, outcome in outcomes.items():
            models[f"models/{name}-masked.pt"] = (outcome.model, preprocessing)
            if outcome.removed is not None:
                models[f"models/{name}-removed.pt"] = (outcome.removed, preprocessing)
        rows = step_rows(outcomes)
        results = {
            "train_run": str(Path(config.run).resolve()),
            "unpruned": base,
            "criteria": {name: outcome.summary for name, outcome in outcomes.items()},
            "model": f"model.pt = {config.criteria[0]}, {'removed' if first.removed is not None else 'masked'}",
            "model_criterion": config.criteria[0],
            "n_classes": len(trained.classes),
            "warnings": [chance] if chance else [],
            "n_train": len(trained.x_train), "n_test": len(trained.x_test),
            "paper": {"table": paper.PRUNING_TABLE, **paper.PRUNING_TEST},
            "seconds": time.perf_counter() - started,
        }
        figures = {Path(name).stem: figure for name, figure in report.pruning_figures(rows, show_paper="conv1" in config.layers).items()}
        figures["criteria_comparison"] = report.criteria_comparison_figure(rows, results, config.max_loss_increase)
        write_run(run_dir, RunOutput(kind="prune", results=results, metrics=rows, models=models, figures=figures), tracking)
        return PruneResult(run_dir, results, outcomes)


def run(run_spec: dict, out: str | Path | None, context: RunContext, source: Path) -> Path:
    """A prune run as `run_spec` states it (fexprune.experiments.runner)."""
    config = spec.settings(PruneConfig, spec.flat(run_spec))
    return run_pruning(config, out, progress=context.progress, tracking=context.tracking).run_dir
