"""TensorBoard event files and MLflow runs hold what the run folder holds: read back with each tool's own reader."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fexprune.cli import main
from fexprune.data.synth import write_synthetic


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth"), per_class=12, seed=5, size=(180, 144), progress=False)


def _metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_a_train_run_writes_every_epochs_loss_to_tensorboard(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--channels", "4,8", "--epochs", "4", "--lr", "1e-3", "--batch-size", "16",
                 "--quiet", "--out", str(run_dir)]) == 0
    events = _events(run_dir)
    logged = {event.step: event.value for event in events.Scalars("train_loss")}
    rows = _metrics(run_dir)
    assert sorted(logged) == [int(row["epoch"]) for row in rows]
    for row in rows:
        assert logged[int(row["epoch"])] == pytest.approx(float(row["train_loss"]), rel=1e-6)
    assert [event.value for event in events.Scalars("lr")][-1] == pytest.approx(1e-3)
    assert "confusion" in events.Tags()["images"]
    hparams = [p for p in (run_dir / "tensorboard").rglob("events.*") if "hparams" in str(p)]
    assert hparams, "no HParams summary"


def test_no_tensorboard_writes_no_event_files(tiny_data, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--channels", "4,8", "--epochs", "2", "--quiet", "--no-tensorboard",
                 "--out", str(run_dir)]) == 0
    assert (run_dir / "results.json").is_file() and not (run_dir / "tensorboard").exists()


def test_no_tensorboard_reaches_a_sweeps_worker_processes_in_their_arguments(tiny_data, tmp_path):
    before = {k: v for k, v in os.environ.items() if k.startswith("FEXPRUNE")}
    sweep = tmp_path / "sweep"
    assert main(["sweep", "--data", str(tiny_data), "--channels", "2,4", "--repeats", "2", "--epochs", "1",
                 "--workers", "2", "--quiet", "--no-tensorboard", "--out", str(sweep)]) == 0
    trials = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert len(trials) == 2 and not any((t / "tensorboard").exists() for t in [sweep, *trials])
    assert {k: v for k, v in os.environ.items() if k.startswith("FEXPRUNE")} == before  # nothing set for the process


def test_mlflow_holds_the_parameters_metric_history_and_files(tiny_data, tmp_path):
    pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'fexprune[mlflow]'")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--channels", "4,8", "--epochs", "3", "--seed", "7", "--quiet",
                 "--mlflow", str(store), "--out", str(run_dir)]) == 0
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert found.data.params["seed"] == "7" and found.data.params["recipe.name"] == "paper"
    history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, "train_loss")}
    assert history == {int(row["epoch"]): pytest.approx(float(row["train_loss"])) for row in _metrics(run_dir)}
    assert {"results.json", "metrics.csv", "model.pt"} <= {a.path for a in client.list_artifacts(found.info.run_id)}


def test_a_sweeps_trials_are_child_runs_in_mlflow(tiny_data, tmp_path):
    pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'fexprune[mlflow]'")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    assert main(["sweep", "--data", str(tiny_data), "--channels", "4,8", "--repeats", "2", "--epochs", "2", "--workers", "1",
                 "--quiet", "--mlflow", str(store), "--out", str(tmp_path / "sweep")]) == 0
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in found if r.data.tags.get("fexprune.kind") == "sweep"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["c4-8_r0", "c4-8_r1"]
    assert len(found) == 3  # the trials are logged once, as children, not again on their own


def test_mlflow_missing_is_one_line_and_exit_2(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    assert main(["train", "--data", str(tiny_data), "--epochs", "1", "--quiet", "--mlflow", "--out", str(tmp_path / "r")]) == 2
    assert "pip install 'fexprune[mlflow]'" in capsys.readouterr().err and not (tmp_path / "r").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(port: int, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_mlflow_ui_as_the_readme_starts_it_lists_the_run(tiny_data, tmp_path, monkeypatch):
    try:
        importlib.metadata.version("mlflow")  # the full package: mlflow-skinny has no server
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("viewing MLflow runs needs the full MLflow (its server): pip install 'fexprune[mlflow-ui]'")
    beside = Path(sys.executable).parent / "mlflow"  # the environment running the tests, not another on PATH
    mlflow_command = str(beside) if beside.is_file() else shutil.which("mlflow")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", str(tiny_data), "--channels", "4,8", "--epochs", "2", "--seed", "3", "--quiet",
                 "--mlflow", "--out", "run"]) == 0
    port = _free_port()
    # the README's command: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ./mlruns (on a free port)
    server = subprocess.Popen([mlflow_command, "ui", "--backend-store-uri", "./mlruns", "--port", str(port)],
                              env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline, experiments = time.monotonic() + 180, None
        while experiments is None and time.monotonic() < deadline and server.poll() is None:
            try:
                experiments = _api(port, "experiments/search?max_results=100")["experiments"]
            except OSError:
                time.sleep(1)
        assert experiments is not None, f"mlflow ui did not answer: {server.stderr.read().decode()[-1000:] if server.poll() is not None else 'timeout'}"
        found = _api(port, "runs/search", {"experiment_ids": [e["experiment_id"] for e in experiments]})["runs"]
        (run,) = found
        assert run["info"]["run_name"] == "run"
        assert {p["key"]: p["value"] for p in run["data"]["params"]}["seed"] == "3"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        server.wait(timeout=30)
