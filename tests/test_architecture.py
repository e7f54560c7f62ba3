"""The layout holds: one package per stage, no import cycle, layers that run one way.

The rules are those of `docs/architecture.md`; `tests/import_contract.py` reads the
imports from the source.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from .import_contract import LAYERS, cycles, import_graph, layer_of, unit_edges, upward_imports

SRC = Path(__file__).resolve().parents[1] / "src" / "policetrial"
DOCS = Path(__file__).resolve().parents[1] / "docs"
GRAPH = import_graph(SRC)
PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists())


def test_no_module_imports_in_a_circle() -> None:
    found = cycles(GRAPH.edges)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_layers_run_one_way() -> None:
    wrong = upward_imports(GRAPH)
    assert not wrong, "imports from a higher layer: " + ", ".join(wrong)


def test_stages_do_not_import_each_other_in_a_circle() -> None:
    found = cycles(unit_edges(GRAPH))
    assert not found, "packages in a circle: " + "; ".join(" -> ".join(c) for c in found)


def test_every_package_and_root_module_has_a_layer() -> None:
    units = {GRAPH.unit(m) for m in GRAPH.modules}
    assert {u for u in units if layer_of(u) is None} == set()
    assert {u for layer in LAYERS for u in layer} == units, "a layer names a unit that is gone"


def test_the_root_holds_only_the_foundation_and_the_whole_trial() -> None:
    """No module at the package root but `__init__`, `__main__` and at most three others."""
    root = sorted(p.stem for p in SRC.glob("*.py"))
    others = [m for m in root if m not in ("__init__", "__main__")]
    assert len(others) <= 3, others


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_is_and_lists_its_public_names(package: str) -> None:
    init = SRC / package / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree)
    assert docstring and len(docstring.splitlines()) >= 3, f"{package}: say what it takes and gives"
    module = importlib.import_module(f"policetrial.{package}")
    public = getattr(module, "__all__", None)
    assert public, f"policetrial.{package} lists no public names"
    missing = [name for name in public if not hasattr(module, name)]
    assert not missing, f"policetrial.{package}.__all__ names what it lacks: {missing}"
    assert len(init.read_text(encoding="utf-8").splitlines()) <= 120, "a short __init__"


def test_architecture_doc_draws_every_package() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    missing = [p for p in PACKAGES if f"{p}/" not in text]
    assert not missing, f"docs/architecture.md does not draw {missing}"


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / "policetrial" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return root / "policetrial"


def test_the_contract_catches_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """A deliberate cycle (records -> outcomes -> records) and an upward import (the records
    layer reaching the outcomes stage) in a scratch package are both found."""
    scratch = _package(
        tmp_path,
        {
            "__init__.py": "",
            "records/__init__.py": "",
            "records/roster.py": "from policetrial.outcomes.windows import station_windows\n",
            "outcomes/__init__.py": "",
            "outcomes/windows.py": (
                "from typing import TYPE_CHECKING\n"
                "from policetrial.records import roster\n"
                "if TYPE_CHECKING:\n"
                "    from policetrial.report import build\n"
            ),
            "report/__init__.py": "",
            "report/build.py": "",
        },
    )
    graph = import_graph(scratch)
    assert cycles(graph.edges) == [
        [
            "policetrial.outcomes.windows",
            "policetrial.records.roster",
            "policetrial.outcomes.windows",
        ]
    ]
    assert upward_imports(graph) == ["policetrial.records.roster -> policetrial.outcomes.windows"]
    # An import for type checkers only is not a dependency at run time.
    assert "policetrial.report.build" not in graph.edges["policetrial.outcomes.windows"]


def test_every_import_the_docs_show_works() -> None:
    """A reader who copies an import from a page of `docs/` gets what the page says."""
    shown = []
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "policetrial"
                ):
                    shown.append((page.name, node.module, [a.name for a in node.names]))
    assert shown, "the docs show no import; this test would check nothing"
    for page, module, names in shown:
        imported = importlib.import_module(module)
        missing = [n for n in names if not hasattr(imported, n)]
        assert not missing, f"docs/{page}: {module} has no {missing}"
