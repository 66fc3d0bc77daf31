"""Every command that writes a file for its user (predict on images and on a video, export, features,
compare, data faces) writes it through one writer, and each of its rules holds for each of them: an
existing file (named or derived) is refused without --overwrite; an input of the command and a run's own
files are refused even with it; two outputs on one path are refused; every refusal comes before any work
(one line, exit 2, nothing written); and a file written over is replaced by a rename, never rewritten in place."""

from __future__ import annotations

import hashlib
import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import pytest

from inference_runs import make_train_run


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A tiny trained run, its images, a short video of them and a model file outside any run."""
    root = tmp_path_factory.mktemp("outputs")
    made = make_train_run(root)
    frames = [cv2.imread(str(p)) for p in sorted(made.images.rglob("*.png"))[:4]]
    video = root / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    (root / "loose").mkdir()
    shutil.copy(made.train / "model.pt", root / "loose" / "model.pt")
    return {"run": made.train, "images": made.images, "video": video, "model": root / "loose" / "model.pt"}


def _first(folder: Path) -> Path:
    return sorted(folder.glob("*.png"))[0]


@dataclass
class Command:
    name: str
    argv: Callable[[dict, Path], list]  # the command writing its main output at the given path
    work: tuple[str, str]  # module and function where its work starts: never reached when a plan refuses
    derived: Callable[[Path], list[Path]] = lambda out: []  # files it writes beside its main output, unnamed
    input_path: Callable[[dict], Path] | None = None  # one of its inputs, to give as its output
    argv_with_input: Callable[[dict, Path], list] | None = None  # where its inputs differ from argv's


COMMANDS = [
    Command("predict images", lambda s, out: ["predict", "--run", s["run"], s["images"] / "Happy", "--out", out, "--quiet"],
            ("fexprune.inference.predict", "load_run_model"),
            derived=lambda out: [out.with_name(out.stem + ".skipped.csv")],
            input_path=lambda s: _first(s["images"] / "Happy")),
    Command("predict annotated images", lambda s, folder: ["predict", "--run", s["run"], _first(s["images"] / "Happy"),
                                                           "--annotate", folder, "--out", folder.parent / "p.csv", "--quiet"],
            ("fexprune.inference.predict", "load_run_model")),
    Command("predict video", lambda s, out: ["predict", "--run", s["run"], s["video"], "--out", out, "--quiet"],
            ("fexprune.inference.video", "load_run_model"),
            derived=lambda out: [out.with_name(out.stem + ".tracks.png")], input_path=lambda s: s["video"]),
    Command("predict video --annotate", lambda s, out: ["predict", "--run", s["run"], s["video"], "--annotate", out,
                                                        "--out", out.parent / "v.csv", "--quiet"],
            ("fexprune.inference.video", "load_run_model"), input_path=lambda s: s["video"]),
    Command("export", lambda s, out: ["export", "--run", s["model"], "--onnx", out],
            ("fexprune.inference.export", "load_run_model"),
            derived=lambda out: [out.with_name(out.name + ".json")], input_path=lambda s: s["model"]),
    Command("features", lambda s, out: ["features", "--data", s["images"], "--out", out, "--quiet"],
            ("fexprune.data.descriptors", "feature_table_from_data"),
            input_path=lambda s: _first(s["images"] / "Sad")),
    Command("compare", lambda s, out: ["compare", s["run"], "--out", out], ("fexprune.report.compare", "collect")),
    Command("data faces", lambda s, out: ["data", "faces", "--data", s["images"], "--detectors", "haar-default",
                                          "--sheet", out, "--quiet"],
            ("fexprune.faces.loading", "load_face_crops"),
            input_path=lambda s: _first(s["images"] / "Fear")),
]
OUTPUT_NAMES = {"predict images": "p.csv", "predict video": "v.csv", "predict video --annotate": "v.drawn.mp4",
                "export": "m.onnx", "features": "f.csv", "compare": "table.md", "data faces": "sheet.png"}
NAMED = [c for c in COMMANDS if c.name in OUTPUT_NAMES]


def _by_name(commands):
    return pytest.mark.parametrize("command", commands, ids=[c.name for c in commands])


class WorkStarted(Exception):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Makes `command`'s work raise: a refusal must come before it."""

    def patch(command: Command) -> None:
        module, name = command.work

        def started(*args, **kwargs):
            raise WorkStarted(f"{module}.{name} ran before the refusal")

        monkeypatch.setattr(importlib.import_module(module), name, started)

    return patch


def _listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(cli, setting, tmp_path, argv, *needles) -> str:
    """Runs `argv`, asserts one line holding every needle, exit 2, and that nothing under tmp_path or the
    run folder changed; returns the line."""
    before = (_listing(tmp_path), _listing(setting["run"]), _listing(setting["images"].parent))
    line = cli(*argv).one_error_line(*needles)
    assert (_listing(tmp_path), _listing(setting["run"]), _listing(setting["images"].parent)) == before
    return line


@_by_name(NAMED)
def test_an_existing_output_is_refused_without_overwrite(cli, setting, tmp_path, no_work, command):
    no_work(command)
    out = tmp_path / OUTPUT_NAMES[command.name]
    out.write_bytes(b"mine")
    _refused(cli, setting, tmp_path, command.argv(setting, out), f"{out}: exists; not writing over it", "--overwrite")


def test_an_existing_annotated_copy_is_refused_without_overwrite(cli, setting, tmp_path, no_work):
    command = next(c for c in COMMANDS if c.name == "predict annotated images")
    no_work(command)
    copy = tmp_path / "drawn" / _first(setting["images"] / "Happy").name
    copy.parent.mkdir()
    copy.write_bytes(b"mine")
    _refused(cli, setting, tmp_path, command.argv(setting, tmp_path / "drawn"), f"{copy}: exists; not writing over it")


@_by_name([c for c in COMMANDS if c.name in ("predict images", "predict video", "export")])
def test_an_existing_derived_output_the_user_never_named_is_refused_without_overwrite(cli, setting, tmp_path, no_work, command):
    no_work(command)
    out = tmp_path / OUTPUT_NAMES[command.name]
    (derived,) = command.derived(out)
    derived.write_bytes(b"mine")
    _refused(cli, setting, tmp_path, command.argv(setting, out), f"{derived}: exists; not writing over it")


@_by_name([c for c in COMMANDS if c.input_path])
def test_an_input_is_refused_even_with_overwrite(cli, setting, tmp_path, no_work, command):
    no_work(command)
    source = command.input_path(setting)
    _refused(cli, setting, tmp_path, command.argv(setting, source) + ["--overwrite"],
             f"{source}: is an input of this command", "even with --overwrite")


def test_annotated_copies_onto_their_inputs_are_refused_even_with_overwrite(cli, setting, tmp_path, no_work):
    """`predict Images/Happy --annotate Images --overwrite` would draw over every image it reads."""
    command = next(c for c in COMMANDS if c.name == "predict annotated images")
    no_work(command)
    argv = ["predict", "--run", setting["run"], setting["images"] / "Happy", "--annotate", setting["images"],
            "--out", tmp_path / "p.csv", "--overwrite", "--quiet"]
    _refused(cli, setting, tmp_path, argv, f"{setting['images'] / 'Happy'}", ": is an input of this command")


def test_an_output_reached_through_a_link_to_an_input_is_refused(cli, setting, tmp_path, no_work):
    command = next(c for c in COMMANDS if c.name == "predict video")
    no_work(command)
    link = tmp_path / "link.csv"
    link.symlink_to(setting["video"])
    _refused(cli, setting, tmp_path, command.argv(setting, link) + ["--overwrite"], f"{link}: is an input of this command")


@_by_name(NAMED)
def test_a_runs_file_is_refused_even_with_overwrite(cli, setting, tmp_path, no_work, command):
    no_work(command)
    results = setting["run"] / "results.json"
    _refused(cli, setting, tmp_path, command.argv(setting, results) + ["--overwrite"],
             f"{results}: is a file of the run folder {setting['run']}", "even with --overwrite")


@pytest.mark.parametrize("case", ["video --out is --annotate", "images --out is an annotated copy"])
def test_two_outputs_of_one_command_on_one_path_are_refused(cli, setting, tmp_path, no_work, case):
    if case.startswith("video"):
        no_work(COMMANDS[2])
        out = tmp_path / "clip.out.mp4"
        argv = ["predict", "--run", setting["run"], setting["video"], "--out", out, "--annotate", out, "--overwrite"]
        needles = (f"{out}: is both --out and --annotate of this command",)
    else:
        no_work(COMMANDS[0])
        out = tmp_path / "drawn" / "Happy" / _first(setting["images"] / "Happy").name
        argv = ["predict", "--run", setting["run"], setting["images"] / "Happy", "--annotate", tmp_path / "drawn",
                "--out", out, "--overwrite"]
        needles = (f"{out}: is both --out and an annotated copy of this command",)
    _refused(cli, setting, tmp_path, argv, *needles)


@_by_name(NAMED)
def test_overwrite_replaces_a_file_by_renaming_a_new_one_onto_it(cli, setting, tmp_path, command):
    out = tmp_path / OUTPUT_NAMES[command.name]
    out.write_bytes(b"old")
    for derived in command.derived(out):
        derived.write_bytes(b"old")
    inode = out.stat().st_ino
    keep = tmp_path / "keep"  # holds the old file's inode, so the filesystem cannot hand it out again
    keep.hardlink_to(out)
    outcome = cli(*command.argv(setting, out), "--overwrite")
    assert outcome.code == 0, outcome.err
    assert out.read_bytes() != b"old" and out.stat().st_ino != inode and keep.read_bytes() == b"old"
    for derived in command.derived(out):  # written anew, or (a stale skipped-files list) removed
        assert not derived.exists() or derived.read_bytes() != b"old"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_data_synth_refuses_an_existing_faces_csv_without_overwrite(cli, tmp_path):
    (tmp_path / "faces.csv").write_text("mine")
    cli("data", "synth", "--out", tmp_path, "--per-class", "1", "--quiet").one_error_line(
        f"{tmp_path / 'faces.csv'}: exists; not writing over it")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.csv"] and (tmp_path / "faces.csv").read_text() == "mine"
    assert cli("data", "synth", "--out", tmp_path, "--per-class", "1", "--quiet", "--overwrite").code == 0
    assert (tmp_path / "faces.csv").read_text().startswith("path,label,")
