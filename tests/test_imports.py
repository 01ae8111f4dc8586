"""The package's import graph: no circles anywhere in ``lam/`` (lazy imports inside functions
included), and ``lam.retrieval`` never reaches for the encoder."""

from __future__ import annotations

import ast
from pathlib import Path

import lam

ROOT = Path(lam.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the lam modules it imports anywhere in its source (``from lam import X`` resolves
    through ``lam``'s lazy table to the module that defines X)."""
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "lam":
                    targets = [lam._WHERE.get(a.name, "lam") for a in node.names]
                else:
                    targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            edges[module] |= {t for t in targets if t in mods and t not in (module, "lam")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles_in_the_package():
    graph = import_graph()
    assert "lam.runner" in graph["lam.encoder"] and "lam.runner" in graph["lam.retrieval.index"]
    assert cycles(graph) == []


def test_retrieval_does_not_import_the_encoder():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("lam.retrieval"):
            assert "lam.encoder" not in targets, module
