"""The package's modules import one way: no cycles, and a layer never reaches up to one above it:
commands -> experiments -> recipes/training/pruning/report/inference -> models/faces/data -> runs (the
plain modules beside runs.py); and inside the models/faces/data layer, data never imports faces (faces cuts
the frames data loads: it is handed to the loader from above), nor does config.

Every package and top-level module is named in one layer (LAYERS), so a new one must be placed. Every
`import fexprune...` counts, at the top of a module or inside a function body (an import hidden in a
function still ties the two modules together). The walk reads the source with `ast`; nothing runs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fexprune"

KNOWN_CYCLES: list[set[str]] = []

# highest first; a module imports only from its own layer and those below (docs/architecture.md)
LAYERS = [
    ("fexprune", "fexprune.__main__", "fexprune.cli", "fexprune.api", "fexprune.commands"),
    ("fexprune.experiments",),
    ("fexprune.recipes", "fexprune.training", "fexprune.pruning", "fexprune.report", "fexprune.inference"),
    ("fexprune.models", "fexprune.faces", "fexprune.data"),
    ("fexprune.runs", "fexprune.run_folder", "fexprune.spec", "fexprune.spec_legacy", "fexprune.kinds", "fexprune.outputs", "fexprune.schema",
     "fexprune.config", "fexprune.device", "fexprune.tracking", "fexprune.errors", "fexprune.argtypes", "fexprune.weights",
     "fexprune.paper"),
]
KNOWN_UPWARD: set[str] = set()

# rules LAYERS' order does not make, inside a layer (data never imports faces) or named again for a clear
# message: modules under the key never import modules under any of its values
NEVER = {
    "fexprune.report": ("fexprune.experiments", "fexprune.recipes", "fexprune.commands", "fexprune.cli"),
    "fexprune.recipes": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands", "fexprune.cli"),
    "fexprune.inference": ("fexprune.experiments", "fexprune.recipes", "fexprune.commands", "fexprune.cli"),
    "fexprune.models": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands"),
    "fexprune.data": ("fexprune.experiments", "fexprune.report", "fexprune.inference", "fexprune.commands", "fexprune.faces"),
    "fexprune.config": ("fexprune.faces",),
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


def layer_of(module: str) -> int:
    """The index in LAYERS of the package or top-level module `module` belongs to."""
    for index, members in enumerate(LAYERS):
        if module in members or any(module.startswith(m + ".") for m in members if m != "fexprune"):
            return index
    raise KeyError(module)


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


def documented_names() -> tuple[set[str], set[str]]:
    """(packages, top-level modules) the layer diagram in docs/architecture.md names: `name/` and `name.py`."""
    diagram = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text().split("```")[1]
    return set(re.findall(r"(\w+)/", diagram)), {name[:-3] for name in re.findall(r"(?<![\w/])\w+\.py", diagram)}


def test_every_package_and_module_is_placed_in_one_layer():
    """A package or top-level module added (or removed) without its place in LAYERS and in the documented
    diagram fails here."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    placed = [m.removeprefix("fexprune.") for members in LAYERS for m in members if m != "fexprune"]
    assert len(placed) == len(set(placed)), "a name is placed in two layers"
    assert sorted(placed) == sorted(packages | modules)
    documented_packages, documented_modules = documented_names()
    assert sorted(documented_packages) == sorted(packages), f"{len(packages)} packages, {len(documented_packages)} documented"
    assert not modules - documented_modules, f"modules the diagram does not place: {sorted(modules - documented_modules)}"


def test_no_module_imports_a_layer_above_its_own(graph):
    # `from fexprune import runs` names the root package too; its __init__ only loads the API on first use
    wrong = [f"{name} imports {target}" for name, targets in graph.items() for target in targets - {"fexprune"}
             if layer_of(target) < layer_of(name)]
    assert not wrong, "\n".join(sorted(wrong))


def test_imports_are_absolute():
    """The walk names a relative import's target only where it is written out: every import is absolute."""
    relative = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for path in PACKAGE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative, relative


def test_the_rules_catch_data_or_config_importing_faces(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def load():\n    from fexprune.faces.crop import FaceCropper\n")
    known = {"fexprune.faces", "fexprune.faces.crop"}
    graph = {name: imports_of(module, known) for name in ("fexprune.data.loading", "fexprune.config")}
    with pytest.raises(AssertionError, match="fexprune.data.loading imports fexprune.faces.crop"):
        test_lower_layers_never_import_upper_ones(graph)
    with pytest.raises(AssertionError, match="fexprune.config imports fexprune.faces.crop"):
        test_lower_layers_never_import_upper_ones(graph)


def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others (a package's __init__ counted as a module;
    `from fexprune import x` names the root package too, whose __init__ loads the API only on first use)."""
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()) - {"fexprune"}:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_pruning_curve_reads_earlier_runs_through_the_run_folder(graph):
    """prune-curve takes a train run from its folder (inference/trained_run.py): its walk never enters the
    train experiment nor any recipe, whichever recipe trained the run."""
    walked = reached(graph, "fexprune.commands.prune_curve") | reached(graph, "fexprune.experiments.prune_curve")
    assert not {m for m in walked if m.startswith(("fexprune.recipes", "fexprune.experiments.train"))}


def test_only_the_run_folder_module_names_the_spec_file():
    """One module takes, writes and reads run folders; schema.py bounds the spec's fields by its file name."""
    naming = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "config.json" in p.read_text())
    assert naming == ["run_folder.py", "schema.py"]
