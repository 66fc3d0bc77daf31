"""Integrations the run logs to or runs on are checked before any work: a tracking server that is down,
a tracking URI MLflow cannot open, a Ray cluster that does not answer: one line naming the address, exit 2,
and no run folder made."""

from __future__ import annotations

import socket

import pytest

from .conftest import train_args


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_server_down_is_one_line_before_training(cli, images, tmp_path, closed_port):
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{closed_port}"
    outcome = cli(*train_args(images, tmp_path / "run", "--mlflow", uri))
    outcome.one_error_line(uri, "cannot reach the MLflow tracking server")
    assert not (tmp_path / "run").exists()


def test_unsupported_mlflow_scheme_is_one_line_before_training(cli, images, tmp_path):
    pytest.importorskip("mlflow")
    outcome = cli(*train_args(images, tmp_path / "run", "--mlflow", "ftp://example.org/store"))
    outcome.one_error_line("ftp://example.org/store", "unsupported tracking URI scheme 'ftp:'")
    assert not (tmp_path / "run").exists()


def test_unreachable_ray_address_is_one_line_before_the_sweep(cli, images, tmp_path, closed_port):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port}"
    outcome = cli("sweep", "--data", images, "--channels", "2,4", "--repeats", "1", "--epochs", "1", "--quiet",
                  "--backend", "ray", "--address", address, "--out", tmp_path / "sweep")
    outcome.one_error_line(address, "cannot reach the Ray cluster")
    assert not (tmp_path / "sweep").exists()
