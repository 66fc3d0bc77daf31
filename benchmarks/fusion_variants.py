"""Second opinions for `--recipe best` on the real set: the recipe's network ensemble (3 networks, its defaults,
test faces scored as cut, mirrored and cut at two other margins) with its test probabilities averaged, weight
0.5 each (chosen before looking), with one other classifier trained on the same training split:

- svm-opencv: the HOG + RBF-SVM baseline (OpenCV's HOG, C = 10, balanced, Platt probabilities), one cut;
- svm-torch: the same SVM on the network's own HOG layer (fexprune.models.hog, exportable), over the 6 views;
- svm-torch-pairwise: = svm-torch, its pairwise Platt probabilities averaged instead of libsvm's coupling;
- hog-linear: a multinomial logistic regression on that HOG (the probe's fit, C by grouped inner folds), 6 views;
- geometry: a logistic regression (C = 0.1, balanced) on the 68 landmarks of dlib's shape predictor (package
  face-recognition-models), centred, levelled and scaled by the eyes, found in the frame within the face box;
- geometry-svm: the network, geometry and svm-opencv, a third each.

The network's test probabilities are kept in --cache (best-SPLIT-SEED.npz) and read back on a second run, so
the fusions can be rerun without training. One JSON line per split and seed is appended to --out.

    OMP_NUM_THREADS=1 python benchmarks/fusion_variants.py --data ~/sfew/Images --split movie --out /tmp/fusion.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

from fexprune.data.prepared import cut_margins, prepare_data
from fexprune.faces.loading import load_images
from fexprune.data.preprocess import decode_image, to_gray
from fexprune.experiments.train import TrainConfig
from fexprune.models.hog import HOGFeatures
from fexprune.models.views import predict_logits
from fexprune.recipes import recipe_defaults
from fexprune.recipes.best import BestRecipe, fit_best
from fexprune.recipes.probe import choose_C, fit_linear, train_cut, training_groups
from scratch_variants import platt_svm, svm_probabilities  # benchmarks/, beside this script


def pairwise_average(model, features: np.ndarray) -> np.ndarray:
    """Each class's Platt probability against every other class, averaged: no iterative coupling, so a fixed graph."""
    svc = model[-1]
    decisions = model.decision_function(features)  # (N, pairs), libsvm's pair order
    k = len(svc.classes_)
    probabilities = np.zeros((len(features), k))
    for pair, (i, j) in enumerate((i, j) for i in range(k) for j in range(i + 1, k)):
        wins = 1 / (1 + np.exp(svc.probA_[pair] * decisions[:, pair] + svc.probB_[pair]))
        probabilities[:, i] += wins
        probabilities[:, j] += 1 - wins
    return probabilities / (k * (k - 1) / 2)


def landmark_geometry(image_set) -> np.ndarray | None:
    """(N, 136) each face's 68 dlib landmarks centred on the eyes' midpoint, levelled and scaled by their
    distance; None where dlib or face-recognition-models is missing."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or importlib.util.find_spec("dlib") is None:
        return None
    import dlib

    predictor = dlib.shape_predictor(str(Path(next(iter(spec.submodule_search_locations))) / "models"
                                         / "shape_predictor_68_face_landmarks.dat"))
    rows = []
    for sample, box in zip(image_set.samples, image_set.faces):
        gray = to_gray(decode_image(Path(sample.path).read_bytes()))
        x, y, w, h = (int(box[key]) for key in ("x", "y", "w", "h"))
        shape = predictor(np.ascontiguousarray(gray), dlib.rectangle(x, y, x + w, y + h))
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        left, right = points[36:42].mean(0), points[42:48].mean(0)
        distance = max(float(np.hypot(*(right - left))), 1e-6)
        cos, sin = (right - left) / distance
        rows.append(((points - (left + right) / 2) @ np.array([[cos, sin], [-sin, cos]]).T / distance).ravel())
    return np.stack(rows)


def network_probabilities(config, data, cache: Path, views) -> np.ndarray:
    """The recipe's test probabilities (3 networks, its views), trained once and kept in `cache`."""
    path = cache / f"best-{config.split}-{config.seed}.npz"
    if path.is_file():
        return np.load(path)["net"]
    recipe = BestRecipe()
    model, _, _ = fit_best(data.x_train, data.y_train, data.x_train[:0], data.y_train[:0], n_classes=len(data.image_set.classes),
                           epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed, recipe=recipe)
    net = predict_logits(model, data.x_test, recipe.tta, views=tuple(views)).softmax(1).numpy()
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, net=net, y=data.y_test.numpy())
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", choices=["random", "movie"], required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fusion"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hog_layer, geometry = HOGFeatures(), None
    for seed in args.seeds:
        started = time.perf_counter()
        config = TrainConfig(data=args.data, recipe="best", face_crop=True, split=args.split, seed=seed, **recipe_defaults("best"))
        data = prepare_data(config, load_images(config, progress=False))
        margins = cut_margins(config, data, BestRecipe.margin_tta)
        views = [data.x_test, *data.views_at(margins)]
        net = network_probabilities(config, data, args.cache, views[1:])
        if geometry is None:
            geometry = landmark_geometry(data.image_set)
        images, labels = data.image_set.images, data.image_set.labels
        train, test, y = data.train_index, data.test_index, data.y_test.numpy()

        def torch_hog(x):
            with torch.no_grad():
                return hog_layer(x).flatten(1).double().numpy()

        all_views = views + [v.flip(-1) for v in views]
        fused = {"svm-opencv": svm_probabilities(images, labels, train, test)}
        torch_svm = platt_svm(torch_hog(data.x_train), labels[train])
        fused["svm-torch"] = np.mean([torch_svm.predict_proba(torch_hog(v)) for v in all_views], 0)
        fused["svm-torch-pairwise"] = np.mean([pairwise_average(torch_svm, torch_hog(v)) for v in all_views], 0)
        train_views = [data.x_train, data.x_train.flip(-1)]
        for margin in margins:
            cut = train_cut(config, data, margin)
            train_views += [cut, cut.flip(-1)]
        x = np.concatenate([torch_hog(v) for v in train_views])
        mean, scale = x.mean(0), np.where(x.std(0) < 1e-8, 1.0, x.std(0))
        standardised, y_views = (x - mean) / scale, np.tile(labels[train], len(train_views))
        n_classes = len(data.image_set.classes)
        no_offset = np.zeros((len(x), n_classes))
        C, _ = choose_C(standardised, no_offset, y_views, np.tile(training_groups(data, args.split), len(train_views)),
                        n_classes, seed)
        weight, bias = fit_linear(standardised, no_offset, y_views, C, n_classes)
        fused["hog-linear"] = np.mean([torch.softmax(torch.from_numpy((torch_hog(v) - mean) / scale @ weight.T + bias), 1).numpy()
                                       for v in all_views], 0)
        if geometry is not None:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            shape = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
            fused["geometry"] = shape.fit(geometry[train], labels[train]).predict_proba(geometry[test])

        def accuracy(p):
            return float((p.argmax(1) == y).mean())

        row = {"split": args.split, "seed": seed, "n_test": len(y), "network": accuracy(net), "hog_linear_C": C}
        for name, p in fused.items():
            row[f"{name} alone"] = accuracy(p)
            row[f"network + {name}"] = accuracy(net + p)
        if geometry is not None:
            row["network + geometry-svm"] = accuracy(net + fused["geometry"] + fused["svm-opencv"])
        row["seconds"] = time.perf_counter() - started
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
