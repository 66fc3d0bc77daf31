"""benchmarks/recipes.md rows 57a-57q, first pass: frozen FER2013 features + scikit-learn logistic regression
(balanced, C by a grouped inner 5-fold CV: movies on the movie split, clips on the random one) on real face crops,
paired per split and seed (0-4) with the zero-shot classifier; every variant scored as the recipes score test images
(mirror + margin cuts 0.15 / 0.25, probabilities averaged). Only numbers are printed (JSON lines); nothing made from
the frames is written. Usage: FEXPRUNE_SFEW=~/sfew/Images PYTHONPATH=src python3 benchmarks/probe_variants.py > /tmp/x.log; then
python3 benchmarks/probe_summary.py /tmp/x.log"""
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from fexprune.config import TrainConfig
from fexprune.faces.loading import load_images
from fexprune.data.preprocess import normalize_images
from fexprune.data.splits import split_indices
from fexprune.models.fer_transfer import pretrained_model
from fexprune.models.hog import HOGFeatures
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.model_selection import StratifiedGroupKFold
import warnings; warnings.filterwarnings("ignore")

t0 = time.time()
data = os.path.expanduser(os.environ.get("FEXPRUNE_SFEW", "~/sfew/Images"))
base = TrainConfig(data=data, face_crop=True, normalize="none")
sets = {m: load_images(base, progress=False, face_margin=m) for m in (0.2, 0.15, 0.25)}
s0 = sets[0.2]
classes = list(s0.classes)
model = pretrained_model(classes, (90, 72), "none", {}).eval()
hog = HOGFeatures()
# FER2013 probabilities in the data set's class order (all 7 map)
@torch.no_grad()
def feats(x):
    out = {}
    out["pooled"] = torch.cat([model.features(x[i:i+128]).mean((2, 3)) for i in range(0, len(x), 128)]).numpy()
    out["probs"] = torch.cat([model(x[i:i+128]).softmax(1) for i in range(0, len(x), 128)]).numpy()
    out["hog"] = torch.cat([hog(x[i:i+128]).flatten(1) for i in range(0, len(x), 128)]).numpy()
    return out
views = {}
for m, s in sets.items():
    x, _ = normalize_images(s.images, "none")
    x = torch.from_numpy(x)
    views[(m, False)] = feats(x)
    views[(m, True)] = feats(x.flip(-1))
print("features", time.time() - t0, {k: v.shape for k, v in views[(0.2, False)].items()}, file=sys.stderr, flush=True)
labels = np.asarray(s0.labels)
movies = np.asarray([s.movie for s in s0.samples])
clips = np.asarray([s.clip for s in s0.samples])
VIEW_KEYS = list(views)

def X(kinds, idx, view):
    return np.concatenate([views[view][k][idx] for k in kinds], 1)

CS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
def fit(Xtr, ytr, C):
    sc = StandardScaler().fit(Xtr)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(sc.transform(Xtr), ytr)
    return sc, lr

def choose_C(kinds, tr, groups, trainviews):
    gkf = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    acc = {C: [] for C in CS}
    for a, b in gkf.split(tr, labels[tr], groups[tr]):
        ia, ib = tr[a], tr[b]
        Xa = np.concatenate([X(kinds, ia, v) for v in trainviews]); ya = np.tile(labels[ia], len(trainviews))
        Xb = X(kinds, ib, (0.2, False))
        for C in CS:
            sc, lr = fit(Xa, ya, C)
            # balanced accuracy would match class_weight; use plain accuracy
            acc[C].append((lr.predict(sc.transform(Xb)) == labels[ib]).mean() * len(ib))
    return max(CS, key=lambda C: sum(acc[C]))

def test_acc(sc, lr, kinds, te, testviews):
    p = np.mean([lr.predict_proba(sc.transform(X(kinds, te, v))) for v in testviews], 0)
    return (p.argmax(1) == labels[te]).mean()

ALL = VIEW_KEYS
PLAIN = [(0.2, False)]
rows = []
variants = [
    ("pooled", ["pooled"], PLAIN),
    ("probs", ["probs"], PLAIN),
    ("pooled+probs", ["pooled", "probs"], PLAIN),
    ("pooled+hog", ["pooled", "hog"], PLAIN),
    ("pooled+probs+hog", ["pooled", "probs", "hog"], PLAIN),
    ("pooled, train on 6 views", ["pooled"], ALL),
    ("pooled+probs, train on 6 views", ["pooled", "probs"], ALL),
]
for split in ("random", "movie"):
    for seed in range(5):
        cfg = TrainConfig(data=data, face_crop=True, normalize="none", split=split, seed=seed)
        tr, te = split_indices(s0, split, 0.2, seed)
        zs = {}
        p = np.mean([views[v]["probs"][te] for v in ALL], 0)
        zs["zero-shot (6 views)"] = (p.argmax(1) == labels[te]).mean()
        zs["zero-shot (1 view)"] = (views[(0.2, False)]["probs"][te].argmax(1) == labels[te]).mean()
        row = {"split": split, "seed": seed, "n_test": len(te), **zs}
        groups = movies if split == "movie" else clips
        for name, kinds, trainviews in variants:
            Xtr = np.concatenate([X(kinds, tr, v) for v in trainviews]); ytr = np.tile(labels[tr], len(trainviews))
            C = choose_C(kinds, tr, groups, trainviews)
            sc, lr = fit(Xtr, ytr, C)
            row[name] = test_acc(sc, lr, kinds, te, ALL)
            row[name + " C"] = C
            if name in ("pooled", "pooled+probs"):
                for Cf in (0.01, 0.1, 1.0):
                    sc, lr = fit(Xtr, ytr, Cf)
                    row[f"{name} C={Cf}"] = test_acc(sc, lr, kinds, te, ALL)
                sc, lr = fit(Xtr, ytr, C)
                row[name + " 1view"] = test_acc(sc, lr, kinds, te, PLAIN)
        rows.append(row)
        print(json.dumps({k: (round(float(v), 3) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}), flush=True)
        print(split, seed, time.time() - t0, file=sys.stderr, flush=True)
