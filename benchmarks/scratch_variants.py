"""From-scratch variants of `--recipe best` on the real set, paired by split and seed: the recipe as it is
(one network), stronger augmentation, mixup, random erasing, half the channels (8/16/32), ten times the weight
decay; each also averaged with the HOG + SVM baseline's probabilities. Every variant trains on the same data
tensors, split and seed, and scores its test faces as the recipe does (as cut, mirrored, cut at two other
margins). One JSON line per (split, seed, variant) is appended to --out, so a stopped sweep keeps what it finished.

    OMP_NUM_THREADS=1 python benchmarks/scratch_variants.py --data ~/sfew/Images --split movie --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fexprune.data.augment import AugmentConfig
from fexprune.data.prepared import cut_margins, prepare_data
from fexprune.faces.loading import load_images
from fexprune.experiments.baseline import hog_features
from fexprune.experiments.train import TrainConfig
from fexprune.models.views import predict_logits
from fexprune.recipes import recipe_defaults
from fexprune.recipes.best import BestRecipe, fit_best

STRONG = AugmentConfig(max_shift=0.08, max_rotate=10.0, scale=(0.9, 1.1), brightness=0.2, contrast=0.2)
VARIANTS = {
    "recipe": BestRecipe(members=1),
    "strong-augment": BestRecipe(members=1, augment=STRONG),
    "mixup": BestRecipe(members=1, mixup=0.2),
    "erase": BestRecipe(members=1, augment=AugmentConfig(erase=0.5)),
    "narrow": BestRecipe(members=1, channels=(8, 16, 32)),
    "weight-decay": BestRecipe(members=1, weight_decay=5e-3),
}


def platt_svm(features: np.ndarray, labels: np.ndarray):
    """The baseline's RBF-SVM (C=10, balanced) on standardised features, fitted, with Platt probabilities and
    one-vs-one decision values."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=10.0, gamma="scale", class_weight="balanced",
                                               probability=True, random_state=0, decision_function_shape="ovo")).fit(features, labels)


def svm_probabilities(images: np.ndarray, labels: np.ndarray, train_index, test_index) -> np.ndarray:
    """The baseline's HOG + RBF-SVM with Platt probabilities, one cut per test face."""
    features = hog_features(images)
    return platt_svm(features[train_index], labels[train_index]).predict_proba(features[test_index])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", choices=["random", "movie"], required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        config = TrainConfig(data=args.data, recipe="best", face_crop=True, split=args.split, seed=seed, members=1,
                             **recipe_defaults("best"))
        data = prepare_data(config, load_images(config, progress=False))
        views = tuple(data.views_at(cut_margins(config, data, BestRecipe.margin_tta)))
        y_test = data.y_test.numpy()
        svm = svm_probabilities(data.image_set.images, data.image_set.labels, data.train_index, data.test_index)
        for name in args.variants:
            recipe = VARIANTS[name]
            started = time.perf_counter()
            model, _, _ = fit_best(data.x_train, data.y_train, data.x_train[:0], data.y_train[:0],
                                   n_classes=len(data.image_set.classes), epochs=config.epochs, lr=config.lr,
                                   batch_size=config.batch_size, seed=seed, recipe=recipe)
            network = predict_logits(model, data.x_test, recipe.tta, views=views).softmax(1).numpy()
            row = {"split": args.split, "seed": seed, "variant": name, "n_test": len(y_test),
                   "test_accuracy": float((network.argmax(1) == y_test).mean()),
                   "svm_test_accuracy": float((svm.argmax(1) == y_test).mean()),
                   "fused_test_accuracy": float(((network + svm) / 2).argmax(1).__eq__(y_test).mean()),
                   "train_accuracy": float((predict_logits(model, data.x_train).argmax(1) == data.y_train).float().mean()),
                   "seconds": time.perf_counter() - started}
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
