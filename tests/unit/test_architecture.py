"""The shape rules of issue 9: no module under src/ over 300 lines, no import cycle between
modules (an import under ``if TYPE_CHECKING:`` counts: it is a cycle a reader follows too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "bffgate"
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its ``__init__``)."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """``from .x import y`` (level 1, name "x") inside ``module`` -> its absolute name."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``module`` imports, anywhere in the file (TYPE_CHECKING blocks
    and function bodies included); ``from pkg import name`` counts as an import of
    ``pkg.name`` when that is a module."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    resolved = set()
    for name in found:
        # ``import bffgate.a.b`` names a module; a name imported from one is not a module,
        # so walk up to the longest prefix that is.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.add(name)
    return resolved


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {m: imports_of(m, p, known) for m, p in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as the
    sorted list of its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the package's module count
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_module_over_300_lines() -> None:
    too_long = {str(p.relative_to(SRC)): n for p in _modules().values()
                if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by job): {too_long}"


def test_no_import_cycle_between_modules() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, f"import cycles (TYPE_CHECKING imports count): {cycles}"


# The checker itself, on made-up graphs and sources: a test that cannot fail proves nothing.

def test_find_cycles_reports_a_cycle_and_ignores_a_chain() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bffgate.b import X\n",
     {"bffgate.b"}),
    ("from . import b\n", {"bffgate.b"}),
    ("from .b import helper\n", {"bffgate.b"}),
    ("from bffgate import b\n", {"bffgate.b"}),
    ("import bffgate.b\n", {"bffgate.b"}),
    ("def f() -> None:\n    from bffgate.pkg.c import thing\n", {"bffgate.pkg.c"}),
    ("from bffgate import VERSION\n", {"bffgate"}),
    ("import json\n", set()),
])
def test_imports_of_resolves_every_import_form(tmp_path: Path, source: str,
                                               expected: set[str]) -> None:
    path = tmp_path / "a.py"
    path.write_text(source)
    known = {"bffgate", "bffgate.a", "bffgate.b", "bffgate.pkg", "bffgate.pkg.c"}
    assert imports_of("bffgate.a", path, known) == expected


def test_relative_import_inside_a_package_init(tmp_path: Path) -> None:
    path = tmp_path / "__init__.py"
    path.write_text("from .c import thing\nfrom .. import b\n")
    known = {"bffgate", "bffgate.b", "bffgate.pkg", "bffgate.pkg.c"}
    assert imports_of("bffgate.pkg", path, known) == {"bffgate.pkg.c", "bffgate.b"}


def test_no_two_test_modules_share_a_name() -> None:
    """pytest imports test modules by basename (rootdir-relative, no packages): two files
    named alike in different tiers stop the whole collection on a clean clone."""
    tests = Path(__file__).resolve().parents[1]
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        if "node_modules" not in path.parts:
            seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert not {n: p for n, p in seen.items() if len(p) > 1}
