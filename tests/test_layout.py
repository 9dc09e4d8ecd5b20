"""The package's shape: small modules, and imports that never go round in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
MAX_LINES = 450


def helpers_imports() -> dict[str, set[str]]:
    """For each helpers module, the helpers modules it imports anywhere in it (at the top or in a function)."""
    modules = {path.stem for path in HELPERS.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name in modules:
        tree = ast.parse((HELPERS / f"{name}.py").read_text())
        # A `python -m` entry point runs as __main__, a module of its own: what it imports is no cycle.
        tree.body = [node for node in tree.body if not is_main_block(node)]
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("helpers.")}
        graph[name] = imported & modules - {name}
    return graph


def is_main_block(node: ast.stmt) -> bool:
    """Whether node is `if __name__ == "__main__": ...`."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules (empty when there is none)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_among_helpers():
    assert find_cycle(helpers_imports()) == []


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_helpers_module_is_long():
    lengths = {path.name: len(path.read_text().splitlines()) for path in HELPERS.glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
