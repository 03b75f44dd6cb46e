"""Packages import downward only: the server and the harness sit above SoftCoT and the
evaluation layer (datasets, scorers, judge), and the harness never imports the server (it
speaks HTTP to any server). Checked on the source, every import statement, including
those inside functions."""

import ast

import pytest

from server_process import REPO_ROOT

# package -> the project packages it must never import
FORBIDDEN = {
    "evaluation": {"benchmarks", "softcot_plugin", "server"},
    "softcot_plugin": {"benchmarks", "server"},
    "benchmarks": {"server"},
}
PROJECT_PACKAGES = {"evaluation", "softcot_plugin", "benchmarks", "server"}


def imported_packages(path) -> dict[str, int]:
    """Top-level project packages a module imports -> the first line that does."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT_PACKAGES:
                found.setdefault(top, node.lineno)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below_it(package):
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules, f"no modules found under {package}/"
    violations = [f"{path.relative_to(REPO_ROOT)}:{line} imports {imported}"
                  for path in modules
                  for imported, line in imported_packages(path).items()
                  if imported in FORBIDDEN[package]]
    assert violations == []


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from server.models import x\n    import benchmarks.run\n")
    assert imported_packages(module) == {"server": 4, "benchmarks": 5}
