"""The import contract of `src/policetrial`: one package per stage, layers that run one way.

Read from the source with `ast` (nothing is imported), so a cycle is found even where
Python would tolerate it at run time. Only imports that run count: those under
`if TYPE_CHECKING:` are for type checkers and are left out. `from package import name`
counts as an import of the submodule `package.name` when there is one (as import-linter
and grimp count it), otherwise of the package's `__init__`.

`docs/architecture.md` draws the same layers; `tests/test_architecture.py` holds the code
to them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "jsonable", "__init__"}),
    frozenset({"protocol"}),
    frozenset({"records"}),
    frozenset(
        {
            "ingest",
            "outcomes",
            "randomise",
            "audit",
            "survey",
            "analysis",
            "design",
            "synth",
            "exchange",
        }
    ),
    frozenset({"report", "web", "documents"}),
    frozenset({"cli", "demo", "__main__"}),
)
"""Bottom to top. A unit may import from its own layer or a lower one, never a higher one;
within a layer the units' imports must not form a cycle. A unit is a package directly under
`policetrial` or a module at its root (`__init__` is the root package: the version)."""


@dataclass(frozen=True)
class Graph:
    modules: Mapping[str, Path]
    edges: Mapping[str, frozenset[str]]
    """Module -> the project modules it imports when it runs."""

    def unit(self, module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else "__init__"


def import_graph(package_dir: Path) -> Graph:
    """Every module under `package_dir` (a package folder) and what it imports."""
    top = package_dir.name
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, frozenset[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    names.append(full if full in modules else node.module)
            elif node.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                names = [
                    f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem
                    for a in node.names
                ]
            for name in names:
                if name == top or name.startswith(top + "."):
                    target = resolve(name)
                    if target is not None and target != module:
                        targets.add(target)
        edges[module] = frozenset(targets)
    return Graph(modules, edges)


def _runtime_imports(tree: ast.Module) -> Iterable[ast.Import | ast.ImportFrom]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in hidden:
            yield node


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more nodes, as a path round the cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(_path_round(sorted(group), edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _path_round(group: list[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest cycle through the group's first node, for a readable message."""
    members = set(group)
    start = group[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in members and w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return group


def layer_of(unit: str, layers: Sequence[frozenset[str]] = LAYERS) -> int | None:
    return next((i for i, members in enumerate(layers) if unit in members), None)


def upward_imports(graph: Graph, layers: Sequence[frozenset[str]] = LAYERS) -> list[str]:
    """`importer -> imported` for every import from a higher layer than the importer's."""
    wrong = []
    for module, targets in sorted(graph.edges.items()):
        low = layer_of(graph.unit(module), layers)
        for target in sorted(targets):
            high = layer_of(graph.unit(target), layers)
            if low is not None and high is not None and high > low:
                wrong.append(f"{module} -> {target}")
    return wrong


def unit_edges(graph: Graph) -> dict[str, set[str]]:
    """Which units import which (a unit's imports of itself left out)."""
    out: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.edges.items():
        for target in targets:
            if graph.unit(module) != graph.unit(target):
                out[graph.unit(module)].add(graph.unit(target))
    return out
