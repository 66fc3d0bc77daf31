"""benchmarks/recipes.md rows 58a-58h, second pass: the probe added to FER2013's own log-probabilities (a fixed
offset, so the L2 penalty shrinks towards the zero-shot classifier), fitted with L-BFGS on scikit-learn's objective;
with HOG of the crop and with the mirror and margin cuts as training rows. Same data, seeds, splits and scoring as
probe_variants.py; prints JSON lines only. Usage: FEXPRUNE_SFEW=~/sfew/Images PYTHONPATH=src python3 benchmarks/probe_variants_prior.py > /tmp/y.log;
then python3 benchmarks/probe_summary.py /tmp/y.log"""
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
from sklearn.model_selection import StratifiedGroupKFold
import warnings; warnings.filterwarnings("ignore")
t0 = time.time()
data = os.path.expanduser(os.environ.get("FEXPRUNE_SFEW", "~/sfew/Images"))
base = TrainConfig(data=data, face_crop=True, normalize="none")
sets = {m: load_images(base, progress=False, face_margin=m) for m in (0.2, 0.15, 0.25)}
s0 = sets[0.2]; classes = list(s0.classes)
model = pretrained_model(classes, (90, 72), "none", {}).eval()
hog = HOGFeatures()
@torch.no_grad()
def feats(x):
    B = lambda f: torch.cat([f(x[i:i+128]) for i in range(0, len(x), 128)]).double().numpy()
    return {"pooled": B(lambda t: model.features(t).mean((2, 3))), "logp": B(lambda t: model(t).log_softmax(1)),
            "hog": B(lambda t: hog(t).flatten(1))}
views = {}
for m, s in sets.items():
    x = torch.from_numpy(normalize_images(s.images, "none")[0])
    views[(m, False)] = feats(x); views[(m, True)] = feats(x.flip(-1))
print("features", time.time() - t0, file=sys.stderr, flush=True)
labels = np.asarray(s0.labels); movies = np.asarray([s.movie for s in s0.samples]); clips = np.asarray([s.clip for s in s0.samples])
ALL = list(views); PLAIN = [(0.2, False)]
K = len(classes)
def X(kinds, idx, v): return np.concatenate([views[v][k][idx] for k in kinds], 1)

def fit_offset(F, off, y, C, offset=True):
    """min (1/n) sum w_y CE(off + F W^T + b) + ||W||^2 / (2 C n): sklearn's scaling, balanced weights."""
    n, D = F.shape
    counts = np.bincount(y, minlength=K); w = np.where(counts > 0, n / (K * np.maximum(counts, 1)), 0.0)
    Ft, ot, yt, wt = torch.from_numpy(F), torch.from_numpy(off if offset else np.zeros_like(off)), torch.from_numpy(y), torch.from_numpy(w)
    W = torch.zeros(K, D, dtype=torch.float64, requires_grad=True); b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10, history_size=20, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(ot + Ft @ W.T + b, yt, reduction="none") * wt[yt]).mean() + (W ** 2).sum() / (2 * C * n)
        loss.backward(); return loss
    opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()

def predict(Wb, F, off, offset=True):
    W, b = Wb; z = (off if offset else 0) + F @ W.T + b
    z = z - z.max(1, keepdims=True); p = np.exp(z); return p / p.sum(1, keepdims=True)

CS = [1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1]
def run(kinds, tr, te, groups, trainviews, offset, fixedC=None, seed=0):
    Fs = [X(kinds, tr, v) for v in trainviews]
    Fall = np.concatenate(Fs); mean, sd = Fall.mean(0), Fall.std(0); sd[sd < 1e-8] = 1
    Z = lambda F: (F - mean) / sd
    off_tr = np.concatenate([views[v]["logp"][tr] for v in trainviews]); ytr = np.tile(labels[tr], len(trainviews))
    g = np.tile(groups[tr], len(trainviews)); Ztr = Z(Fall)
    if fixedC is None:
        correct = dict.fromkeys(CS, 0)
        for a, bb in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(Ztr, ytr, g):
            for C in CS:
                Wb = fit_offset(Ztr[a], off_tr[a], ytr[a], C, offset)
                correct[C] += (predict(Wb, Ztr[bb], off_tr[bb], offset).argmax(1) == ytr[bb]).sum()
        C = max(CS, key=lambda c: (correct[c], -c))
    else:
        C = fixedC
    Wb = fit_offset(Ztr, off_tr, ytr, C, offset)
    p = np.mean([predict(Wb, Z(X(kinds, te, v)), views[v]["logp"][te], offset) for v in ALL], 0)
    return (p.argmax(1) == labels[te]).mean(), C

variants = [("prior+pooled", ["pooled"], PLAIN, True, None),
            ("prior+pooled C=0.001", ["pooled"], PLAIN, True, 0.001),
            ("prior+pooled C=0.01", ["pooled"], PLAIN, True, 0.01),
            ("prior+pooled+hog", ["pooled", "hog"], PLAIN, True, None),
            ("prior+pooled, 6 views", ["pooled"], ALL, True, None),
            ("prior+pooled+hog, 6 views", ["pooled", "hog"], ALL, True, None),
            ("noprior pooled (torch check)", ["pooled"], PLAIN, False, None)]
for split in ("random", "movie"):
    for seed in range(5):
        tr, te = split_indices(s0, split, 0.2, seed)
        groups = movies if split == "movie" else clips
        p = np.mean([np.exp(views[v]["logp"][te]) for v in ALL], 0)
        row = {"split": split, "seed": seed, "n_test": len(te), "zero-shot (6 views)": (p.argmax(1) == labels[te]).mean()}
        for name, kinds, tv, off, fc in variants:
            row[name], row[name + " C"] = run(kinds, tr, te, groups, tv, off, fc, seed)
        print(json.dumps({k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}), flush=True)
        print(split, seed, time.time() - t0, file=sys.stderr, flush=True)
