"""docs/pruning-api.md stays true: every python block in it runs as it is, each in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "pruning-api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_an_example_per_importance_and_for_merging():
    text = "\n".join(BLOCKS)
    for name in ("KernelL2Importance", "KernelL1Importance", "SeededRandomImportance", '"taylor"', '"bn_scale"',
                 '"fpgm"', "DistinctivenessImportance", "MergingPruner", "merge_before_pruning"):
        assert name in text, name


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs(index):
    exec(compile(BLOCKS[index], f"{DOC.name} block {index + 1}", "exec"), {"__name__": "__doc_example__"})


def test_every_public_name_resolves():
    import fexprune.pruning as pruning

    for name in pruning.__all__:
        assert getattr(pruning, name) is not None, name
    with pytest.raises(AttributeError):
        pruning.PaperL2Importance  # noqa: B018 (renamed KernelL2Importance)
