"""The code keeps the shape issue 10 set: short modules and functions, no import cycles, and
tabs that do not import each other. Reads the source with `ast`; imports nothing of ftui."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
SOURCES = sorted((REPO_ROOT / "ftui").rglob("*.py")) + [REPO_ROOT / "app.py"]


def _name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _trees() -> dict[str, ast.Module]:
    return {_name(path): ast.parse(path.read_text(encoding="utf-8")) for path in SOURCES}


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(REPO_ROOT)): lines
        for path in SOURCES
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules by what their parts are for: {long}"


def test_no_function_is_over_60_lines():
    long = [
        f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for module, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long


def _top_level_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """ftui modules imported at module level (imports inside functions are lazy on purpose)."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ftui"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ftui")}
    return found & modules


def _import_graph() -> dict[str, set[str]]:
    trees = _trees()
    return {module: _top_level_imports(tree, set(trees)) for module, tree in trees.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every import cycle met by a depth-first walk, as 'a -> b -> a'."""
    cycles: list[str] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return cycles


def test_no_import_cycles():
    cycles = find_cycles(_import_graph())
    assert not cycles, cycles


def test_no_tab_imports_another_tab():
    tabs = {m for m in _import_graph() if m.startswith("ftui.ui.") and m.endswith("_tab")}
    graph = _import_graph()
    crossing = {tab: graph[tab] & (tabs - {tab}) for tab in tabs if graph[tab] & (tabs - {tab})}
    assert tabs and not crossing, crossing


def test_the_checks_see_what_they_check():
    """The graph and the line counts are read from real files: the checks can fail."""
    graph = _import_graph()
    assert "ftui.config.schema" in graph["ftui.config.loading"]
    assert any(m.startswith("ftui.runs.") for m in graph) and "ftui.server.serve" in graph
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    counted = [p for p in SOURCES if p.read_text(encoding="utf-8").count("\n") > 100]
    assert counted, "no module over 100 lines: the line count reads nothing"
