"""HOG + SVM baseline: beats chance on a small synthetic set; the command writes its run folder and report."""

from __future__ import annotations

import json

from fexprune.cli import main
from fexprune.data.loading import load_image_set
from fexprune.data.splits import split_indices
from fexprune.data.synth import write_synthetic
from fexprune.experiments.baseline import hog_features, svm_baseline
from fexprune.run_folder import read_settings


def test_hog_shape():
    import numpy as np

    features = hog_features(np.zeros((3, 72, 90), np.uint8))
    assert features.shape[0] == 3 and features.shape[1] == 8 * 10 * 36  # (72/8-1) x (88/8-1) blocks x 36


def test_svm_beats_chance_and_cli_writes_results(tmp_path, capsys):
    images = write_synthetic(tmp_path / "synth", per_class=20, seed=3, size=(180, 144), progress=False)
    image_set = load_image_set(images, progress=False, cache_dir=tmp_path / "cache")
    train, test = split_indices(image_set, "random", 0.25, seed=0)
    stages = []
    metrics = svm_baseline(image_set.images, image_set.labels, train, test, list(image_set.classes), on_stage=stages.append)
    assert stages == ["HOG descriptors", "fitting the SVM", "scoring"]
    assert metrics["accuracy"] > 1 / 7 + 0.15
    assert sum(map(sum, metrics["confusion_matrix"])) == len(test)
    assert main(["baseline", "--data", str(images), "--quiet", "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["protocol"] == "random" and results["method"] == "hog-svm"
    assert (tmp_path / "run" / "figures" / "confusion.png").is_file()
    report = (tmp_path / "run" / "report.md").read_text()  # a report beside train's, with the same metrics
    assert f"**test accuracy**: {100 * results['test_accuracy']:.1f}%" in report and "accuracy per class" in report
    assert "![Confusion matrix](figures/confusion.png)" in report and (tmp_path / "run" / "report.html").is_file()
    assert main(["baseline", "--data", str(images), "--cv", "3", "--split", "movie", "--quiet", "--out", str(tmp_path / "cv")]) == 0
    assert "HOG + SVM" not in capsys.readouterr().err
    assert main(["baseline", "--data", str(images), "--out", str(tmp_path / "shown")]) == 0
    assert "HOG + SVM" in capsys.readouterr().err  # the fit's progress, without --quiet
    folds = (tmp_path / "cv" / "report.md").read_text()
    assert "**Per fold**" in folds and "grouped by movie" in folds and "mean test accuracy" in folds


def test_a_face_crop_run_records_the_chain_it_cut_with(tmp_path, monkeypatch):
    """config.json names the detectors, not "the default": prune, resume and predict then cut the same faces
    where the default differs (here mtcnn's weights are missing, so the default drops it)."""
    from fexprune.experiments.baseline import BaselineConfig
    from fexprune.faces import mtcnn
    from fexprune.faces.chain import DEFAULT_CHAIN
    from fexprune.faces.loading import with_chain

    monkeypatch.setattr(mtcnn, "available", lambda: False)
    images = write_synthetic(tmp_path / "synth", per_class=3, seed=3, size=(180, 144), progress=False)
    monkeypatch.setenv("FEXPRUNE_CACHE", str(tmp_path / "cache"))
    assert main(["baseline", "--data", str(images), "--face-crop", "--quiet", "--out", str(tmp_path / "run")]) == 0
    recorded = read_settings(tmp_path / "run")["detectors"]
    assert recorded == [d for d in DEFAULT_CHAIN if d != "mtcnn"]
    chosen = BaselineConfig(face_crop=True, detectors=("haar-default",))
    assert with_chain(chosen) is chosen and with_chain(BaselineConfig()).detectors is None
