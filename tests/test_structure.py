"""The house rules that keep qadapter easy to change, checked on the source itself (no imports are executed).

- no import cycles between modules (lazy imports inside functions count too: they are cycles waiting to bite;
  imports under ``if TYPE_CHECKING:`` do not, they are never executed);
- ``qadapter.core`` sits below every stage: it imports nothing of qadapter but itself, ``qadapter.errors`` and the
  vocabulary types of ``qadapter.data.types`` (which import nothing of qadapter);
- ``__init__.py`` files re-export: they define no functions or classes (a lazy ``__getattr__`` is allowed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "qadapter"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """qadapter modules that ``path`` imports; ``from pkg import sub`` counts as importing ``pkg.sub``."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # imports under `if TYPE_CHECKING:` are for annotations, never executed
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(node.module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:  # noqa: C901 (Tarjan's algorithm, kept in one piece)
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], (
        f"import cycles (break them by moving shared types or helpers down a layer): {cycles}"
    )


def test_core_imports_no_stage() -> None:
    allowed = ("qadapter.core", "qadapter.errors", "qadapter.version", "qadapter.data.types")
    bad = {
        name: sorted(i for i in imports if not i.startswith(allowed))
        for name, imports in _graph().items()
        if name.startswith("qadapter.core")
    }
    assert {k: v for k, v in bad.items() if v} == {}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: _module_name(p))
def test_init_files_only_re_export(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name not in ("__getattr__", "__dir__")
    ]
    assert defined == [], (
        f"{_module_name(path)} defines {defined}: move them into a module and re-export them"
    )
