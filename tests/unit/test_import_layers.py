"""The plugin package imports downward only: no module imports, directly or through others,
a module that imports it back.

The import graph is read from the source with ``ast``: every ``import`` and ``from ...
import`` anywhere in a module (at the top, inside a function, under ``TYPE_CHECKING``)
counts, since each is a dependency even where Python happens to resolve it lazily. A
module that calls ``importlib.import_module`` is taken to import every module of its own
package (the methods registry finds its methods that way).
"""

from __future__ import annotations

import ast
from pathlib import Path

import sglang_soft_thinking

PACKAGE_DIR = Path(sglang_soft_thinking.__file__).parent
PACKAGE = PACKAGE_DIR.name


def module_files(package_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve_from(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    here = here[:len(here) - node.level + 1]
    return ".".join(here + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports (the most specific module each names)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(name, path, node)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    found.add(target)
                elif base in modules:
                    found.add(base)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module"):
            found.update(m for m in modules if m.rpartition(".")[0] == package)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as the list of modules around it, or None."""
    done, path, on_path = set(), [], set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for following in sorted(graph.get(node, ())):
            if following in on_path:
                return path[path.index(following):] + [following]
            if following not in done:
                cycle = visit(following)
                if cycle:
                    return cycle
        on_path.discard(path.pop())
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    modules = module_files(PACKAGE_DIR)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions_and_under_type_checking():
    graph = import_graph()
    assert f"{PACKAGE}.methods.base" in graph[f"{PACKAGE}.methods"]  # the top of methods/__init__
    assert f"{PACKAGE}.methods.concept" in graph[f"{PACKAGE}.methods"]  # found by import_module
    assert f"{PACKAGE}.hooks.embedding" in graph[f"{PACKAGE}.plugin"]  # inside a function


def test_the_plugin_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
