"""proj's own import graph: no cycles (imports inside functions count too) and no import against the layers."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers.paths import REPO

ROOT = REPO / "src" / "proj"

# The layer order the README's Design section documents, lowest first. A module may import its own layer
# and the layers below it, never one above. Keys are the first name under ``proj`` (a package or a
# top-level module); ``proj`` itself is the package's ``__init__`` (the public re-export of ``api``).
LAYERS: list[set[str]] = [
    {"_compat", "redact", "errors", "report", "paths", "settings", "locks", "platforms", "safe_yaml", "_childpath"},
    {"project", "sources", "execution", "lockfiles"},
    {"envs"},
    {"tracking"},
    {"models"},
    {"collect"},
    {"pipeline"},
    {"reproduce"},
    {"registry"},
    {"transfer", "auth"},
    {"api", "client"},
    {"server"},
    {"cli"},
    {"proj", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: anchored at the module's package
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    # ``from proj.sources import workspace`` imports the module proj.sources.workspace
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its body (top level, functions, TYPE_CHECKING)."""

    def known(name: str) -> str | None:
        while name:
            if name in mods:
                return name
            name = name.rpartition(".")[0]
        return None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target.split(".")[0] != "proj":
                    continue
                found = known(target)
                # a module importing a package it lives in is not an edge (``import proj.x`` binds proj)
                if found and found != module and not module.startswith(found + "."):
                    edges[module].add(found)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "proj"


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer to a higher one, as readable lines."""
    wrong = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            src, dst = layer_of(module), layer_of(target)
            if RANK[dst] > RANK[src]:
                wrong.append(f"{module} ({src}, layer {RANK[src]}) imports {target} ({dst}, layer {RANK[dst]})")
    return wrong


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_edges(modules())) == []


def test_every_top_level_name_has_a_layer() -> None:
    assert {layer_of(m) for m in modules()} - set(RANK) == set(), "add the new module/package to LAYERS"


def test_no_module_imports_a_higher_layer() -> None:
    assert upward(import_edges(modules())) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "proj" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "proj"


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    """The checker itself can fail: a cycle held open only by an in-function import is still a cycle."""
    root = _tree(tmp_path, {
        "__init__.py": "",
        "tracking/__init__.py": "",
        "tracking/store.py": "from proj.pipeline.run import x\n",
        "pipeline/__init__.py": "",
        "pipeline/run.py": "def f():\n    from ..tracking import store\n",
    })
    assert cycles(import_edges(modules(root))) == [["proj.pipeline.run", "proj.tracking.store"]]


@pytest.mark.parametrize("text", ["from proj.pipeline.run import x\n", "def f():\n    import proj.pipeline.run\n"])
def test_an_upward_import_is_found(tmp_path: Path, text: str) -> None:
    root = _tree(tmp_path, {"__init__.py": "", "tracking/__init__.py": "", "tracking/store.py": text,
                            "pipeline/__init__.py": "", "pipeline/run.py": ""})
    assert upward(import_edges(modules(root))) == [
        "proj.tracking.store (tracking, layer 3) imports proj.pipeline.run (pipeline, layer 6)"]
