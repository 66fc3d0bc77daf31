"""The package's modules import one way: no cycles, and the lower layers never reach up:
commands -> experiments -> (recipes, training, pruning, report) -> (models, data, faces) -> (runs, errors).

Every `import fexprune...` counts, at the top of a module or inside a function body (an import hidden in
a function still ties the two modules together). The walk reads the source with `ast`; nothing runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fexprune"

KNOWN_CYCLES: list[set[str]] = []
KNOWN_UPWARD: set[str] = set()

# layer rules: modules under the key never import modules under any of its values
NEVER = {
    "fexprune.report": ("fexprune.experiments", "fexprune.recipes", "fexprune.commands", "fexprune.cli"),
    "fexprune.recipes": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands", "fexprune.cli"),
    "fexprune.inference": ("fexprune.experiments", "fexprune.commands", "fexprune.cli"),
    "fexprune.models": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands"),
    "fexprune.data": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands"),
    "fexprune.faces": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands"),
    "fexprune.training": ("fexprune.experiments", "fexprune.report", "fexprune.commands"),
    "fexprune.pruning": ("fexprune.experiments", "fexprune.report", "fexprune.commands"),
}


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The fexprune modules `path` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    names = module_names()
    known = set(names)
    return {name: imports_of(path, known) - {name} for name, path in names.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or round a loop."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle(graph):
    # a package's __init__ that imports its own modules is not a cycle of concern: leave packages out
    modules = {n: {m for m in targets if not (PACKAGE / Path(*m.split(".")[1:]) / "__init__.py").is_file()}
               for n, targets in graph.items()}
    new = [c for c in strongly_connected(modules) if not any(set(c) <= known for known in KNOWN_CYCLES)]
    assert not new, "import cycles: " + "; ".join(" <-> ".join(c) for c in new)


def test_lower_layers_never_import_upper_ones(graph):
    wrong = [f"{name} imports {target}" for name, targets in graph.items() for layer, forbidden in NEVER.items()
             if name == layer or name.startswith(layer + ".") for target in targets
             if any(target == f or target.startswith(f + ".") for f in forbidden)]
    new = sorted(set(wrong) - KNOWN_UPWARD)
    assert not new, "\n".join(new)


def test_the_walk_sees_function_body_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from fexprune.report import html\n")
    assert imports_of(module, {"fexprune.report", "fexprune.report.html"}) == {"fexprune.report", "fexprune.report.html"}
