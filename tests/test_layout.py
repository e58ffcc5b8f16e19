"""The house rules of the layout, checked on the source: sizes, import direction, no circles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlflow_tune"
MAX_LINES = 350


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _runtime_imports(path: Path, prefix: str = "mlflow_tune") -> set[str]:
    """Modules (of this package, by default) that `path` imports at run time, TYPE_CHECKING left out."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(prefix):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(prefix))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    # `from pkg import submodule` inside pkg's own modules is no circle: the package is mid-import by design.
    return {name: {m for m in _runtime_imports(path) if m in mods and not (name + ".").startswith(m + ".")}
            for name, path in mods.items()}


def test_no_module_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_no_import_circles() -> None:
    g = graph()
    # Importing a submodule from outside its package runs the package's __init__ first.
    for name, targets in g.items():
        for target in list(targets):
            parent = target.rpartition(".")[0]
            while parent.count(".") >= 1 and not (name + ".").startswith(parent + "."):
                targets.add(parent)
                parent = parent.rpartition(".")[0]
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(g):
        if node not in seen:
            visit(node)


SEARCH = ("mlflow_tune.study", "mlflow_tune.stages", "mlflow_tune.samplers", "mlflow_tune.config",
          "mlflow_tune.trials", "mlflow_tune.pruners")


@pytest.mark.parametrize(("package", "forbidden"), [
    ("mlflow_tune.training", ("mlflow", "mlflow_tune.tracking", *SEARCH, "mlflow_tune.diagnostics",
                              "mlflow_tune.cli", "mlflow_tune.executors")),
    ("mlflow_tune.diagnostics", ("torch", "mlflow_tune.cli", *SEARCH, "mlflow_tune.executors")),
    *((room, ("mlflow_tune.cli",)) for room in SEARCH),
    ("mlflow_tune.executors", ("mlflow_tune.cli",)),
    ("mlflow_tune.tracking", ("mlflow_tune.cli", *SEARCH, "mlflow_tune.executors")),
])
def test_imports_flow_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    for name, path in modules().items():
        if not name.startswith(package):
            continue
        for target in _runtime_imports(path, prefix=""):
            assert not any(target == f or target.startswith(f + ".") for f in forbidden), f"{name} imports {target}"


def test_nothing_below_cli_prints() -> None:
    printing = re.compile(r"(?<![\w.])print\(")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if "cli" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if printing.search(line)]
    assert not offenders, f"print outside cli/: {offenders}"


def test_every_subpackage_is_installed() -> None:
    """pyproject lists the packages by hand (plugins/ installs under another name): none may be missing."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found | {"mlflow_tune_plugins"} == listed
